/* Unit test of the address-keyed map under the registries (instrument/ptrmap.c):
 * lookups, replacement, removal leaving tombstones that later probes pass over,
 * growth and rehashing with thousands of keys, and the walk over live entries. */
#include "ptrmap.h"

#include "harness.h"

#include <stdint.h>
#include <stdlib.h>

#define N 5000

/* Keys as the registries have them: object addresses, 16 bytes apart. */
static const void *key(size_t i)
{
    return (const void *)(uintptr_t)(0x7f0000001000u + i * 16);
}

static void *value(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

static void count_and_sum(void *v, void *arg)
{
    uintptr_t *acc = arg;
    acc[0]++;
    acc[1] += (uintptr_t)v;
}

int main(void)
{
    struct ptrmap m = {0};
    CHECK(ptrmap_get(&m, key(0)) == NULL);
    CHECK(ptrmap_remove(&m, key(0)) == NULL);
    uintptr_t acc[2] = {0, 0};
    ptrmap_each(&m, count_and_sum, acc);
    CHECK_INT(acc[0], 0);

    int put_failed = 0, wrong = 0;
    for (size_t i = 0; i < N; i++)
        put_failed += ptrmap_put(&m, key(i), value(i)) != 0;
    CHECK_INT(put_failed, 0);
    CHECK_INT(m.live, N);
    CHECK(m.capacity >= 2 * m.used && (m.capacity & (m.capacity - 1)) == 0); /* at most half full */
    for (size_t i = 0; i < N; i++)
        wrong += ptrmap_get(&m, key(i)) != value(i);
    CHECK_INT(wrong, 0);
    CHECK(ptrmap_get(&m, key(N)) == NULL);

    /* Replacing keeps one entry. */
    CHECK(ptrmap_put(&m, key(7), value(70)) == 0 && ptrmap_get(&m, key(7)) == value(70));
    CHECK_INT(m.live, N);
    CHECK(ptrmap_put(&m, key(7), value(7)) == 0);

    /* Every other key removed: the rest are still found past the tombstones. */
    for (size_t i = 0; i < N; i += 2)
        wrong += ptrmap_remove(&m, key(i)) != value(i);
    CHECK_INT(wrong, 0);
    CHECK_INT(m.live, N / 2);
    for (size_t i = 0; i < N; i++)
        wrong += ptrmap_get(&m, key(i)) != (i % 2 ? value(i) : NULL);
    CHECK_INT(wrong, 0);
    CHECK(ptrmap_remove(&m, key(0)) == NULL); /* twice: nothing */

    acc[0] = acc[1] = 0;
    ptrmap_each(&m, count_and_sum, acc);
    uintptr_t sum = 0;
    for (size_t i = 1; i < N; i += 2)
        sum += (uintptr_t)value(i);
    CHECK_INT(acc[0], N / 2);
    CHECK_INT(acc[1], sum);

    /* Churn (types made and freed in a loop): tombstones are reclaimed, the map does
     * not grow without bound. */
    size_t capacity = m.capacity;
    for (size_t round = 0; round < 20; round++) {
        for (size_t i = 0; i < N; i += 2)
            put_failed += ptrmap_put(&m, key(N + round * N + i), value(i)) != 0;
        for (size_t i = 0; i < N; i += 2)
            wrong += ptrmap_remove(&m, key(N + round * N + i)) != value(i);
    }
    CHECK_INT(put_failed, 0);
    CHECK_INT(wrong, 0);
    CHECK_INT(m.live, N / 2);
    CHECK(m.capacity <= 2 * capacity);
    for (size_t i = 1; i < N; i += 2)
        wrong += ptrmap_get(&m, key(i)) != value(i);
    CHECK_INT(wrong, 0);
    free(m.slots);
    return harness_done("test_ptrmap");
}
