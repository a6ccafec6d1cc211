/* Static types in multi-phase modules (static-type-in-multiphase-module): a static
 * PyTypeObject readied (PyType_Ready) or added (PyModule_AddType/AddObject) by an
 * extension object that defines a multi-phase module is shared by every instance
 * of that module and every interpreter.
 *
 * The HOWTO allows one way out: a module that refuses a second instance ("Opt-Out:
 * Limiting to One Module Object per Process"; Cython's modules return their one
 * module object again, or fail the import in another interpreter).  So such a type
 * is a candidate until a second instance of its module is made; then it is shared
 * and reported, with the stack where it was readied as the access and the second
 * instance's creation as context.
 *
 * PyInit often readies its types before handing its definition to
 * PyModuleDef_Init, so such types wait as pending until that definition is known.
 *
 * CPython's own managed static types (3.12+: readied by the internal
 * _PyStaticType_InitForExtension, flagged _Py_TPFLAGS_STATIC_BUILTIN, as 3.13's
 * _datetime) are not findings: CPython keeps their per-interpreter parts itself. */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/interpreters.h"
#include "../instrument/elf_objects.h"
#include "../instrument/pyapi.h"
#include "../instrument/slot_context.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#define PENDING_MAX 256
#define CANDIDATES_MAX 1024

struct pending {
    const PyTypeObject *type;
    int object;
    char init[64]; /* the PyInit_<init> that readied it */
    struct ml_saved_stack readied;
};

struct candidate {
    const PyTypeObject *type;
    struct ml_def_rec *def;
    const char *how;
    struct ml_saved_stack readied;
    int reported;
};

/* Guarded by table_lock (hooks.h: under it no registry verb, stack capture or
 * release). */
ML_TABLE_LOCK(table_lock)
static struct pending pending[PENDING_MAX];
static int pending_count;
static struct candidate candidates[CANDIDATES_MAX];
static int candidate_count;

#define ML_TPFLAGS_STATIC_BUILTIN (1UL << 1) /* 3.12+; unused before */

static int managed_by_cpython(const PyTypeObject *type)
{
    return py.minor >= 12 && (type->tp_flags & ML_TPFLAGS_STATIC_BUILTIN);
}

static int object_of(const void *addr)
{
    return ml_objects_resolve((uintptr_t)addr, 0).id;
}

/* The definitions of one extension object (a shared object may define several). */
struct def_search {
    int object;
    const char *name; /* NULL: any */
    int count;
    struct ml_def_rec *found;
};

static const char *last_component(const char *name)
{
    const char *dot = name ? strrchr(name, '.') : NULL;
    return dot ? dot + 1 : name ? name : "";
}

static void match_def(struct ml_def_rec *def, void *arg)
{
    struct def_search *s = arg;
    if (object_of(def->def) != s->object || (s->name && strcmp(last_component(def->name), s->name) != 0))
        return;
    s->count++;
    s->found = def;
}

/* The object's definition named name (any if NULL); NULL unless exactly one. */
static struct ml_def_rec *def_of_object(int object, const char *name)
{
    struct def_search s = {object, name, 0, NULL};
    ml_defs_visit(match_def, &s);
    return s.count == 1 ? s.found : NULL;
}

/* The exported function holding addr, from the dynamic symbol table the loader
 * keeps: no symbol table is loaded for it (a process without findings loads none). */
static const char *exported_function(uintptr_t addr)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (!dladdr1((void *)addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_sname || !sym)
        return NULL;
    return addr - (uintptr_t)info.dli_saddr < sym->st_size ? info.dli_sname : NULL;
}

/* The name of the innermost PyInit_<name> on the stack, or NULL.  PyInit functions
 * are exported, so they are named even in stripped extensions. */
static const char *init_on_stack(const struct ml_saved_stack *s)
{
    for (int i = 0; i < s->depth; i++) {
        if (!ml_objects_is_extension(ml_objects_resolve((uintptr_t)s->ips[i] - 1, 0).id))
            continue;
        const char *fn = exported_function((uintptr_t)s->ips[i] - 1);
        if (fn && strncmp(fn, "PyInit_", 7) == 0)
            return fn + 7;
    }
    return NULL;
}

/* The module whose exec slot runs in this thread, or NULL. */
static struct ml_def_rec *executing_def(void)
{
    const struct ml_slot_frame *f = ml_slot_innermost(ML_SLOT_MODULE_EXEC);
    PyModuleDef *def = f ? py.PyModule_GetDef((PyObject *)f->object) : NULL;
    return def ? ml_def_lookup(def) : NULL;
}

static void report(struct candidate *c, const struct ml_saved_stack *shared_at)
{
    struct ml_finding f = {.kind = ML_STATIC_TYPE_IN_MULTIPHASE_MODULE, .interp = ml_interp_current(ML_INTERP_ANY)};
    unsigned instances = ml_def_instances(c->def);
    f.type = c->type->tp_name;
    f.module = c->def->name;
    snprintf(f.message, sizeof f.message,
             "static type '%s' %s by multi-phase module '%s' is shared by its %u instances: one type "
             "object for all instances and interpreters", c->type->tp_name, c->how, c->def->name, instances);
    snprintf(f.subject_buf, sizeof f.subject_buf, "module '%s' instance #%u", c->def->name, instances);
    f.subject = f.subject_buf;
    f.context[f.context_count++] = (struct ml_context_stack){"created", shared_at};
    f.access_saved = &c->readied;
    ml_finding_report(&f);
}

/* An unreported candidate of def, now marked reported; NULL if none.  Candidates are
 * never removed: the pointer stays good, and its fields do not change. */
static struct candidate *take_unreported(const struct ml_def_rec *def)
{
    struct candidate *c = NULL;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < candidate_count && !c; i++)
        if (candidates[i].def == def && !candidates[i].reported) {
            c = &candidates[i];
            c->reported = 1; /* the record stays: its stacks are never released */
        }
    pthread_mutex_unlock(&table_lock);
    return c;
}

/* Reports the unreported candidates of def once it has a second instance (a count
 * that only grows: asked once); the caller holds no lock. */
static void report_shared(struct ml_def_rec *def)
{
    if (ml_def_instances(def) < 2)
        return;
    struct ml_saved_stack now = {0};
    int captured = 0;
    for (;;) {
        struct candidate *c = take_unreported(def);
        if (!c)
            break;
        if (!captured++)
            ml_saved_stack_capture(&now);
        report(c, &now);
    }
    if (captured)
        ml_saved_stack_release(&now);
}

/* Takes ownership of readied. */
static void add_candidate(const PyTypeObject *type, struct ml_def_rec *def, const char *how,
                          struct ml_saved_stack *readied)
{
    int kept = 0;
    pthread_mutex_lock(&table_lock);
    int known = 0;
    for (int i = 0; i < candidate_count && !known; i++)
        known = candidates[i].type == type && candidates[i].def == def;
    if (!known && candidate_count < CANDIDATES_MAX) {
        candidates[candidate_count++] = (struct candidate){type, def, how, *readied, 0};
        kept = 1;
    }
    pthread_mutex_unlock(&table_lock);
    if (!kept)
        ml_saved_stack_release(readied);
    report_shared(def);
}

static void consider(const PyTypeObject *type, struct ml_def_rec *def, struct ml_saved_stack *readied)
{
    if (def && def->multiphase)
        add_candidate(type, def, "readied", readied);
    else
        ml_saved_stack_release(readied); /* single-phase modules have static types by design */
}

/* Which module readied the type: the one whose PyInit is on the stack (its
 * definition may not be known yet: then the type waits for PyModuleDef_Init or
 * PyModule_Create2), else the one whose exec slot runs, else the object's only
 * definition.  An object that defines several modules (CPython's _testcapi has
 * single- and multi-phase ones) is never guessed at. */
void ml_static_type_readied(PyTypeObject *type, const struct ml_saved_stack *stack)
{
    int object = object_of(type);
    if (!ml_objects_is_extension(object) || !ml_finding_enabled(ML_STATIC_TYPE_IN_MULTIPHASE_MODULE) ||
        managed_by_cpython(type))
        return;
    struct ml_saved_stack readied;
    ml_saved_stack_copy(&readied, stack);
    const char *init = init_on_stack(&readied);
    if (!init) {
        struct ml_def_rec *def = executing_def();
        consider(type, def ? def : def_of_object(object, NULL), &readied);
        return;
    }
    struct ml_def_rec *def = def_of_object(object, init);
    if (def) {
        consider(type, def, &readied);
        return;
    }
    pthread_mutex_lock(&table_lock);
    if (pending_count < PENDING_MAX) {
        struct pending *p = &pending[pending_count++];
        p->type = type;
        p->object = object;
        snprintf(p->init, sizeof p->init, "%s", init);
        p->readied = readied;
        ml_saved_stack_moved(&readied);
    }
    pthread_mutex_unlock(&table_lock);
    ml_saved_stack_release(&readied);
}

void ml_static_types_check_def(struct ml_def_rec *def)
{
    int object = object_of(def->def);
    const char *name = last_component(def->name);
    struct pending mine[PENDING_MAX];
    int count = 0;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < pending_count; i++)
        if (pending[i].object == object && strcmp(pending[i].init, name) == 0) {
            mine[count++] = pending[i];
            pending[i--] = pending[--pending_count];
        }
    pthread_mutex_unlock(&table_lock);
    for (int i = 0; i < count; i++)
        consider(mine[i].type, def, &mine[i].readied);
}

void ml_static_types_module_created(struct ml_def_rec *def)
{
    if (def->multiphase)
        report_shared(def);
}

/* is_type: the caller knows value is a type (PyModule_AddType readies it, so its
 * ob_type may still be NULL). */
static void check_added(PyObject *module, PyObject *value, int is_type)
{
    if (!value || (!is_type && (!ML_TYPE(value) || !(ML_TYPE(value)->tp_flags & ML_TPFLAGS_TYPE_SUBCLASS))))
        return;
    const PyTypeObject *type = (const PyTypeObject *)value;
    if ((type->tp_flags & ML_TPFLAGS_HEAPTYPE) || managed_by_cpython(type) || !ml_objects_is_extension(object_of(type)))
        return; /* heap types, and static types of the interpreter itself, are fine */
    PyModuleDef *def = ml_py_is_module(module) ? py.PyModule_GetDef(module) : NULL;
    struct ml_def_rec *rec = def ? ml_def_lookup(def) : NULL;
    if (rec && rec->multiphase) {
        struct ml_saved_stack added;
        ml_saved_stack_capture(&added);
        add_candidate(type, rec, "added to a module", &added);
    }
}

int ml_hook_PyModule_AddType(PyObject *module, PyTypeObject *type)
{
    check_added(module, (PyObject *)type, 1);
    return py.PyModule_AddType(module, type);
}

int ml_hook_PyModule_AddObject(PyObject *module, const char *name, PyObject *value)
{
    check_added(module, value, 0);
    return py.PyModule_AddObject(module, name, value);
}

int ml_hook_PyModule_AddObjectRef(PyObject *module, const char *name, PyObject *value)
{
    check_added(module, value, 0);
    return py.PyModule_AddObjectRef(module, name, value);
}
