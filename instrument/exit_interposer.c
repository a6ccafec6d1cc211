/* _exit and _Exit interposed (see exit_interposer.h).
 *
 * Only under LD_PRELOAD: the library then comes before libc in the global lookup
 * scope.  Under LD_AUDIT it is loaded after the program was relocated, behind libc,
 * so calls to _exit go straight to libc and such an exit stays unrecorded.
 *
 * _exit may be called from a signal handler, and in a vfork child, whose memory is
 * the parent's: the record is written only by the process that owns the log, with
 * no lock and no allocation, and the log is cut only when this thread is not in
 * the middle of copying a record (the lock for that is its own). */
#include "exit_interposer.h"

#include "log_writer.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void (*real_exit)(int);
static void (*real_Exit)(int);
static pid_t owner;
static int claimed;

/* Resolved before main: dlsym is no call for a signal handler or a vfork child. */
__attribute__((constructor)) static void resolve_real_exits(void)
{
    *(void **)&real_exit = dlsym(RTLD_NEXT, "_exit");
    *(void **)&real_Exit = dlsym(RTLD_NEXT, "_Exit");
}

static void after_fork_in_child(void)
{
    owner = getpid();
    __atomic_store_n(&claimed, 0, __ATOMIC_RELEASE);
}

void ml_exit_watch(void)
{
    owner = getpid();
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

int ml_exit_claim(void)
{
    return !__atomic_exchange_n(&claimed, 1, __ATOMIC_ACQ_REL);
}

static __attribute__((noreturn)) void leave(void (*real)(int), int status)
{
    if (real)
        real(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

void ml_exit_now(int status)
{
    leave(real_exit, status);
}

static void record_exit(int status)
{
    /* No log: not a process modlife watches (not Python, or a fork child whose log
     * could not be made). */
    if (!ml_log_is_open() || getpid() != owner || !ml_exit_claim())
        return;
    struct ml_record r;
    ml_record_begin(&r, ML_EVENT_PROCESS_EXIT);
    json_kv_string(&r.j, "how", "_exit");
    json_kv_int(&r.j, "status", status & 0xff);
    ml_record_end(&r);
    if (!ml_log_copying())
        ml_log_finish();
}

__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
    record_exit(status);
    leave(real_exit, status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
    record_exit(status);
    leave(real_Exit ? real_Exit : real_exit, status);
}
