/* The ELF objects (executable and shared libraries) loaded in the process: each gets
 * an id, an object-load record (path, base, build id: enough to symbolize later)
 * and, if it is extension code, its references to the C-API patched. */
#ifndef MODLIFE_ELF_OBJECTS_H
#define MODLIFE_ELF_OBJECTS_H

#include "got_patch.h"

#include <stdint.h>

struct ml_object_ref {
    int id;              /* as in the object-load record, -1 when unknown */
    uintptr_t base;      /* load bias: file address = ip - base */
    const char *path;
    const char *function;
};

/* Logs and (in the given scope, to what lookup gives) patches every object not seen
 * before.  Called when modlife starts and after every dlopen. */
void ml_objects_scan(enum ml_patch_scope scope, ml_patch_lookup lookup);

/* Which object an address is in, and which function (symbolize=1).  Loads symbols
 * on first use; call outside signal handlers. */
struct ml_object_ref ml_objects_resolve(uintptr_t addr, int symbolize);

/* The same without locks, for the crash handler: may miss an object being added at
 * that moment.  symbolize=1 loads the object's symbols if nobody has (system calls
 * only, see symbolize.h); no name if another thread is loading them. */
struct ml_object_ref ml_objects_resolve_unlocked(uintptr_t addr, int symbolize);

/* 1 if the object is extension code (patched for hooks), not the interpreter,
 * libc or the like. */
int ml_objects_is_extension(int id);

/* 1 if addr is inside modlife's own library (its frames are dropped from stacks). */
int ml_objects_is_self(uintptr_t addr);

/* A new log (a forked child's, or one cut under us): every object logged again in it. */
void ml_objects_relog_all(void);
/* The same unless the lock is held (perhaps by the caller, writing a record): 0 then. */
int ml_objects_try_relog_all(void);



/* Fork: the object table lock is held across fork() so the child inherits it free. */
void ml_objects_atfork_prepare(void);
void ml_objects_atfork_release(void);
#endif
