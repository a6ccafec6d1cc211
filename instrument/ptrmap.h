/* An open-addressing hash map from addresses to records.  Not thread-safe: the
 * registry serialises access.  Lookups never allocate. */
#ifndef MODLIFE_PTRMAP_H
#define MODLIFE_PTRMAP_H

#include <stddef.h>

struct ptrmap_slot {
    const void *key; /* NULL: empty; PTRMAP_TOMBSTONE: removed */
    void *value;
};

struct ptrmap {
    struct ptrmap_slot *slots;
    size_t capacity; /* a power of two */
    size_t used;     /* live and tombstones */
    size_t live;
};

void *ptrmap_get(const struct ptrmap *m, const void *key);
int ptrmap_put(struct ptrmap *m, const void *key, void *value); /* -1 when out of memory */
void *ptrmap_remove(struct ptrmap *m, const void *key);

/* Calls fn for every live entry, in no particular order. */
void ptrmap_each(const struct ptrmap *m, void (*fn)(void *value, void *arg), void *arg);

#endif
