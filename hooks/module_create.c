/* Module creation: multi-phase definitions handed to CPython by PyModuleDef_Init,
 * single-phase modules made by PyModule_Create2, and modules an extension makes
 * itself with PyModule_FromDefAndSpec2. */
#include "hooks.h"

#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"

PyObject *ml_hook_PyModuleDef_Init(PyModuleDef *def)
{
    /* The module itself is made later inside CPython; our slots see it then. */
    ml_interp_announce(ML_INTERP_IMPORTING);
    struct ml_def_rec *rec = ml_module_def_adopt(def, 1);
    if (rec)
        ml_static_types_check_def(rec);
    return py.PyModuleDef_Init(def);
}

/* The single-phase module whose PyInit runs on this thread, if any: PyO3 makes its
 * types there with PyType_FromSpec and no module ("builtins.X").  PyInit is not
 * wrapped, so its end is inferred: it runs under the Python frame that was current
 * when it made its module, and importlib sets __spec__ (None till then) once it
 * returned. */
static __thread PyObject *initialising;
static __thread const void *initialising_frame;

/* Without the registry lock: PyEval_GetFrame may make a frame object, and with it
 * run the garbage collector, whose deallocs take the lock. */
PyObject *ml_module_initialising(void)
{
    if (!initialising || !initialising_frame || (const void *)py.PyEval_GetFrame() != initialising_frame)
        return NULL;
    struct ml_module_rec m;
    int alive = ml_module_snapshot(initialising, &m) && m.phase < ML_MOD_FREED && m.def && !m.def->multiphase;
    if (!alive)
        return NULL; /* freed, and the address maybe another module's */
    /* Nothing runs from here to the lookup's end that could free it. */
    PyObject *dict = py.PyModule_GetDict(initialising);
    PyObject *spec = dict ? py.PyDict_GetItemString(dict, "__spec__") : NULL;
    return !spec || spec == py.none ? initialising : NULL; /* None since PyModule_Create */
}

PyObject *ml_hook_PyModule_Create2(PyModuleDef *def, int apiver)
{
    ml_interp_announce(ML_INTERP_IMPORTING);
    struct ml_def_rec *rec = ml_module_def_adopt(def, 0);
    if (rec)
        ml_static_types_check_def(rec); /* single-phase: static types are its way */
    PyObject *module = py.PyModule_Create2(def, apiver);
    if (module && rec) {
        ml_module_created(module, rec, NULL);
        initialising = module;
        initialising_frame = py.PyEval_GetFrame();
    }
    return module;
}

PyObject *ml_hook_PyModule_FromDefAndSpec2(PyModuleDef *def, PyObject *spec, int apiver)
{
    ml_interp_announce(ML_INTERP_IMPORTING);
    struct ml_def_rec *rec = ml_module_def_adopt(def, 1);
    PyObject *module = py.PyModule_FromDefAndSpec2(def, spec, apiver);
    if (module && rec && ml_py_is_module(module))
        ml_module_created(module, rec, NULL);
    return module;
}
