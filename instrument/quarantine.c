/* State quarantine (see quarantine.h). */
#include "quarantine.h"

#include "pyapi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION_SIZE (1UL << 30)     /* virtual only: pages are touched as states are made */
#define MAX_BLOCKS 65536

/* PyMemAllocatorEx and PYMEM_DOMAIN_MEM, identical in 3.9 to 3.13. */
struct mem_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
};
#define PYMEM_DOMAIN_MEM 1

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* writers only */
static struct mem_allocator original;
static void *(*pymem_malloc)(size_t); /* the allocator in place, whoever's it is */
static int installed;
static uintptr_t region, region_used;
static struct ml_quarantined *blocks; /* append-only, sorted by address */
static size_t block_count;            /* published with release stores */
static size_t page_size;

static int in_region(const void *ptr)
{
    return region && (uintptr_t)ptr >= region && (uintptr_t)ptr < region + REGION_SIZE;
}

static struct ml_quarantined *find_block(uintptr_t addr)
{
    size_t lo = 0, hi = __atomic_load_n(&block_count, __ATOMIC_ACQUIRE);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uintptr_t pages_end = (blocks[mid].end + page_size - 1) & ~(page_size - 1);
        if (addr < blocks[mid].start)
            hi = mid;
        else if (addr >= pages_end)
            lo = mid + 1;
        else
            return &blocks[mid];
    }
    return NULL;
}

const struct ml_quarantined *ml_quarantine_find(uintptr_t addr)
{
    return in_region((void *)addr) ? find_block(addr) : NULL;
}

/* CPython frees a quarantined state: keep the pages, inaccessible. */
static void release(void *ptr)
{
    pthread_mutex_lock(&lock);
    struct ml_quarantined *b = find_block((uintptr_t)ptr);
    if (!b || b->freed) {
        pthread_mutex_unlock(&lock);
        return;
    }
    struct ml_stack here;
    ml_stack_capture(&here, ML_SAVED_DEPTH);
    memcpy(b->freed_at, here.ips, (size_t)here.depth * sizeof here.ips[0]);
    b->freed_depth = here.depth;
    uintptr_t pages = b->start, pages_end = (b->end + page_size - 1) & ~(page_size - 1);
    /* Fresh PROT_NONE pages: the memory goes back to the system, the range stays ours. */
    mmap((void *)pages, pages_end - pages, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    __atomic_store_n(&b->freed, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
}

static void *hook_malloc(void *ctx, size_t size) { (void)ctx; return original.malloc(original.ctx, size); }
static void *hook_calloc(void *ctx, size_t n, size_t size) { (void)ctx; return original.calloc(original.ctx, n, size); }

static void *hook_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (!in_region(ptr))
        return original.realloc(original.ctx, ptr, size);
    /* Nobody resizes module state; if someone does, move it out and quarantine the old. */
    const struct ml_quarantined *b = find_block((uintptr_t)ptr);
    void *moved = original.malloc(original.ctx, size ? size : 1);
    if (moved && b)
        memcpy(moved, ptr, b->end - b->start < size ? b->end - b->start : size);
    release(ptr);
    return moved;
}

static void hook_free(void *ctx, void *ptr)
{
    (void)ctx;
    if (in_region(ptr))
        release(ptr);
    else
        original.free(original.ctx, ptr);
}

void ml_quarantine_install(void)
{
    if (installed)
        return;
    installed = 1;
    void (*get)(int, struct mem_allocator *) = (void (*)(int, struct mem_allocator *))dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
    void (*set)(int, struct mem_allocator *) = (void (*)(int, struct mem_allocator *))dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    void *r = mmap(NULL, REGION_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *t = mmap(NULL, MAX_BLOCKS * sizeof *blocks, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    pymem_malloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "PyMem_Malloc");
    if (!get || !set || !pymem_malloc || r == MAP_FAILED || t == MAP_FAILED)
        return;
    blocks = t;
    get(PYMEM_DOMAIN_MEM, &original);
    struct mem_allocator ours = {NULL, hook_malloc, hook_calloc, hook_realloc, hook_free};
    region = (uintptr_t)r; /* before the hooks see any pointer */
    set(PYMEM_DOMAIN_MEM, &ours);
}

/* Where the module object keeps its state (pyabi.h; checked at adoption). */
static void **state_slot(PyObject *module)
{
    return &((ml_module_head *)module)->md_state;
}

void ml_quarantine_give_back(PyObject *module)
{
    void **slot = state_slot(module);
    void *state = *slot;
    if (!in_region(state))
        return;
    const struct ml_quarantined *b = find_block((uintptr_t)state);
    if (!b || b->freed)
        return;
    void *fresh = pymem_malloc(b->end - b->start);
    if (!fresh)
        return; /* the hooks still catch it, if they are in place */
    *slot = fresh;
    release(state);
}

void *ml_quarantine_adopt(PyObject *module, size_t size, const char *name, unsigned long long instance,
                          long long interp, const struct ml_saved_stack *created)
{
    void **slot = state_slot(module);
    void *state = py.PyModule_GetState(module);
    if (!region || !size || !state || *slot != state)
        return NULL; /* not installed, stateless, or a layout we do not know */
    size_t span = ((size + page_size - 1) & ~(page_size - 1)) + page_size; /* + a guard page */
    pthread_mutex_lock(&lock);
    uintptr_t start = region + region_used;
    if (block_count == MAX_BLOCKS || region_used + span > REGION_SIZE ||
        mprotect((void *)start, span - page_size, PROT_READ | PROT_WRITE) != 0) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    region_used += span;
    memcpy((void *)start, state, size);
    struct ml_quarantined *b = &blocks[block_count];
    memset(b, 0, sizeof *b);
    b->start = start;
    b->end = start + size;
    b->module = name;
    b->instance = instance;
    b->interp = interp;
    b->created_depth = created->depth;
    if (created->depth)
        memcpy(b->created, created->ips, (size_t)created->depth * sizeof created->ips[0]);
    __atomic_store_n(&block_count, block_count + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
    *slot = (void *)start;
    original.free(original.ctx, state);
    return (void *)start;
}
