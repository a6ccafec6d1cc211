/* Compiled against each interpreter's headers by test_abi.py: modlife's mirror of
 * CPython's layouts (instrument/pyabi.h) must agree with the real ones. */
#include <Python.h>
#include <stddef.h>

#define PyObject ML_PyObject
#define PyTypeObject ML_PyTypeObject
#define PyModuleDef ML_PyModuleDef
#define PyModuleDef_Base ML_PyModuleDef_Base
#define PyModuleDef_Slot ML_PyModuleDef_Slot
#define PyType_Slot ML_PyType_Slot
#define PyType_Spec ML_PyType_Spec
#define PyMethodDef ML_PyMethodDef
#define PyInterpreterState ML_PyInterpreterState
#define PyThreadState ML_PyThreadState
#define PyFrameObject ML_PyFrameObject
#define PyCodeObject ML_PyCodeObject
#define PyCFunction ML_PyCFunction
#define Py_ssize_t ML_Py_ssize_t
#define destructor ml_destructor
#define visitproc ml_visitproc
#define traverseproc ml_traverseproc
#define inquiry ml_inquiry
#define freefunc ml_freefunc
#include "../instrument/pyabi.h"
#undef PyObject
#undef PyTypeObject
#undef PyModuleDef
#undef PyModuleDef_Base
#undef PyModuleDef_Slot
#undef PyType_Slot
#undef PyType_Spec
#undef PyMethodDef

#define SAME(real, mirror, field) \
    _Static_assert(offsetof(real, field) == offsetof(mirror, field), #real "." #field)
#define SAME_SIZE(real, mirror) _Static_assert(sizeof(real) == sizeof(mirror), #real)

SAME(PyObject, ML_PyObject, ob_type);
SAME(PyTypeObject, ML_PyTypeObject, tp_name);
SAME(PyTypeObject, ML_PyTypeObject, tp_dealloc);
SAME(PyTypeObject, ML_PyTypeObject, tp_flags);
SAME(PyTypeObject, ML_PyTypeObject, tp_traverse);
SAME(PyTypeObject, ML_PyTypeObject, tp_clear);
SAME(PyTypeObject, ML_PyTypeObject, tp_base);
SAME(PyTypeObject, ML_PyTypeObject, tp_alloc);
SAME(PyTypeObject, ML_PyTypeObject, tp_free);
SAME(PyTypeObject, ML_PyTypeObject, tp_finalize);
SAME(PyModuleDef, ML_PyModuleDef, m_name);
SAME(PyModuleDef, ML_PyModuleDef, m_size);
SAME(PyModuleDef, ML_PyModuleDef, m_slots);
SAME(PyModuleDef, ML_PyModuleDef, m_traverse);
SAME(PyModuleDef, ML_PyModuleDef, m_clear);
SAME(PyModuleDef, ML_PyModuleDef, m_free);
SAME_SIZE(PyModuleDef, ML_PyModuleDef);
SAME_SIZE(PyModuleDef_Slot, ML_PyModuleDef_Slot);
SAME(PyType_Spec, ML_PyType_Spec, flags);
SAME(PyType_Spec, ML_PyType_Spec, slots);
SAME_SIZE(PyType_Slot, ML_PyType_Slot);
SAME_SIZE(PyMethodDef, ML_PyMethodDef);

_Static_assert(Py_TPFLAGS_HEAPTYPE == ML_TPFLAGS_HEAPTYPE, "HEAPTYPE");
_Static_assert(Py_TPFLAGS_READY == ML_TPFLAGS_READY, "READY");
_Static_assert(Py_TPFLAGS_HAVE_GC == ML_TPFLAGS_HAVE_GC, "HAVE_GC");
_Static_assert(Py_mod_create == ML_mod_create, "Py_mod_create");
_Static_assert(Py_mod_exec == ML_mod_exec, "Py_mod_exec");
_Static_assert(Py_tp_dealloc == ML_tp_dealloc, "Py_tp_dealloc");
_Static_assert(Py_tp_traverse == ML_tp_traverse, "Py_tp_traverse");
_Static_assert(Py_tp_free == ML_tp_free, "Py_tp_free");
_Static_assert(Py_TPFLAGS_TYPE_SUBCLASS == ML_TPFLAGS_TYPE_SUBCLASS, "TYPE_SUBCLASS");
_Static_assert(METH_O == ML_METH_O, "METH_O");
_Static_assert(METH_NOARGS == ML_METH_NOARGS, "METH_NOARGS");

_Static_assert(offsetof(PyHeapTypeObject, ht_module) == ML_HT_MODULE_OFFSET(PY_MINOR_VERSION),
               "PyHeapTypeObject.ht_module");

int main(void) { return 0; }
