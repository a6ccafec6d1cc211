/* The slots CPython calls on instances of an extension's heap types (tp_dealloc,
 * tp_traverse), and the death of the types themselves.
 *
 * The wrapper replaces the slot in the type; subclasses (Python or C) inherit the
 * wrapper, so it finds the original by walking from the instance's type up the
 * tp_base chain to the first adopted type that has an original of its own.  When an
 * original calls its base's slot on the same object, the walk resumes above the
 * type whose original is running (a per-thread chain of calls in progress). */
#include "hooks.h"

#include "../instrument/events.h"
#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"

#include <stdio.h>

struct slot_call {
    PyObject *self;
    PyTypeObject *owner;
    struct slot_call *prev;
};

static __thread struct slot_call *dealloc_calls, *traverse_calls;

enum slot_kind { SLOT_DEALLOC, SLOT_TRAVERSE };

static void *original_of(const struct ml_type_rec *rec, enum slot_kind kind)
{
    return kind == SLOT_DEALLOC ? (void *)rec->orig_dealloc : (void *)rec->orig_traverse;
}

/* The adopted type, at or above start, whose own original slot is to run. */
static PyTypeObject *find_owner(PyTypeObject *start, enum slot_kind kind, void **orig)
{
    *orig = NULL;
    ml_registry_lock();
    for (PyTypeObject *t = start; t; t = t->tp_base) {
        struct ml_type_rec *rec = ml_type_find(t);
        if (rec && (*orig = original_of(rec, kind)) != NULL) {
            ml_registry_unlock();
            return t;
        }
    }
    ml_registry_unlock();
    return NULL;
}

static PyTypeObject *start_type(PyObject *self, const struct slot_call *calls)
{
    return calls && calls->self == self ? calls->owner->tp_base : ML_TYPE(self);
}

static void wrap_tp_dealloc(PyObject *self)
{
    void *orig;
    PyTypeObject *owner = find_owner(start_type(self, dealloc_calls), SLOT_DEALLOC, &orig);
    if (!owner) {
        /* Cannot happen for an adopted type; leaking beats calling a wrong slot. */
        dprintf(2, "modlife: internal error: no tp_dealloc found for a %s\n", ML_TYPE(self)->tp_name);
        return;
    }
    struct slot_call call = {self, owner, dealloc_calls};
    dealloc_calls = &call;
    ((destructor)orig)(self);
    dealloc_calls = call.prev;
}

static int wrap_tp_traverse(PyObject *self, visitproc visit, void *arg)
{
    void *orig;
    PyTypeObject *owner = find_owner(start_type(self, traverse_calls), SLOT_TRAVERSE, &orig);
    if (!owner)
        return 0;
    struct slot_call call = {self, owner, traverse_calls};
    traverse_calls = &call;
    int result = ((traverseproc)orig)(self, visit, arg);
    traverse_calls = call.prev;
    return result;
}

static PyObject *type_died(PyObject *self, PyObject *weakref)
{
    (void)self;
    ml_registry_lock();
    struct ml_type_rec *rec = ml_type_find_by_weakref(weakref);
    struct ml_type_rec copy = {0};
    if (rec) {
        rec->alive = 0;
        rec->weakref = NULL;
        copy = *rec;
    }
    ml_registry_unlock();
    if (rec) {
        ml_event_type("type-dealloc", &copy, ML_WITH_STACKS);
        py.Py_DecRef(weakref); /* ours since adoption; the caller holds its own */
    }
    py.Py_IncRef(py.none);
    return py.none;
}

static PyMethodDef type_died_def = {"modlife_type_died", type_died, ML_METH_O, NULL};

static void watch(struct ml_type_rec *rec, PyTypeObject *type)
{
    PyObject *type_, *value, *tb;
    py.PyErr_Fetch(&type_, &value, &tb);
    PyObject *callback = ml_interp_function(&type_died_def);
    PyObject *weakref = callback ? py.PyWeakref_NewRef((PyObject *)type, callback) : NULL;
    py.PyErr_Clear();
    py.PyErr_Restore(type_, value, tb);
    if (!weakref)
        return;
    ml_registry_lock();
    ml_type_watch(rec, weakref);
    ml_registry_unlock();
}

static void describe_module(struct ml_type_rec *rec, PyObject *module)
{
    struct ml_module_rec *m = module ? ml_module_find(module) : NULL;
    rec->module = module;
    if (m) {
        rec->module_instance = m->instance;
        rec->module_name = m->def ? m->def->name : NULL;
    }
}

static int spec_has_slot(const PyType_Spec *spec, int slot)
{
    for (const PyType_Slot *s = spec ? spec->slots : NULL; s && s->slot; s++)
        if (s->slot == slot)
            return 1;
    return 0;
}

void ml_type_adopt(PyTypeObject *type, PyObject *module, const PyType_Spec *spec)
{
    long long interp = ml_interp_current(ML_INTERP_ANY);
    ml_registry_lock();
    struct ml_type_rec *rec = ml_type_add(type);
    if (!rec) {
        ml_registry_unlock();
        return;
    }
    rec->interp = interp;
    describe_module(rec, module);
    /* Without a Py_tp_dealloc of its own a spec type gets CPython's subtype_dealloc,
     * which releases the type itself and finds the base's slot by walking tp_base:
     * it is left alone, since wrapping it would make it find our wrapper. */
    if (spec_has_slot(spec, ML_tp_dealloc) && type->tp_dealloc != wrap_tp_dealloc) {
        rec->orig_dealloc = type->tp_dealloc;
        type->tp_dealloc = wrap_tp_dealloc;
    }
    rec->gc = (type->tp_flags & ML_TPFLAGS_HAVE_GC) != 0;
    if (rec->gc && type->tp_traverse && type->tp_traverse != wrap_tp_traverse) {
        rec->orig_traverse = type->tp_traverse;
        type->tp_traverse = wrap_tp_traverse;
    }
    struct ml_type_rec copy = *rec;
    ml_registry_unlock();
    watch(rec, type);
    ml_event_type("type-create", &copy, ML_WITH_STACKS);
}
