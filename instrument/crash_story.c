/* The story around a crash (see crash_story.h). */
#include "crash_story.h"

#include "elf_objects.h"
#include "registry.h"
#include "safe_format.h"
#include "stack.h"
#include "slot_context.h"

#include <string.h>

__thread struct ml_null_lookup ml_null_lookup __attribute__((tls_model("initial-exec")));

void ml_crash_story_null_lookup(const char *api, const void *caller, const void *type)
{
    /* Outside a slot there is no crash story to tell it in (finalize-crash is about
     * slots and teardown), and no end to its relevance. */
    if (ml_slot_top)
        ml_null_lookup = (struct ml_null_lookup){api, caller, type, ml_slot_top, ml_slot_top->object};
}

/* Why the lookup gave NULL, as far as the registry tells (registry_locked: it may be
 * read). */
static const char *null_reason(const struct ml_null_lookup *n, int registry_locked)
{
    if (!n->type)
        return "the module has no state";
    const struct ml_type_rec *t = registry_locked ? ml_type_find(n->type) : NULL;
    if (t && (t->module || t->exec_module))
        return "the type's module was cleared";
    return t ? "the type was made without a module" : "the type has no module";
}

/* The NULL lookup of this thread, if made in a slot that is still running. */
static void find_null_lookup(struct ml_crash_story *s, int registry_locked)
{
    const struct ml_null_lookup *n = &ml_null_lookup;
    int running = 0;
    for (const struct ml_slot_frame *f = ml_slot_top; f && !running; f = f->prev)
        running = f == n->frame && f->object == n->object;
    if (!running || !n->api)
        return;
    s->null_api = n->api;
    s->null_why = null_reason(n, registry_locked);
    s->null_caller = (uintptr_t)n->caller;
    struct ml_object_ref ref = ml_objects_resolve_unlocked(s->null_caller - 1, 1);
    const char *path = ref.path ? strrchr(ref.path, '/') : NULL;
    path = path ? path + 1 : ref.path ? ref.path : "?";
    if (ref.function)
        ml_format(s->null_where, sizeof s->null_where, "%s (%s+0x%lx)", ref.function, path,
                  (unsigned long)(s->null_caller - ref.base));
    else
        ml_format(s->null_where, sizeof s->null_where, "%s+0x%lx", path, (unsigned long)(s->null_caller - ref.base));
}

/* The innermost wrapped slot on this thread, and whose it is. */
static void find_slot(struct ml_crash_story *s, int registry_locked)
{
    for (const struct ml_slot_frame *f = ml_slot_top; f; f = f->prev) {
        if (f->slot == ML_SLOT_MODULE_TEARDOWN) {
            s->slot = "m_traverse/m_clear/m_free";
            const struct ml_module_rec *m = registry_locked ? ml_module_find(f->object) : NULL;
            if (m && m->def) {
                ml_format(s->slot_owner, sizeof s->slot_owner, "module '%s' instance #%llu", m->def->name,
                          m->instance);
                ml_format(s->module, sizeof s->module, "%s", m->def->name);
            }
            return;
        }
        if (f->slot == ML_SLOT_TP_DEALLOC) {
            const PyTypeObject *type = f->owner;
            s->slot = "tp_dealloc";
            ml_format(s->slot_owner, sizeof s->slot_owner, "type '%s'", type->tp_name);
            const struct ml_type_rec *t = registry_locked ? ml_type_find(type) : NULL;
            if (t && t->module_name)
                ml_format(s->module, sizeof s->module, "%s", t->module_name);
            return;
        }
    }
}

static void alive_module(struct ml_module_rec *m, void *arg)
{
    struct ml_crash_story *s = arg;
    if (s->alive_count < ML_STORY_ALIVE && m->def && !strcmp(m->def->name, s->module) &&
        m->phase < ML_MOD_FREED)
        ml_format(s->alive[s->alive_count++], sizeof s->alive[0], "module '%s' instance #%llu (%s)", m->def->name,
                  m->instance, ml_module_phase_name(m->phase));
}

static void alive_type(struct ml_type_rec *t, void *arg)
{
    struct ml_crash_story *s = arg;
    /* A dead type's record stays until its address is reused (registry.c). */
    if (s->alive_count < ML_STORY_ALIVE && t->alive && t->module_name && !strcmp(t->module_name, s->module))
        ml_format(s->alive[s->alive_count++], sizeof s->alive[0], "type '%s' of instance #%llu", t->qualname,
                  t->module_instance);
}

void ml_crash_story_fill(struct ml_crash_story *s, const char *module_hint)
{
    int locked = ml_registry_trylock();
    s->registry_busy = !locked;
    find_slot(s, locked);
    find_null_lookup(s, locked);
    if (!s->module[0] && module_hint)
        ml_format(s->module, sizeof s->module, "%s", module_hint);
    if (locked && s->module[0]) {
        ml_each_module(alive_module, s);
        ml_each_type(alive_type, s);
    }
    if (locked)
        ml_registry_unlock();
    s->event_count = ml_ring_recent(s->module[0] ? s->module : NULL, s->events, ML_STORY_EVENTS);
}

void ml_crash_story_write(struct json *j, const struct ml_crash_story *s)
{
    json_kv_string(j, "signal", s->signal);
    if (s->has_fault_address)
        json_kv_hex(j, "fault_address", s->fault_address);
    json_kv_int(j, "crash_interp", s->interp);
    json_kv_bool(j, "finalizing", s->finalizing);
    if (s->slot) {
        json_key(j, "in_slot");
        json_begin_object(j);
        json_kv_string(j, "slot", s->slot);
        json_kv_string(j, "owner", s->slot_owner);
        json_end_object(j);
    }
    if (s->null_api) {
        json_key(j, "null_lookup");
        json_begin_object(j);
        json_kv_string(j, "api", s->null_api);
        json_kv_string(j, "why", s->null_why);
        void *caller[1] = {(void *)s->null_caller};
        ml_frames_write(j, "stack", caller, 1, ML_FRAMES_SIGNAL);
        json_end_object(j);
    }
    json_key(j, "alive");
    json_begin_array(j);
    for (int i = 0; i < s->alive_count; i++)
        json_string(j, s->alive[i]);
    json_end_array(j);
    json_key(j, "recent_events");
    json_begin_array(j);
    for (int i = 0; i < s->event_count; i++) {
        const struct ml_ring_entry *e = &s->events[i];
        json_begin_object(j);
        json_kv_int(j, "t", e->t);
        json_kv_string(j, "event", e->event);
        json_kv_string(j, "module", e->module);
        json_kv_int(j, "instance", (long long)e->instance);
        if (e->type[0])
            json_kv_string(j, "type", e->type);
        json_kv_int(j, "interp", e->interp);
        json_end_object(j);
    }
    json_end_array(j);
}

void ml_crash_story_text(const struct ml_crash_story *s, void (*put)(void *arg, const char *line), void *arg)
{
    char line[256];
    ml_format(line, sizeof line, "  Signal: %s%s", s->signal, s->has_fault_address ? " at fault address " : "");
    if (s->has_fault_address)
        ml_format(line + strlen(line), sizeof line - strlen(line), "%p", (void *)s->fault_address);
    put(arg, line);
    ml_format(line, sizeof line, "  Interpreter: %lld, %s", s->interp, s->finalizing ? "finalizing" : "running");
    put(arg, line);
    if (s->slot) {
        ml_format(line, sizeof line, "  In: %s of %s", s->slot, s->slot_owner[0] ? s->slot_owner : "?");
        put(arg, line);
    }
    if (s->null_api) {
        ml_format(line, sizeof line, "  %s returned NULL at %s: %s", s->null_api, s->null_where, s->null_why);
        put(arg, line);
    }
    if (s->module[0]) {
        ml_format(line, sizeof line, "  Still alive of module '%s':%s", s->module,
                  s->registry_busy ? " (not known: the registry was being changed)" : s->alive_count ? "" : " nothing");
        put(arg, line);
        for (int i = 0; i < s->alive_count; i++) {
            ml_format(line, sizeof line, "      %s", s->alive[i]);
            put(arg, line);
        }
    }
    ml_format(line, sizeof line, "  Last lifetime events%s%s (oldest first):", s->module[0] ? " of module " : "",
              s->module);
    put(arg, line);
    for (int i = 0; i < s->event_count; i++) {
        const struct ml_ring_entry *e = &s->events[i];
        ml_format(line, sizeof line, "      t=%lld ns  %s  %s #%llu%s%s (interp %lld)", e->t, e->event, e->module,
                  e->instance, e->type[0] ? " " : "", e->type, e->interp);
        put(arg, line);
    }
}
