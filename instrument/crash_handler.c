/* Fatal-signal handler (see crash_handler.h). */
#include "crash_handler.h"

#include "crash_story.h"
#include "findings.h"
#include "global_scan.h"
#include "log_writer.h"
#include "options.h"
#include "pyapi.h"
#include "quarantine.h"
#include "registry.h"
#include "safe_format.h"
#include "slot_context.h"

#include <signal.h>
#include <stdint.h>
#include <ucontext.h>
#include <string.h>
#include <unistd.h>

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
#define NSIGNALS (sizeof fatal_signals / sizeof fatal_signals[0])

static struct sigaction previous[NSIGNALS];
static int handling;
#define FINALIZING_MAX 64
static long long finalizing[FINALIZING_MAX]; /* ids of interpreters that began finalizing */
static int finalizing_count;
static char alt_stack[64 * 1024];

void ml_crash_note_finalizing(long long interp)
{
    int n = __atomic_load_n(&finalizing_count, __ATOMIC_ACQUIRE);
    if (n < FINALIZING_MAX) {
        finalizing[n] = interp;
        __atomic_store_n(&finalizing_count, n + 1, __ATOMIC_RELEASE);
    }
}

/* The crashing thread's interpreter (reads fields of the thread state, nothing that
 * locks), and whether it began finalizing. */
static long long crashed_interp(void)
{
    PyThreadState *tstate = ml_py_tstate();
    return tstate ? py.PyInterpreterState_GetID(py.PyThreadState_GetInterpreter(tstate)) : 0;
}

static int is_finalizing(long long id)
{
    int n = __atomic_load_n(&finalizing_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (finalizing[i] == id)
            return 1;
    return 0;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    default: return "SIGILL";
    }
}

static struct ml_crash_story story;

static const struct ml_crash_story *tell_story(int sig, const siginfo_t *info, const char *module)
{
    memset(&story, 0, sizeof story);
    story.signal = signal_name(sig);
    story.has_fault_address = info->si_code > 0 && sig != SIGABRT; /* raised by the kernel */
    story.fault_address = (uintptr_t)info->si_addr;
    story.interp = crashed_interp();
    story.finalizing = is_finalizing(story.interp);
    ml_crash_story_fill(&story, module);
    return &story;
}

/* A view of the block's frames, which no longer change once it is freed. */
static void saved_native(struct ml_saved_stack *out, void *const *ips, int depth)
{
    *out = (struct ml_saved_stack){.depth = depth, .ips = ips};
}

/* The stack from the faulting instruction outwards: our frames and the signal
 * trampoline go. */
static const struct ml_stack *fault_stack(const ucontext_t *uc)
{
    static struct ml_stack s;
    ml_stack_capture(&s, ml_opts.stack_depth + 4);
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
#endif
    for (int i = 0; i < s.depth; i++)
        if ((uintptr_t)s.ips[i] == pc) {
            /* Lookups use ip - 1 for return addresses; the PC itself is exact. */
            s.ips[i] = (void *)(pc + 1);
            memmove(s.ips, s.ips + i, (size_t)(s.depth - i) * sizeof s.ips[0]);
            s.depth -= i;
            break;
        }
    if (s.depth > ml_opts.stack_depth)
        s.depth = ml_opts.stack_depth;
    return &s;
}

static int report_use_after_free(int sig, const siginfo_t *info, const ucontext_t *uc)
{
    const struct ml_quarantined *b = ml_quarantine_find((uintptr_t)info->si_addr);
    if (!b || !__atomic_load_n(&b->freed, __ATOMIC_ACQUIRE))
        return 0;
    static struct ml_saved_stack freed, created;
    saved_native(&freed, b->freed_at, b->freed_depth);
    saved_native(&created, b->created, b->created_depth);
    static struct ml_finding f;
    memset(&f, 0, sizeof f);
    f.kind = ML_STATE_USE_AFTER_FREE;
    f.in_signal_handler = 1;
    f.access = fault_stack(uc);
    f.module = b->module;
    f.instance = b->instance;
    f.interp = b->interp;
    f.global = ml_global_named((uintptr_t)info->si_addr);
    ml_format(f.message, sizeof f.message,
             "access at %p, %lu bytes into the state of module '%s' (instance #%llu), freed with the module%s%s",
             info->si_addr, (unsigned long)((uintptr_t)info->si_addr - b->start), b->module, b->instance,
             f.global ? "; the C global that still pointed to it: " : "", f.global ? f.global : "");
    ml_format(f.subject_buf, sizeof f.subject_buf, "the state of module '%s' instance #%llu", b->module,
             b->instance);
    f.subject = f.subject_buf;
    f.context[f.context_count++] = (struct ml_context_stack){"freed", &freed};
    f.context[f.context_count++] = (struct ml_context_stack){"allocated", &created};
    f.story = tell_story(sig, info, b->module);
    return ml_finding_report(&f);
}

/* A tp_dealloc belongs to a teardown when its type's module was cleared or freed; an
 * object dying while its module lives is the program's ordinary running.  Not
 * known (the registry is busy): taken as a teardown, as it always was. */
static int module_torn_down(const PyTypeObject *type)
{
    if (!ml_registry_trylock())
        return 1;
    const struct ml_type_rec *t = ml_type_find(type);
    int torn = t && t->orphan;
    const PyObject *module = t && !torn ? (t->module ? t->module : t->exec_module) : NULL;
    const struct ml_module_rec *m = module ? ml_module_find(module) : NULL;
    /* A module it was made for that is known no more was freed (and forgotten): the
     * collector breaks the type's reference to its module (type_clear) before the
     * last instances in the same garbage die. */
    torn = torn || (m && m->phase >= ML_MOD_CLEARED) || (module && !m && t->module_instance);
    ml_registry_unlock();
    return torn;
}

/* What was being torn down on this thread, if anything; while the interpreter
 * finalizes every tp_dealloc counts. */
static const char *teardown_in_progress(const struct ml_slot_frame **frame, int finalizing)
{
    for (const struct ml_slot_frame *f = ml_slot_top; f; f = f->prev) {
        *frame = f;
        if (f->slot == ML_SLOT_MODULE_TEARDOWN)
            return "a module's m_traverse/m_clear/m_free";
        if (f->slot == ML_SLOT_TP_DEALLOC && (finalizing || module_torn_down(f->owner)))
            return "a tp_dealloc";
    }
    *frame = NULL;
    return NULL;
}

static void report_finalize_crash(int sig, const siginfo_t *info, const ucontext_t *uc)
{
    const struct ml_slot_frame *frame = NULL;
    long long interp = is_finalizing(crashed_interp()) ? crashed_interp() : -1;
    /* Otherwise a crash of the running program, not of a teardown: no finding, the
     * signal goes on as it would without modlife. */
    const char *during = teardown_in_progress(&frame, interp >= 0);
    if (!during && interp < 0)
        return;
    static struct ml_finding f;
    memset(&f, 0, sizeof f);
    f.kind = ML_FINALIZE_CRASH;
    f.in_signal_handler = 1;
    f.access = fault_stack(uc);
    f.interp = interp;
    if (frame && frame->slot == ML_SLOT_TP_DEALLOC)
        f.type = ((const PyTypeObject *)frame->owner)->tp_name;
    char address[40] = "";
    if (info->si_code > 0 && sig != SIGABRT) /* raised by the kernel: the address means something */
        ml_format(address, sizeof address, " (fault address %p)", info->si_addr);
    ml_format(f.message, sizeof f.message, "%s%s %s%s%s", signal_name(sig), address,
             during ? "in " : "", during ? during : "",
             interp >= 0 ? (during ? ", while an interpreter was finalizing" : "while an interpreter was finalizing")
                         : "");
    f.story = tell_story(sig, info, NULL);
    ml_finding_report(&f);
}

/* Chains to the previous disposition: a handler is called as it expects; the
 * default action is taken by re-raising with it restored. */
static void chain(int index, int sig, siginfo_t *info, void *context)
{
    struct sigaction *old = &previous[index];
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, info, context);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    sigaction(sig, old, NULL);
    /* A fault re-occurs when we return; a signal sent by kill/raise/abort must be sent again. */
    if (info->si_code <= 0 || sig == SIGABRT)
        raise(sig);
}

/* A handler that ran before us (Python's faulthandler, which pytest and regrtest
 * enable) puts us back and raises the signal again from inside itself, on its
 * alternate stack: what we get has lost the fault.  The kernel's frame of the fault
 * is above ours on that stack.  faulthandler asks for no siginfo, but the frame
 * always holds the interrupted context, whose uc_stack is that very alternate stack
 * and whose registers keep the faulting PC and, for a page fault, the address (CR2).
 * A signal sent with kill has no such frame, and is taken as it comes. */
#if defined(__x86_64__)
static const ucontext_t *original_fault(int sig, const siginfo_t *info, const void *context,
                                        siginfo_t *rebuilt)
{
    stack_t ss;
    if (info->si_code > 0 || (sig != SIGSEGV && sig != SIGBUS && sig != SIGILL && sig != SIGFPE) ||
        sigaltstack(NULL, &ss) != 0 || !(ss.ss_flags & SS_ONSTACK))
        return NULL;
    uintptr_t top = (uintptr_t)ss.ss_sp + ss.ss_size;
    uintptr_t from = ((uintptr_t)context + sizeof(ucontext_t) + 7) & ~(uintptr_t)7; /* past our own */
    for (uintptr_t p = from; p + sizeof(ucontext_t) <= top; p += 8) {
        const ucontext_t *uc = (const ucontext_t *)p;
        if (uc->uc_stack.ss_sp != ss.ss_sp || uc->uc_stack.ss_size != ss.ss_size)
            continue;
        const greg_t *r = uc->uc_mcontext.gregs;
        memset(rebuilt, 0, sizeof *rebuilt);
        rebuilt->si_signo = sig;
        rebuilt->si_code = 1; /* a fault, as the kernel reports them */
        rebuilt->si_addr = (void *)(r[REG_TRAPNO] == 14 ? r[REG_CR2] : r[REG_RIP]);
        return uc;
    }
    return NULL;
}
#else
static const ucontext_t *original_fault(int sig, const siginfo_t *info, const void *context,
                                        siginfo_t *rebuilt)
{
    (void)sig, (void)info, (void)context, (void)rebuilt;
    return NULL;
}
#endif

static void on_fatal_signal(int sig, siginfo_t *info, void *context)
{
    size_t index = 0;
    while (index < NSIGNALS && fatal_signals[index] != sig)
        index++;
    siginfo_t rebuilt;
    const ucontext_t *original = original_fault(sig, info, context, &rebuilt);
    const siginfo_t *about = original ? &rebuilt : info;
    const ucontext_t *where = original ? original : context;
    /* The log file cut under a copy into its window: not the program's fault.  (Under
     * faulthandler, which ran first, its traceback has been printed by now.) */
    if (sig == SIGBUS && about->si_code > 0 && ml_log_fault_in_window(about->si_addr))
        return;
    if (!__atomic_exchange_n(&handling, 1, __ATOMIC_ACQ_REL)) {
        ml_log_dying();
        if (!report_use_after_free(sig, about, where))
            report_finalize_crash(sig, about, where);
    }
    chain((int)index, sig, info, context);
}

void ml_crash_handler_install(void)
{
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    stack_t old_ss;
    if (sigaltstack(NULL, &old_ss) == 0 && (old_ss.ss_flags & SS_DISABLE))
        sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(fatal_signals[i], &sa, &previous[i]);
}
