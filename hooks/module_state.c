/* Module state lookups: PyModule_GetState and the type-to-module functions of
 * PEP 573.  These are hot (called on every method call of an isolated module), so
 * they are counted per module instance, not logged. */
#include "hooks.h"

#include "../instrument/pyapi.h"

static void count_lookup(const PyObject *module)
{
    if (!module)
        return;
    ml_registry_lock();
    struct ml_module_rec *rec = ml_module_find(module);
    if (rec)
        rec->state_lookups++;
    ml_registry_unlock();
}

void *ml_hook_PyModule_GetState(PyObject *module)
{
    count_lookup(module);
    return py.PyModule_GetState(module);
}

PyObject *ml_hook_PyType_GetModule(PyTypeObject *type)
{
    PyObject *module = py.PyType_GetModule(type);
    count_lookup(module);
    return module;
}

void *ml_hook_PyType_GetModuleState(PyTypeObject *type)
{
    void *state = py.PyType_GetModuleState(type);
    if (state) {
        ml_registry_lock();
        struct ml_type_rec *t = ml_type_find(type);
        struct ml_module_rec *m = t && t->module ? ml_module_find(t->module) : NULL;
        if (m)
            m->state_lookups++;
        ml_registry_unlock();
    }
    return state;
}

PyObject *ml_hook_PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *module = py.PyType_GetModuleByDef(type, def);
    count_lookup(module);
    return module;
}
