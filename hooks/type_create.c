/* Type creation: the PyType_From* family makes heap types (adopted: slots wrapped,
 * death watched); PyType_Ready on a static type is recorded as such, since a
 * static type is shared by every module instance and interpreter. */
#include "hooks.h"

#include "../instrument/events.h"
#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"

static PyObject *adopted(PyObject *type, PyObject *module, const PyType_Spec *spec)
{
    if (type && (((PyTypeObject *)type)->tp_flags & ML_TPFLAGS_HEAPTYPE))
        ml_type_adopt((PyTypeObject *)type, module, spec);
    return type;
}

PyObject *ml_hook_PyType_FromSpec(PyType_Spec *spec)
{
    return adopted(py.PyType_FromSpec(spec), NULL, spec);
}

PyObject *ml_hook_PyType_FromSpecWithBases(PyType_Spec *spec, PyObject *bases)
{
    return adopted(py.PyType_FromSpecWithBases(spec, bases), NULL, spec);
}

PyObject *ml_hook_PyType_FromModuleAndSpec(PyObject *module, PyType_Spec *spec, PyObject *bases)
{
    return adopted(py.PyType_FromModuleAndSpec(module, spec, bases), module, spec);
}

PyObject *ml_hook_PyType_FromMetaclass(PyTypeObject *meta, PyObject *module, PyType_Spec *spec,
                                       PyObject *bases)
{
    return adopted(py.PyType_FromMetaclass(meta, module, spec, bases), module, spec);
}

int ml_hook_PyType_Ready(PyTypeObject *type)
{
    int already = (type->tp_flags & ML_TPFLAGS_READY) != 0;
    int result = py.PyType_Ready(type);
    if (result == 0 && !already && !(type->tp_flags & ML_TPFLAGS_HEAPTYPE))
        ml_event_static_type(type, ml_interp_current(ML_INTERP_ANY));
    return result;
}
