/* Lifetime record writers (see events.h). */
#include "events.h"

#include "engine.h"
#include "log_writer.h"
#include "stack.h"

static void write_stacks(struct ml_record *r)
{
    struct ml_stack s;
    ml_stack_capture(&s, ml_opts.stack_depth);
    ml_stack_write(&r->j, "stack", &s, ml_opts.symbolize);
    if (ml_opts.python_stack)
        ml_python_stack_write(&r->j, "python_stack", ml_opts.stack_depth);
}

void ml_event_module(const char *event, const struct ml_module_rec *m, enum ml_stacks stacks,
                     const char *note)
{
    struct ml_record r;
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
    if (stacks == ML_WITH_STACKS)
        write_stacks(&r);
    ml_record_end(&r);
}

void ml_event_type(const char *event, const struct ml_type_rec *t, enum ml_stacks stacks)
{
    struct ml_record r;
    ml_record_begin(&r, event);
    json_kv_string(&r.j, "type", t->qualname);
    json_kv_int(&r.j, "type_id", (long long)t->seq);
    json_kv_hex(&r.j, "address", (uintptr_t)t->type);
    json_kv_int(&r.j, "interp", t->interp);
    if (t->module_name) {
        json_kv_string(&r.j, "module", t->module_name);
        json_kv_int(&r.j, "instance", (long long)t->module_instance);
    }
    json_kv_bool(&r.j, "gc", t->gc);
    if (stacks == ML_WITH_STACKS)
        write_stacks(&r);
    ml_record_end(&r);
}

void ml_event_static_type(const PyTypeObject *type, long long interp)
{
    struct ml_record r;
    ml_record_begin(&r, "type-ready");
    json_kv_string(&r.j, "type", type->tp_name);
    json_kv_hex(&r.j, "address", (uintptr_t)type);
    json_kv_int(&r.j, "interp", interp);
    json_kv_bool(&r.j, "static", 1);
    write_stacks(&r);
    ml_record_end(&r);
}

void ml_event_interp(const char *event, long long id, int is_main)
{
    struct ml_record r;
    ml_record_begin(&r, event);
    json_kv_int(&r.j, "interp", id);
    json_kv_bool(&r.j, "main", is_main);
    if (ml_opts.python_stack)
        ml_python_stack_write(&r.j, "python_stack", ml_opts.stack_depth);
    ml_record_end(&r);
}
