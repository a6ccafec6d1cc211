/* The registries: what modlife knows about module definitions, module instances,
 * heap types and interpreters of this process.  Records are created by the hooks
 * and read by the event writers; one mutex guards the maps and records (hooks run
 * under a GIL, but subinterpreters of 3.12+ may each have their own, so a GIL
 * orders nothing here).  The verbs at the end keep the invariants of a module's
 * phase change and of a type's adoption, orphaning and death, with the counters
 * the hooks' fast paths read without the lock (written only here); a snapshot
 * copies a record under the lock for reading at leisure.
 *
 * Module identity is kept abstract (struct ml_def_rec): today a PyModuleDef, later
 * also the token of PEP 793 slot-exported modules. */
#ifndef MODLIFE_REGISTRY_H
#define MODLIFE_REGISTRY_H

#include "pyabi.h"
#include "stack.h"

#include <stdint.h>

enum ml_module_phase {
    ML_MOD_CREATED,
    ML_MOD_EXECUTED,
    ML_MOD_CLEARED,
    ML_MOD_FREED,
};

const char *ml_module_phase_name(enum ml_module_phase phase);

struct ml_def_rec {
    PyModuleDef *def;
    const char *name;          /* def->m_name */
    int multiphase;            /* came through PyModuleDef_Init */
    int has_create;            /* a Py_mod_create slot: may make non-module objects */
    int wrapped_lifecycle;     /* m_traverse/m_clear/m_free are ours */
    traverseproc orig_traverse;
    inquiry orig_clear;
    freefunc orig_free;
    PyModuleDef_Slot *orig_slots;
    void *orig_create;
    int has_exec;              /* the extension's own Py_mod_exec slots */
    unsigned instances;        /* module objects made from it that finished their exec
                                  slots, in any interpreter (multi-phase only) */
};

struct ml_module_rec {
    PyObject *module;
    struct ml_def_rec *def;
    unsigned long long instance; /* numbered per module name from 1, never reused */
    long long interp;
    enum ml_module_phase phase;
    void *state;
    uint64_t state_lookups; /* PyModule_GetState and friends, counted not logged */
    int completed;          /* counted in def->instances */
    int outlived;           /* module-outlives-interpreter reported it */
    struct ml_saved_stack created, cleared, freed;
};

struct ml_type_rec {
    PyTypeObject *type;
    char *qualname;
    unsigned long long seq;
    PyObject *module;             /* the module it was made for, or NULL */
    unsigned long long module_instance;
    const char *module_name;
    long long interp;
    destructor orig_dealloc;      /* NULL: inherited from a wrapped base */
    void *orig_alloc;             /* tp_alloc; NULL: inherited from a wrapped base */
    int multiphase;               /* made for a multi-phase module: one interpreter's */
    traverseproc orig_traverse;   /* NULL: inherited, or not a GC type */
    int gc;                       /* Py_TPFLAGS_HAVE_GC */
    PyObject *weakref;            /* tells us when the type dies */
    int alive;
    int freed;                    /* its memory went back: the address may be another type's */
    int traverse_checked;         /* traverse-missing-type-visit looked at it */
    const void *leaky_dealloc;    /* a tp_dealloc that freed an instance of it without
                                     Py_DECREF(type): why it may outlive its module */
    PyObject *exec_module;        /* made while this module's exec slot ran */
    int orphan;                   /* exec_module was freed while this type lived */
    struct ml_saved_stack created, module_freed;
};

struct ml_interp_rec {
    PyInterpreterState *interp;
    long long id;
    int finalizing;
    int atexit_registered;
    PyObject *function; /* ml_interp_function: objects are not shared across interpreters */
};

/* For the core only: the hooks go through the verbs below (tests/test_structure.py). */
void ml_registry_lock(void);
void ml_registry_unlock(void);
/* 1 if taken; for the fatal-signal handler, which must not wait (the crashed thread
 * may hold the lock). */
int ml_registry_trylock(void);
/* Fork: taken before, released in both processes after. */
void ml_registry_atfork_prepare(void);
void ml_registry_atfork_release(void);

/* All lookups and mutations below expect the lock held. */
struct ml_def_rec *ml_def_find(const PyModuleDef *def);
struct ml_def_rec *ml_def_add(PyModuleDef *def);

struct ml_module_rec *ml_module_find(const PyObject *module);
struct ml_module_rec *ml_module_add(PyObject *module, struct ml_def_rec *def, long long interp);
void ml_module_forget(struct ml_module_rec *rec);

struct ml_type_rec *ml_type_find(const PyTypeObject *type);
struct ml_type_rec *ml_type_add(PyTypeObject *type);
struct ml_type_rec *ml_type_find_by_weakref(const PyObject *weakref);
void ml_type_watch(struct ml_type_rec *rec, PyObject *weakref);

struct ml_interp_rec *ml_interp_find(const PyInterpreterState *interp);
struct ml_interp_rec *ml_interp_add(PyInterpreterState *interp, long long id);

void ml_each_def(void (*fn)(struct ml_def_rec *, void *), void *arg);
void ml_each_module(void (*fn)(struct ml_module_rec *, void *), void *arg);
void ml_each_type(void (*fn)(struct ml_type_rec *, void *), void *arg);

/* The verbs: what the hooks do to the records, each with the invariants it keeps. */

/* A heap type's record is complete (its slots wrapped): the per-thread slot-owner
 * caches of type_slots.c are invalidated.  Lock held. */
void ml_type_adopted(struct ml_type_rec *rec);

/* The type outlives the module it was made in, which was freed (module_freed: that
 * module's m_free stack, copied).  Lock held. */
void ml_type_orphaned(struct ml_type_rec *rec, const struct ml_saved_stack *module_freed);

/* The type's weakref of ours was cleared: the record is dead for the log, and once
 * the type has no reference left (its memory goes back), no longer answers for its
 * address.  Takes the lock.  NULL when the weakref is not ours; else the record,
 * *was_alive (it was alive until now) and *snapshot, the record as left. */
struct ml_type_rec *ml_type_died(const PyObject *weakref, int *was_alive, struct ml_type_rec *snapshot);

/* The module moved to phase; the record keeps *stack as the stack of the phases
 * that have one (cleared, freed): *kept is then 1 and the stack is the record's.
 * Takes the lock.  0 for a module never seen; else 1 and *snapshot. */
int ml_module_phase_change(const PyObject *module, enum ml_module_phase phase, const struct ml_saved_stack *stack,
                           int *kept, struct ml_module_rec *snapshot);

/* The record as it is now, copied under the lock for reading at leisure (its stacks
 * stay the record's).  0 if there is none, and *snapshot zeroed. */
int ml_module_snapshot(const PyObject *module, struct ml_module_rec *snapshot);
int ml_type_snapshot(const PyTypeObject *type, struct ml_type_rec *snapshot);

/* A state lookup of the module, counted.  The record (for a per-thread cache that
 * counts the next lookups itself while ml_registry_generation stays) or NULL for a
 * module never seen, and *snapshot as left.  Takes the lock. */
struct ml_module_rec *ml_module_count_lookup(const PyObject *module, struct ml_module_rec *snapshot);

/* Calls fn with the record of start and of each type up its tp_base chain that has
 * one, nearest first, until fn returns nonzero: that type, else NULL.  Takes the
 * lock, held while fn runs (fn must not call back into Python). */
PyTypeObject *ml_type_each_base(PyTypeObject *start, int (*fn)(struct ml_type_rec *, PyTypeObject *, void *),
                                void *arg);

/* The nearest record of type or a base whose memory was not freed, copied: 0 if
 * none.  Takes the lock. */
int ml_type_base_snapshot(PyTypeObject *type, struct ml_type_rec *snapshot);

/* orig, owner's tp_dealloc, freed an instance of type without Py_DECREF(type): type's
 * record keeps it (type-outlives-module names it as the cause).  *owner_snapshot is
 * owner's record, zeroed if none.  Takes the lock. */
void ml_type_mark_leaky_dealloc(const PyTypeObject *owner, const PyTypeObject *type, const void *orig,
                                struct ml_type_rec *owner_snapshot);

/* 1 the first time it is asked for a type of ours (traverse-missing-type-visit then
 * looks at it, once), else 0.  Takes the lock. */
int ml_type_mark_traverse_checked(const PyTypeObject *type);

/* ml_type_watch, taking the lock. */
void ml_type_watched(struct ml_type_rec *rec, PyObject *weakref);

/* A new record for type, made in interp, created at *created (the record's stack
 * from now on), for module, else exec_module (whose exec slot runs), else named for
 * initialising (a single-phase module being made, not freed); wrap(rec, arg) then
 * wraps its slots and the type is adopted (ml_type_adopted), all under the lock.
 * NULL if the registry is full (*created stays the caller's); else *adopted, the
 * record as left.  Takes the lock (wrap must not take it). */
struct ml_type_rec *ml_type_adopt_new(PyTypeObject *type, long long interp, const struct ml_saved_stack *created,
                                      PyObject *module, PyObject *exec_module, PyObject *initialising,
                                      void (*wrap)(struct ml_type_rec *, void *), void *arg,
                                      struct ml_type_rec *adopted);

/* The def's record, or NULL.  Takes the lock. */
struct ml_def_rec *ml_def_lookup(const PyModuleDef *def);

/* The def's record, made if new (multiphase: it came through PyModuleDef_Init) and
 * then handed to wrap under the lock, which wrap must not take.  NULL if the
 * registry is full.  Takes the lock. */
struct ml_def_rec *ml_def_adopt(PyModuleDef *def, int multiphase, void (*wrap)(struct ml_def_rec *));

/* A new module record (replacing a stale one at the address) with its state and
 * creation stack (*created: the record's from now on, if 1 is returned).  0 if the
 * registry is full, else 1 and *snapshot.  Takes the lock. */
int ml_module_register(PyObject *module, struct ml_def_rec *def, long long interp, void *state,
                       const struct ml_saved_stack *created, struct ml_module_rec *snapshot);

/* The module's state moved (quarantine): 0 if its record went away.  Takes the lock. */
int ml_module_set_state(const PyObject *module, void *state);

/* The module finished its exec slots: counted once in its def's instances; that def
 * the first time, else NULL.  Takes the lock. */
struct ml_def_rec *ml_module_complete(const PyObject *module);

/* ml_each_def, taking the lock (fn must not take it). */
void ml_defs_visit(void (*fn)(struct ml_def_rec *, void *), void *arg);

/* ml_each_type, taking the lock (fn must not take it). */
void ml_types_visit(void (*fn)(struct ml_type_rec *, void *), void *arg);

/* ml_types_visit, with each type's module record (of t->module: NULL if it has none
 * or the record is gone), so that fn needs no lookup of its own. */
void ml_types_visit_modules(void (*fn)(struct ml_type_rec *, const struct ml_module_rec *, void *), void *arg);

/* def->instances, which ml_module_complete counts under the lock.  Takes the lock. */
unsigned ml_def_instances(const struct ml_def_rec *def);

/* ml_module_snapshot, and with fn, ml_each_type under the same lock (fn must not
 * take it); fn is not called for a module never seen. */
int ml_module_snapshot_types(const PyObject *module, struct ml_module_rec *snapshot,
                             void (*fn)(struct ml_type_rec *, void *), void *arg);

/* The module was freed: its types still alive, not yet orphans, are orphaned (with
 * its m_free stack), then its record goes.  Takes the lock. */
void ml_module_forget_orphaning(const PyObject *module);

/* Read without the lock by the hooks' fast paths; written only by the verbs above. */
extern unsigned long ml_orphan_types, ml_type_generation;

/* Live types whose module was freed: 0 lets the allocation hooks skip the check. */
static inline int ml_have_orphan_types(void)
{
    return __atomic_load_n(&ml_orphan_types, __ATOMIC_RELAXED) != 0;
}

/* Changes when a heap type of ours is adopted or dies: a slot-owner cache entry of
 * another generation is stale. */
static inline unsigned long ml_type_generation_now(void)
{
    return __atomic_load_n(&ml_type_generation, __ATOMIC_ACQUIRE);
}

/* Bumped when a module record comes or goes: invalidates the lookup caches. */
extern unsigned long ml_registry_generation;

#endif
