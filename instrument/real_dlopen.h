/* dlopen for modlife's own loads (libdw for file:line, libstdc++ for demangling):
 * the C library's, never the interposer in preload.c, which would take them for the
 * program's, scan the objects again and log libdw, libelf and libz as the program's
 * objects in the middle of a report. */
#ifndef MODLIFE_REAL_DLOPEN_H
#define MODLIFE_REAL_DLOPEN_H

void *ml_real_dlopen(const char *file, int mode);

/* Around a load of modlife's own and the dlsym calls into it: under LD_AUDIT the
 * auditor sees every load and hands the objects over at the next dlsym, and the
 * engine then leaves them for the next load of the program's (engine.c). */
void ml_own_load_begin(void);
void ml_own_load_end(void);
int ml_own_load_running(void);

#endif
