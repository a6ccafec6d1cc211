/* Module creation: multi-phase definitions handed to CPython by PyModuleDef_Init,
 * single-phase modules made by PyModule_Create2, and modules an extension makes
 * itself with PyModule_FromDefAndSpec2. */
#include "hooks.h"

#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"

PyObject *ml_hook_PyModuleDef_Init(PyModuleDef *def)
{
    /* The module itself is made later inside CPython; our slots see it then. */
    ml_interp_current(ML_INTERP_IMPORTING);
    struct ml_def_rec *rec = ml_module_def_adopt(def, 1);
    if (rec)
        ml_static_types_check_def(rec);
    return py.PyModuleDef_Init(def);
}

PyObject *ml_hook_PyModule_Create2(PyModuleDef *def, int apiver)
{
    ml_interp_current(ML_INTERP_IMPORTING);
    struct ml_def_rec *rec = ml_module_def_adopt(def, 0);
    if (rec)
        ml_static_types_check_def(rec); /* single-phase: static types are its way */
    PyObject *module = py.PyModule_Create2(def, apiver);
    if (module && rec)
        ml_module_created(module, rec, NULL);
    return module;
}

PyObject *ml_hook_PyModule_FromDefAndSpec2(PyModuleDef *def, PyObject *spec, int apiver)
{
    ml_interp_current(ML_INTERP_IMPORTING);
    struct ml_def_rec *rec = ml_module_def_adopt(def, 1);
    PyObject *module = py.PyModule_FromDefAndSpec2(def, spec, apiver);
    if (module && rec && ml_py_is_module(module))
        ml_module_created(module, rec, NULL);
    return module;
}
