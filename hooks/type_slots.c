/* The slots CPython calls on instances of an extension's heap types (tp_dealloc,
 * tp_traverse), and the death of the types themselves.
 *
 * The wrapper replaces the slot in the type; subclasses (Python or C) inherit the
 * wrapper, so it finds the original by walking from the instance's type up the
 * tp_base chain to the first adopted type that has an original of its own.  When an
 * original calls its base's slot on the same object, the walk resumes above the
 * type whose original is running (the slot context).
 *
 * The registry is keyed by address, and a dead type's record stays there until an
 * adopted type takes the address: a type that is not ours (a Python class, such as
 * _decimal's SignalDict, made by type()) may take it first.  Interpreters of their
 * own GIL destroyed and made side by side in threads free and reuse type addresses
 * all the time.  So a record answers for the type at its address only while it can
 * be the type it was made for (see answers()).
 *
 * Detectors: tp_dealloc must drop the instance's reference to its type
 * (dealloc-missing-type-decref), tp_traverse must visit it
 * (traverse-missing-type-visit). */
#include "hooks.h"

#include "../instrument/crash_story.h"
#include "../instrument/events.h"
#include "../instrument/findings.h"
#include "../instrument/interpreters.h"
#include "../instrument/options.h"
#include "../instrument/pyapi.h"
#include "../instrument/say.h"
#include "../instrument/slot_context.h"
#include "../instrument/thread_cache.h"
#include "../instrument/visible_text.h"

#include <stdio.h>
#include <string.h>

enum slot_kind { SLOT_DEALLOC, SLOT_TRAVERSE };

static void wrap_tp_dealloc(PyObject *self);
static int wrap_tp_traverse(PyObject *self, visitproc visit, void *arg);

static void *original_of(const struct ml_type_rec *rec, enum slot_kind kind)
{
    return kind == SLOT_DEALLOC ? (void *)rec->orig_dealloc : (void *)rec->orig_traverse;
}

/* The slot holds our wrapper: the type was adopted here, or inherited the slot from
 * one that was.  A Python class never has it (type() gives it subtype_dealloc and
 * subtype_traverse, which call the base's slot). */
static inline int holds_wrapper(const PyTypeObject *t, enum slot_kind kind)
{
    return kind == SLOT_DEALLOC ? t->tp_dealloc == wrap_tp_dealloc : t->tp_traverse == wrap_tp_traverse;
}

/* Whether rec, found at t's address, is t's own record (t is alive: the walk goes
 * from an instance's type up its bases).  Not if the type it was made for was freed
 * (its memory went back and may now be t: the record stays only for an adopted type
 * to replace it), nor if t's slot is not our wrapper (t is not the type we wrapped,
 * whatever was freed unseen).  A type garbage collection found dead is not freed yet:
 * its instances, collected with it, still need its original. */
static inline int answers(const struct ml_type_rec *rec, const PyTypeObject *t, enum slot_kind kind)
{
    return !rec->freed && holds_wrapper(t, kind) && original_of(rec, kind) != NULL;
}

struct owner_search {
    enum slot_kind kind;
    void *orig;
};

static int owner_step(struct ml_type_rec *rec, PyTypeObject *t, void *arg)
{
    struct owner_search *s = arg;
    if (!answers(rec, t, s->kind))
        return 0;
    s->orig = original_of(rec, s->kind);
    return 1;
}

/* The adopted type, at or above start, whose own original slot is to run. */
static __attribute__((noinline)) PyTypeObject *find_owner(PyTypeObject *start, enum slot_kind kind, void **orig)
{
    struct owner_search s = {kind, NULL};
    PyTypeObject *owner = ml_type_each_base(start, owner_step, &s);
    *orig = s.orig;
    return owner;
}

/* find_owner takes the registry lock, and instance churn runs it for every
 * tp_dealloc: a per-thread cache of start type -> owner, valid while no type of
 * ours came, changed or died.  Threads of other interpreters free and reuse type
 * addresses without this thread's GIL: the generation is read before the lookup
 * whose answer is stored with it, and bumped (under the registry lock) before a
 * freed type's memory can go back to the allocator, whose own locking orders that
 * before any thread gets the address again; a hit then sees a bumped generation
 * once the address can be another type's. */
#define OWNER_CACHE 32

struct owner_entry {
    const PyTypeObject *start;
    PyTypeObject *owner;
    void *orig;
    unsigned long generation;
};

static __thread struct owner_entry *owner_cache __attribute__((tls_model("initial-exec"))); /* [2][OWNER_CACHE] */

/* Inline: it runs for every instance freed. */
static inline __attribute__((always_inline)) PyTypeObject *find_owner_cached(PyTypeObject *start,
                                                                             enum slot_kind kind, void **orig)
{
    struct owner_entry *cache = owner_cache ? owner_cache
                                            : ml_thread_cache_alloc(2 * OWNER_CACHE * sizeof *cache,
                                                                    (void **)&owner_cache);
    if (!cache)
        return find_owner(start, kind, orig);
    unsigned long generation = ml_type_generation_now();
    struct owner_entry *e = &cache[kind * OWNER_CACHE + ((uintptr_t)start >> 4) % OWNER_CACHE];
    if (start && e->start == start && e->generation == generation && holds_wrapper(start, kind)) {
        *orig = e->orig;
        return e->owner;
    }
    PyTypeObject *owner = find_owner(start, kind, orig);
    /* Only a type of ours answers for itself: its death is seen (and bumps the
     * generation); a Python subclass may die unseen and another take its address. */
    if (owner && owner == start)
        *e = (struct owner_entry){start, owner, *orig, generation};
    return owner;
}

static PyTypeObject *start_type(PyObject *self, enum ml_slot slot)
{
    const struct ml_slot_frame *calls = ml_slot_innermost(slot);
    return calls && calls->object == self ? ((PyTypeObject *)calls->owner)->tp_base : ML_TYPE(self);
}

/* The slot has returned when we know: blame it by putting it innermost. */
static const struct ml_stack *blaming(struct ml_stack *s, void *slot_function)
{
    ml_stack_capture(s, ml_opts.stack_depth - 1);
    memmove(s->ips + 1, s->ips, (size_t)s->depth * sizeof s->ips[0]);
    s->ips[0] = (char *)slot_function + 1; /* frames are return addresses: looked up at ip - 1 */
    s->depth++;
    return s;
}

/* type: the instance's type, read before the instance was freed. */
static void report_missing_decref(PyTypeObject *type, PyTypeObject *owner, void *orig)
{
    struct ml_stack access;
    struct ml_finding f = {.kind = ML_DEALLOC_MISSING_TYPE_DECREF, .access = blaming(&access, orig)};
    struct ml_type_rec copy;
    ml_type_mark_leaky_dealloc(owner, type, orig, &copy);
    ml_finding_set_slot(&f, "tp_dealloc", orig);
    snprintf(f.message, sizeof f.message, "tp_dealloc %s of type '%s' does not Py_DECREF its type",
             f.slot_function_name, owner->tp_name);
    ml_finding_set_type(&f, &copy, type == owner ? NULL : type->tp_name);
    ml_finding_report(&f);
}

/* The wrapper's own reference to the type, taken and dropped for every instance
 * freed: the count itself where that is all Py_INCREF would do (a heap type's small
 * count, no Py_DEBUG total to keep), the C API where it could be more. */
static inline int plain_count(const PyObject *o)
{
    return !py.debug_build && o->ob_refcnt > 0 && o->ob_refcnt < (1 << 30);
}

static inline void hold(PyObject *o)
{
    if (plain_count(o))
        o->ob_refcnt++;
    else
        py.Py_IncRef(o);
}

static inline void let_go(PyObject *o)
{
    if (plain_count(o) && o->ob_refcnt > 1)
        o->ob_refcnt--;
    else
        py.Py_DecRef(o); /* the last one: the type goes */
}

static void wrap_tp_dealloc(PyObject *self)
{
    void *orig;
    PyTypeObject *owner = find_owner_cached(start_type(self, ML_SLOT_TP_DEALLOC), SLOT_DEALLOC, &orig);
    if (!owner) {
        /* Cannot happen for an adopted type; leaking beats calling a wrong slot. */
        const char *name = ML_TYPE(self)->tp_name;
        ml_say("internal error: no tp_dealloc found for a %s", ml_visible(name, strlen(name)).text);
        return;
    }
    /* Our own reference keeps the type readable after the instance is gone (its
     * dealloc may drop the last other one): the check compares counts, never reads
     * freed memory.  The type then goes when we let go, a moment later. */
    PyTypeObject *type = ML_TYPE(self);
    hold((PyObject *)type);
    Py_ssize_t before = type->ob_base.ob_refcnt;
    struct ml_slot_frame frame;
    ml_slot_push(&frame, ML_SLOT_TP_DEALLOC, self, owner);
    ((destructor)orig)(self);
    ml_slot_pop(&frame);
    ml_crash_story_slot_done(&frame);
    /* Only the outermost original answers for the reference: an inner one (a base's
     * dealloc called by a subclass's) may rely on the outer one to release it.  The
     * count first: it is what a correct dealloc makes false. */
    if (type->ob_base.ob_refcnt >= before && ml_finding_enabled(ML_DEALLOC_MISSING_TYPE_DECREF)) {
        const struct ml_slot_frame *outer = ml_slot_innermost(ML_SLOT_TP_DEALLOC);
        if (!outer || outer->object != self)
            report_missing_decref(type, owner, orig);
    }
    let_go((PyObject *)type);
}

struct visit_check {
    visitproc visit;
    void *arg;
    const PyObject *type;
    int seen;
};

static int checking_visit(PyObject *obj, void *arg)
{
    struct visit_check *c = arg;
    if (obj == c->type)
        c->seen = 1;
    return c->visit(obj, c->arg);
}

/* type: the instance's type (owner, or a subclass that left the visit to owner). */
static void report_missing_visit(PyTypeObject *type, PyTypeObject *owner, void *orig)
{
    struct ml_stack access;
    struct ml_finding f = {.kind = ML_TRAVERSE_MISSING_TYPE_VISIT, .access = blaming(&access, orig)};
    struct ml_type_rec copy;
    ml_type_snapshot(owner, &copy);
    ml_finding_set_slot(&f, "tp_traverse", orig);
    int sub = type != owner;
    snprintf(f.message, sizeof f.message, "tp_traverse %s of heap type '%s' does not visit Py_TYPE(self)%s%s%s",
             f.slot_function_name, owner->tp_name, sub ? " (reached for an instance of its subclass '" : "",
             sub ? type->tp_name : "", sub ? "', whose traverse leaves that visit to it)" : "");
    ml_finding_set_type(&f, &copy, sub ? type->tp_name : NULL);
    ml_finding_report(&f);
}

/* Checked once per type, by the outermost traverse of an instance: of the type itself,
 * or of a subclass that leaves the visit to it - a Python class (since 3.9 CPython's
 * subtype_traverse visits the type only when the base's traverse is not a heap
 * type's, and relies on that one otherwise) or a C subclass that inherited the slot.
 * A subclass's own traverse that calls this one answers for the visit itself. */
static int wants_visit_check(int outermost, PyTypeObject *owner)
{
    if (!outermost || !ml_finding_enabled(ML_TRAVERSE_MISSING_TYPE_VISIT))
        return 0;
    return ml_type_mark_traverse_checked(owner);
}

static int wrap_tp_traverse(PyObject *self, visitproc visit, void *arg)
{
    const struct ml_slot_frame *outer = ml_slot_innermost(ML_SLOT_TP_TRAVERSE);
    int outermost = !outer || outer->object != self;
    void *orig;
    PyTypeObject *owner = find_owner_cached(start_type(self, ML_SLOT_TP_TRAVERSE), SLOT_TRAVERSE, &orig);
    if (!owner)
        return 0;
    struct ml_slot_frame frame;
    ml_slot_push(&frame, ML_SLOT_TP_TRAVERSE, self, owner);
    int result;
    if (wants_visit_check(outermost, owner)) {
        PyTypeObject *type = ML_TYPE(self);
        struct visit_check check = {visit, arg, (PyObject *)type, 0};
        result = ((traverseproc)orig)(self, checking_visit, &check);
        ml_slot_pop(&frame);
        if (result == 0 && !check.seen)
            report_missing_visit(type, owner, orig);
        return result;
    }
    result = ((traverseproc)orig)(self, visit, arg);
    ml_slot_pop(&frame);
    return result;
}

static void watch(struct ml_type_rec *rec, PyTypeObject *type);

/* A weakref of ours to the type was cleared.  From the type's dealloc it has no
 * reference left and its memory goes back on return: the record is freed (stops
 * answering for the address), and the generation bumped, both under the lock and
 * before any other thread can get the address.  From the garbage collector, which
 * clears the weakrefs of a cycle found dead before breaking it, the type still has
 * references: it is dead for the log, but its memory stays its own until its
 * dealloc (after its instances in the cycle, which still need its slots); a new
 * weakref tells us when. */
static PyObject *type_died(PyObject *self, PyObject *weakref)
{
    (void)self;
    struct ml_capture c;
    ml_capture_stacks(&c);
    int first;
    struct ml_type_rec copy;
    struct ml_type_rec *rec = ml_type_died(weakref, &first, &copy);
    if (first)
        ml_event_type(ML_EVENT_TYPE_DEALLOC, &copy, &c);
    if (rec && copy.freed)
        ml_type_freed(&copy);
    if (rec) {
        py.Py_DecRef(weakref); /* ours since adoption; the caller holds its own */
        if (!copy.freed)
            watch(rec, copy.type); /* the type is alive until the collector is done: rec stays */
    }
    ml_saved_stack_release(&c.saved);
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
    ml_type_watched(rec, weakref);
}

static int spec_has_slot(const PyType_Spec *spec, int slot)
{
    for (const PyType_Slot *s = spec ? spec->slots : NULL; s && s->slot; s++)
        if (s->slot == slot)
            return 1;
    return 0;
}

/* own_dealloc, own_traverse: the type's maker gave the slot (in its spec, or set it
 * before PyType_Ready), it is not inherited. */
static void wrap_slots(struct ml_type_rec *rec, PyTypeObject *type, int own_dealloc, int own_traverse)
{
    /* Without a Py_tp_dealloc of its own a spec type gets CPython's subtype_dealloc,
     * which releases the type itself and finds the base's slot by walking tp_base:
     * it is left alone, since wrapping it would make it find our wrapper. */
    if (own_dealloc && type->tp_dealloc != wrap_tp_dealloc) {
        rec->orig_dealloc = type->tp_dealloc;
        type->tp_dealloc = wrap_tp_dealloc;
    }
    ml_type_wrap_alloc(rec, type);
    rec->gc = (type->tp_flags & ML_TPFLAGS_HAVE_GC) != 0;
    /* Only a traverse of its own: one inherited from CPython (type_traverse for a
     * metaclass, say) is not the extension's to answer for. */
    if (rec->gc && own_traverse && type->tp_traverse != wrap_tp_traverse) {
        rec->orig_traverse = type->tp_traverse;
        type->tp_traverse = wrap_tp_traverse;
    }
}

struct slot_choice {
    PyTypeObject *type;
    int own_dealloc, own_traverse;
};

static void wrap_chosen(struct ml_type_rec *rec, void *arg)
{
    const struct slot_choice *c = arg;
    wrap_slots(rec, c->type, c->own_dealloc, c->own_traverse);
}

/* Returns 0 if the registry is full (the type is not adopted). */
static int adopt(PyTypeObject *type, PyObject *module, int own_dealloc, int own_traverse,
                 struct ml_type_rec *adopted)
{
    long long interp = ml_interp_current(ML_INTERP_ANY);
    struct ml_capture c;
    ml_capture_stacks(&c);
    PyObject *initialising = module || ml_slot_innermost(ML_SLOT_MODULE_EXEC) ? NULL : ml_module_initialising();
    const struct ml_slot_frame *exec = ml_slot_innermost(ML_SLOT_MODULE_EXEC);
    struct slot_choice choice = {type, own_dealloc, own_traverse};
    struct ml_type_rec *rec = ml_type_adopt_new(type, interp, &c.saved, module, exec ? (PyObject *)exec->object : NULL,
                                                initialising, wrap_chosen, &choice, adopted);
    if (!rec) {
        ml_saved_stack_release(&c.saved);
        return 0;
    }
    ml_check_type_layout(type, module);
    watch(rec, type);
    ml_event_type(ML_EVENT_TYPE_CREATE, adopted, &c);
    return 1;
}

int ml_type_adopt(PyTypeObject *type, PyObject *module, const PyType_Spec *spec, struct ml_type_rec *adopted)
{
    return adopt(type, module, spec_has_slot(spec, ML_tp_dealloc), spec_has_slot(spec, ML_tp_traverse), adopted);
}

void ml_type_adopt_readied(PyTypeObject *type, int own_dealloc, int own_traverse)
{
    struct ml_type_rec adopted;
    adopt(type, NULL, own_dealloc, own_traverse, &adopted);
}
