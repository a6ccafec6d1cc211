/* Module state lookups: PyModule_GetState and the type-to-module functions of
 * PEP 573.  These are hot (called on every method call of an isolated module), so
 * they are counted per module instance, not logged. */
#include "hooks.h"

#include "../instrument/pyapi.h"

/* The last module this thread looked up.  A module instance is only used under its
 * own interpreter's GIL, so its count needs no lock; the generation tells when
 * records went away since the entry was filled. */
struct lookup_cache {
    const PyObject *module;
    struct ml_module_rec *rec;
    unsigned long generation;
};

static __thread struct lookup_cache cache __attribute__((tls_model("initial-exec")));

static void count_slow(const PyObject *module, unsigned long generation)
{
    ml_registry_lock();
    struct ml_module_rec *rec = ml_module_find(module);
    if (rec)
        rec->state_lookups++;
    ml_registry_unlock();
    cache = (struct lookup_cache){module, rec, generation};
}

static inline void count_lookup(const PyObject *module)
{
    unsigned long generation = __atomic_load_n(&ml_registry_generation, __ATOMIC_ACQUIRE);
    if (module == cache.module && generation == cache.generation) {
        if (cache.rec)
            cache.rec->state_lookups++;
        return;
    }
    if (module)
        count_slow(module, generation);
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
