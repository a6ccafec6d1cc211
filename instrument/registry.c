/* Registries of module definitions, module instances, heap types, interpreters. */
#include "registry.h"

#include "ptrmap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ptrmap defs, modules, types, weakrefs, interps;
static unsigned long long next_type = 1;

/* Instance numbers count per module name: "instance #1" is a module's first,
 * whatever other extensions were loaded before it.  Few names: a list. */
struct name_count {
    struct name_count *next;
    unsigned long long last;
    char name[];
};
static struct name_count *instance_counts;
unsigned long ml_registry_generation;
unsigned long ml_type_generation;
unsigned long ml_orphan_types;

const char *ml_module_phase_name(enum ml_module_phase phase)
{
    static const char *const names[] = {"created", "executed", "cleared", "freed"};
    return names[phase];
}

void ml_registry_lock(void) { pthread_mutex_lock(&lock); }
void ml_registry_unlock(void) { pthread_mutex_unlock(&lock); }
int ml_registry_trylock(void) { return pthread_mutex_trylock(&lock) == 0; }
void ml_registry_atfork_prepare(void) { pthread_mutex_lock(&lock); }
void ml_registry_atfork_release(void) { pthread_mutex_unlock(&lock); }

struct ml_def_rec *ml_def_find(const PyModuleDef *def) { return ptrmap_get(&defs, def); }

struct ml_def_rec *ml_def_add(PyModuleDef *def)
{
    struct ml_def_rec *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->def = def;
    rec->name = def->m_name ? def->m_name : "?";
    if (ptrmap_put(&defs, def, rec) != 0) {
        free(rec);
        return NULL;
    }
    return rec;
}

static void release_module(struct ml_module_rec *rec)
{
    ml_saved_stack_release(&rec->created);
    ml_saved_stack_release(&rec->cleared);
    ml_saved_stack_release(&rec->freed);
    free(rec);
}

struct ml_module_rec *ml_module_find(const PyObject *module) { return ptrmap_get(&modules, module); }

static unsigned long long next_instance(const char *name)
{
    struct name_count *c = instance_counts;
    while (c && strcmp(c->name, name))
        c = c->next;
    if (!c) {
        size_t len = strlen(name) + 1;
        if (!(c = calloc(1, sizeof *c + len)))
            return 0;
        memcpy(c->name, name, len);
        c->next = instance_counts;
        instance_counts = c;
    }
    return ++c->last;
}

struct ml_module_rec *ml_module_add(PyObject *module, struct ml_def_rec *def, long long interp)
{
    struct ml_module_rec *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->module = module;
    rec->def = def;
    rec->interp = interp;
    rec->instance = next_instance(def && def->name ? def->name : "?");
    rec->phase = ML_MOD_CREATED;
    struct ml_module_rec *stale = ptrmap_get(&modules, module);
    if (ptrmap_put(&modules, module, rec) != 0) {
        free(rec);
        return NULL;
    }
    /* Lookup caches may hold this address as unknown, or as the stale record of a
     * module that died unseen before the address was reused. */
    __atomic_add_fetch(&ml_registry_generation, 1, __ATOMIC_RELEASE);
    if (stale)
        release_module(stale);
    return rec;
}

void ml_module_forget(struct ml_module_rec *rec)
{
    ptrmap_remove(&modules, rec->module);
    __atomic_add_fetch(&ml_registry_generation, 1, __ATOMIC_RELEASE);
    release_module(rec);
}

struct ml_type_rec *ml_type_find(const PyTypeObject *type) { return ptrmap_get(&types, type); }

struct ml_type_rec *ml_type_add(PyTypeObject *type)
{
    struct ml_type_rec *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->type = type;
    rec->qualname = strdup(type->tp_name ? type->tp_name : "?");
    rec->seq = next_type++;
    rec->alive = 1;
    /* A dead type's record stays until an adopted type takes its address: the
     * collector reports a type dead before its instances in the same cycle are
     * freed through our wrappers, which still need its original slots.  Once its
     * memory went back (rec->freed) it no longer answers for the address, which a
     * type not ours may hold now (type_slots.c). */
    struct ml_type_rec *stale = ptrmap_get(&types, type);
    if (ptrmap_put(&types, type, rec) != 0) {
        free(rec->qualname);
        free(rec);
        return NULL;
    }
    if (stale) {
        if (stale->weakref)
            ptrmap_remove(&weakrefs, stale->weakref);
        free(stale->qualname);
        ml_saved_stack_release(&stale->created);
        ml_saved_stack_release(&stale->module_freed);
        free(stale);
    }
    return rec;
}

struct ml_type_rec *ml_type_find_by_weakref(const PyObject *weakref) { return ptrmap_get(&weakrefs, weakref); }

void ml_type_watch(struct ml_type_rec *rec, PyObject *weakref)
{
    rec->weakref = weakref;
    ptrmap_put(&weakrefs, weakref, rec);
}

struct ml_interp_rec *ml_interp_find(const PyInterpreterState *interp) { return ptrmap_get(&interps, interp); }

struct ml_interp_rec *ml_interp_add(PyInterpreterState *interp, long long id)
{
    struct ml_interp_rec *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->interp = interp;
    rec->id = id;
    struct ml_interp_rec *stale = ptrmap_get(&interps, interp);
    if (ptrmap_put(&interps, interp, rec) != 0) {
        free(rec);
        return NULL;
    }
    free(stale);
    return rec;
}

struct def_visit {
    void (*fn)(struct ml_def_rec *, void *);
    void *arg;
};

static void visit_def(void *value, void *arg)
{
    struct def_visit *v = arg;
    v->fn(value, v->arg);
}

void ml_each_def(void (*fn)(struct ml_def_rec *, void *), void *arg)
{
    struct def_visit v = {fn, arg};
    ptrmap_each(&defs, visit_def, &v);
}

struct module_visit {
    void (*fn)(struct ml_module_rec *, void *);
    void *arg;
};

static void visit_module(void *value, void *arg)
{
    struct module_visit *v = arg;
    v->fn(value, v->arg);
}

void ml_each_module(void (*fn)(struct ml_module_rec *, void *), void *arg)
{
    struct module_visit v = {fn, arg};
    ptrmap_each(&modules, visit_module, &v);
}

struct type_visit {
    void (*fn)(struct ml_type_rec *, void *);
    void *arg;
};

static void visit_type(void *value, void *arg)
{
    struct type_visit *v = arg;
    v->fn(value, v->arg);
}

void ml_each_type(void (*fn)(struct ml_type_rec *, void *), void *arg)
{
    struct type_visit v = {fn, arg};
    ptrmap_each(&types, visit_type, &v);
}

void ml_type_adopted(struct ml_type_rec *rec)
{
    (void)rec;
    __atomic_add_fetch(&ml_type_generation, 1, __ATOMIC_RELEASE);
}

void ml_type_orphaned(struct ml_type_rec *rec, const struct ml_saved_stack *module_freed)
{
    rec->orphan = 1;
    ml_saved_stack_release(&rec->module_freed);
    ml_saved_stack_copy(&rec->module_freed, module_freed);
    /* Only live types count for the fast filter of ml_check_orphan_use: one the
     * collector found dead but that lives on (held by a global) is not taken off it
     * again when it goes, and would keep every instance creation on the slow path. */
    if (rec->alive)
        __atomic_add_fetch(&ml_orphan_types, 1, __ATOMIC_RELAXED);
}

struct ml_type_rec *ml_type_died(const PyObject *weakref, int *was_alive, struct ml_type_rec *snapshot)
{
    pthread_mutex_lock(&lock);
    struct ml_type_rec *rec = ml_type_find_by_weakref(weakref);
    *was_alive = 0;
    if (rec) {
        *was_alive = rec->alive;
        /* Freed: set under the lock before the address can be anyone else's. */
        rec->freed = rec->type->ob_base.ob_refcnt == 0;
        rec->alive = 0;
        rec->weakref = NULL;
        __atomic_add_fetch(&ml_type_generation, 1, __ATOMIC_RELEASE); /* its address may be reused */
        if (*was_alive && rec->orphan)
            __atomic_sub_fetch(&ml_orphan_types, 1, __ATOMIC_RELAXED);
        *snapshot = *rec;
    }
    pthread_mutex_unlock(&lock);
    return rec;
}

int ml_module_phase_change(const PyObject *module, enum ml_module_phase phase, const struct ml_saved_stack *stack,
                           int *kept, struct ml_module_rec *snapshot)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_find(module);
    struct ml_saved_stack *keep = !rec ? NULL
                                  : phase == ML_MOD_CLEARED ? &rec->cleared
                                  : phase == ML_MOD_FREED ? &rec->freed
                                                          : NULL;
    *kept = keep != NULL;
    if (rec) {
        rec->phase = phase;
        if (keep) {
            ml_saved_stack_release(keep);
            *keep = *stack;
        }
        *snapshot = *rec;
    }
    pthread_mutex_unlock(&lock);
    return rec != NULL;
}

int ml_module_snapshot(const PyObject *module, struct ml_module_rec *snapshot)
{
    return ml_module_snapshot_types(module, snapshot, NULL, NULL);
}

int ml_type_snapshot(const PyTypeObject *type, struct ml_type_rec *snapshot)
{
    pthread_mutex_lock(&lock);
    struct ml_type_rec *rec = ml_type_find(type);
    *snapshot = rec ? *rec : (struct ml_type_rec){0};
    pthread_mutex_unlock(&lock);
    return rec != NULL;
}

struct ml_module_rec *ml_module_count_lookup(const PyObject *module, struct ml_module_rec *snapshot)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_find(module);
    if (rec)
        rec->state_lookups++;
    *snapshot = rec ? *rec : (struct ml_module_rec){0};
    pthread_mutex_unlock(&lock);
    return rec;
}

PyTypeObject *ml_type_each_base(PyTypeObject *start, int (*fn)(struct ml_type_rec *, PyTypeObject *, void *),
                                void *arg)
{
    PyTypeObject *t = start;
    pthread_mutex_lock(&lock);
    for (; t; t = t->tp_base) {
        struct ml_type_rec *rec = ml_type_find(t);
        if (rec && fn(rec, t, arg))
            break;
    }
    pthread_mutex_unlock(&lock);
    return t;
}

static int copy_unfreed(struct ml_type_rec *rec, PyTypeObject *t, void *arg)
{
    (void)t;
    if (rec->freed) /* a dead type's record at a reused address */
        return 0;
    *(struct ml_type_rec *)arg = *rec;
    return 1;
}

int ml_type_base_snapshot(PyTypeObject *type, struct ml_type_rec *snapshot)
{
    *snapshot = (struct ml_type_rec){0};
    return ml_type_each_base(type, copy_unfreed, snapshot) != NULL;
}

void ml_type_mark_leaky_dealloc(const PyTypeObject *owner, const PyTypeObject *type, const void *orig,
                                struct ml_type_rec *owner_snapshot)
{
    pthread_mutex_lock(&lock);
    struct ml_type_rec *rec = ml_type_find(owner);
    *owner_snapshot = rec ? *rec : (struct ml_type_rec){0};
    struct ml_type_rec *leaked = type == owner ? rec : ml_type_find(type);
    if (leaked)
        leaked->leaky_dealloc = orig;
    pthread_mutex_unlock(&lock);
}

int ml_type_mark_traverse_checked(const PyTypeObject *type)
{
    pthread_mutex_lock(&lock);
    struct ml_type_rec *rec = ml_type_find(type);
    int first = rec && !rec->traverse_checked;
    if (first)
        rec->traverse_checked = 1;
    pthread_mutex_unlock(&lock);
    return first;
}

void ml_type_watched(struct ml_type_rec *rec, PyObject *weakref)
{
    pthread_mutex_lock(&lock);
    ml_type_watch(rec, weakref);
    pthread_mutex_unlock(&lock);
}

/* The module the type is named for, lock held. */
static void describe_module(struct ml_type_rec *rec, PyObject *module, PyObject *exec_module, PyObject *initialising)
{
    rec->exec_module = exec_module;
    if (!module)
        module = exec_module;
    else
        rec->module = module;
    struct ml_module_rec *m = module ? ml_module_find(module) : NULL;
    if (!m && !exec_module && initialising) {
        m = ml_module_find(initialising); /* named for it, not made with it: no exec_module */
        if (m && m->phase >= ML_MOD_FREED)
            m = NULL;
    }
    if (m) {
        rec->module_instance = m->instance;
        rec->module_name = m->def ? m->def->name : NULL;
        rec->multiphase = m->def && m->def->multiphase; /* single-phase: shared by CPython's design */
    }
}

struct ml_type_rec *ml_type_adopt_new(PyTypeObject *type, long long interp, const struct ml_saved_stack *created,
                                      PyObject *module, PyObject *exec_module, PyObject *initialising,
                                      void (*wrap)(struct ml_type_rec *, void *), void *arg,
                                      struct ml_type_rec *adopted)
{
    pthread_mutex_lock(&lock);
    struct ml_type_rec *rec = ml_type_add(type);
    if (rec) {
        rec->interp = interp;
        rec->created = *created;
        describe_module(rec, module, exec_module, initialising);
        wrap(rec, arg);
        ml_type_adopted(rec);
        *adopted = *rec;
    }
    pthread_mutex_unlock(&lock);
    return rec;
}

struct ml_def_rec *ml_def_lookup(const PyModuleDef *def)
{
    pthread_mutex_lock(&lock);
    struct ml_def_rec *rec = ml_def_find(def);
    pthread_mutex_unlock(&lock);
    return rec;
}

struct ml_def_rec *ml_def_adopt(PyModuleDef *def, int multiphase, void (*wrap)(struct ml_def_rec *))
{
    pthread_mutex_lock(&lock);
    struct ml_def_rec *rec = ml_def_find(def);
    if (!rec && (rec = ml_def_add(def)) != NULL) {
        rec->multiphase = multiphase;
        wrap(rec);
    }
    pthread_mutex_unlock(&lock);
    return rec;
}

int ml_module_register(PyObject *module, struct ml_def_rec *def, long long interp, void *state,
                       const struct ml_saved_stack *created, struct ml_module_rec *snapshot)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_add(module, def, interp);
    *snapshot = (struct ml_module_rec){0};
    if (rec) {
        rec->state = state;
        rec->created = *created;
        *snapshot = *rec;
    }
    pthread_mutex_unlock(&lock);
    return rec != NULL;
}

int ml_module_set_state(const PyObject *module, void *state)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_find(module);
    if (rec)
        rec->state = state;
    pthread_mutex_unlock(&lock);
    return rec != NULL;
}

struct ml_def_rec *ml_module_complete(const PyObject *module)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_find(module);
    struct ml_def_rec *def = rec && !rec->completed ? rec->def : NULL;
    if (def) {
        rec->completed = 1;
        def->instances++;
    }
    pthread_mutex_unlock(&lock);
    return def;
}

void ml_defs_visit(void (*fn)(struct ml_def_rec *, void *), void *arg)
{
    pthread_mutex_lock(&lock);
    ml_each_def(fn, arg);
    pthread_mutex_unlock(&lock);
}

void ml_types_visit(void (*fn)(struct ml_type_rec *, void *), void *arg)
{
    pthread_mutex_lock(&lock);
    ml_each_type(fn, arg);
    pthread_mutex_unlock(&lock);
}

struct type_module_visit {
    void (*fn)(struct ml_type_rec *, const struct ml_module_rec *, void *);
    void *arg;
};

static void visit_type_module(struct ml_type_rec *t, void *arg)
{
    struct type_module_visit *v = arg;
    v->fn(t, t->module ? ml_module_find(t->module) : NULL, v->arg);
}

void ml_types_visit_modules(void (*fn)(struct ml_type_rec *, const struct ml_module_rec *, void *), void *arg)
{
    struct type_module_visit v = {fn, arg};
    ml_types_visit(visit_type_module, &v);
}

unsigned ml_def_instances(const struct ml_def_rec *def)
{
    pthread_mutex_lock(&lock);
    unsigned n = def->instances;
    pthread_mutex_unlock(&lock);
    return n;
}

int ml_module_snapshot_types(const PyObject *module, struct ml_module_rec *snapshot,
                             void (*fn)(struct ml_type_rec *, void *), void *arg)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_find(module);
    *snapshot = rec ? *rec : (struct ml_module_rec){0};
    if (rec && fn)
        ml_each_type(fn, arg);
    pthread_mutex_unlock(&lock);
    return rec != NULL;
}

struct orphaning {
    const PyObject *module;
    const struct ml_saved_stack *freed;
};

static void orphan_type(struct ml_type_rec *t, void *arg)
{
    struct orphaning *o = arg;
    if (t->freed || t->orphan || (t->module ? t->module : t->exec_module) != o->module)
        return;
    ml_type_orphaned(t, o->freed);
}

void ml_module_forget_orphaning(const PyObject *module)
{
    pthread_mutex_lock(&lock);
    struct ml_module_rec *rec = ml_module_find(module);
    if (rec) {
        struct orphaning o = {module, &rec->freed};
        ml_each_type(orphan_type, &o);
        ml_module_forget(rec);
    }
    pthread_mutex_unlock(&lock);
}
