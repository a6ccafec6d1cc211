/* Object allocation by extension code, and through the tp_alloc of the heap types
 * we adopted (calling such a type, from Python or C, allocates there).  Detectors:
 * PyObject_New/PyObject_NewVar on a type with Py_TPFLAGS_HAVE_GC allocates no GC
 * header (pyobject-new-on-gc-type); an instance of a type whose module was freed
 * (type-outlives-module); an instance of a type of a multi-phase module of another
 * interpreter than the caller's (type-from-other-interpreter): a type kept in a C
 * global by the first (or last) interpreter to import. */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"
#include "../instrument/thread_cache.h"

#include <stdio.h>

typedef PyObject *(*alloc_fn)(PyTypeObject *, Py_ssize_t);

static PyObject *wrap_tp_alloc(PyTypeObject *type, Py_ssize_t nitems);
static PyObject *wrap_generic_alloc(PyTypeObject *type, Py_ssize_t nitems);

static inline int is_our_alloc(const PyTypeObject *t)
{
    return t->tp_alloc == (void *)wrap_tp_alloc || t->tp_alloc == (void *)wrap_generic_alloc;
}

/* What allocating an instance of a type needs to know, found by walking from the
 * type up its bases (under the registry lock): the original tp_alloc of the first
 * adopted type whose slot holds our wrapper, and the interpreter of the first adopted
 * type of a multi-phase module (-1: none, or not to be checked). */
struct alloc_owner {
    alloc_fn orig;
    long long interp;
};

struct owner_search {
    struct alloc_owner o;
    int typed;
};

static int owner_step(struct ml_type_rec *rec, PyTypeObject *t, void *arg)
{
    struct owner_search *s = arg;
    if (rec->freed) /* a dead type's record at a reused address */
        return 0;
    if (!s->o.orig && rec->orig_alloc && is_our_alloc(t))
        s->o.orig = (alloc_fn)rec->orig_alloc;
    if (!s->typed) {
        s->typed = 1;
        s->o.interp = rec->multiphase ? rec->interp : -1;
    }
    return s->o.orig && s->typed;
}

static struct alloc_owner find_alloc_owner(PyTypeObject *start)
{
    struct owner_search s = {{NULL, -1}, 0};
    ml_type_each_base(start, owner_step, &s);
    return s.o;
}

/* Per-thread cache of type -> owner, valid while no type of ours came or died (the
 * generation), and for one thread state: a thread changes interpreters by changing
 * thread states.  While only the main interpreter was seen the thread state is not
 * read (NULL).  An entry also says whether the type is foreign to the thread's
 * interpreter, so that the allocation path tests one flag. */
#define ALLOC_CACHE 32

struct alloc_entry {
    const PyTypeObject *type;
    const PyThreadState *tstate;
    unsigned long generation;
    struct alloc_owner owner;
    long long here;
    int foreign;
};

static __thread struct alloc_entry *alloc_cache __attribute__((tls_model("initial-exec")));

static inline PyThreadState *checked_tstate(void)
{
    return __atomic_load_n(&ml_interp_several, __ATOMIC_ACQUIRE) ? ml_py_tstate() : NULL;
}

static long long interp_of(const PyThreadState *tstate)
{
    PyInterpreterState *interp = tstate ? py.PyThreadState_GetInterpreter((PyThreadState *)tstate) : NULL;
    return interp ? py.PyInterpreterState_GetID(interp) : -1;
}

/* A miss: the entry made again (into *scratch when the thread has no cache). */
static __attribute__((noinline)) const struct alloc_entry *
alloc_entry_fill(struct alloc_entry *e, PyTypeObject *type, const PyThreadState *tstate, unsigned long generation)
{
    struct alloc_entry fresh = {type, tstate, generation, find_alloc_owner(type), interp_of(tstate), 0};
    fresh.foreign = fresh.owner.interp >= 0 && fresh.here >= 0 && fresh.owner.interp != fresh.here;
    *e = fresh;
    return e;
}

static inline const struct alloc_entry *alloc_entry(PyTypeObject *type, struct alloc_entry *scratch)
{
    struct alloc_entry *cache = alloc_cache;
    if (__builtin_expect(!cache, 0))
        cache = ml_thread_cache_alloc(ALLOC_CACHE * sizeof *cache, (void **)&alloc_cache);
    unsigned long generation = ml_type_generation_now();
    const PyThreadState *tstate = checked_tstate();
    if (__builtin_expect(!cache, 0))
        return alloc_entry_fill(scratch, type, tstate, generation);
    struct alloc_entry *e = &cache[((uintptr_t)type >> 4) % ALLOC_CACHE];
    if (__builtin_expect(e->type == type && e->generation == generation && e->tstate == tstate, 1))
        return e;
    return alloc_entry_fill(e, type, tstate, generation);
}

static void report_foreign_type(PyTypeObject *type, const char *api, long long here)
{
    struct ml_type_rec copy;
    if (!ml_type_base_snapshot(type, &copy))
        return;
    struct ml_finding f = {.kind = ML_TYPE_FROM_OTHER_INTERPRETER};
    const char *subclass = copy.type == type ? NULL : type->tp_name;
    ml_finding_set_type(&f, &copy, subclass);
    snprintf(f.message, sizeof f.message,
             "%s makes an instance of %s%s%sheap type '%s' of module '%s' (instance #%llu) owned by interpreter "
             "%lld, in interpreter %lld (a type kept in a C global from another interpreter)",
             api, subclass ? "'" : "", subclass ? subclass : "", subclass ? "', a subclass of " : "", copy.qualname,
             copy.module_name ? copy.module_name : "?", copy.module_instance, copy.interp, here);
    ml_finding_report(&f);
}

/* type-from-other-interpreter, for an instance of type about to be made. */
static inline void check_interp(const struct alloc_entry *e, PyTypeObject *type, const char *api)
{
    if (__builtin_expect(e->foreign, 0) && ml_finding_enabled(ML_TYPE_FROM_OTHER_INTERPRETER))
        report_foreign_type(type, api, e->here);
}

static __attribute__((noinline)) void check_new_owner(PyTypeObject *type, const char *api)
{
    struct alloc_entry scratch;
    check_interp(alloc_entry(type, &scratch), type, api);
}

/* Instances are made at a rate where a call shows: the test while there is one
 * interpreter is inline. */
static inline void check_new(PyTypeObject *type, const char *api)
{
    if (__builtin_expect(__atomic_load_n(&ml_interp_several, __ATOMIC_ACQUIRE) && type, 0))
        check_new_owner(type, api);
}

static PyObject *wrap_tp_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
    struct alloc_entry scratch;
    const struct alloc_entry *e = alloc_entry(type, &scratch);
    check_interp(e, type, "tp_alloc");
    alloc_fn orig = e->owner.orig;
    ml_check_orphan_use(type, "tp_alloc");
    /* Cannot miss for an adopted type; CPython's default is the sane fallback. */
    return orig ? orig(type, nitems) : py.PyType_GenericAlloc(type, nitems);
}

/* The tp_alloc of nearly every heap type is CPython's default: its wrapper needs no
 * lookup of the original, and looks at the interpreter only once a second one was
 * seen (instances are made at a rate where a cache lookup shows). */
static PyObject *wrap_generic_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
    check_new(type, "tp_alloc");
    ml_check_orphan_use(type, "tp_alloc");
    return py.PyType_GenericAlloc(type, nitems);
}

void ml_type_wrap_alloc(struct ml_type_rec *rec, PyTypeObject *type)
{
    if (type->tp_alloc && !is_our_alloc(type)) {
        rec->orig_alloc = type->tp_alloc;
        type->tp_alloc = type->tp_alloc == (void *)py.PyType_GenericAlloc ? (void *)wrap_generic_alloc
                                                                           : (void *)wrap_tp_alloc;
    }
}

static void check_gc(PyTypeObject *type, const char *api)
{
    if (!type || !(type->tp_flags & ML_TPFLAGS_HAVE_GC) || !ml_finding_enabled(ML_PYOBJECT_NEW_ON_GC_TYPE))
        return;
    struct ml_finding f = {.kind = ML_PYOBJECT_NEW_ON_GC_TYPE, .interp = -1};
    struct ml_type_rec copy;
    /* Not a freed one's: a dead type's, at an address now another type's. */
    if (ml_type_snapshot(type, &copy) && !copy.freed)
        ml_finding_set_type(&f, &copy, NULL);
    else
        f.type = type->tp_name;
    snprintf(f.message, sizeof f.message,
             "%s() on type '%s', which has Py_TPFLAGS_HAVE_GC: use PyObject_GC_New", api, type->tp_name);
    ml_finding_report(&f);
}

PyObject *ml_hook__PyObject_New(PyTypeObject *type)
{
    check_gc(type, "PyObject_New");
    ml_check_orphan_use(type, "PyObject_New");
    check_new(type, "PyObject_New()");
    return py._PyObject_New(type);
}

PyObject *ml_hook__PyObject_NewVar(PyTypeObject *type, Py_ssize_t size)
{
    check_gc(type, "PyObject_NewVar");
    ml_check_orphan_use(type, "PyObject_NewVar");
    check_new(type, "PyObject_NewVar()");
    return py._PyObject_NewVar(type, size);
}

PyObject *ml_hook__PyObject_GC_New(PyTypeObject *type)
{
    ml_check_orphan_use(type, "PyObject_GC_New");
    check_new(type, "PyObject_GC_New()");
    return py._PyObject_GC_New(type);
}

PyObject *ml_hook__PyObject_GC_NewVar(PyTypeObject *type, Py_ssize_t size)
{
    ml_check_orphan_use(type, "PyObject_GC_NewVar");
    check_new(type, "PyObject_GC_NewVar()");
    return py._PyObject_GC_NewVar(type, size);
}
