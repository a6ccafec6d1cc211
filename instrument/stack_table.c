/* Interned stacks (see stack_table.h).  An open-addressing table of entries under
 * one lock; the lock is held while an entry's record is written, so that no thread
 * can name an id whose record is not yet in the log. */
#include "stack_table.h"

#include "log_writer.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Beyond this many distinct stacks (a few tens of MiB), new ones are not interned. */
#define MAX_ENTRIES (1u << 16)

struct ml_stack_entry {
    uint64_t hash;
    long long id;   /* in the log of `log`, under the lock */
    unsigned log;   /* the log it was written to, 0 for none yet */
    int depth;
    const char *python; /* NULL, or the text after ips */
    void *ips[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ml_stack_entry **slots;
static size_t capacity, count;
/* The log of this process: a forked child's is another. */
static unsigned current_log = 1;
static long long next_id = 1;
/* Written under the lock: not a second 48 KiB record on the caller's stack. */
static struct ml_record def_record;

static uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_of(const struct ml_stack *native, const char *python, size_t python_len)
{
    uint64_t h = mix(0x243F6A8885A308D3ull, (uint64_t)native->depth);
    for (int i = 0; i < native->depth; i++)
        h = mix(h, (uint64_t)(uintptr_t)native->ips[i]);
    h = mix(h, python ? python_len + 1 : 0);
    size_t i = 0;
    for (; i + 8 <= python_len; i += 8) {
        uint64_t w;
        memcpy(&w, python + i, 8);
        h = mix(h, w);
    }
    uint64_t tail = 0;
    if (python)
        memcpy(&tail, python + i, python_len - i);
    return mix(h, tail);
}

static int same(const struct ml_stack_entry *e, uint64_t hash, const struct ml_stack *native, const char *python)
{
    if (e->hash != hash || e->depth != native->depth || !e->python != !python)
        return 0;
    if (memcmp(e->ips, native->ips, (size_t)native->depth * sizeof native->ips[0]) != 0)
        return 0;
    return !python || strcmp(e->python, python) == 0;
}

static int grow(void)
{
    size_t cap = capacity ? capacity * 2 : 1024;
    struct ml_stack_entry **fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return -1;
    for (size_t i = 0; i < capacity; i++) {
        if (!slots[i])
            continue;
        size_t k = slots[i]->hash & (cap - 1);
        while (fresh[k])
            k = (k + 1) & (cap - 1);
        fresh[k] = slots[i];
    }
    free(slots);
    slots = fresh;
    capacity = cap;
    return 0;
}

static struct ml_stack_entry *make_entry(uint64_t hash, const struct ml_stack *native, const char *python,
                                         size_t python_len)
{
    size_t ips_size = (size_t)native->depth * sizeof native->ips[0];
    struct ml_stack_entry *e = malloc(sizeof *e + ips_size + (python ? python_len + 1 : 0));
    if (!e)
        return NULL;
    e->hash = hash;
    e->id = 0;
    e->log = 0;
    e->depth = native->depth;
    memcpy(e->ips, native->ips, ips_size);
    e->python = NULL;
    if (python) {
        char *text = (char *)e->ips + ips_size;
        memcpy(text, python, python_len + 1);
        e->python = text;
    }
    return e;
}

static void write_definition(const struct ml_stack_entry *e, ml_frames_writer write_frames)
{
    ml_record_begin(&def_record, ML_EVENT_STACK);
    json_kv_int(&def_record.j, "id", e->id);
    write_frames(&def_record.j, e->ips, e->depth, e->python);
    ml_record_end(&def_record);
}

const struct ml_stack_entry *ml_stack_intern(const struct ml_stack *native, const char *python)
{
    size_t python_len = python ? strlen(python) : 0;
    uint64_t hash = hash_of(native, python, python_len);
    struct ml_stack_entry *found = NULL;
    pthread_mutex_lock(&lock);
    if ((count + 1) * 2 > capacity && count < MAX_ENTRIES && grow() != 0)
        goto out;
    size_t k = hash & (capacity - 1);
    for (; slots[k]; k = (k + 1) & (capacity - 1)) {
        if (same(slots[k], hash, native, python)) {
            found = slots[k];
            goto out;
        }
    }
    if (count < MAX_ENTRIES && (found = make_entry(hash, native, python, python_len)) != NULL) {
        slots[k] = found;
        count++;
    }
out:
    pthread_mutex_unlock(&lock);
    return found;
}

void ml_stack_entry_frames(const struct ml_stack_entry *e, void *const **ips, int *depth, const char **python)
{
    *ips = e->ips;
    *depth = e->depth;
    *python = e->python;
}

void ml_stack_entry_write_id(struct json *j, const struct ml_stack_entry *e, ml_frames_writer write_frames)
{
    struct ml_stack_entry *entry = (struct ml_stack_entry *)e; /* only id and log change */
    pthread_mutex_lock(&lock);
    if (entry->log != current_log) {
        entry->id = next_id++;
        entry->log = current_log;
        write_definition(entry, write_frames);
    }
    long long id = entry->id;
    pthread_mutex_unlock(&lock);
    json_kv_int(j, "stack_id", id);
}

void ml_stack_table_atfork_prepare(void) { pthread_mutex_lock(&lock); }
void ml_stack_table_atfork_parent(void) { pthread_mutex_unlock(&lock); }

/* The log was cut under us (rotation): every stack is written again when next named.
 * Ids go on counting, so that a record already on its way names no other stack; no
 * lock, since the caller may be writing a stack record under it. */
void ml_stack_table_new_log(void)
{
    __atomic_add_fetch(&current_log, 1, __ATOMIC_RELEASE);
}

/* Entries stay (the inherited records point at them); their ids were the parent's. */
void ml_stack_table_atfork_child(void)
{
    current_log++;
    next_id = 1;
    pthread_mutex_unlock(&lock);
}
