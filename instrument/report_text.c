/* ASan-style text reports (see report_text.h). */
#include "report_text.h"

#include "crash_story.h"
#include "demangle.h"
#include "kinds.h"
#include "elf_objects.h"
#include "options.h"
#include "pyapi.h"
#include "safe_format.h"
#include "say.h"
#include "srcline.h"
#include "visible_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct out {
    char buf[32 * 1024];
    size_t len;
    int python_left_out; /* runner frames left out of the Python stack being written */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* ml_vformat, not vsnprintf: reports are also made in the fatal-signal handler. */
    o->len += ml_vformat(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
}

/* Names come from the program (module and type names, file and function names)
 * and may hold anything: escaped for the terminal, never written raw. */
static void put_text(struct out *o, const char *s, size_t n)
{
    o->len += ml_terminal_text(o->buf + o->len, sizeof o->buf - o->len, s, n);
}

static void put_name(struct out *o, const char *s, const char *none)
{
    s = s ? s : none;
    put_text(o, s, strlen(s));
}

static void put_line(void *arg, const char *line)
{
    put_name(arg, line, "");
    put(arg, "\n");
}

static const char *basename_of(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "?";
}

struct frame_text {
    const char *function;
    const char *object;
    uintptr_t offset;
    struct ml_srcline src;
};

static struct frame_text describe(uintptr_t ip, int in_signal_handler)
{
    static char demangled[1024]; /* one report at a time, one frame at a time */
    struct frame_text t = {NULL, NULL, 0, {NULL, 0}};
    struct ml_object_ref ref = in_signal_handler ? ml_objects_resolve_unlocked(ip - 1, ml_opts.symbolize)
                                                 : ml_objects_resolve(ip - 1, ml_opts.symbolize);
    t.function = ref.function;
    t.object = ref.path;
    t.offset = ip - ref.base;
    if (!in_signal_handler) {
        t.src = ml_srcline(ip - 1);
        t.function = ml_demangle(t.function, demangled, sizeof demangled);
    }
    return t;
}

static int object_of(uintptr_t addr, int in_signal_handler)
{
    return (in_signal_handler ? ml_objects_resolve_unlocked(addr, 0) : ml_objects_resolve(addr, 0)).id;
}

static void put_frame(struct out *o, int i, uintptr_t ip, int in_signal_handler)
{
    struct frame_text t = describe(ip, in_signal_handler);
    put(o, "    #%d 0x%lx in ", i, (unsigned long)ip);
    put_name(o, t.function, "??");
    if (t.src.file) {
        put(o, " ");
        put_name(o, t.src.file, "");
        put(o, ":%d", t.src.line);
    }
    put(o, " (");
    put_name(o, basename_of(t.object), "");
    put(o, "+0x%lx)\n", (unsigned long)t.offset);
}

/* Frames of the interpreter's own machinery (the eval loop, calls, imports) say
 * little about an extension's bug: of each run of them, the first few (the
 * interpreter code that called into the extension, or that the access was made in)
 * are shown and the rest counted.  The log keeps every frame. */
#define INTERP_FRAMES_SHOWN 2
#define INTERP_RUN_FOLDED 4

static void put_native(struct out *o, const struct ml_stack *s, int in_signal_handler)
{
    int interp = object_of((uintptr_t)py.PyModule_GetState, in_signal_handler);
    for (int i = 0; i < s->depth;) {
        int run = 0;
        while (interp >= 0 && i + run < s->depth &&
               object_of((uintptr_t)s->ips[i + run] - 1, in_signal_handler) == interp)
            run++;
        if (run < INTERP_RUN_FOLDED) {
            put_frame(o, i, (uintptr_t)s->ips[i], in_signal_handler);
            i++;
            continue;
        }
        for (int k = 0; k < INTERP_FRAMES_SHOWN; k++)
            put_frame(o, i + k, (uintptr_t)s->ips[i + k], in_signal_handler);
        struct ml_object_ref ref = in_signal_handler ? ml_objects_resolve_unlocked((uintptr_t)s->ips[i] - 1, 0)
                                                     : ml_objects_resolve((uintptr_t)s->ips[i] - 1, 0);
        put(o, "    ... %d frames in ", run - INTERP_FRAMES_SHOWN);
        put_name(o, basename_of(ref.path), "");
        put(o, "\n");
        i += run;
    }
}

/* Frames of the machinery that ran the code, not of the code: the import system
 * and the test runner (the tools leave out the same ones, report_text.py). */
static int runner_frame(const char *file, size_t len)
{
    static const char *const parts[] = {"/_pytest/", "/pluggy/"};
    static const char frozen[] = "<frozen importlib.";
    if (strcmp(ml_opts.python_frames, "app"))
        return 0;
    if (len >= sizeof frozen - 1 && !memcmp(file, frozen, sizeof frozen - 1))
        return 1;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        size_t n = strlen(parts[p]);
        for (size_t i = 0; i + n <= len; i++)
            if (!memcmp(file + i, parts[p], n))
                return 1;
    }
    return 0;
}

static void put_left_out(struct out *o)
{
    if (o->python_left_out)
        put(o, "      ... %d frame%s of importlib/pytest/pluggy left out (MODLIFE_OPTIONS python_frames=all)\n",
            o->python_left_out, o->python_left_out == 1 ? "" : "s");
    o->python_left_out = 0;
}

static void put_python_frame(const char *file, int line, const char *function, void *arg)
{
    struct out *o = arg;
    if (file && runner_frame(file, strlen(file))) {
        o->python_left_out++;
        return;
    }
    put(o, "      ");
    put_name(o, file, "?");
    put(o, ":%d in ", line);
    put_name(o, function, "?");
    put(o, "\n");
}

static void put_saved_python(struct out *o, const char *text)
{
    if (!text)
        return;
    put(o, "  Python stack (innermost first):\n");
    for (struct ml_py_frame f; ml_python_text_next(&text, &f);) {
        if (runner_frame(f.file, f.file_len)) {
            o->python_left_out++;
            continue;
        }
        put(o, "      ");
        put_text(o, f.file, f.file_len);
        put(o, ":%d in ", f.line);
        put_text(o, f.function, f.function_len);
        put(o, "\n");
    }
    put_left_out(o);
}

/* The frame to name in the summary: the innermost one in extension code (not the
 * interpreter, not libc), else the innermost one. */
static int guilty_frame(const struct ml_stack *s, int in_signal_handler)
{
    for (int i = 0; i < s->depth; i++) {
        struct ml_object_ref ref = in_signal_handler ? ml_objects_resolve_unlocked((uintptr_t)s->ips[i] - 1, 0)
                                                     : ml_objects_resolve((uintptr_t)s->ips[i] - 1, 0);
        if (ml_objects_is_extension(ref.id))
            return i;
    }
    return 0;
}

static void put_summary(struct out *o, const struct ml_finding *f, const struct ml_stack *access)
{
    put(o, "SUMMARY: modlife: %s", ml_kinds[f->kind].name);
    if (access->depth) {
        struct frame_text t = describe((uintptr_t)access->ips[guilty_frame(access, f->in_signal_handler)],
                                       f->in_signal_handler);
        if (t.src.file) {
            put(o, " ");
            put_name(o, t.src.file, "");
            put(o, ":%d", t.src.line);
        }
        put(o, " in ");
        if (t.function) {
            put_name(o, t.function, "");
        } else { /* no symbol holds it: the object and offset still tell the place */
            put_name(o, basename_of(t.object), "");
            put(o, "+0x%lx", (unsigned long)t.offset);
        }
    }
    if (f->module) {
        put(o, " (module ");
        put_name(o, f->module, "");
        put(o, ")");
    }
    if (f->type) {
        put(o, " (type ");
        put_name(o, f->type, "");
        put(o, ")");
    }
    put(o, "\n");
}

/* The report lock, after AddressSanitizer's ScopedInErrorReport: one report at a
 * time, whole, in the order they took it.  The GIL does not serialise reports: from
 * 3.12 each subinterpreter may have its own, and two threads in two of them can meet
 * a finding at once.  The lock covers the report's buffer, describe()'s and the
 * writing to stderr.  A word holding the owner's thread id, not a mutex, because
 * the crash handler takes it too: there it never blocks for good (see
 * take_report_lock). */
static pid_t report_owner;

static pid_t thread_id(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void pause_a_moment(void)
{
    struct timespec ms = {0, 1000 * 1000};
    nanosleep(&ms, NULL);
}

/* Waits for the report in progress.  The crash handler waits at most a second, and
 * not at all when the crash is in this thread's own report: it then writes its
 * report from its own buffer (the one in progress is lost with the process), never
 * deadlocking, at worst interleaved with a report stuck for that second. */
static void take_report_lock(int in_signal_handler)
{
    pid_t self = thread_id();
    for (int waited = 0;; waited++) {
        pid_t owner = 0;
        if (__atomic_compare_exchange_n(&report_owner, &owner, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        if (in_signal_handler && (owner == self || waited >= 1000))
            return;
        pause_a_moment();
    }
}

static void release_report_lock(void)
{
    pid_t self = thread_id();
    __atomic_compare_exchange_n(&report_owner, &self, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

void ml_report_text_atfork_child(void)
{
    __atomic_store_n(&report_owner, 0, __ATOMIC_RELAXED);
}

static void compose(struct out *o, const struct ml_finding *f, const struct ml_stack *access)
{
    o->len = 0;
    o->python_left_out = 0;
    const struct ml_kind_info *k = &ml_kinds[f->kind];
    put(o, "=================================================================\n");
    put(o, "==%d==%s: modlife: %s: ", (int)getpid(), ml_finding_is_error(f) ? "ERROR" : "WARNING", k->name);
    put_name(o, f->message, "");
    put(o, "\n");
    put_native(o, access, f->in_signal_handler);
    if (f->access_saved) {
        put_saved_python(o, f->access_saved->python);
    } else if (!f->in_signal_handler && ml_opts.python_stack && ml_py_tstate()) {
        put(o, "  Python stack (innermost first):\n");
        ml_python_frames(put_python_frame, o, ml_opts.stack_depth);
        put_left_out(o);
    }
    if (f->story) {
        put(o, "\n");
        ml_crash_story_text(f->story, put_line, o);
    }
    for (int i = 0; i < f->context_count; i++) {
        struct ml_stack native;
        ml_saved_stack_native(f->context[i].stack, &native);
        put(o, "\n");
        put_name(o, f->subject, "");
        put(o, " was %s here:\n", f->context[i].what);
        put_native(o, &native, f->in_signal_handler);
        if (!f->in_signal_handler)
            put_saved_python(o, f->context[i].stack->python);
    }
    put(o, "\nRule: %s\nFix: %s\n", k->rule, f->fix ? f->fix : k->fix);
    put_summary(o, f, access);
    put(o, "=================================================================\n");
}

void ml_report_text(const struct ml_finding *f, const struct ml_stack *access)
{
    /* Under the report lock; the crash handler's apart, since it may report while
     * another report (even its own thread's) is half made. */
    static struct out report, crash_report;
    struct out *o = f->in_signal_handler ? &crash_report : &report;
    take_report_lock(f->in_signal_handler);
    compose(o, f, access);
    ml_say_text(o->buf, o->len);
    release_report_lock();
}
