/* The findings pipeline (see findings.h). */
#include "findings.h"

#include "demangle.h"
#include "events.h"
#include "exit_interposer.h"
#include "log_writer.h"
#include "elf_objects.h"
#include "options.h"
#include "report_text.h"
#include "suppressions.h"
#include "visible_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int enabled[ML_KIND_COUNT];
static struct ml_suppressions suppressions;
static unsigned long reported;
static unsigned long reported_errors;

/* Seen findings: a fixed table of keys, usable from the crash handler. */
#define SEEN_SLOTS 4096
static uint64_t seen[SEEN_SLOTS];

/* Which test runs, for the pytest plugin: a place met in an earlier test is logged
 * again in the next one, so that a test's result does not depend on which tests ran
 * before it (two tests may reach a bug through the same Python stack: a fixture's, a
 * parametrized test's).  Printed on stderr once all the same.  0: no scopes. */
static uint64_t scope;

/* A forked child is a process of its own, with a log of its own: what the parent
 * reported is neither the child's to count (its exit status) nor to hide (a child
 * reaching the parent's bug reports it in its own log). */
void ml_findings_atfork_child(void)
{
    memset(seen, 0, sizeof seen);
    reported = reported_errors = 0;
}

/* Called through ctypes by the plugin before each test. */
__attribute__((visibility("default"))) void modlife_new_scope(void)
{
    __atomic_add_fetch(&scope, 1, __ATOMIC_RELAXED);
}

/* The whole list: a user who mistyped one should not need the manual to see the rest. */
static void unknown_kind(const char *name, char *err, size_t err_size)
{
    int n = snprintf(err, err_size, "report_kinds: unknown finding kind '%s' (known: all",
                     ml_visible(name, strlen(name)).text);
    for (int k = 0; k < ML_KIND_COUNT && n > 0 && (size_t)n < err_size; k++)
        n += snprintf(err + n, err_size - (size_t)n, ", %s", ml_kinds[k].name);
    if (n > 0 && (size_t)n < err_size)
        snprintf(err + n, err_size - (size_t)n, "; see libmodlife(7))");
}

/* report_kinds: "" or "all" for all; a comma list names the kinds to report, and
 * "-kind" entries disable kinds from all. */
static int configure_kinds(const char *spec, char *err, size_t err_size)
{
    int only = spec[0] && spec[0] != '-' && strcmp(spec, "all") != 0;
    for (int k = 0; k < ML_KIND_COUNT; k++)
        enabled[k] = !only;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", spec);
    for (char *save, *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        int negate = item[0] == '-';
        if (!strcmp(item, "all"))
            continue;
        int k = ml_kind_by_name(item + negate);
        if (k < 0) {
            unknown_kind(item + negate, err, err_size);
            return -1;
        }
        enabled[k] = !negate;
    }
    return 0;
}

static void add_context(struct ml_finding *f, const char *what, const struct ml_saved_stack *stack)
{
    if (stack->depth && f->context_count < (int)(sizeof f->context / sizeof f->context[0]))
        f->context[f->context_count++] = (struct ml_context_stack){what, stack};
}

void ml_finding_set_module(struct ml_finding *f, const struct ml_module_rec *m)
{
    f->module = m->def ? m->def->name : NULL;
    f->instance = m->instance;
    f->interp = m->interp;
    snprintf(f->subject_buf, sizeof f->subject_buf, "module '%s' instance #%llu", f->module ? f->module : "?",
             m->instance);
    f->subject = f->subject_buf;
    add_context(f, "freed (m_free)", &m->freed);
    add_context(f, "cleared (m_clear)", &m->cleared);
    add_context(f, "created", &m->created);
}

void ml_finding_set_type(struct ml_finding *f, const struct ml_type_rec *t, const char *subclass)
{
    f->type = t->qualname;
    f->module = t->module_name;
    f->instance = t->module_instance;
    f->interp = t->interp;
    if (subclass)
        snprintf(f->subject_buf, sizeof f->subject_buf, "type '%s' (base of '%s')", t->qualname, subclass);
    else
        snprintf(f->subject_buf, sizeof f->subject_buf, "type '%s'", t->qualname ? t->qualname : "?");
    f->subject = f->subject_buf;
    add_context(f, "created", &t->created);
}

void ml_function_name(const void *function, char *out, size_t size)
{
    struct ml_object_ref ref = ml_objects_resolve((uintptr_t)function, 1);
    if (ref.function) {
        char demangled[256];
        snprintf(out, size, "%s", ml_demangle(ref.function, demangled, sizeof demangled));
    } else {
        const char *slash = ref.path ? strrchr(ref.path, '/') : NULL;
        snprintf(out, size, "%s+0x%lx", slash ? slash + 1 : ref.path ? ref.path : "?",
                 (unsigned long)((uintptr_t)function - ref.base));
    }
}

void ml_finding_set_slot(struct ml_finding *f, const char *slot, const void *function)
{
    f->slot = slot;
    f->slot_function = function;
    ml_function_name(function, f->slot_function_name, sizeof f->slot_function_name);
}

int ml_findings_configure(char *err, size_t err_size)
{
    if (configure_kinds(ml_opts.report_kinds, err, err_size) != 0)
        return -1;
    if (ml_opts.suppressions[0] &&
        ml_suppressions_load(&suppressions, ml_opts.suppressions, ml_is_kind, err, err_size) != 0)
        return -1;
    return 0;
}

int ml_finding_enabled(enum ml_kind kind)
{
    return enabled[kind];
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_text(uint64_t h, const char *s)
{
    while (s && *s)
        h = mix(h, (unsigned char)*s++);
    return h;
}

static void hash_python_place(const char *file, int line, const char *function, void *arg)
{
    (void)function;
    uint64_t *key = arg;
    *key = mix(hash_text(*key, file), (uint64_t)line);
}

/* Where a finding happened, as a user would say it: the extension's functions on
 * the stack (the interpreter may reach them through different frames) and the
 * innermost Python line (more Python frames with dedup_python_frames: the pytest
 * plugin wants the same bug reached from two tests reported in each).  The crash handler, which cannot look up symbols or
 * Python frames, uses raw addresses. */
static uint64_t place_key(uint64_t key, const struct ml_finding *f, const struct ml_stack *access)
{
    if (f->in_signal_handler) {
        for (int i = 0; i < access->depth && i < 4; i++)
            key = mix(key, (uint64_t)(uintptr_t)access->ips[i]);
        return key;
    }
    int used = 0;
    for (int i = 0; i < access->depth && used < 4; i++) {
        struct ml_object_ref ref = ml_objects_resolve((uintptr_t)access->ips[i] - 1, 1);
        if (!ml_objects_is_extension(ref.id) && !(i == 0 && ref.function))
            continue;
        key = ref.function ? hash_text(key, ref.function) : mix(key, (uint64_t)(uintptr_t)access->ips[i]);
        used++;
    }
    ml_python_frames(hash_python_place, &key, ml_opts.dedup_python_frames);
    return key;
}

/* 1 the first time the key is offered. */
static int first_time(uint64_t key)
{
    /* Scrambled first (splitmix64's finaliser): the last thing mixed in, a line
     * number, moves only the low bits, and the 1 that marks a used slot would make
     * lines 4 and 5 one place. */
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ULL;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebULL;
    key = (key ^ (key >> 31)) | 1;
    for (size_t i = key % SEEN_SLOTS, n = 0; n < SEEN_SLOTS; i = (i + 1) % SEEN_SLOTS, n++) {
        uint64_t expected = 0;
        if (__atomic_load_n(&seen[i], __ATOMIC_ACQUIRE) == key)
            return 0;
        if (__atomic_compare_exchange_n(&seen[i], &expected, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 1;
        if (expected == key)
            return 0;
    }
    return 1; /* table full: report rather than lose */
}

static uint64_t what_key(const struct ml_finding *f)
{
    uint64_t key = mix(0, (uint64_t)f->kind + 1);
    key = hash_text(key, f->type);
    key = hash_text(key, f->global);
    return hash_text(key, f->module);
}

/* A bug of a slot is the slot function's: one report whichever instance, module
 * instance, interpreter or subclass met it, from wherever it was called. */
static uint64_t slot_key(const struct ml_finding *f)
{
    return mix(what_key(f), (uint64_t)(uintptr_t)f->slot_function);
}

/* Whether to log the finding and whether to print it: the same kind at the same
 * place, for the same module and type, once.  A slot's bug is logged again for
 * other Python places only when more than one Python frame was asked for (the
 * pytest plugin, which gives each test its findings), and printed once all the same. */
static int first_time_at(const struct ml_finding *f, const struct ml_stack *access, int *print)
{
    uint64_t in_scope = __atomic_load_n(&scope, __ATOMIC_RELAXED);
    if (!f->slot_function) {
        uint64_t key = place_key(what_key(f), f, access);
        *print = first_time(key);
        return in_scope ? first_time(mix(key, in_scope)) || *print : *print;
    }
    uint64_t key = slot_key(f);
    *print = first_time(key);
    if (ml_opts.dedup_python_frames <= 1)
        return *print;
    key = mix(key, 0x1065);
    ml_python_frames(hash_python_place, &key, ml_opts.dedup_python_frames);
    if (in_scope)
        key = mix(key, in_scope);
    return first_time(key) || *print;
}

/* Apart: its 4 KiB of names must not weigh on the fatal-signal path. */
static __attribute__((noinline)) const struct ml_suppression *suppressed(const struct ml_finding *f,
                                                                         const struct ml_stack *access)
{
    if (!suppressions.count || f->in_signal_handler)
        return NULL;
    const char *names[2 + 2 * ML_STACK_MAX];
    size_t n = 0;
    names[n++] = f->module;
    names[n++] = f->type;
    for (int i = 0; i < access->depth; i++) {
        struct ml_object_ref ref = ml_objects_resolve((uintptr_t)access->ips[i] - 1, 1);
        names[n++] = ref.function;
        names[n++] = ref.path;
    }
    return ml_suppressions_match(&suppressions, ml_kinds[f->kind].name, names, n);
}

/* One record per place a rule silenced, counted like reported findings, so that the
 * tools can say how many findings each rule matched in every process of a run (a
 * fork child that leaves through os._exit writes no process-exit to sum them in). */
static __attribute__((noinline)) void log_suppressed(const struct ml_finding *f, const struct ml_suppression *rule)
{
    char text[sizeof rule->kind + sizeof rule->pattern + 1];
    snprintf(text, sizeof text, "%s:%s", rule->kind, rule->pattern);
    struct ml_record r;
    ml_record_begin(&r, ML_EVENT_FINDING_SUPPRESSED);
    json_kv_string(&r.j, "kind", ml_kinds[f->kind].name);
    json_kv_string(&r.j, "module", f->module);
    json_kv_string(&r.j, "type", f->type);
    json_kv_string(&r.j, "suppression", text);
    ml_record_end(&r);
}

/* halt_on_error, as in ASan: the first reported finding ends the process with
 * exitcode, its log cut to its records and stdio flushed. */
static __attribute__((noreturn)) void halt(void)
{
    ml_log_finish();
    fflush(NULL);
    ml_exit_now(ml_opts.exitcode);
}

int ml_finding_report(struct ml_finding *f)
{
    /* The child of a fork that could not create its log keeps the parent's hooks,
     * and is to run as without modlife: no log, no findings. */
    if (!enabled[f->kind] || !ml_log_is_open())
        return 0;
    struct ml_stack own;
    const struct ml_stack *access = f->access;
    if (!access && f->access_saved) {
        ml_saved_stack_native(f->access_saved, &own);
        access = &own;
    } else if (!access) {
        ml_stack_capture(&own, ml_opts.stack_depth);
        access = &own;
    }
    const struct ml_suppression *rule = suppressed(f, access);
    if (rule) {
        /* Counted once per place, as reported findings are; the salt keeps these
         * places apart from those of findings that were reported. */
        if (first_time(mix(place_key(what_key(f), f, access), 0x5eed)))
            log_suppressed(f, rule);
        return 0;
    }
    int print;
    if (!first_time_at(f, access, &print))
        return 0;
    __atomic_add_fetch(&reported, 1, __ATOMIC_RELAXED);
    if (ml_finding_is_error(f))
        __atomic_add_fetch(&reported_errors, 1, __ATOMIC_RELAXED);
    ml_event_finding(f, access);
    if (print)
        ml_report_text(f, access);
    if (ml_opts.halt_on_error && !f->in_signal_handler) /* the crash ends the process anyway */
        halt();
    return 1;
}

/* Filled by constructors, before any thread of the program runs. */
static void (*exit_checks[ML_EXIT_CHECKS_MAX])(void);
static int exit_check_count;

void ml_findings_at_exit(void (*check)(void))
{
    if (exit_check_count < ML_EXIT_CHECKS_MAX)
        exit_checks[exit_check_count++] = check;
}

void ml_findings_run_exit_checks(void)
{
    for (int i = 0; i < exit_check_count; i++)
        exit_checks[i]();
}

unsigned long ml_findings_reported(void)
{
    return __atomic_load_n(&reported, __ATOMIC_RELAXED);
}

unsigned long ml_findings_reported_errors(void)
{
    return __atomic_load_n(&reported_errors, __ATOMIC_RELAXED);
}
