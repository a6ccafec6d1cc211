/* Loaded ELF objects: ids, object-load records, patching candidates (see elf_objects.h). */
#include "elf_objects.h"

#include "log_writer.h"
#include "options.h"
#include "pyapi.h"
#include "say.h"
#include "symbolize.h"
#include "thread_cache.h"

#include <elf.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ml_object {
    char *path;
    uintptr_t base, lo, hi; /* [lo, hi): its PT_LOAD segments */
    char build_id[41];
    int id;
    int patched;
    int candidate;
    int python_refs; /* references to the C-API: extension code */
    enum ml_patch_scope scope;
    int symbols; /* enum symbols, atomic: the crash handler may load them */
    struct ml_symtab *symtab;
};

/* The table is read without the lock by the crash handler and by the findings'
 * place and report code (ml_objects_is_extension, ml_objects_resolve_unlocked),
 * while another thread's dlopen may be adding to it under the lock.  So it is
 * never moved (a realloc would free what such a reader is reading): entries live in
 * blocks that are allocated once and never freed, and an entry is complete before
 * object_count, stored with release, makes it visible to acquiring readers.
 * Entries do not change once visible, but for their symbols (below). */
#define BLOCK_OBJECTS 64
#define MAX_BLOCKS 1024

/* Symbol tables are loaded the first time a finding names a frame of the object:
 * lifetime records' stacks are written unnamed, so a process without findings
 * loads none.  Whoever moves NONE to LOADING loads; the crash handler, which takes
 * no lock, races the others by that exchange alone. */
enum symbols { SYMBOLS_NONE, SYMBOLS_LOADING, SYMBOLS_LOADED };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ml_object *blocks[MAX_BLOCKS];
static int object_count;
static uintptr_t self_lo, self_hi;

static void build_id_of(const struct dl_phdr_info *info, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const Elf64_Phdr *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(Elf64_Nhdr) <= end) {
            const Elf64_Nhdr *n = (const Elf64_Nhdr *)p;
            const char *name = p + sizeof *n;
            const unsigned char *desc = (const unsigned char *)name + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                unsigned len = n->n_descsz > 20 ? 20 : n->n_descsz;
                for (unsigned k = 0; k < len; k++) {
                    out[2 * k] = hex[desc[k] >> 4];
                    out[2 * k + 1] = hex[desc[k] & 15];
                }
                out[2 * len] = '\0';
                return;
            }
            p = (const char *)desc + ((n->n_descsz + 3) & ~3u);
        }
    }
}

static void load_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    *lo = UINTPTR_MAX;
    *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const Elf64_Phdr *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (start < *lo)
            *lo = start;
        if (end > *hi)
            *hi = end;
    }
}

static struct ml_object *object_at(int id)
{
    return &blocks[id / BLOCK_OBJECTS][id % BLOCK_OBJECTS];
}

static int visible_count(void)
{
    return __atomic_load_n(&object_count, __ATOMIC_ACQUIRE);
}

static struct ml_object *find_by_range(uintptr_t addr)
{
    for (int i = 0, n = visible_count(); i < n; i++) {
        struct ml_object *o = object_at(i);
        if (addr >= o->lo && addr < o->hi)
            return o;
    }
    return NULL;
}

/* The next entry, zeroed, in a block of its own; NULL when none can be had. */
static struct ml_object *next_entry(void)
{
    int block = object_count / BLOCK_OBJECTS;
    if (block >= MAX_BLOCKS)
        return NULL;
    if (!blocks[block] && !(blocks[block] = calloc(BLOCK_OBJECTS, sizeof *blocks[block])))
        return NULL;
    return object_at(object_count);
}

static char *object_path(const struct dl_phdr_info *info)
{
    if (info->dlpi_name && info->dlpi_name[0])
        return strdup(info->dlpi_name);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    return strdup(exe);
}

/* Extension code: anything but the executable, the object defining the C-API,
 * the dynamic linker, the vDSO and modlife itself. */
static int is_patch_candidate(const struct dl_phdr_info *info, uintptr_t lo, uintptr_t hi)
{
    if (!info->dlpi_name || !info->dlpi_name[0])
        return 0;
    uintptr_t api = (uintptr_t)py.PyModule_GetState;
    if (api >= lo && api < hi)
        return 0;
    if (self_lo >= lo && self_lo < hi)
        return 0;
    return !strstr(info->dlpi_name, "linux-vdso") && !strstr(info->dlpi_name, "/ld-linux");
}

static void log_object(const struct ml_object *o, int candidate)
{
    struct ml_record r;
    ml_record_begin(&r, ML_EVENT_OBJECT_LOAD);
    json_kv_int(&r.j, "id", o->id);
    json_kv_string(&r.j, "path", o->path);
    json_kv_hex(&r.j, "base", o->base);
    json_kv_hex(&r.j, "start", o->lo);
    json_kv_hex(&r.j, "end", o->hi);
    json_kv_string(&r.j, "build_id", o->build_id);
    if (candidate) {
        /* Under LD_AUDIT the PLT is redirected at binding time, not counted here. */
        json_kv_string(&r.j, "hooked_by", o->scope == ML_PATCH_ALL ? "got" : "got+audit");
        json_kv_int(&r.j, "patched", o->patched);
    }
    ml_record_end(&r);
}

struct scan_ctx {
    enum ml_patch_scope scope;
    ml_patch_lookup lookup;
};

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct scan_ctx *ctx = arg;
    uintptr_t lo, hi;
    load_range(info, &lo, &hi);
    if (lo >= hi || find_by_range(lo))
        return 0;
    struct ml_object *o = next_entry();
    if (!o)
        return 1;
    memset(o, 0, sizeof *o);
    o->path = object_path(info);
    o->base = info->dlpi_addr;
    o->lo = lo;
    o->hi = hi;
    o->id = object_count;
    build_id_of(info, o->build_id);
    int candidate = o->candidate = is_patch_candidate(info, lo, hi);
    o->scope = ctx->scope;
    if (candidate)
        o->patched = ml_got_patch(info, ctx->scope, ctx->lookup, &o->python_refs);
    log_object(o, candidate);
    __atomic_store_n(&object_count, o->id + 1, __ATOMIC_RELEASE);
    if (candidate && o->python_refs > 0 && ml_opts.verbosity >= 2)
        ml_say("%d of the %d C-API references of %s go to hooks (%s)", o->patched, o->python_refs, o->path,
               o->scope == ML_PATCH_ALL ? "got" : "got; its PLT at binding, LD_AUDIT");
    return 0;
}

static void find_self(void)
{
    Dl_info info;
    struct link_map *map;
    if (self_hi || !dladdr1((void *)find_self, &info, (void **)&map, RTLD_DL_LINKMAP))
        return;
    self_lo = (uintptr_t)info.dli_fbase;
    self_hi = self_lo;
    /* Its extent: the last PT_LOAD end, read from its program headers. */
    const Elf64_Ehdr *eh = info.dli_fbase;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && map->l_addr + ph[i].p_vaddr + ph[i].p_memsz > self_hi)
            self_hi = map->l_addr + ph[i].p_vaddr + ph[i].p_memsz;
}

void ml_objects_scan(enum ml_patch_scope scope, ml_patch_lookup lookup)
{
    struct scan_ctx ctx = {scope, lookup};
    pthread_mutex_lock(&lock);
    find_self();
    dl_iterate_phdr(add_object, &ctx);
    pthread_mutex_unlock(&lock);
}

int ml_objects_is_self(uintptr_t addr)
{
    return addr >= self_lo && addr < self_hi;
}

/* The object's function at addr, its table loaded first if nobody has. */
static const char *function_of(struct ml_object *o, uintptr_t addr)
{
    int state = SYMBOLS_NONE;
    if (__atomic_compare_exchange_n(&o->symbols, &state, SYMBOLS_LOADING, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_ACQUIRE)) {
        o->symtab = ml_symtab_load(o->path);
        __atomic_store_n(&o->symbols, SYMBOLS_LOADED, __ATOMIC_RELEASE);
        state = SYMBOLS_LOADED;
    }
    return state == SYMBOLS_LOADED ? ml_symtab_lookup(o->symtab, addr - o->base) : NULL;
}

struct ml_object_ref ml_objects_resolve_unlocked(uintptr_t addr, int symbolize)
{
    struct ml_object_ref ref = {-1, 0, NULL, NULL};
    struct ml_object *o = find_by_range(addr);
    if (o) {
        ref.id = o->id;
        ref.base = o->base;
        ref.path = o->path;
        if (symbolize)
            ref.function = function_of(o, addr);
    }
    return ref;
}

static struct ml_object_ref resolve_locked(uintptr_t addr, int symbolize)
{
    pthread_mutex_lock(&lock);
    struct ml_object_ref ref = ml_objects_resolve_unlocked(addr, symbolize);
    pthread_mutex_unlock(&lock);
    return ref;
}

/* Every frame of every stack written comes here, and the same few hundred return
 * addresses recur: a per-thread cache spares the lock, the scan of the objects and
 * the symbol search.  Objects are only ever added and their symbols only loaded
 * once, so a found entry stays true; misses are not kept. */
#define RESOLVE_CACHE 256

struct resolved {
    uintptr_t addr;
    int symbolized;
    struct ml_object_ref ref;
};

static __thread struct resolved *resolve_cache __attribute__((tls_model("initial-exec")));

struct ml_object_ref ml_objects_resolve(uintptr_t addr, int symbolize)
{
    struct resolved *cache = resolve_cache ? resolve_cache
                                           : ml_thread_cache_alloc(RESOLVE_CACHE * sizeof *cache,
                                                                   (void **)&resolve_cache);
    if (!cache)
        return resolve_locked(addr, symbolize);
    struct resolved *e = &cache[(addr ^ (addr >> 9)) % RESOLVE_CACHE];
    if (e->addr == addr && addr && (e->symbolized || !symbolize)) {
        struct ml_object_ref ref = e->ref;
        if (!symbolize)
            ref.function = NULL;
        return ref;
    }
    struct ml_object_ref ref = resolve_locked(addr, symbolize);
    if (ref.id >= 0)
        *e = (struct resolved){addr, symbolize, ref};
    return ref;
}


int ml_objects_is_extension(int id)
{
    return id >= 0 && id < visible_count() && object_at(id)->candidate && object_at(id)->python_refs > 0;
}

void ml_objects_relog_all(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < object_count; i++)
        log_object(object_at(i), object_at(i)->candidate);
    pthread_mutex_unlock(&lock);
}

int ml_objects_try_relog_all(void)
{
    if (pthread_mutex_trylock(&lock) != 0)
        return 0;
    for (int i = 0; i < object_count; i++)
        log_object(object_at(i), object_at(i)->candidate);
    pthread_mutex_unlock(&lock);
    return 1;
}

void ml_objects_atfork_prepare(void) { pthread_mutex_lock(&lock); }
void ml_objects_atfork_release(void) { pthread_mutex_unlock(&lock); }
