/* Per-thread caches (see thread_cache.h). */
#include "thread_cache.h"

#include <pthread.h>
#include <stdlib.h>

struct block {
    struct block *next;
    void **owner;
    long long align; /* the caches hold pointers and longs */
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Runs in the exiting thread: its owners are its own __thread pointers, cleared so
 * that hooks running in later destructors allocate afresh rather than use freed
 * memory. */
static void free_blocks(void *head)
{
    for (struct block *b = head, *next; b; b = next) {
        next = b->next;
        *b->owner = NULL;
        free(b);
    }
}

static void make_key(void)
{
    pthread_key_create(&key, free_blocks);
}

void *ml_thread_cache_alloc(size_t size, void **owner)
{
    pthread_once(&once, make_key);
    struct block *b = calloc(1, sizeof *b + size);
    if (!b)
        return NULL;
    b->owner = owner;
    b->next = pthread_getspecific(key);
    pthread_setspecific(key, b);
    *owner = b + 1;
    return b + 1;
}
