/* Pointers to dead things in an extension's C globals (see global_scan.h). */
#include "global_scan.h"

#include "demangle.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define RANGES 8
/* Instances: at most this many words are read through the kernel per scan. */
#define PROBES_MAX 65536

struct owner {
    uintptr_t anchor;
    uintptr_t base, lo, hi;  /* load bias, extent of the PT_LOAD segments */
    uintptr_t relro_lo, relro_hi;
    uintptr_t data_lo[RANGES], data_hi[RANGES];
    int ranges;
    char path[4096];
};

static int contains(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr >= start && addr < start + ph->p_memsz)
            return 1;
    }
    return 0;
}

static int find_owner(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct owner *o = arg;
    if (!contains(info, o->anchor))
        return 0;
    o->base = info->dlpi_addr;
    o->lo = UINTPTR_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (ph->p_type == PT_GNU_RELRO) {
            o->relro_lo = start;
            o->relro_hi = end;
        }
        if (ph->p_type != PT_LOAD)
            continue;
        o->lo = start < o->lo ? start : o->lo;
        o->hi = end > o->hi ? end : o->hi;
        if ((ph->p_flags & PF_W) && o->ranges < RANGES) {
            o->data_lo[o->ranges] = start;
            o->data_hi[o->ranges++] = end;
        }
    }
    snprintf(o->path, sizeof o->path, "%s", info->dlpi_name ? info->dlpi_name : "");
    return 1;
}

/* The writable words of the object, the part made read-only after relocation (the
 * GOT, .data.rel.ro: addresses of functions and constants, no objects) left out. */
static int owner_of(const void *anchor, struct owner *o)
{
    memset(o, 0, sizeof *o);
    o->anchor = (uintptr_t)anchor;
    return anchor && dl_iterate_phdr(find_owner, o) && o->ranges && o->path[0];
}

typedef int (*word_test)(uintptr_t word, const struct owner *o, const void *arg);

static int scan(const struct owner *o, word_test test, const void *arg, struct ml_global_hit *hits, int max);

/* --- naming --------------------------------------------------------------------- */

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const ElfW(Shdr) *section(const ElfW(Ehdr) *eh, size_t size, ElfW(Word) type)
{
    if (!eh->e_shoff || eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > size)
        return NULL;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)((const char *)eh + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == type)
            return &sh[i];
    return NULL;
}

/* The data symbol covering vaddr and, for a static one, the source file that the
 * symbol table lists before it (STT_FILE). */
static int symbol_name(const char *map, size_t size, uintptr_t vaddr, const char *object, char *out, size_t out_size)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)map;
    const ElfW(Shdr) *symsec = section(eh, size, SHT_SYMTAB);
    if (!symsec)
        symsec = section(eh, size, SHT_DYNSYM);
    if (!symsec || symsec->sh_link >= eh->e_shnum || symsec->sh_offset + symsec->sh_size > size)
        return 0;
    const ElfW(Shdr) *strsec = (const ElfW(Shdr) *)(map + eh->e_shoff) + symsec->sh_link;
    if (strsec->sh_offset + strsec->sh_size > size)
        return 0;
    const ElfW(Sym) *syms = (const ElfW(Sym) *)(map + symsec->sh_offset);
    const char *strings = map + strsec->sh_offset;
    const char *file = NULL;
    for (size_t i = 0, n = symsec->sh_size / sizeof *syms; i < n; i++) {
        const ElfW(Sym) *s = &syms[i];
        if (s->st_name >= strsec->sh_size)
            continue;
        int type = ELF64_ST_TYPE(s->st_info);
        if (type == STT_FILE)
            file = strings + s->st_name;
        if ((type != STT_OBJECT && type != STT_NOTYPE) || s->st_shndx == SHN_UNDEF || !s->st_name ||
            vaddr < s->st_value || vaddr - s->st_value >= (s->st_size ? s->st_size : 1))
            continue;
        int local = ELF64_ST_BIND(s->st_info) == STB_LOCAL;
        char demangled[96];
        snprintf(out, out_size, "%.90s in %.60s", ml_demangle(strings + s->st_name, demangled, sizeof demangled),
                 local && file ? file : object);
        return 1;
    }
    return 0;
}

static void name_global(const struct owner *o, uintptr_t where, char *out, size_t out_size)
{
    const char *object = basename_of(o->path);
    snprintf(out, out_size, "%.120s+0x%lx", object, (unsigned long)(where - o->base));
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(ElfW(Ehdr)))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    if (!memcmp(map, ELFMAG, SELFMAG))
        symbol_name(map, (size_t)st.st_size, where - o->base, object, out, out_size);
    munmap(map, (size_t)st.st_size);
}

/* --- scanning ------------------------------------------------------------------- */

static int scan(const struct owner *o, word_test test, const void *arg, struct ml_global_hit *hits, int max)
{
    int found = 0;
    size_t budget = ML_GLOBAL_SCAN_MAX;
    for (int r = 0; r < o->ranges && found < max && budget; r++) {
        uintptr_t start = (o->data_lo[r] + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
        for (uintptr_t a = start; a + sizeof(void *) <= o->data_hi[r] && found < max && budget;
             a += sizeof(void *), budget -= sizeof(void *)) {
            if (a >= o->relro_lo && a < o->relro_hi)
                continue;
            int target = test(*(const uintptr_t *)a, o, arg);
            if (target < 0)
                continue;
            hits[found] = (struct ml_global_hit){.where = a, .target = target};
            name_global(o, a, hits[found].name, sizeof hits[found].name);
            found++;
        }
    }
    return found;
}

struct targets {
    const uintptr_t *v;
    int n;
};

static int equals_target(uintptr_t word, const struct owner *o, const void *arg)
{
    (void)o;
    const struct targets *t = arg;
    for (int i = 0; i < t->n; i++)
        if (word == t->v[i] && word)
            return i;
    return -1;
}

int ml_global_scan(const void *anchor, const uintptr_t *targets, int n, struct ml_global_hit *hits, int max)
{
    struct owner o;
    if (n <= 0 || max <= 0 || !owner_of(anchor, &o))
        return 0;
    struct targets t = {targets, n};
    return scan(&o, equals_target, &t, hits, max);
}

struct instance_probe {
    uintptr_t type;
    int probes;
};

static int instance_of(uintptr_t word, const struct owner *o, const void *arg)
{
    struct instance_probe *p = (struct instance_probe *)arg;
    if (word < 65536 || word % sizeof(void *) || (word >= o->lo && word < o->hi) || word == p->type ||
        p->probes >= PROBES_MAX)
        return -1;
    p->probes++;
    uintptr_t head[2]; /* ob_refcnt, ob_type */
    struct iovec local = {head, sizeof head}, remote = {(void *)word, sizeof head};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof head)
        return -1;
    return head[1] == p->type && (intptr_t)head[0] > 0 ? 0 : -1;
}

int ml_global_scan_instances(const void *anchor, uintptr_t type, struct ml_global_hit *hits, int max)
{
    struct owner o;
    if (!type || max <= 0 || !owner_of(anchor, &o))
        return 0;
    struct instance_probe p = {type, 0};
    return scan(&o, instance_of, &p, hits, max);
}

/* --- remembered globals, for the fatal-signal handler --------------------------- */

#define REMEMBERED 256

static struct remembered {
    uintptr_t start, end;
    char name[160];
    int ready;
} remembered[REMEMBERED];
static int remembered_count;

void ml_global_remember(uintptr_t start, uintptr_t end, const char *name)
{
    int i = __atomic_fetch_add(&remembered_count, 1, __ATOMIC_RELAXED);
    if (i >= REMEMBERED)
        return; /* the findings were reported; only the later naming is lost */
    remembered[i].start = start;
    remembered[i].end = end > start ? end : start + 1;
    snprintf(remembered[i].name, sizeof remembered[i].name, "%s", name);
    __atomic_store_n(&remembered[i].ready, 1, __ATOMIC_RELEASE);
}

const char *ml_global_named(uintptr_t addr)
{
    int n = __atomic_load_n(&remembered_count, __ATOMIC_ACQUIRE);
    for (int i = (n < REMEMBERED ? n : REMEMBERED); i-- > 0;)
        if (__atomic_load_n(&remembered[i].ready, __ATOMIC_ACQUIRE) && addr >= remembered[i].start &&
            addr < remembered[i].end)
            return remembered[i].name;
    return NULL;
}
