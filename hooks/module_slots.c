/* The slots CPython calls on a module: Py_mod_create and Py_mod_exec from the
 * definition's slot array, m_traverse, m_clear and m_free from the definition.
 * Each is replaced by a wrapper that records the event and calls the original.
 *
 * A definition's slot array is replaced by a copy we own (the extension's may be
 * const); its first entry is an extra exec slot that announces the new module
 * before the extension's own exec slots run.  Several exec slots can share one
 * definition, so each gets a trampoline of its own from a fixed pool. */
#include "hooks.h"

#include "../instrument/events.h"
#include "../instrument/interpreters.h"
#include "../instrument/findings.h"
#include "../instrument/pyapi.h"
#include "../instrument/quarantine.h"
#include "../instrument/say.h"
#include "../instrument/slot_context.h"

#include <stdio.h>
#include <stdlib.h>

#define EXEC_TRAMPOLINES 256

struct exec_slot {
    int (*orig)(PyObject *);
    struct ml_def_rec *def;
};

static struct exec_slot exec_slots[EXEC_TRAMPOLINES];
static int exec_slots_used;

static void wrap_m_free(void *module);

static struct ml_def_rec *def_of(PyObject *module)
{
    PyModuleDef *def = py.PyModule_GetDef(module);
    return def ? ml_def_lookup(def) : NULL;
}

/* Moves the state of a new module into quarantine, before any extension code saw it
 * (the create and exec slots are wrapped; a late-seen module is left alone). */
static int quarantine_state(PyObject *module, struct ml_def_rec *def, struct ml_module_rec *copy)
{
    if (!ml_finding_enabled(ML_STATE_USE_AFTER_FREE) || def->def->m_size <= 0 || def->def->m_free != wrap_m_free)
        return 0; /* our m_free hands the block back before CPython frees it */
    ml_quarantine_install();
    void *moved = ml_quarantine_adopt(module, (size_t)def->def->m_size, def->name, copy->instance, copy->interp,
                                      &copy->created);
    if (moved)
        copy->state = moved;
    return moved != NULL;
}

void ml_module_created(PyObject *module, struct ml_def_rec *def, const char *late)
{
    /* Creation runs inside an import (3.13 may not call PyInit again for another
     * interpreter), so this is where a new interpreter is first seen. */
    long long interp = ml_interp_current(late ? ML_INTERP_ANY : ML_INTERP_IMPORTING);
    void *state = py.PyModule_GetState(module);
    struct ml_module_rec copy;
    int known = ml_module_snapshot(module, &copy) && copy.def == def && copy.phase < ML_MOD_FREED;
    if (known) /* announced already (an extension's own FromDefAndSpec) */
        return;
    struct ml_capture c;
    ml_capture_stacks(&c);
    if (!ml_module_register(module, def, interp, state, &c.saved, &copy)) {
        ml_saved_stack_release(&c.saved);
        return;
    }
    /* The creation stack is the record's now: a record gone meanwhile took it along. */
    if (!late && quarantine_state(module, def, &copy) && !ml_module_set_state(module, copy.state))
        return;
    ml_event_module(ML_EVENT_MODULE_CREATE, &copy, &c, late);
}

/* Moves module to phase and writes event. */
static void module_event(PyObject *module, enum ml_event event, enum ml_module_phase phase)
{
    struct ml_def_rec *def = def_of(module);
    struct ml_module_rec seen;
    if (!ml_module_snapshot(module, &seen)) /* made where we could not see it, e.g. a single-phase copy (m_copy) */
        ml_module_created(module, def, "first seen at this event, not at creation");
    struct ml_capture c;
    ml_capture_stacks(&c);
    struct ml_module_rec copy;
    int kept;
    if (ml_module_phase_change(module, phase, &c.saved, &kept, &copy))
        ml_event_module(event, &copy, &c, NULL);
    if (!kept)
        ml_saved_stack_release(&c.saved);
}

static int run_exec_slot(int n, PyObject *module)
{
    module_event(module, ML_EVENT_MODULE_EXEC, ML_MOD_EXECUTED);
    struct ml_slot_frame frame;
    ml_slot_push(&frame, ML_SLOT_MODULE_EXEC, module, NULL);
    int result = exec_slots[n].orig(module);
    ml_slot_pop(&frame);
    return result;
}

#define TRAMPOLINE(n)                                                                     \
    static int exec_trampoline_##n(PyObject *module) { return run_exec_slot(0x##n, module); }
#define TRAMPOLINES16(h)                                                                  \
    TRAMPOLINE(h##0) TRAMPOLINE(h##1) TRAMPOLINE(h##2) TRAMPOLINE(h##3) TRAMPOLINE(h##4)  \
    TRAMPOLINE(h##5) TRAMPOLINE(h##6) TRAMPOLINE(h##7) TRAMPOLINE(h##8) TRAMPOLINE(h##9)  \
    TRAMPOLINE(h##a) TRAMPOLINE(h##b) TRAMPOLINE(h##c) TRAMPOLINE(h##d) TRAMPOLINE(h##e)  \
    TRAMPOLINE(h##f)
TRAMPOLINES16(0) TRAMPOLINES16(1) TRAMPOLINES16(2) TRAMPOLINES16(3)
TRAMPOLINES16(4) TRAMPOLINES16(5) TRAMPOLINES16(6) TRAMPOLINES16(7)
TRAMPOLINES16(8) TRAMPOLINES16(9) TRAMPOLINES16(a) TRAMPOLINES16(b)
TRAMPOLINES16(c) TRAMPOLINES16(d) TRAMPOLINES16(e) TRAMPOLINES16(f)

#define ENTRY(n) exec_trampoline_##n,
#define ENTRIES16(h)                                                                      \
    ENTRY(h##0) ENTRY(h##1) ENTRY(h##2) ENTRY(h##3) ENTRY(h##4) ENTRY(h##5) ENTRY(h##6)   \
    ENTRY(h##7) ENTRY(h##8) ENTRY(h##9) ENTRY(h##a) ENTRY(h##b) ENTRY(h##c) ENTRY(h##d)   \
    ENTRY(h##e) ENTRY(h##f)
static int (*const exec_trampolines[EXEC_TRAMPOLINES])(PyObject *) = {
    ENTRIES16(0) ENTRIES16(1) ENTRIES16(2) ENTRIES16(3) ENTRIES16(4) ENTRIES16(5)
    ENTRIES16(6) ENTRIES16(7) ENTRIES16(8) ENTRIES16(9) ENTRIES16(a) ENTRIES16(b)
    ENTRIES16(c) ENTRIES16(d) ENTRIES16(e) ENTRIES16(f)};

/* Announces the module before any exec slot of the extension runs. */
static int announce_module(PyObject *module)
{
    struct ml_def_rec *def = def_of(module);
    if (def)
        ml_module_created(module, def, NULL);
    return 0;
}

/* Runs after the extension's exec slots all succeeded (CPython stops at the first
 * failure): only now is this a working instance of its definition.  A module that
 * refuses a second instance fails before (the HOWTO's opt-out), and one whose
 * create slot hands out its one module again is counted once. */
static void module_completed(PyObject *module)
{
    struct ml_def_rec *def = ml_module_complete(module);
    if (def)
        ml_static_types_module_created(def);
}

static int complete_module(PyObject *module)
{
    module_completed(module);
    return 0;
}

static PyObject *wrap_create(PyObject *spec, PyModuleDef *def)
{
    struct ml_def_rec *rec = ml_def_lookup(def);
    PyObject *(*create)(PyObject *, PyModuleDef *) = (PyObject * (*)(PyObject *, PyModuleDef *)) rec->orig_create;
    PyObject *module = create(spec, def);
    if (module && ml_py_is_module(module)) {
        ml_module_created(module, rec, NULL);
        if (!rec->has_exec)
            module_completed(module);
    }
    return module;
}

/* The module's own teardown functions may use its state after m_clear. */
static int wrap_m_traverse(PyObject *module, visitproc visit, void *arg)
{
    struct ml_def_rec *def = def_of(module);
    if (!def || !def->orig_traverse)
        return 0;
    struct ml_slot_frame frame;
    ml_slot_push(&frame, ML_SLOT_MODULE_TEARDOWN, module, NULL);
    int result = def->orig_traverse(module, visit, arg);
    ml_slot_pop(&frame);
    return result;
}

static int wrap_m_clear(PyObject *module)
{
    struct ml_def_rec *def = def_of(module);
    module_event(module, ML_EVENT_MODULE_CLEAR, ML_MOD_CLEARED);
    if (!def || !def->orig_clear)
        return 0;
    struct ml_slot_frame frame;
    ml_slot_push(&frame, ML_SLOT_MODULE_TEARDOWN, module, NULL);
    int result = def->orig_clear(module);
    ml_slot_pop(&frame);
    return result;
}

static void wrap_m_free(void *module)
{
    struct ml_def_rec *def = def_of(module);
    module_event(module, ML_EVENT_MODULE_FREE, ML_MOD_FREED);
    if (def && def->orig_free) {
        struct ml_slot_frame frame;
        ml_slot_push(&frame, ML_SLOT_MODULE_TEARDOWN, module, NULL);
        def->orig_free(module);
        ml_slot_pop(&frame);
    }
    ml_quarantine_give_back(module);
    ml_module_freed(module);
}

static void *exec_trampoline_for(int (*orig)(PyObject *), struct ml_def_rec *def)
{
    if (exec_slots_used == EXEC_TRAMPOLINES) {
        static int warned;
        if (!warned++)
            ml_say("more than %d exec slots; later ones are not recorded", EXEC_TRAMPOLINES);
        return (void *)orig;
    }
    exec_slots[exec_slots_used] = (struct exec_slot){orig, def};
    return (void *)exec_trampolines[exec_slots_used++];
}

/* Our copy of the slot array: the announcer first (unless a create slot may make a
 * non-module object, where CPython refuses exec slots), then the extension's slots
 * with create and exec wrapped, then the completion (under the same condition). */
static void adopt_slots(struct ml_def_rec *rec)
{
    PyModuleDef *def = rec->def;
    size_t n = 0;
    for (PyModuleDef_Slot *s = def->m_slots; s && s->slot; s++) {
        if (s->slot == ML_mod_create)
            rec->has_create = 1;
        if (s->slot == ML_mod_exec)
            rec->has_exec = 1;
        n++;
    }
    PyModuleDef_Slot *copy = calloc(n + 3, sizeof *copy);
    if (!copy)
        return;
    size_t k = 0;
    if (!rec->has_create)
        copy[k++] = (PyModuleDef_Slot){ML_mod_exec, (void *)announce_module};
    for (size_t i = 0; i < n; i++) {
        PyModuleDef_Slot s = def->m_slots[i];
        if (s.slot == ML_mod_create) {
            rec->orig_create = s.value;
            s.value = (void *)wrap_create;
        } else if (s.slot == ML_mod_exec) {
            s.value = exec_trampoline_for((int (*)(PyObject *))s.value, rec);
        }
        copy[k++] = s;
    }
    if (!rec->has_create || rec->has_exec)
        copy[k++] = (PyModuleDef_Slot){ML_mod_exec, (void *)complete_module};
    rec->orig_slots = def->m_slots;
    def->m_slots = copy;
}

/* m_traverse/m_clear/m_free: always ours, unless a create slot might make a
 * non-module object (then CPython requires them NULL) and the extension left them so. */
static void adopt_lifecycle(struct ml_def_rec *rec)
{
    PyModuleDef *def = rec->def;
    rec->orig_traverse = def->m_traverse;
    rec->orig_clear = def->m_clear;
    rec->orig_free = def->m_free;
    if (!rec->has_create || def->m_traverse)
        def->m_traverse = wrap_m_traverse;
    if (!rec->has_create || def->m_clear)
        def->m_clear = wrap_m_clear;
    if (!rec->has_create || def->m_free)
        def->m_free = wrap_m_free;
    rec->wrapped_lifecycle = 1;
}

/* A new def's record: its slots and lifecycle functions wrapped. */
static void adopt_def(struct ml_def_rec *rec)
{
    if (rec->multiphase)
        adopt_slots(rec);
    adopt_lifecycle(rec);
}

struct ml_def_rec *ml_module_def_adopt(PyModuleDef *def, int multiphase)
{
    return ml_def_adopt(def, multiphase, adopt_def);
}
