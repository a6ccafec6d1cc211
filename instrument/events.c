/* Lifetime record writers (see events.h). */
#include "events.h"

#include "crash_story.h"
#include "event_ring.h"
#include "kinds.h"
#include "log_writer.h"
#include "options.h"
#include "pyapi.h"
#include "stack.h"
#include "stack_table.h"

#include <string.h>

void ml_capture_stacks(struct ml_capture *c)
{
    ml_stack_capture(&c->native, ml_opts.stack_depth);
    ml_saved_stack_from(&c->saved, &c->native);
}

/* Lifetime records' stacks, inline or in their "stack" record: unnamed, so that a
 * process without findings loads no symbol tables (the tools name them). */
static void write_lifetime_stacks(struct json *j, void *const *ips, int depth, const char *python)
{
    ml_stacks_write(j, ips, depth, python, ML_FRAMES_BARE);
}

static void write_capture(struct ml_record *r, const struct ml_capture *c)
{
    if (c->saved.entry)
        ml_stack_entry_write_id(&r->j, c->saved.entry, write_lifetime_stacks);
    else
        write_lifetime_stacks(&r->j, c->native.ips, c->native.depth, c->saved.python);
}

void ml_event_module(enum ml_event event, const struct ml_module_rec *m, const struct ml_capture *c,
                     const char *note)
{
    struct ml_record r;
    ml_ring_add(ml_event_name(event), m->def ? m->def->name : NULL, m->instance, NULL, m->interp);
    ml_record_begin(&r, event);
    json_kv_string(&r.j, "module", m->def ? m->def->name : NULL);
    json_kv_int(&r.j, "instance", (long long)m->instance);
    json_kv_hex(&r.j, "address", (uintptr_t)m->module);
    json_kv_hex(&r.j, "def", m->def ? (uintptr_t)m->def->def : 0);
    json_kv_int(&r.j, "interp", m->interp);
    json_kv_string(&r.j, "phase", ml_module_phase_name(m->phase));
    if (m->def)
        json_kv_string(&r.j, "init", m->def->multiphase ? "multi-phase" : "single-phase");
    if (m->state)
        json_kv_hex(&r.j, "state", (uintptr_t)m->state);
    json_kv_int(&r.j, "state_lookups", (long long)m->state_lookups);
    if (note)
        json_kv_string(&r.j, "note", note);
    if (c)
        write_capture(&r, c);
    ml_record_end(&r);
}

void ml_event_type(enum ml_event event, const struct ml_type_rec *t, const struct ml_capture *c)
{
    struct ml_record r;
    ml_ring_add(ml_event_name(event), t->module_name, t->module_instance, t->qualname, t->interp);
    ml_record_begin(&r, event);
    json_kv_string(&r.j, "type", t->qualname);
    json_kv_int(&r.j, "type_id", (long long)t->seq);
    json_kv_hex(&r.j, "address", (uintptr_t)t->type);
    json_kv_int(&r.j, "interp", t->interp);
    if (t->module_name) {
        json_kv_string(&r.j, "module", t->module_name);
        json_kv_int(&r.j, "instance", (long long)t->module_instance);
        /* bound: made with the module (it keeps the module alive), not just in its exec */
        json_kv_bool(&r.j, "bound", t->module != NULL);
    }
    json_kv_bool(&r.j, "gc", t->gc);
    if (c)
        write_capture(&r, c);
    ml_record_end(&r);
}

void ml_event_static_type(const PyTypeObject *type, long long interp, const struct ml_capture *c)
{
    struct ml_record r;
    ml_record_begin(&r, ML_EVENT_TYPE_READY);
    json_kv_string(&r.j, "type", type->tp_name);
    json_kv_hex(&r.j, "address", (uintptr_t)type);
    json_kv_int(&r.j, "interp", interp);
    json_kv_bool(&r.j, "static", 1);
    write_capture(&r, c);
    ml_record_end(&r);
}

void ml_event_interp(enum ml_event event, long long id, int is_main)
{
    struct ml_record r;
    ml_record_begin(&r, event);
    json_kv_int(&r.j, "interp", id);
    json_kv_bool(&r.j, "main", is_main);
    if (ml_opts.python_stack)
        ml_python_stack_write(&r.j, "python_stack", ml_opts.stack_depth);
    ml_record_end(&r);
}

static void write_finding_stack(struct json *j, const struct ml_finding *f, const struct ml_stack *access)
{
    if (f->in_signal_handler) {
        ml_frames_write(j, "stack", access->ips, access->depth, ML_FRAMES_SIGNAL);
        return;
    }
    ml_frames_write(j, "stack", access->ips, access->depth, ML_FRAMES_LINES);
    if (f->access_saved) {
        if (f->access_saved->python)
            ml_python_text_write(j, "python_stack", f->access_saved->python);
    } else if (ml_opts.python_stack)
        ml_python_stack_write(j, "python_stack", ml_opts.stack_depth);
}

static void write_finding(struct ml_record *rec, const struct ml_finding *f, const struct ml_stack *access)
{
    ml_record_begin(rec, ML_EVENT_FINDING);
    json_kv_string(&rec->j, "kind", ml_kinds[f->kind].name);
    json_kv_string(&rec->j, "severity", ml_finding_is_error(f) ? "error" : "warning");
    json_kv_string(&rec->j, "message", f->message);
    if (f->module) {
        json_kv_string(&rec->j, "module", f->module);
        json_kv_int(&rec->j, "instance", (long long)f->instance);
    }
    json_kv_int(&rec->j, "interp", f->interp);
    /* Where it happened, which may not be the owner's interpreter (read from the
     * thread state without locks: also from the fatal-signal handler). */
    PyThreadState *tstate = ml_py_tstate();
    if (tstate)
        json_kv_int(&rec->j, "access_interp", py.PyInterpreterState_GetID(py.PyThreadState_GetInterpreter(tstate)));
    if (f->type)
        json_kv_string(&rec->j, "type", f->type);
    if (f->global)
        json_kv_string(&rec->j, "global", f->global);
    if (f->slot) {
        json_kv_string(&rec->j, "slot", f->slot);
        json_kv_string(&rec->j, "slot_function", f->slot_function_name);
    }
    if (f->cause_kind) {
        json_key(&rec->j, "cause");
        json_begin_object(&rec->j);
        json_kv_string(&rec->j, "kind", f->cause_kind);
        json_kv_string(&rec->j, "slot", "tp_dealloc");
        json_kv_string(&rec->j, "slot_function", f->cause_function);
        json_end_object(&rec->j);
    }
    if (f->fix)
        json_kv_string(&rec->j, "fix", f->fix);
    write_finding_stack(&rec->j, f, access);
    if (f->story)
        ml_crash_story_write(&rec->j, f->story);
    if (f->context_count) {
        json_key(&rec->j, "context");
        json_begin_array(&rec->j);
        for (int i = 0; i < f->context_count; i++) {
            json_begin_object(&rec->j);
            json_kv_string(&rec->j, "what", f->context[i].what);
            json_kv_string(&rec->j, "of", f->subject);
            const struct ml_saved_stack *s = f->context[i].stack;
            ml_stacks_write(&rec->j, s->ips, s->depth, s->python,
                            f->in_signal_handler ? ML_FRAMES_SIGNAL : ML_FRAMES_LINES);
            json_end_object(&rec->j);
        }
        json_end_array(&rec->j);
    }
    ml_record_end(rec);
}

/* Apart, so that its 48 KiB frame is not also the signal path's. */
static __attribute__((noinline)) void finding_on_stack(const struct ml_finding *f, const struct ml_stack *access)
{
    struct ml_record r;
    write_finding(&r, f, access);
}

void ml_event_finding(const struct ml_finding *f, const struct ml_stack *access)
{
    if (f->in_signal_handler) {
        /* The handler may run on a small alternate stack (Python's faulthandler gives
         * it 16 KiB, and chains to us from there): the record must not be on it.  One
         * crash report at a time, so one static record does. */
        static struct ml_record crash_record;
        write_finding(&crash_record, f, access);
        return;
    }
    finding_on_stack(f, access);
}
