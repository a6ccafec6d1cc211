/* The replacements for C-API functions that extensions call (installed by the
 * engine from hook_table.c) and the helpers the hook files share.
 * A hook calls the original through `py`, records what happened, and returns
 * exactly what the original returned. */
#ifndef MODLIFE_HOOKS_H
#define MODLIFE_HOOKS_H

#include "../instrument/pyabi.h"
#include "../instrument/registry.h"

#include <pthread.h>

/* ML_TABLE_LOCK(name): a hook file's own lock for its own tables (static_types.c,
 * type_outlives_module.c), with its fork handlers.  Such a lock is a leaf: no other
 * is taken under it and nothing is waited for; records of the registry are read
 * through its verbs, which take its lock themselves.  A thread holding it as another
 * forks would leave it held for good in the child, so the prepare handler takes it.
 * The handlers are registered by a constructor of the file (the core may not call up
 * into the hooks) of priority ML_BEFORE_ENGINE: these run before the library's other
 * constructors, so they register before the engine does (from preload.c's
 * constructor, the LD_AUDIT bridge, or a later load of libpython).  pthread_atfork
 * runs the prepare handlers in the reverse order of registration, the parent and
 * child handlers in that order: at a fork the engine's prepare handler takes the
 * registry's, stack table's, objects' and log's locks first, and the table locks
 * last, innermost, as leaves belong; after it, both processes release the table
 * locks first. */
#define ML_BEFORE_ENGINE 101
#define ML_TABLE_LOCK(name)                                                               \
    static pthread_mutex_t name = PTHREAD_MUTEX_INITIALIZER;                              \
    static void name##_take(void) { pthread_mutex_lock(&name); }                          \
    static void name##_give(void) { pthread_mutex_unlock(&name); }                        \
    __attribute__((constructor(ML_BEFORE_ENGINE))) static void name##_at_fork(void)       \
    {                                                                                     \
        pthread_atfork(name##_take, name##_give, name##_give);                            \
    }

/* module_create.c */
PyObject *ml_hook_PyModuleDef_Init(PyModuleDef *def);
PyObject *ml_hook_PyModule_Create2(PyModuleDef *def, int apiver);
PyObject *ml_hook_PyModule_FromDefAndSpec2(PyModuleDef *def, PyObject *spec, int apiver);

/* module_state.c */
void *ml_hook_PyModule_GetState(PyObject *module);
PyObject *ml_hook_PyType_GetModule(PyTypeObject *type);
void *ml_hook_PyType_GetModuleState(PyTypeObject *type);
PyObject *ml_hook_PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def);

/* type_create.c */
PyObject *ml_hook_PyType_FromSpec(PyType_Spec *spec);
PyObject *ml_hook_PyType_FromSpecWithBases(PyType_Spec *spec, PyObject *bases);
PyObject *ml_hook_PyType_FromModuleAndSpec(PyObject *module, PyType_Spec *spec, PyObject *bases);
PyObject *ml_hook_PyType_FromMetaclass(PyTypeObject *meta, PyObject *module, PyType_Spec *spec,
                                       PyObject *bases);
int ml_hook_PyType_Ready(PyTypeObject *type);

/* static_types.c */
int ml_hook_PyModule_AddType(PyObject *module, PyTypeObject *type);
int ml_hook_PyModule_AddObject(PyObject *module, const char *name, PyObject *value);
int ml_hook_PyModule_AddObjectRef(PyObject *module, const char *name, PyObject *value);
/* A static type readied by extension code: checked now, or when its object's
 * definitions are known. */
void ml_static_type_readied(PyTypeObject *type, const struct ml_saved_stack *readied);
/* A multi-phase definition was just adopted: check static types readied before. */
void ml_static_types_check_def(struct ml_def_rec *def);
/* A new instance of def: its static types are now shared if it has two. */
void ml_static_types_module_created(struct ml_def_rec *def);

/* object_alloc.c */
PyObject *ml_hook__PyObject_New(PyTypeObject *type);
PyObject *ml_hook__PyObject_NewVar(PyTypeObject *type, Py_ssize_t size);
PyObject *ml_hook__PyObject_GC_New(PyTypeObject *type);
PyObject *ml_hook__PyObject_GC_NewVar(PyTypeObject *type, Py_ssize_t size);
/* Takes over an adopted heap type's tp_alloc (registry lock held): instances made
 * by calling the type are checked like those made by PyObject_New. */
void ml_type_wrap_alloc(struct ml_type_rec *rec, PyTypeObject *type);

/* interpreters.c */
PyThreadState *ml_hook_Py_NewInterpreter(void);
void ml_hook_Py_EndInterpreter(PyThreadState *tstate);

/* module_slots.c: takes over a definition's slots and lifecycle functions. */
struct ml_def_rec *ml_module_def_adopt(PyModuleDef *def, int multiphase);
/* Registers module (if new) and writes module-create; late: first seen after creation. */
void ml_module_created(PyObject *module, struct ml_def_rec *def, const char *late);

/* module_create.c: the single-phase module whose PyInit is running on this thread,
 * or NULL.  Call it without the registry lock. */
PyObject *ml_module_initialising(void);

/* type_outlives_module.c: after m_free: types made for the module that outlive it, and
 * the quarantine of its state; then the module is forgotten. */
void ml_module_freed(PyObject *module);
/* Extension code makes an instance of type: is its module gone?  Survivors of a
 * module's free wait for this moment to be decided (ml_deferred_survivors of them).
 * Instances are made at a rate where a call shows: the test is inline. */
extern int ml_deferred_survivors;
void ml_check_orphan_use_slow(const PyTypeObject *type, const char *api);
static inline void ml_check_orphan_use(const PyTypeObject *type, const char *api)
{
    if (__builtin_expect(__atomic_load_n(&ml_deferred_survivors, __ATOMIC_RELAXED) != 0 || ml_have_orphan_types(), 0))
        ml_check_orphan_use_slow(type, api);
}
/* 1 if module may be one modlife saw freed (a quick test, no lock, no read of it). */
int ml_module_was_freed(const PyObject *module);
/* Reports api's use of module if it is freed and no module was made there since;
 * 1 if so. */
int ml_report_freed_module_use(const PyObject *module, const char *api);
/* A heap type of ours was freed: C globals of its extension still pointing to it
 * are dangling-global (scanned once its module is freed, if it still lives). */
void ml_type_freed(const struct ml_type_rec *type);

/* type_slots.c: takes over a new heap type's tp_dealloc/tp_traverse and watches it.
 * spec: what it was made from (NULL if unknown).  1 with a copy of its record in
 * *adopted, for the creation hook's own checks; 0 if it could not be registered. */
int ml_type_adopt(PyTypeObject *type, PyObject *module, const PyType_Spec *spec, struct ml_type_rec *adopted);
/* The same for a heap type an extension made itself and readied (pybind11's way):
 * own_*: the slot was set before PyType_Ready, not inherited. */
void ml_type_adopt_readied(PyTypeObject *type, int own_dealloc, int own_traverse);
/* The state lookups' fast path reads ht_module once it agrees with the C API. */
void ml_check_type_layout(PyTypeObject *type, PyObject *module);

#endif
