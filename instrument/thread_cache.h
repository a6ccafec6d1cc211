/* Per-thread caches of the hot paths (symbol lookups, slot owners), allocated on a
 * thread's first use and freed when it exits.  They are not __thread arrays: the
 * library's static TLS must stay tiny, since under LD_AUDIT it is loaded by dlopen
 * and gets only glibc's small static-TLS surplus. */
#ifndef MODLIFE_THREAD_CACHE_H
#define MODLIFE_THREAD_CACHE_H

#include <stddef.h>

/* size zeroed bytes for this thread, or NULL; *owner (a __thread pointer of the
 * caller) is set to them now and back to NULL when the thread exits. */
void *ml_thread_cache_alloc(size_t size, void **owner);

#endif
