/* Ring of recent lifetime events (see event_ring.h). */
#include "event_ring.h"

#include "log_writer.h"

#include <string.h>

#define RING_SIZE 512

static struct ml_ring_entry ring[RING_SIZE];
static unsigned long long next_seq;

static void copy_name(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < size; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

void ml_ring_add(const char *event, const char *module, unsigned long long instance, const char *type,
                 long long interp)
{
    unsigned long long seq = __atomic_add_fetch(&next_seq, 1, __ATOMIC_ACQ_REL);
    struct ml_ring_entry *e = &ring[seq % RING_SIZE];
    __atomic_store_n(&e->seq, 0, __ATOMIC_RELEASE); /* being written */
    e->t = ml_log_now();
    e->interp = interp;
    e->instance = instance;
    copy_name(e->event, sizeof e->event, event);
    copy_name(e->module, sizeof e->module, module);
    copy_name(e->type, sizeof e->type, type);
    __atomic_store_n(&e->seq, seq, __ATOMIC_RELEASE);
}

int ml_ring_recent(const char *module, struct ml_ring_entry *out, int max)
{
    unsigned long long newest = __atomic_load_n(&next_seq, __ATOMIC_ACQUIRE);
    int found = 0;
    /* Newest first into the tail of out, then moved to the front: oldest first. */
    for (unsigned long long seq = newest; seq > 0 && newest - seq < RING_SIZE && found < max; seq--) {
        const struct ml_ring_entry *e = &ring[seq % RING_SIZE];
        if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != seq)
            continue;
        struct ml_ring_entry copy = *e;
        if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != seq)
            continue;
        if (module && strcmp(copy.module, module) != 0)
            continue;
        out[max - 1 - found++] = copy;
    }
    memmove(out, out + (max - found), (size_t)found * sizeof *out);
    return found;
}
