/* Static types in multi-phase modules (static-type-in-multiphase-module): a static
 * PyTypeObject readied (PyType_Ready) or added (PyModule_AddType/AddObject) by an
 * extension object that defines a multi-phase module is shared by every instance
 * of that module and every interpreter.  PyInit often readies its types before
 * handing its definition to PyModuleDef_Init, so such types wait here until the
 * object's definitions are known. */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/objects.h"
#include "../instrument/pyapi.h"

#include <stdio.h>
#include <stdint.h>

#define PENDING_MAX 256

struct pending {
    const PyTypeObject *type;
    int object;
    struct ml_saved_stack readied;
};

static struct pending pending[PENDING_MAX];
static int pending_count;

static int object_of(const void *addr)
{
    return ml_objects_resolve((uintptr_t)addr, 0).id;
}

struct def_search {
    int object;
    struct ml_def_rec *found;
};

static void match_def(struct ml_def_rec *def, void *arg)
{
    struct def_search *s = arg;
    if (def->multiphase && !s->found && object_of(def->def) == s->object)
        s->found = def;
}

/* A multi-phase definition made by the same object, or NULL. */
static struct ml_def_rec *multiphase_def_of(int object)
{
    struct def_search s = {object, NULL};
    ml_registry_lock();
    ml_each_def(match_def, &s);
    ml_registry_unlock();
    return s.found;
}

static void report(const PyTypeObject *type, const struct ml_def_rec *def, const char *how,
                   const struct ml_saved_stack *readied)
{
    struct ml_finding f = {.kind = ML_STATIC_TYPE_IN_MULTIPHASE_MODULE, .interp = -1};
    f.type = type->tp_name;
    f.module = def->name;
    snprintf(f.message, sizeof f.message,
             "static type '%s' %s by multi-phase module '%s': one type object is shared by all its "
             "instances and interpreters", type->tp_name, how, def->name);
    if (readied && readied->depth) {
        snprintf(f.subject_buf, sizeof f.subject_buf, "static type '%s'", type->tp_name);
        f.subject = f.subject_buf;
        f.context[f.context_count++] = (struct ml_context_stack){"readied", readied};
    }
    ml_finding_report(&f);
}

void ml_static_type_readied(PyTypeObject *type)
{
    int object = object_of(type);
    if (!ml_objects_is_extension(object) || !ml_finding_enabled(ML_STATIC_TYPE_IN_MULTIPHASE_MODULE))
        return;
    struct ml_def_rec *def = multiphase_def_of(object);
    if (def) {
        report(type, def, "readied", NULL);
        return;
    }
    ml_registry_lock();
    if (pending_count < PENDING_MAX) {
        struct pending *p = &pending[pending_count++];
        p->type = type;
        p->object = object;
        ml_saved_stack_capture(&p->readied);
    }
    ml_registry_unlock();
}

void ml_static_types_check_def(struct ml_def_rec *def)
{
    int object = object_of(def->def);
    struct pending mine[PENDING_MAX];
    int count = 0;
    ml_registry_lock();
    for (int i = 0; i < pending_count; i++)
        if (pending[i].object == object) {
            mine[count++] = pending[i];
            pending[i--] = pending[--pending_count];
        }
    ml_registry_unlock();
    for (int i = 0; i < count; i++) {
        if (def->multiphase)
            report(mine[i].type, def, "readied", &mine[i].readied);
        ml_saved_stack_release(&mine[i].readied);
    }
}

/* is_type: the caller knows value is a type (PyModule_AddType readies it, so its
 * ob_type may still be NULL). */
static void check_added(PyObject *module, PyObject *value, int is_type)
{
    if (!value || (!is_type && (!ML_TYPE(value) || !(ML_TYPE(value)->tp_flags & ML_TPFLAGS_TYPE_SUBCLASS))))
        return;
    const PyTypeObject *type = (const PyTypeObject *)value;
    if ((type->tp_flags & ML_TPFLAGS_HEAPTYPE) || !ml_objects_is_extension(object_of(type)))
        return; /* heap types, and static types of the interpreter itself, are fine */
    PyModuleDef *def = ml_py_is_module(module) ? py.PyModule_GetDef(module) : NULL;
    ml_registry_lock();
    struct ml_def_rec *rec = def ? ml_def_find(def) : NULL;
    ml_registry_unlock();
    if (rec && rec->multiphase)
        report(type, rec, "added to a module", NULL);
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
