/* Type creation: the PyType_From* family makes heap types (adopted: slots wrapped,
 * death watched); PyType_Ready on a static type is recorded as such, since a
 * static type is shared by every module instance and interpreter. */
#include "hooks.h"

#include "../instrument/events.h"
#include "../instrument/interpreters.h"
#include "../instrument/findings.h"
#include "../instrument/pyapi.h"

#include <stdio.h>

static void check_tp_free(const struct ml_type_rec *type, const PyType_Spec *spec);

/* The checks of the type as made run once it is adopted: they report on its record. */
static PyObject *adopted(PyObject *type, PyObject *module, const PyType_Spec *spec)
{
    struct ml_type_rec rec;
    if (type && (((PyTypeObject *)type)->tp_flags & ML_TPFLAGS_HEAPTYPE) &&
        ml_type_adopt((PyTypeObject *)type, module, spec, &rec))
        check_tp_free(&rec, spec);
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
    if (result == 0 && !already && !(type->tp_flags & ML_TPFLAGS_HEAPTYPE)) {
        struct ml_capture c;
        ml_capture_stacks(&c);
        ml_event_static_type(type, ml_interp_current(ML_INTERP_ANY), &c);
        ml_static_type_readied(type, &c.saved);
        ml_saved_stack_release(&c.saved);
    }
    return result;
}

/* tp-free-override: a tp_free that cannot free what tp_alloc made. */
static void check_tp_free(const struct ml_type_rec *type, const PyType_Spec *spec)
{
    void *tp_free = NULL;
    for (const PyType_Slot *s = spec ? spec->slots : NULL; s && s->slot; s++)
        if (s->slot == ML_tp_free)
            tp_free = s->pfunc;
    if (!tp_free || !ml_finding_enabled(ML_TP_FREE_OVERRIDE))
        return;
    const char *wrong = NULL;
    if (type->gc && tp_free == (void *)py.PyObject_Free)
        wrong = "PyObject_Free (PyObject_Del) on a GC type, whose objects start with a GC header: use PyObject_GC_Del";
    else if (!type->gc && tp_free == (void *)py.PyObject_GC_Del)
        wrong = "PyObject_GC_Del on a type without Py_TPFLAGS_HAVE_GC: use PyObject_Free";
    if (!wrong)
        return;
    struct ml_finding f = {.kind = ML_TP_FREE_OVERRIDE};
    ml_finding_set_type(&f, type, NULL);
    snprintf(f.message, sizeof f.message, "heap type '%s' sets tp_free to %s", type->qualname, wrong);
    ml_finding_report(&f);
}
