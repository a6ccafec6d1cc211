/* Address-keyed hash map (see ptrmap.h). */
#include "ptrmap.h"

#include <stdint.h>
#include <stdlib.h>

#define PTRMAP_TOMBSTONE ((const void *)1)

static size_t hash(const void *key)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static struct ptrmap_slot *find(const struct ptrmap *m, const void *key)
{
    if (!m->capacity)
        return NULL;
    size_t mask = m->capacity - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        struct ptrmap_slot *s = &m->slots[i];
        if (s->key == key)
            return s;
        if (!s->key)
            return NULL;
    }
}

void *ptrmap_get(const struct ptrmap *m, const void *key)
{
    struct ptrmap_slot *s = find(m, key);
    return s ? s->value : NULL;
}

static int grow(struct ptrmap *m)
{
    size_t capacity = m->capacity ? m->capacity * 2 : 64;
    if (m->live * 4 < m->capacity)
        capacity = m->capacity; /* mostly tombstones: rehash in place */
    struct ptrmap_slot *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return -1;
    struct ptrmap old = *m;
    m->slots = slots;
    m->capacity = capacity;
    m->used = m->live = 0;
    for (size_t i = 0; i < old.capacity; i++)
        if (old.slots[i].key && old.slots[i].key != PTRMAP_TOMBSTONE)
            ptrmap_put(m, old.slots[i].key, old.slots[i].value);
    free(old.slots);
    return 0;
}

int ptrmap_put(struct ptrmap *m, const void *key, void *value)
{
    struct ptrmap_slot *s = find(m, key);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 2 > m->capacity && grow(m) != 0) /* at most half full: short probes */
        return -1;
    size_t mask = m->capacity - 1;
    size_t i = hash(key) & mask;
    while (m->slots[i].key && m->slots[i].key != PTRMAP_TOMBSTONE)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->live++;
    return 0;
}

void *ptrmap_remove(struct ptrmap *m, const void *key)
{
    struct ptrmap_slot *s = find(m, key);
    if (!s)
        return NULL;
    void *value = s->value;
    s->key = PTRMAP_TOMBSTONE;
    s->value = NULL;
    m->live--;
    return value;
}

void ptrmap_each(const struct ptrmap *m, void (*fn)(void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->capacity; i++)
        if (m->slots[i].key && m->slots[i].key != PTRMAP_TOMBSTONE)
            fn(m->slots[i].value, arg);
}
