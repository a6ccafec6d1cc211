/* The fatal-signal handler (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL): reports a
 * fault inside quarantined module state (state-use-after-free) and a fatal signal
 * while an interpreter is finalizing or a module is torn down (finalize-crash),
 * then hands the signal to whatever handler was installed before (faulthandler's
 * included) or lets the process die of it, so exit statuses and core dumps stay as
 * they were.  Async-signal-safe: no malloc, no locks, no stdio, on an alternate
 * stack. */
#ifndef MODLIFE_CRASH_HANDLER_H
#define MODLIFE_CRASH_HANDLER_H

void ml_crash_handler_install(void);

/* An interpreter entered finalization / a module teardown phase: crash context. */
void ml_crash_note_finalizing(long long interp);

#endif
