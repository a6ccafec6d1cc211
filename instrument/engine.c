/* Engine start-up, fork and exit (see engine.h). */
#include "engine.h"

#include "../hooks/hook_table.h"
#include "crash_handler.h"
#include "events.h"
#include "exit_interposer.h"
#include "findings.h"
#include "interpreters.h"
#include "log_writer.h"
#include "notify.h"
#include "elf_objects.h"
#include "options.h"
#include "pyapi.h"
#include "real_dlopen.h"
#include "registry.h"
#include "report_text.h"
#include "say.h"
#include "stack_table.h"
#include "symbolize.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

static int active;
/* The log could not be created: the process runs on without modlife, and start-up
 * is not tried again at the next dlopen. */
static int declined;
static enum ml_entry entry_point;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

int ml_engine_active(void) { return __atomic_load_n(&active, __ATOMIC_ACQUIRE); }

static enum ml_patch_scope patch_scope(void)
{
    return entry_point == ML_ENTRY_AUDIT ? ML_PATCH_NON_PLT : ML_PATCH_ALL;
}

/* Configuration errors stop the process, as a bad ASAN_OPTIONS does: running on
 * uninstrumented would hide the very bugs the user asked to see. */
static void fatal(const char *what, const char *why)
{
    ml_say("%s: %s", what, why);
    ml_exit_now(1);
}

/* A process that cannot have a log is still the user's program: it goes on, with
 * one line on stderr (the child of a fork of a threaded process comes here too) and
 * a notice to modlife run. */
static void run_without_log(const char *why)
{
    ml_say("%s; this process runs without modlife", why);
    ml_notify_no_log(ml_opts.notify, ml_log_path(), why);
    declined = 1;
}

static void write_argv(struct json *j)
{
    char buf[8192];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    json_key(j, "argv");
    json_begin_array(j);
    for (ssize_t i = 0; i < n;) {
        size_t len = strnlen(buf + i, (size_t)(n - i));
        json_string_n(j, buf + i, len);
        i += (ssize_t)len + 1;
    }
    json_end_array(j);
}

static void log_process_start(int forked, int continued)
{
    struct ml_record r;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ml_record_begin(&r, ML_EVENT_PROCESS_START);
    json_kv_int(&r.j, "pid", getpid());
    json_kv_int(&r.j, "ppid", getppid());
    json_kv_bool(&r.j, "forked", forked);
    if (continued)
        json_kv_bool(&r.j, "continued", 1);
    json_kv_int(&r.j, "wall_ns", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    write_argv(&r.j);
    json_kv_string(&r.j, "python_version", py.Py_GetVersion());
    char short_version[16];
    snprintf(short_version, sizeof short_version, "%d.%d", py.major, py.minor);
    json_kv_string(&r.j, "python", short_version);
    json_kv_string(&r.j, "libpython", py.libpython[0] ? py.libpython : "static");
    json_kv_bool(&r.j, "debug_build", py.debug_build);
    json_kv_string(&r.j, "entry", entry_point == ML_ENTRY_AUDIT ? "audit" : "preload");
    json_key(&r.j, "options");
    json_begin_object(&r.j);
    json_kv_string(&r.j, "log_path", ml_opts.log_path);
    json_kv_int(&r.j, "stack_depth", ml_opts.stack_depth);
    json_kv_bool(&r.j, "python_stack", ml_opts.python_stack);
    json_kv_bool(&r.j, "symbolize", ml_opts.symbolize);
    json_kv_bool(&r.j, "stack_ids", ml_opts.stack_ids);
    json_end_object(&r.j);
    json_kv_int(&r.j, "log_format", ML_LOG_FORMAT_NUMBER);
    ml_record_end(&r);
}

/* arg: why the record is written again. */
static void relog_module(struct ml_module_rec *m, void *arg)
{
    ml_event_module(ML_EVENT_MODULE_CREATE, m, NULL, arg);
}

static void relog_type(struct ml_type_rec *t, void *arg)
{
    (void)arg;
    if (t->alive)
        ml_event_type(ML_EVENT_TYPE_CREATE, t, NULL);
}

/* The log was cut under us (logrotate's copytruncate) and is appended to from now
 * on: its start again, as far as can be done without taking a lock the writing
 * thread may hold.  Records of what lived before name stacks that are written anew. */
static void log_restarted(void)
{
    log_process_start(0, 1);
    ml_stack_table_new_log();
    ml_objects_try_relog_all();
    if (ml_registry_trylock()) {
        ml_each_module(relog_module, "alive when the log was cut");
        ml_each_type(relog_type, NULL);
        ml_registry_unlock();
    }
}

/* The locks in the order they nest (outermost first), so that the forking thread
 * never waits for a lock whose holder waits for one it took: registry walks
 * (relogging, a static type's definition looked up by its ELF object) write stacks
 * and resolve objects under the registry lock; stack records resolve objects; all
 * of them write the log.  The hooks' own leaf locks are taken after these (their
 * fork handlers are registered first, and prepare handlers run in reverse). */
static void atfork_prepare(void)
{
    ml_registry_atfork_prepare();
    ml_stack_table_atfork_prepare();
    ml_objects_atfork_prepare();
    ml_log_atfork_prepare();
}

static void atfork_parent(void)
{
    ml_log_atfork_parent();
    ml_objects_atfork_release();
    ml_stack_table_atfork_parent();
    ml_registry_atfork_release();
}

/* The child gets a log of its own that stands alone: objects and live records again. */
static void atfork_child(void)
{
    ml_registry_atfork_release();
    ml_objects_atfork_release();
    ml_stack_table_atfork_child();
    ml_findings_atfork_child();
    ml_report_text_atfork_child();
    char err[512];
    if (ml_log_reopen_in_child(err, sizeof err) != 0) {
        /* The hooks inherited from the parent stay, with nowhere to write. */
        __atomic_store_n(&active, 0, __ATOMIC_RELEASE);
        run_without_log(err);
        return;
    }
    log_process_start(1, 0);
    ml_objects_relog_all();
    ml_registry_lock();
    ml_each_module(relog_module, "inherited at fork");
    ml_each_type(relog_type, NULL);
    ml_registry_unlock();
}

struct exit_summary {
    struct json *j;
    int modules, types;
};

static void summarize_module(struct ml_module_rec *m, void *arg)
{
    struct exit_summary *s = arg;
    s->modules++;
    if (json_room(s->j) < 256)
        return;
    json_begin_object(s->j);
    json_kv_string(s->j, "module", m->def ? m->def->name : NULL);
    json_kv_int(s->j, "instance", (long long)m->instance);
    json_kv_string(s->j, "phase", ml_module_phase_name(m->phase));
    json_kv_int(s->j, "state_lookups", (long long)m->state_lookups);
    json_end_object(s->j);
}

static void count_type(struct ml_type_rec *t, void *arg)
{
    ((struct exit_summary *)arg)->types += t->alive;
}

/* After the interpreter finalized: what never died is still in the registries. */
static void log_process_exit(void)
{
    if (!ml_exit_claim())
        return; /* an _exit from another thread already wrote it */
    ml_findings_run_exit_checks();
    struct ml_record r;
    struct exit_summary s = {&r.j, 0, 0};
    ml_record_begin(&r, ML_EVENT_PROCESS_EXIT);
    ml_registry_lock();
    json_key(&r.j, "alive_modules");
    json_begin_array(&r.j);
    ml_each_module(summarize_module, &s);
    json_end_array(&r.j);
    ml_each_type(count_type, &s);
    ml_registry_unlock();
    json_kv_int(&r.j, "alive_module_count", s.modules);
    json_kv_int(&r.j, "alive_type_count", s.types);
    /* Lifetime stacks are written unnamed: tables are loaded for findings only. */
    json_kv_int(&r.j, "symbol_tables", ml_symtab_loads());
    ml_record_end(&r);
    ml_log_finish();
    ml_log_check_at_exit();
}

/* Errors turn a successful exit into exitcode; a failing status is kept.  Warnings
 * only when exit_on_warnings asks, as in ASan: a warning in some child must not fail
 * a test suite.  on_exit handlers are told the status, and ours, registered first,
 * runs last. */
static void exit_status(int status, void *arg)
{
    (void)arg;
    if (declined)
        return;
    unsigned long failing = ml_opts.exit_on_warnings ? ml_findings_reported() : ml_findings_reported_errors();
    if (status == 0 && failing > 0) {
        fflush(NULL);
        ml_exit_now(ml_opts.exitcode);
    }
}

static int read_options(void)
{
    char err[1024];
    ml_options_defaults(&ml_opts);
    if (ml_options_parse(&ml_opts, secure_getenv("MODLIFE_OPTIONS"), err, sizeof err) != 0)
        fatal("MODLIFE_OPTIONS", err);
    return 0;
}

static void start_locked(void)
{
    char why[512];
    if (active || declined || getauxval(AT_SECURE) || !ml_pyapi_present())
        return;
    read_options();
    if (ml_findings_configure(why, sizeof why) != 0)
        fatal("MODLIFE_OPTIONS", why);
    if (ml_pyapi_resolve(why, sizeof why) != 0) {
        ml_say("%s; this process runs without modlife", why);
        return;
    }
    ml_log_reset_clock();
    if (ml_log_open(ml_opts.log_path, why, sizeof why) != 0) {
        run_without_log(why);
        return;
    }
    log_process_start(0, 0);
    ml_log_set_restart_hook(log_restarted);
    ml_exit_watch();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    on_exit(exit_status, NULL);
    atexit(log_process_exit);
    ml_crash_handler_install();
    __atomic_store_n(&active, 1, __ATOMIC_RELEASE);
    ml_objects_scan(patch_scope(), ml_hook_patch_target);
    if (ml_opts.verbosity >= 1)
        ml_say("recording to %s", ml_log_path());
}

void ml_engine_start(enum ml_entry entry)
{
    pthread_mutex_lock(&start_lock);
    entry_point = entry;
    start_locked();
    pthread_mutex_unlock(&start_lock);
}

void ml_engine_objects_changed(void)
{
    /* modlife's own (libdw for a report): left for the next load of the program's. */
    if (ml_own_load_running())
        return;
    if (!ml_engine_active()) {
        /* A process that was not Python may have just loaded libpython. */
        pthread_mutex_lock(&start_lock);
        start_locked();
        pthread_mutex_unlock(&start_lock);
        return;
    }
    ml_objects_scan(patch_scope(), ml_hook_patch_target);
}
