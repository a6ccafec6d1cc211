/* Heap types that outlive their module (type-outlives-module).  A type made with
 * its module (PyType_FromModuleAndSpec) keeps the module alive; a type made
 * without it while the module's exec slot ran (PyType_FromSpec) does not, and
 * when it is kept in a C global it survives the module: the next module instance
 * then makes objects of a type that belongs to a dead one.  When a module is freed
 * its surviving types become orphans; an orphan is reported when extension code
 * makes an instance of it, or when it is still alive at exit (after finalization,
 * only C code can hold it).  At exit, types alive whose module was cleared (kept
 * alive by a leaked instance) are reported too. */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MAX 32

struct orphaning {
    const PyObject *module;
    const struct ml_saved_stack *freed;
};

static void orphan_type(struct ml_type_rec *t, void *arg)
{
    struct orphaning *o = arg;
    if (!t->alive || t->orphan || t->module || t->exec_module != o->module)
        return;
    ml_type_orphaned(t, o->freed);
}

void ml_module_freed(PyObject *module)
{
    ml_registry_lock();
    struct ml_module_rec *rec = ml_module_find(module);
    if (rec) {
        struct orphaning o = {module, &rec->freed};
        ml_each_type(orphan_type, &o);
        ml_module_forget(rec);
    }
    ml_registry_unlock();
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

static void report(const struct ml_type_rec *t, const char *message_format, const struct ml_stack *access)
{
    struct ml_finding f = {.kind = ML_TYPE_OUTLIVES_MODULE, .access = access};
    ml_finding_set_type(&f, t, NULL);
    snprintf(f.message, sizeof f.message, message_format, t->qualname,
             t->module_name ? t->module_name : "?", t->module_instance);
    if (t->leaky_dealloc)
        leaked_by_dealloc(&f, t->leaky_dealloc);
    if (t->orphan && t->module_freed.depth)
        f.context[f.context_count++] = (struct ml_context_stack){"orphaned when its module was freed (m_free)", &t->module_freed};
    ml_finding_report(&f);
}

void ml_check_orphan_use(const PyTypeObject *type, const char *api)
{
    struct ml_type_rec copy;
    if (!ml_have_orphan_types() || !ml_finding_enabled(ML_TYPE_OUTLIVES_MODULE) || !ml_type_snapshot(type, &copy) ||
        !copy.orphan || !copy.alive)
        return;
    char format[256];
    snprintf(format, sizeof format, "%s() makes an instance of heap type '%%s' whose module '%%s' "
             "(instance #%%llu) was freed: the type is kept beyond its module", api);
    report(&copy, format, NULL);
}

struct at_exit {
    struct ml_type_rec found[REPORT_MAX];
    int count;
};

static void collect_at_exit(struct ml_type_rec *t, void *arg)
{
    struct at_exit *e = arg;
    if (!t->alive || e->count == REPORT_MAX)
        return;
    const struct ml_module_rec *m = t->module ? ml_module_find(t->module) : NULL;
    if (t->orphan || (m && m->phase >= ML_MOD_CLEARED))
        e->found[e->count++] = *t;
}

/* At exit, after finalization: types alive whose module was cleared or freed. */
static void check_types_at_exit(void)
{
    struct at_exit e = {.count = 0};
    if (!ml_finding_enabled(ML_TYPE_OUTLIVES_MODULE))
        return;
    ml_registry_lock();
    ml_each_type(collect_at_exit, &e);
    ml_registry_unlock();
    for (int i = 0; i < e.count; i++) {
        /* Nothing runs at exit to blame: point at where the type was made. */
        struct ml_stack created;
        ml_saved_stack_native(&e.found[i].created, &created);
        report(&e.found[i], e.found[i].orphan
                   ? "heap type '%s' made by module '%s' (instance #%llu) is still alive at exit, after the module was freed"
                   : "heap type '%s' is still alive at exit, after its module '%s' (instance #%llu) was cleared",
               &created);
    }
}

__attribute__((constructor)) static void register_exit_check(void)
{
    ml_findings_at_exit(check_types_at_exit);
}
