/* _exit and _Exit, interposed: a process that leaves without exit() (os._exit,
 * which every multiprocessing fork child ends with) still gets its process-exit
 * record, "how": "_exit", and its log cut to its records; then the real _exit. */
#ifndef MODLIFE_EXIT_INTERPOSER_H
#define MODLIFE_EXIT_INTERPOSER_H

/* From engine start: this process's log is to be closed by an _exit too. */
void ml_exit_watch(void);

/* 1 for the first caller in this process, who writes its process-exit record. */
int ml_exit_claim(void);

/* The real _exit, for the library's own exits: no record of its own. */
void ml_exit_now(int status) __attribute__((noreturn));

#endif
