/* Heap types that outlive their module (type-outlives-module).  A type made with
 * its module (PyType_FromModuleAndSpec) keeps the module alive; a type made
 * without it while the module's exec slot ran (PyType_FromSpec) does not, and
 * when it is kept in a C global it survives the module: the next module instance
 * then makes objects of a type that belongs to a dead one.  When a module is freed
 * its surviving types become orphans; an orphan is reported when extension code
 * makes an instance of it, or when it is still alive at exit (after finalization,
 * only C code can hold it).  At exit, types alive whose module was cleared (kept
 * alive by a leaked instance) are reported too.
 *
 * A type made with its module can outlive it as well: when m_traverse visits a C
 * global that holds the type (or an instance of it), the collector counts the
 * global's reference as the module's, finds module and type garbage, and
 * type_clear drops the type's reference to the module: the module is freed and the
 * type lives on.  Such a type becomes an orphan too; when a C global of the
 * extension holds it (or an instance of it), it is reported at the module's free.
 *
 * After m_free has returned (a global set to NULL there is fine), the extension's
 * C globals are scanned for the module object and its state (dangling-global); and
 * the freed module is remembered, so that PyModule_GetState on it is reported as
 * state-use-after-free without reading it. */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/global_scan.h"
#include "../instrument/stack.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MAX 32
#define HITS_MAX 8

/* This file's tables below (deferred survivors, freed modules, dead types waiting for
 * their module) are guarded by table_lock (hooks.h: under it no registry verb, scan
 * or finding). */
ML_TABLE_LOCK(table_lock)

/* The types of module that are alive as it is freed (copies taken under the lock). */
struct survivors {
    const PyObject *module;
    struct ml_type_rec found[REPORT_MAX];
    int count;
};

static void collect_survivor(struct ml_type_rec *t, void *arg)
{
    struct survivors *s = arg;
    if (!t->freed && !t->orphan && s->count < REPORT_MAX && (t->module ? t->module : t->exec_module) == s->module)
        s->found[s->count++] = *t;
}

static void report_kept_type(const struct ml_type_rec *t, const struct ml_global_hit *h, int instance,
                             const struct ml_saved_stack *freed)
{
    /* At the type's creation, as the report at exit: one bug, one group in the tools. */
    struct ml_finding f = {.kind = ML_TYPE_OUTLIVES_MODULE, .access_saved = &t->created, .global = h->name};
    ml_finding_set_type(&f, t, NULL);
    snprintf(f.message, sizeof f.message,
             "heap type '%s' is still alive as its module '%s' (instance #%llu) is freed, and the C global %s "
             "points to %s", t->qualname, t->module_name ? t->module_name : "?", t->module_instance, h->name,
             instance ? "an instance of it" : "it");
    if (freed->depth)
        f.context[f.context_count++] = (struct ml_context_stack){"orphaned when its module was freed (m_free)", freed};
    ml_finding_report(&f);
}

/* A survivor may still go right after: the module's dict, released after m_free,
 * may hold its last reference, and the collector may free it later in the same
 * collection; its global then dangles (reported when it is freed).  Whether it
 * outlives the module is decided when extension code next makes an instance, and
 * at exit. */
#define DEFERRED_MAX 32

struct deferred {
    const PyTypeObject *type;
    unsigned long long seq;
    int instance;
    struct ml_global_hit hit;
};

static struct deferred deferred[DEFERRED_MAX];
/* Their count: changed under the table lock, read without it by the allocation hooks'
 * test (hooks.h). */
int ml_deferred_survivors;

static void defer_survivor(const struct ml_type_rec *t, const struct ml_global_hit *h, int instance)
{
    pthread_mutex_lock(&table_lock);
    int n = ml_deferred_survivors;
    if (n < DEFERRED_MAX) {
        deferred[n] = (struct deferred){t->type, t->seq, instance, *h};
        __atomic_store_n(&ml_deferred_survivors, n + 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&table_lock);
}

/* The deferred survivors still alive, with copies of their records, all taken off the
 * list (found: room for DEFERRED_MAX).  Taken first, then each record looked at. */
static int take_deferred(struct deferred *found, struct ml_type_rec *alive)
{
    pthread_mutex_lock(&table_lock);
    int taken = ml_deferred_survivors;
    memcpy(found, deferred, (size_t)taken * sizeof found[0]);
    __atomic_store_n(&ml_deferred_survivors, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&table_lock);
    int n = 0;
    for (int i = 0; i < taken; i++)
        if (ml_type_snapshot(found[i].type, &alive[n]) && alive[n].seq == found[i].seq && !alive[n].freed)
            found[n++] = found[i];
    return n;
}

static void decide_deferred(void)
{
    struct deferred found[DEFERRED_MAX];
    struct ml_type_rec alive[DEFERRED_MAX];
    for (int i = 0, n = take_deferred(found, alive); i < n; i++)
        report_kept_type(&alive[i], &found[i].hit, found[i].instance, &alive[i].module_freed);
}

/* Survivors a C global of the extension points to (or to an instance of them). */
static void check_survivors(const void *anchor, const struct survivors *s)
{
    for (int i = 0; i < s->count; i++) {
        struct ml_global_hit hits[HITS_MAX];
        uintptr_t type = (uintptr_t)s->found[i].type;
        int instance = 0, n = ml_global_scan(anchor, &type, 1, hits, HITS_MAX);
        if (!n)
            instance = n = ml_global_scan_instances(anchor, type, hits, HITS_MAX);
        for (int k = 0; k < n; k++)
            defer_survivor(&s->found[i], &hits[k], instance != 0);
    }
}

static void report_dangling(const struct ml_module_rec *m, const struct ml_global_hit *h, const char *what)
{
    struct ml_finding f = {.kind = ML_DANGLING_GLOBAL, .global = h->name};
    ml_finding_set_module(&f, m);
    snprintf(f.message, sizeof f.message, "the C global %s still points to %s of module '%s' (instance #%llu), "
             "freed after its m_free returned", h->name, what, f.module ? f.module : "?", m->instance);
    ml_finding_report(&f);
}

/* The extension's globals that still hold the module or its state.  The module's
 * global is named in a later PyModule_GetState on it, the state's in the fault of
 * a later access to the quarantined block. */
static void check_globals(const PyObject *module, const struct ml_module_rec *m, char *module_global, size_t size)
{
    const void *anchor = m->def ? (const void *)m->def->def : NULL;
    uintptr_t targets[2] = {(uintptr_t)module, (uintptr_t)m->state};
    struct ml_global_hit hits[HITS_MAX];
    int n = ml_global_scan(anchor, targets, m->state ? 2 : 1, hits, HITS_MAX);
    Py_ssize_t state_size = m->def ? m->def->def->m_size : 0;
    for (int i = 0; i < n; i++) {
        if (hits[i].target == 0 && !module_global[0])
            snprintf(module_global, size, "%s", hits[i].name);
        if (hits[i].target == 1)
            ml_global_remember((uintptr_t)m->state, (uintptr_t)m->state + (state_size > 0 ? (size_t)state_size : 1),
                               hits[i].name);
        report_dangling(m, &hits[i], hits[i].target == 0 ? "the module object" : "the state");
    }
}

/* --- freed modules: PyModule_GetState on one is a use after free --------------- */

#define FREED_MODULES 64

struct freed_module {
    struct ml_module_rec rec; /* its stacks are copies of our own */
    char global[160];
};

/* Addresses read without the lock (the hook's test); the entries under it. */
static const PyObject *freed_addresses[FREED_MODULES];
static struct freed_module freed_modules[FREED_MODULES];
static unsigned freed_next;

/* The entry is made, and the one it replaces released, outside the lock. */
static void remember_freed(const PyObject *module, const struct ml_module_rec *m, const char *global)
{
    struct freed_module fresh = {.rec = *m}, old;
    ml_saved_stack_copy(&fresh.rec.created, &m->created);
    ml_saved_stack_copy(&fresh.rec.cleared, &m->cleared);
    ml_saved_stack_copy(&fresh.rec.freed, &m->freed);
    snprintf(fresh.global, sizeof fresh.global, "%s", global);
    pthread_mutex_lock(&table_lock);
    unsigned i = freed_next++ % FREED_MODULES;
    __atomic_store_n(&freed_addresses[i], NULL, __ATOMIC_RELEASE);
    old = freed_modules[i];
    freed_modules[i] = fresh;
    __atomic_store_n(&freed_addresses[i], module, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&table_lock);
    ml_saved_stack_release(&old.rec.created);
    ml_saved_stack_release(&old.rec.cleared);
    ml_saved_stack_release(&old.rec.freed);
}

int ml_module_was_freed(const PyObject *module)
{
    for (int i = 0; i < FREED_MODULES; i++)
        if (__builtin_expect(__atomic_load_n(&freed_addresses[i], __ATOMIC_ACQUIRE) == module, 0) && module)
            return 1;
    return 0;
}

/* A copy of module's entry, if it has one; recorded: the registry has a record at
 * its address (a module made there since is alive: not the one we saw die), and the
 * entry is dropped.  The copy shares the entry's stacks, which stay: the entry is
 * reused only FREED_MODULES frees later. */
static int freed_entry(const PyObject *module, int recorded, struct freed_module *copy)
{
    pthread_mutex_lock(&table_lock);
    int found = -1;
    for (int i = 0; i < FREED_MODULES && found < 0; i++)
        if (freed_addresses[i] == module)
            found = i;
    if (found >= 0 && recorded) {
        __atomic_store_n(&freed_addresses[found], NULL, __ATOMIC_RELEASE);
        found = -1;
    }
    if (found >= 0)
        *copy = freed_modules[found];
    pthread_mutex_unlock(&table_lock);
    return found >= 0;
}

int ml_report_freed_module_use(const PyObject *module, const char *api)
{
    struct ml_finding f = {.kind = ML_STATE_USE_AFTER_FREE};
    struct ml_module_rec now;
    struct freed_module e;
    if (!freed_entry(module, ml_module_snapshot(module, &now), &e))
        return 0;
    ml_finding_set_module(&f, &e.rec);
    f.global = e.global[0] ? e.global : NULL;
    snprintf(f.message, sizeof f.message,
             "%s on module '%s' (instance #%llu), which was freed: the module object itself is gone "
             "(a borrowed module pointer kept beyond the module, as from PyType_GetModuleByDef)%s%s",
             api, f.module ? f.module : "?", e.rec.instance, f.global ? "; reached through the C global " : "",
             f.global ? f.global : "");
    ml_finding_report(&f);
    return 1;
}

/* --- freed heap types: globals still pointing to them ---------------------------- */

#define PENDING_TYPES 64

/* A type freed while its module lives: the extension may still clear its global in
 * m_clear/m_free, so the scan waits for the module's free. */
struct dead_type {
    const PyTypeObject *address;
    const PyObject *module;
    struct ml_type_rec rec; /* qualname and created stack are our own copies */
};

static struct dead_type pending[PENDING_TYPES];
static int pending_count;

static void dead_type_release(struct dead_type *d)
{
    free(d->rec.qualname);
    ml_saved_stack_release(&d->rec.created);
    memset(d, 0, sizeof *d);
}

static void dead_type_copy(struct dead_type *d, const struct ml_type_rec *t, const PyObject *module)
{
    d->address = t->type;
    d->module = module;
    d->rec = *t;
    d->rec.qualname = t->qualname ? strdup(t->qualname) : NULL;
    memset(&d->rec.module_freed, 0, sizeof d->rec.module_freed);
    ml_saved_stack_copy(&d->rec.created, &t->created);
}

static void report_dead_type(const struct dead_type *d, const struct ml_global_hit *h)
{
    struct ml_finding f = {.kind = ML_DANGLING_GLOBAL, .global = h->name};
    ml_finding_set_type(&f, &d->rec, NULL);
    snprintf(f.message, sizeof f.message, "the C global %s still points to heap type '%s' of module '%s' "
             "(instance #%llu), which was freed", h->name, d->rec.qualname ? d->rec.qualname : "?",
             f.module ? f.module : "?", d->rec.module_instance);
    ml_finding_report(&f);
}

static void scan_dead_type(const void *anchor, const struct dead_type *d)
{
    struct ml_global_hit hits[HITS_MAX];
    uintptr_t target = (uintptr_t)d->address;
    int n = ml_global_scan(anchor, &target, 1, hits, HITS_MAX);
    for (int i = 0; i < n; i++)
        report_dead_type(d, &hits[i]);
}

/* At module's free: the types of it freed before. */
static void scan_pending_types(const PyObject *module, const void *anchor)
{
    for (;;) {
        struct dead_type d = {0};
        pthread_mutex_lock(&table_lock);
        for (int i = 0; i < pending_count; i++)
            if (pending[i].module == module) {
                d = pending[i];
                pending[i] = pending[--pending_count];
                memset(&pending[pending_count], 0, sizeof pending[0]);
                break;
            }
        pthread_mutex_unlock(&table_lock);
        if (!d.address)
            return;
        if (anchor && ml_finding_enabled(ML_DANGLING_GLOBAL))
            scan_dead_type(anchor, &d);
        dead_type_release(&d);
    }
}

/* Keeps d (then the table's) for its module's free; 0 if the table is full. */
static int keep_dead_type(const struct dead_type *d)
{
    pthread_mutex_lock(&table_lock);
    int kept = pending_count < PENDING_TYPES;
    if (kept)
        pending[pending_count++] = *d;
    pthread_mutex_unlock(&table_lock);
    return kept;
}

/* Takes d's entry back (then the caller's) unless its module's free took it. */
static int withdraw_dead_type(const struct dead_type *d)
{
    pthread_mutex_lock(&table_lock);
    int i = 0;
    while (i < pending_count && !(pending[i].address == d->address && pending[i].rec.seq == d->rec.seq))
        i++;
    int found = i < pending_count;
    if (found) {
        pending[i] = pending[--pending_count];
        memset(&pending[pending_count], 0, sizeof pending[0]);
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

/* Kept for its module's free, which scans the extension's globals for it; scanned now
 * if the module went first.  Kept before the module is looked at, so that none is
 * missed: a module seen before its phase became freed scans the kept types after
 * (scan_pending_types); on any other answer the type is taken back, unless that
 * module's free took it already. */
void ml_type_freed(const struct ml_type_rec *t)
{
    const PyObject *module = t->module ? t->module : t->exec_module;
    if (!ml_finding_enabled(ML_DANGLING_GLOBAL) || !module)
        return;
    struct dead_type d = {0};
    dead_type_copy(&d, t, module);
    int kept = keep_dead_type(&d);
    struct ml_module_rec m;
    int recorded = ml_module_snapshot(module, &m);
    if (kept && ((recorded && m.phase < ML_MOD_FREED) || !withdraw_dead_type(&d)))
        return; /* the module's free scans it, or took it and did */
    /* The module went first: the type's own slot functions are in its object. */
    const void *anchor = t->orig_dealloc ? (const void *)t->orig_dealloc : (const void *)t->orig_traverse;
    if (!recorded && anchor)
        scan_dead_type(anchor, &d);
    dead_type_release(&d);
}

void ml_module_freed(PyObject *module)
{
    struct survivors *s = calloc(1, sizeof *s);
    struct ml_module_rec copy;
    if (s)
        s->module = module;
    if (ml_module_snapshot_types(module, &copy, s ? collect_survivor : NULL, s)) {
        /* Before the record goes: its stacks are the findings' context. */
        char global[160] = "";
        if (ml_finding_enabled(ML_DANGLING_GLOBAL) || ml_finding_enabled(ML_STATE_USE_AFTER_FREE))
            check_globals(module, &copy, global, sizeof global);
        if (s && s->count && ml_finding_enabled(ML_TYPE_OUTLIVES_MODULE))
            check_survivors(copy.def ? (const void *)copy.def->def : NULL, s);
        remember_freed(module, &copy, global);
        scan_pending_types(module, copy.def ? (const void *)copy.def->def : NULL);
    }
    free(s);
    ml_module_forget_orphaning(module);
}

/* Its instances took references to it that their tp_dealloc never gave back: that
 * bug, not where the type is kept, is what to fix. */
static void leaked_by_dealloc(struct ml_finding *f, const void *dealloc)
{
    f->cause_kind = "dealloc-missing-type-decref";
    ml_function_name(dealloc, f->cause_function, sizeof f->cause_function);
    size_t n = strlen(f->message);
    snprintf(f->message + n, sizeof f->message - n,
             "; its instances leaked references to it: tp_dealloc %s does not Py_DECREF its type "
             "(dealloc-missing-type-decref)", f->cause_function);
    snprintf(f->fix_buf, sizeof f->fix_buf,
             "Fix the dealloc-missing-type-decref of tp_dealloc %s (Py_DECREF(tp) after tp->tp_free(self)): "
             "the references it leaks keep the type alive past its module.", f->cause_function);
    f->fix = f->fix_buf;
}

/* kept: the C global that points to the type, if the scan at its module's free
 * found one (NULL otherwise). */
static void report(const struct ml_type_rec *t, const char *message_format, const struct ml_stack *access,
                   const struct ml_saved_stack *access_saved, const struct deferred *kept)
{
    struct ml_finding f = {.kind = ML_TYPE_OUTLIVES_MODULE, .access = access, .access_saved = access_saved};
    ml_finding_set_type(&f, t, NULL);
    snprintf(f.message, sizeof f.message, message_format, t->qualname,
             t->module_name ? t->module_name : "?", t->module_instance);
    if (kept) {
        size_t n = strlen(f.message);
        f.global = kept->hit.name;
        snprintf(f.message + n, sizeof f.message - n, "; the C global %s points to %s", kept->hit.name,
                 kept->instance ? "an instance of it" : "it");
    }
    if (t->leaky_dealloc)
        leaked_by_dealloc(&f, t->leaky_dealloc);
    if (t->orphan && t->module_freed.depth)
        f.context[f.context_count++] = (struct ml_context_stack){"orphaned when its module was freed (m_free)", &t->module_freed};
    ml_finding_report(&f);
}

void ml_check_orphan_use_slow(const PyTypeObject *type, const char *api)
{
    if (__atomic_load_n(&ml_deferred_survivors, __ATOMIC_RELAXED) != 0)
        decide_deferred();
    struct ml_type_rec copy;
    if (!ml_have_orphan_types() || !ml_finding_enabled(ML_TYPE_OUTLIVES_MODULE) || !ml_type_snapshot(type, &copy) ||
        !copy.orphan || copy.freed)
        return;
    char format[256];
    snprintf(format, sizeof format, "%s() makes an instance of heap type '%%s' whose module '%%s' "
             "(instance #%%llu) was freed: the type is kept beyond its module", api);
    report(&copy, format, NULL, NULL, NULL);
}

struct at_exit {
    struct ml_type_rec found[REPORT_MAX];
    int count;
};

static void collect_at_exit(struct ml_type_rec *t, const struct ml_module_rec *m, void *arg)
{
    struct at_exit *e = arg;
    if (!(t->alive || (t->orphan && !t->freed)) || e->count == REPORT_MAX)
        return;
    if (t->orphan || (m && m->phase >= ML_MOD_CLEARED))
        e->found[e->count++] = *t;
}

/* The scan's global for a type reported at exit, if any (then no longer pending). */
static const struct deferred *kept_by(const struct ml_type_rec *t, struct deferred *found, int n)
{
    for (int i = 0; i < n; i++)
        if (found[i].type == t->type && found[i].seq == t->seq) {
            found[i].type = NULL;
            return &found[i];
        }
    return NULL;
}

/* At exit, after finalization: types alive whose module was cleared or freed. */
static void check_types_at_exit(void)
{
    struct at_exit e = {.count = 0};
    if (!ml_finding_enabled(ML_TYPE_OUTLIVES_MODULE))
        return;
    struct deferred found[DEFERRED_MAX];
    struct ml_type_rec alive[DEFERRED_MAX];
    int n = take_deferred(found, alive);
    ml_types_visit_modules(collect_at_exit, &e);
    for (int i = 0; i < e.count; i++) {
        /* Nothing runs at exit to blame: point at where the type was made (native
         * and Python frames, as a report of the global at the module's free).  One
         * report says both that it is alive and which global points to it. */
        report(&e.found[i], e.found[i].orphan
                   ? "heap type '%s' made by module '%s' (instance #%llu) is still alive at exit, after the module was freed"
                   : "heap type '%s' is still alive at exit, after its module '%s' (instance #%llu) was cleared",
               NULL, &e.found[i].created, kept_by(&e.found[i], found, n));
    }
    for (int i = 0; i < n; i++)
        if (found[i].type)
            report_kept_type(&alive[i], &found[i].hit, found[i].instance, &alive[i].module_freed);
}

__attribute__((constructor)) static void register_exit_check(void)
{
    ml_findings_at_exit(check_types_at_exit);
}
