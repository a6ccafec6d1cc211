/* Unit test of the registries (instrument/registry.c) with stand-in CPython objects:
 * module definitions, module instances numbered per module name, a module or type
 * address reused after its record went stale, types found by their weak reference,
 * interpreters, the walks, and the generation counter the lookup caches trust.  The
 * saved stacks are replaced by a recorder of what was released. */
#include "registry.h"

#include "harness.h"

#include <stdlib.h>

static int released;

void ml_saved_stack_release(struct ml_saved_stack *s)
{
    if (s->depth)
        released++;
}

/* The orphaning verb keeps a copy of the module's freed stack. */
void ml_saved_stack_copy(struct ml_saved_stack *to, const struct ml_saved_stack *from)
{
    *to = *from;
}

static void count_module(struct ml_module_rec *m, void *arg)
{
    (void)m;
    ++*(int *)arg;
}

static void count_type(struct ml_type_rec *t, void *arg)
{
    (void)t;
    ++*(int *)arg;
}

static void count_def(struct ml_def_rec *d, void *arg)
{
    (void)d;
    ++*(int *)arg;
}

struct modules_seen {
    int types, with_module;
};

/* Counts the types, and those given their module's record (which must be theirs). */
static void see_module(struct ml_type_rec *t, const struct ml_module_rec *m, void *arg)
{
    struct modules_seen *s = arg;
    s->types++;
    if (m && CHECK(m->module == t->module))
        s->with_module++;
}

static void mark_wrapped(struct ml_def_rec *d)
{
    d->wrapped_lifecycle = 1;
}

static void wrap_type(struct ml_type_rec *t, void *arg)
{
    t->gc = *(int *)arg;
}

/* Stops at the first record with a tp_alloc, whose type it keeps. */
static int find_alloc(struct ml_type_rec *t, PyTypeObject *type, void *arg)
{
    (void)type;
    if (!t->orig_alloc)
        return 0;
    *(struct ml_type_rec **)arg = t;
    return 1;
}

int main(void)
{
    static PyModuleDef def_a = {.m_name = "a"}, def_b = {.m_name = "b"}, def_anon = {.m_name = NULL};
    static PyObject modules[4];
    static PyTypeObject types[3] = {{.tp_name = "a.T"}, {.tp_name = "a.U"}, {.tp_name = NULL}};
    static PyObject weakrefs[2];
    static char interps[2][16];

    ml_registry_lock();
    CHECK(ml_def_find(&def_a) == NULL);
    struct ml_def_rec *a = ml_def_add(&def_a), *b = ml_def_add(&def_b), *anon = ml_def_add(&def_anon);
    CHECK(a && b && anon && ml_def_find(&def_a) == a && ml_def_find(&def_b) == b);
    CHECK_STR(a->name, "a");
    CHECK_STR(anon->name, "?");

    /* Instances count per module name, from 1, whatever else was made between. */
    unsigned long gen = ml_registry_generation;
    struct ml_module_rec *a1 = ml_module_add(&modules[0], a, 0);
    struct ml_module_rec *b1 = ml_module_add(&modules[1], b, 0);
    struct ml_module_rec *a2 = ml_module_add(&modules[2], a, 1);
    CHECK(a1 && b1 && a2);
    CHECK_INT(a1->instance, 1);
    CHECK_INT(b1->instance, 1);
    CHECK_INT(a2->instance, 2);
    CHECK_INT(a2->interp, 1);
    CHECK(a1->phase == ML_MOD_CREATED && a1->def == a && a1->module == &modules[0]);
    CHECK_STR(ml_module_phase_name(ML_MOD_CLEARED), "cleared");
    CHECK(ml_module_find(&modules[2]) == a2 && ml_module_find(&modules[3]) == NULL);
    CHECK_INT(ml_registry_generation - gen, 3); /* each add invalidates the caches */

    /* A module that died unseen: its address taken by a new one, the stale record's
     * stacks released, the number not reused. */
    a1->created.depth = 3;
    struct ml_module_rec *a3 = ml_module_add(&modules[0], a, 0);
    CHECK(a3 && ml_module_find(&modules[0]) == a3);
    CHECK_INT(a3->instance, 3);
    CHECK_INT(released, 1);
    gen = ml_registry_generation;
    ml_module_forget(b1);
    CHECK(ml_module_find(&modules[1]) == NULL);
    CHECK_INT(ml_registry_generation - gen, 1);
    struct ml_module_rec *b2 = ml_module_add(&modules[1], b, 0);
    CHECK(b2 && b2->instance == 2);
    int n = 0;
    ml_each_module(count_module, &n);
    CHECK_INT(n, 3);
    n = 0;
    ml_each_def(count_def, &n);
    CHECK_INT(n, 3);

    /* Types: numbered in order, named, found by address and by weak reference. */
    struct ml_type_rec *t = ml_type_add(&types[0]), *u = ml_type_add(&types[1]), *v = ml_type_add(&types[2]);
    CHECK(t && u && v && t->alive && ml_type_find(&types[1]) == u);
    CHECK_STR(t->qualname, "a.T");
    CHECK_STR(v->qualname, "?");
    CHECK(u->seq == t->seq + 1 && v->seq == u->seq + 1);
    ml_type_watch(t, &weakrefs[0]);
    CHECK(ml_type_find_by_weakref(&weakrefs[0]) == t && ml_type_find_by_weakref(&weakrefs[1]) == NULL);
    /* Its address reused by a new type: the old record and its weak reference go. */
    t->created.depth = 2;
    released = 0;
    struct ml_type_rec *t2 = ml_type_add(&types[0]);
    CHECK(t2 && ml_type_find(&types[0]) == t2 && t2->seq == v->seq + 1);
    CHECK(ml_type_find_by_weakref(&weakrefs[0]) == NULL);
    CHECK_INT(released, 1);
    n = 0;
    ml_each_type(count_type, &n);
    CHECK_INT(n, 3);

    /* Interpreters. */
    PyInterpreterState *i0 = (PyInterpreterState *)interps[0], *i1 = (PyInterpreterState *)interps[1];
    struct ml_interp_rec *r0 = ml_interp_add(i0, 0), *r1 = ml_interp_add(i1, 1);
    CHECK(r0 && r1 && ml_interp_find(i1) == r1 && r1->id == 1);
    struct ml_interp_rec *r1b = ml_interp_add(i1, 2); /* an interpreter at a freed one's address */
    CHECK(r1b && ml_interp_find(i1) == r1b && r1b->id == 2);
    ml_registry_unlock();

    /* The verbs, which take the lock themselves. */
    CHECK(ml_def_lookup(&def_a) == a && ml_def_lookup(&def_anon + 1) == NULL);
    static PyModuleDef def_c = {.m_name = "c"};
    struct ml_def_rec *c = ml_def_adopt(&def_c, 1, mark_wrapped);
    CHECK(c && c->multiphase && c->wrapped_lifecycle);
    c->wrapped_lifecycle = 0;
    CHECK(ml_def_adopt(&def_c, 0, mark_wrapped) == c && c->multiphase && !c->wrapped_lifecycle); /* once */
    n = 0;
    ml_defs_visit(count_def, &n);
    CHECK_INT(n, 4);

    struct ml_module_rec snap;
    struct ml_saved_stack made = {.depth = 4};
    int state;
    CHECK(ml_module_register(&modules[3], c, 5, &state, &made, &snap));
    CHECK(snap.module == &modules[3] && snap.state == &state && snap.interp == 5 && snap.created.depth == 4);
    CHECK(ml_module_set_state(&modules[3], &n) && ml_module_snapshot(&modules[3], &snap) && snap.state == &n);
    CHECK(!ml_module_set_state(&weakrefs[1], &n));
    CHECK(ml_module_count_lookup(&modules[3], &snap) == ml_module_find(&modules[3]) && snap.state_lookups == 1);
    CHECK(ml_module_count_lookup(&modules[3], &snap) && snap.state_lookups == 2);
    CHECK(ml_module_count_lookup(&weakrefs[1], &snap) == NULL && snap.module == NULL);
    CHECK(ml_module_complete(&modules[3]) == c && c->instances == 1);
    CHECK(ml_module_complete(&modules[3]) == NULL && c->instances == 1); /* counted once */
    CHECK_INT(ml_def_instances(c), 1);
    CHECK_INT(ml_def_instances(a), 0); /* a's modules never completed */

    /* A type adopted while module c's exec slot runs is named for it. */
    static PyTypeObject w = {.tp_name = "c.W"}, sub = {.tp_name = "c.Sub"};
    struct ml_type_rec adopted;
    struct ml_saved_stack typed = {.depth = 2};
    int gc = 1;
    unsigned long tgen = ml_type_generation_now();
    struct ml_type_rec *wr = ml_type_adopt_new(&w, 5, &typed, NULL, &modules[3], NULL, wrap_type, &gc, &adopted);
    CHECK(wr && adopted.exec_module == &modules[3] && adopted.module == NULL && adopted.gc == 1);
    CHECK(adopted.module_instance == 1 && adopted.module_name == c->name && adopted.multiphase);
    CHECK(adopted.interp == 5 && adopted.created.depth == 2 && ml_type_generation_now() != tgen);

    /* A base walk: sub (not ours) inherits from w, which has a tp_alloc of its own. */
    sub.tp_base = &w;
    wr->orig_alloc = (void *)find_alloc;
    struct ml_type_rec *hit = NULL;
    CHECK(ml_type_each_base(&sub, find_alloc, &hit) == &w && hit == wr);
    struct ml_type_rec tsnap;
    CHECK(ml_type_base_snapshot(&sub, &tsnap) && tsnap.type == &w);
    wr->freed = 1; /* its memory went back: the address answers for nothing */
    CHECK(!ml_type_base_snapshot(&sub, &tsnap) && tsnap.type == NULL);
    wr->freed = 0;

    CHECK(ml_type_mark_traverse_checked(&w) && !ml_type_mark_traverse_checked(&w));
    CHECK(!ml_type_mark_traverse_checked(&sub));
    ml_type_mark_leaky_dealloc(&w, &types[1], (void *)count_def, &tsnap);
    CHECK(tsnap.type == &w && ml_type_find(&types[1])->leaky_dealloc == (void *)count_def && !wr->leaky_dealloc);
    ml_type_watched(wr, &weakrefs[1]);
    CHECK(ml_type_find_by_weakref(&weakrefs[1]) == wr);

    n = 0;
    ml_types_visit(count_type, &n);
    CHECK_INT(n, 4);
    /* Each type with its module's record: u's is a2's; v names a module never seen. */
    u->module = &modules[2];
    v->module = &weakrefs[0];
    struct modules_seen seen = {0, 0};
    ml_types_visit_modules(see_module, &seen);
    CHECK(seen.types == 4 && seen.with_module == 1);
    u->module = v->module = NULL;
    n = 0;
    CHECK(ml_module_snapshot_types(&modules[3], &snap, count_type, &n) && snap.module == &modules[3] && n == 4);
    n = 0;
    CHECK(!ml_module_snapshot_types(&weakrefs[1], &snap, count_type, &n) && n == 0);
    /* Module c freed while w, made in its exec slot, lives: w is orphaned, c forgotten. */
    ml_module_find(&modules[3])->freed.depth = 6;
    ml_module_forget_orphaning(&modules[3]);
    CHECK(wr->orphan && wr->module_freed.depth == 6 && ml_have_orphan_types());
    CHECK(!ml_module_snapshot(&modules[3], &snap) && !ml_type_find(&types[1])->orphan);

    /* The crash handler's trylock: refused while the lock is held, taken once free. */
    ml_registry_lock();
    CHECK(!ml_registry_trylock());
    ml_registry_unlock();
    CHECK(ml_registry_trylock());
    ml_registry_unlock();
    return harness_done("test_registry");
}
