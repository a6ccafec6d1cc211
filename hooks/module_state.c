/* Module state lookups: PyModule_GetState and the type-to-module functions of
 * PEP 573.  These are hot (called on every method call of an isolated module), so
 * they are counted per module instance, not logged, through a per-thread cache.
 *
 * Detectors: state fetched for a module whose m_clear has run, other than by the
 * module's own m_traverse/m_clear/m_free (state-use-after-clear); PyModule_GetState
 * on an object that is not a module (state-from-non-module). */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/pyapi.h"
#include "../instrument/slot_context.h"

#include <stdio.h>

/* The last module this thread looked up.  A module instance is only used under its
 * own interpreter's GIL, so its count needs no lock; the generation tells when
 * records went away since the entry was filled. */
struct lookup_cache {
    const PyObject *module;
    struct ml_module_rec *rec;
    unsigned long generation;
};

static __thread struct lookup_cache cache __attribute__((tls_model("initial-exec")));

static int own_teardown(const PyObject *module)
{
    return ml_slot_top && ml_slot_top->slot == ML_SLOT_MODULE_TEARDOWN && ml_slot_top->object == module;
}

static void report_after_clear(const PyObject *module, const char *api)
{
    if (own_teardown(module) || !ml_finding_enabled(ML_STATE_USE_AFTER_CLEAR))
        return;
    struct ml_finding f = {.kind = ML_STATE_USE_AFTER_CLEAR};
    ml_registry_lock();
    struct ml_module_rec *rec = ml_module_find(module);
    struct ml_module_rec copy = rec ? *rec : (struct ml_module_rec){0};
    ml_registry_unlock();
    if (!rec)
        return;
    ml_finding_set_module(&f, &copy);
    const struct ml_slot_frame *dealloc = ml_slot_innermost(ML_SLOT_TP_DEALLOC);
    snprintf(f.message, sizeof f.message, "%s for module '%s' (instance #%llu) after its m_clear ran%s%s", api,
             f.module ? f.module : "?", copy.instance, dealloc ? ", in tp_dealloc of " : "",
             dealloc ? ((const PyTypeObject *)dealloc->owner)->tp_name : "");
    ml_finding_report(&f);
}

static void report_non_module(const PyObject *obj)
{
    if (!ml_finding_enabled(ML_STATE_FROM_NON_MODULE))
        return;
    struct ml_finding f = {.kind = ML_STATE_FROM_NON_MODULE, .interp = -1};
    snprintf(f.message, sizeof f.message, "PyModule_GetState() called on a '%s' object, not a module",
             ML_TYPE(obj)->tp_name);
    ml_finding_report(&f);
}

static void count_slow(const PyObject *module, unsigned long generation, const char *api)
{
    ml_registry_lock();
    struct ml_module_rec *rec = ml_module_find(module);
    int cleared = rec && rec->phase >= ML_MOD_CLEARED;
    if (rec)
        rec->state_lookups++;
    ml_registry_unlock();
    cache = (struct lookup_cache){module, rec, generation};
    if (cleared)
        report_after_clear(module, api);
}

static inline void count_lookup(const PyObject *module, const char *api)
{
    unsigned long generation = __atomic_load_n(&ml_registry_generation, __ATOMIC_ACQUIRE);
    if (module == cache.module && generation == cache.generation) {
        if (cache.rec) {
            cache.rec->state_lookups++;
            if (cache.rec->phase >= ML_MOD_CLEARED)
                report_after_clear(module, api);
        }
        return;
    }
    if (module)
        count_slow(module, generation, api);
}

void *ml_hook_PyModule_GetState(PyObject *module)
{
    if (module && module != cache.module && !ml_py_is_module(module))
        report_non_module(module);
    else
        count_lookup(module, "PyModule_GetState()");
    return py.PyModule_GetState(module);
}

PyObject *ml_hook_PyType_GetModule(PyTypeObject *type)
{
    PyObject *module = py.PyType_GetModule(type);
    count_lookup(module, "PyType_GetModule()");
    return module;
}

void *ml_hook_PyType_GetModuleState(PyTypeObject *type)
{
    void *state = py.PyType_GetModuleState(type);
    /* A state means the type has a module: PyType_GetModule cannot fail then, and is
     * far cheaper than the registry (this is as hot as PyModule_GetState). */
    if (state)
        count_lookup(py.PyType_GetModule(type), "PyType_GetModuleState()");
    return state;
}

PyObject *ml_hook_PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *module = py.PyType_GetModuleByDef(type, def);
    count_lookup(module, "PyType_GetModuleByDef()");
    return module;
}
