/* Module state lookups: PyModule_GetState and the type-to-module functions of
 * PEP 573.  These are hot (called on every method call of an isolated module), so
 * they are counted per module instance, not logged, through a per-thread cache.
 *
 * Detectors: state fetched for a module whose m_clear has run, other than by the
 * module's own m_traverse/m_clear/m_free (state-use-after-clear); PyModule_GetState
 * on an object that is not a module (state-from-non-module); state or module of an
 * instance owned by another interpreter than the caller's, reached through a C
 * global kept from the first import (state-from-other-interpreter); PyModule_GetState
 * on a module modlife saw freed (state-use-after-free, see module_teardown.c). */
#include "hooks.h"

#include "../instrument/crash_story.h"
#include "../instrument/findings.h"
#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"
#include "../instrument/slot_context.h"

#include <stdio.h>

/* The last module this thread looked up.  A module instance is only used under its
 * own interpreter's GIL, so its count needs no lock; the generation tells when
 * records went away since the entry was filled.  The thread state it was filled
 * under says whether the thread still runs in the same interpreter (a thread
 * switches interpreters by switching thread states), so the owner check is done
 * once per fill, and the hit path only tests a flag.  While only the main
 * interpreter was seen, no thread state is read (tstate stays NULL, and the first
 * lookup once there are several misses). */
struct lookup_cache {
    const PyObject *module;
    struct ml_module_rec *rec;
    unsigned long generation;
    const PyThreadState *tstate;
    long long here;  /* the caller's interpreter, when foreign */
    int foreign;     /* rec is owned by another interpreter than the caller's */
};

static __thread struct lookup_cache cache __attribute__((tls_model("initial-exec")));

/* A lookup of the module this thread looked up last is answered from the module
 * object itself (and a type's module from its ht_module), which costs less than the
 * call it replaces: the counting is then nearly free.  Each layout is used only once
 * it has agreed with the C API on a real object: 0 unknown, 1 agreed, -1 not. */
static int module_layout, type_layout;

static void check_module_layout(const PyObject *module, const struct ml_module_rec *rec)
{
    if (module_layout || !rec->state || !rec->def)
        return;
    const ml_module_head *head = (const ml_module_head *)module;
    int agreed = head->md_state == rec->state && head->md_def == rec->def->def;
    __atomic_store_n(&module_layout, agreed ? 1 : -1, __ATOMIC_RELEASE);
}

void ml_check_type_layout(PyTypeObject *type, PyObject *module)
{
    if (type_layout || !module || !(type->tp_flags & ML_TPFLAGS_HEAPTYPE))
        return;
    Py_ssize_t offset = ML_HT_MODULE_OFFSET(py.minor);
    int agreed = offset + (Py_ssize_t)sizeof module <= ML_TYPE(type)->tp_basicsize &&
                 *(PyObject **)((char *)type + offset) == module;
    __atomic_store_n(&type_layout, agreed ? 1 : -1, __ATOMIC_RELEASE);
}

/* The module a heap type was made for, or NULL where the C API would raise. */
static PyObject *ht_module(PyTypeObject *type)
{
    if (!(type->tp_flags & ML_TPFLAGS_HEAPTYPE))
        return NULL;
    return *(PyObject **)((char *)type + ML_HT_MODULE_OFFSET(py.minor));
}

static int own_teardown(const PyObject *module)
{
    return ml_slot_top && ml_slot_top->slot == ML_SLOT_MODULE_TEARDOWN && ml_slot_top->object == module;
}

static void report_after_clear(const PyObject *module, const char *api)
{
    if (own_teardown(module) || !ml_finding_enabled(ML_STATE_USE_AFTER_CLEAR))
        return;
    struct ml_finding f = {.kind = ML_STATE_USE_AFTER_CLEAR};
    struct ml_module_rec copy;
    if (!ml_module_snapshot(module, &copy))
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

static void report_other_interp(const PyObject *module, const char *api, long long here)
{
    if (!ml_finding_enabled(ML_STATE_FROM_OTHER_INTERPRETER))
        return;
    struct ml_finding f = {.kind = ML_STATE_FROM_OTHER_INTERPRETER};
    struct ml_module_rec copy;
    if (!ml_module_snapshot(module, &copy))
        return;
    ml_finding_set_module(&f, &copy);
    snprintf(f.message, sizeof f.message,
             "%s for module '%s' (instance #%llu) owned by interpreter %lld, called in interpreter %lld "
             "(a module object, type or state kept in a C global from another interpreter)",
             api, f.module ? f.module : "?", copy.instance, copy.interp, here);
    ml_finding_report(&f);
}

/* The id of the interpreter of tstate, -1 without one. */
static long long interp_of(PyThreadState *tstate)
{
    PyInterpreterState *interp = tstate ? py.PyThreadState_GetInterpreter(tstate) : NULL;
    return interp ? py.PyInterpreterState_GetID(interp) : -1;
}

/* The calling thread's state where the owner check is to be made, else NULL. */
static inline PyThreadState *checked_tstate(void)
{
    return __atomic_load_n(&ml_interp_several, __ATOMIC_ACQUIRE) ? ml_py_tstate() : NULL;
}

static void count_slow(const PyObject *module, unsigned long generation, const char *api)
{
    PyThreadState *tstate = checked_tstate();
    long long here = interp_of(tstate);
    struct ml_module_rec copy;
    struct ml_module_rec *rec = ml_module_count_lookup(module, &copy);
    int cleared = rec && copy.phase >= ML_MOD_CLEARED;
    int foreign = rec && copy.interp >= 0 && here >= 0 && copy.interp != here;
    if (rec)
        check_module_layout(module, &copy);
    cache = (struct lookup_cache){module, rec, generation, tstate, here, foreign};
    if (cleared)
        report_after_clear(module, api);
    if (foreign)
        report_other_interp(module, api, here);
}

/* Counts a lookup of the module this thread looked up last; 0 if it is not that one
 * (or records went away since). */
static inline int count_cached(const PyObject *module, const char *api)
{
    struct ml_module_rec *rec = cache.rec;
    if (__builtin_expect(module != cache.module || !rec ||
                             cache.generation != __atomic_load_n(&ml_registry_generation, __ATOMIC_ACQUIRE) ||
                             cache.tstate != checked_tstate(),
                         0))
        return 0;
    rec->state_lookups++;
    if (__builtin_expect(rec->phase >= ML_MOD_CLEARED, 0))
        report_after_clear(module, api);
    if (__builtin_expect(cache.foreign, 0))
        report_other_interp(module, api, cache.here);
    return 1;
}

static inline void count_lookup(const PyObject *module, const char *api)
{
    if (count_cached(module, api))
        return;
    unsigned long generation = __atomic_load_n(&ml_registry_generation, __ATOMIC_ACQUIRE);
    if (module && (module != cache.module || generation != cache.generation || cache.tstate != checked_tstate()))
        count_slow(module, generation, api); /* else: known, and not ours */
}

static inline int module_fast(void) { return __atomic_load_n(&module_layout, __ATOMIC_RELAXED) == 1; }
static inline int type_fast(void) { return module_fast() && __atomic_load_n(&type_layout, __ATOMIC_RELAXED) == 1; }

void *ml_hook_PyModule_GetState(PyObject *module)
{
    /* The cached module is one of ours, alive: a module object. */
    if (__builtin_expect(module_fast() && count_cached(module, "PyModule_GetState()"), 1))
        return ((ml_module_head *)module)->md_state;
    /* A freed module is not read, not even its type.  A module whose own slot runs
     * (the collector traversing a new module made at a freed one's address before
     * its creation hook has registered it) is alive. */
    if (module && ml_module_was_freed(module) && !ml_slot_running_on(module) &&
        ml_report_freed_module_use(module, "PyModule_GetState()"))
        return py.PyModule_GetState(module);
    if (module && module != cache.module && !ml_py_is_module(module))
        report_non_module(module);
    else
        count_lookup(module, "PyModule_GetState()");
    void *state = py.PyModule_GetState(module);
    if (!state) /* told in a crash that may follow (crash_story.c) */
        ml_crash_story_null_lookup("PyModule_GetState", __builtin_return_address(0), NULL);
    return state;
}

PyObject *ml_hook_PyType_GetModule(PyTypeObject *type)
{
    if (type_fast()) {
        PyObject *module = ht_module(type);
        if (module && count_cached(module, "PyType_GetModule()"))
            return module;
    }
    PyObject *module = py.PyType_GetModule(type);
    if (!module)
        ml_crash_story_null_lookup("PyType_GetModule", __builtin_return_address(0), type);
    count_lookup(module, "PyType_GetModule()");
    return module;
}

void *ml_hook_PyType_GetModuleState(PyTypeObject *type)
{
    if (type_fast()) {
        PyObject *module = ht_module(type);
        if (module && count_cached(module, "PyType_GetModuleState()"))
            return ((ml_module_head *)module)->md_state;
    }
    void *state = py.PyType_GetModuleState(type);
    /* A state means the type has a module: PyType_GetModule cannot fail then, and is
     * far cheaper than the registry (this is as hot as PyModule_GetState). */
    if (state)
        count_lookup(py.PyType_GetModule(type), "PyType_GetModuleState()");
    else
        ml_crash_story_null_lookup("PyType_GetModuleState", __builtin_return_address(0), type);
    return state;
}

PyObject *ml_hook_PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    /* The type itself comes first in its MRO: when its own module is of def, that
     * is the answer CPython's walk gives. */
    if (type_fast()) {
        PyObject *module = ht_module(type);
        if (module && module == cache.module && ((ml_module_head *)module)->md_def == def &&
            count_cached(module, "PyType_GetModuleByDef()"))
            return module;
    }
    PyObject *module = py.PyType_GetModuleByDef(type, def);
    if (!module)
        ml_crash_story_null_lookup("PyType_GetModuleByDef", __builtin_return_address(0), type);
    count_lookup(module, "PyType_GetModuleByDef()");
    return module;
}
