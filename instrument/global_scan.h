/* C globals of an extension that still point to something that just died: a module
 * object, its state, a heap type (dangling-global).  The scan reads the writable
 * data (.data/.bss) of the one ELF object that owns the dead thing, not the whole
 * process, and only the first ML_GLOBAL_SCAN_MAX bytes of it: deaths are rare but
 * an extension's .bss can be large.
 *
 * What a scan found is remembered (a fixed table, read without locks), so that the
 * fatal-signal handler can name the global a later use came through. */
#ifndef MODLIFE_GLOBAL_SCAN_H
#define MODLIFE_GLOBAL_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define ML_GLOBAL_SCAN_MAX (4u << 20)

struct ml_global_hit {
    uintptr_t where;  /* the global's address */
    int target;       /* which of the targets it holds */
    char name[160];   /* "g_state in ringbuf.c", "g_state in ringbuf.so", "ringbuf.so+0x4010" */
};

/* The aligned words of the writable data of the object containing anchor (an
 * address inside it: a PyModuleDef, a function) equal to one of targets[0..n).
 * Fills up to max hits, returns how many. */
int ml_global_scan(const void *anchor, const uintptr_t *targets, int n, struct ml_global_hit *hits, int max);

/* The same for words pointing to a live object whose ob_type is type: an instance
 * parked in a global or a free list.  Words are read through process_vm_readv, so a
 * word that is no pointer costs a failed system call, never a fault. */
int ml_global_scan_instances(const void *anchor, uintptr_t type, struct ml_global_hit *hits, int max);

/* Remembers that the global named name held target when target's block [start, end)
 * died; ml_global_named answers for any address in the block.  Async-signal-safe. */
void ml_global_remember(uintptr_t start, uintptr_t end, const char *name);
const char *ml_global_named(uintptr_t addr);

#endif
