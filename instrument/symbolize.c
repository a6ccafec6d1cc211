/* ELF symbol tables for naming native frames (see symbolize.h). */
#include "symbolize.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ml_sym {
    uintptr_t addr;
    uintptr_t size;
    const char *name;
};

/* One anonymous mapping: the header, the symbols, then a copy of the string table
 * (the file itself is not kept mapped). */
struct ml_symtab {
    struct ml_sym *syms;
    size_t count;
    char *strings;
};

static unsigned loads;

/* Memory from mmap, never malloc: the crash handler loads the tables a report needs
 * and finds not loaded yet (a process that met no finding loaded none). */
static void *map_anonymous(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* A radix sort, a byte of the address per pass: qsort's comparisons through a
 * function pointer were most of the cost of loading libpython's table, and qsort
 * may call malloc. */
static int sort_by_addr(struct ml_sym *syms, size_t n)
{
    struct ml_sym *tmp = n ? map_anonymous(n * sizeof *tmp) : NULL;
    if (!tmp)
        return n ? -1 : 0;
    uintptr_t bits = 0;
    for (size_t i = 0; i < n; i++)
        bits |= syms[i].addr;
    struct ml_sym *from = syms, *to = tmp;
    for (unsigned shift = 0; shift < 8 * sizeof bits && (bits >> shift); shift += 8) {
        size_t start[257] = {0};
        for (size_t i = 0; i < n; i++)
            start[((from[i].addr >> shift) & 255) + 1]++;
        for (int k = 0; k < 256; k++)
            start[k + 1] += start[k];
        for (size_t i = 0; i < n; i++)
            to[start[(from[i].addr >> shift) & 255]++] = from[i];
        struct ml_sym *swap = from;
        from = to;
        to = swap;
    }
    if (from != syms)
        memcpy(syms, from, n * sizeof *syms);
    munmap(tmp, n * sizeof *tmp);
    return 0;
}

static const Elf64_Shdr *find_section(const Elf64_Ehdr *eh, size_t file_size, Elf64_Word type)
{
    if (eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > file_size)
        return NULL;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)eh + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == type)
            return &sh[i];
    return NULL;
}

static struct ml_symtab *index_symbols(const char *base, size_t size, const Elf64_Shdr *symsec)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    if (symsec->sh_link >= eh->e_shnum || symsec->sh_offset + symsec->sh_size > size)
        return NULL;
    const Elf64_Shdr *strsec = &sh[symsec->sh_link];
    if (strsec->sh_offset + strsec->sh_size > size)
        return NULL;
    const Elf64_Sym *syms = (const Elf64_Sym *)(base + symsec->sh_offset);
    size_t n = symsec->sh_size / sizeof(Elf64_Sym);
    size_t table_size = sizeof(struct ml_symtab) + n * sizeof(struct ml_sym) + strsec->sh_size + 1;
    struct ml_symtab *t = map_anonymous(table_size);
    if (!t)
        return NULL;
    t->syms = (struct ml_sym *)(t + 1);
    t->strings = (char *)(t->syms + n);
    memcpy(t->strings, base + strsec->sh_offset, strsec->sh_size);
    t->strings[strsec->sh_size] = '\0';
    for (size_t i = 0; i < n; i++) {
        int type = ELF64_ST_TYPE(syms[i].st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || syms[i].st_shndx == SHN_UNDEF ||
            syms[i].st_value == 0 || syms[i].st_name >= strsec->sh_size)
            continue;
        t->syms[t->count++] = (struct ml_sym){syms[i].st_value, syms[i].st_size,
                                              t->strings + syms[i].st_name};
    }
    if (sort_by_addr(t->syms, t->count) != 0) {
        munmap(t, table_size);
        return NULL;
    }
    return t;
}

struct ml_symtab *ml_symtab_load(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    __atomic_add_fetch(&loads, 1, __ATOMIC_RELAXED);
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(Elf64_Ehdr))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return NULL;
    const Elf64_Ehdr *eh = map;
    struct ml_symtab *t = NULL;
    if (!memcmp(eh->e_ident, ELFMAG, SELFMAG) && eh->e_ident[EI_CLASS] == ELFCLASS64) {
        const Elf64_Shdr *sec = find_section(eh, (size_t)st.st_size, SHT_SYMTAB);
        if (!sec)
            sec = find_section(eh, (size_t)st.st_size, SHT_DYNSYM);
        if (sec)
            t = index_symbols(map, (size_t)st.st_size, sec);
    }
    /* Unmapped at once: a stray mapping of the file would also mislead libdw, which
     * takes the lowest mapping of a path in /proc/self/maps for its load address. */
    munmap(map, (size_t)st.st_size);
    return t;
}

const char *ml_symtab_lookup(const struct ml_symtab *t, uintptr_t vaddr)
{
    if (!t || !t->count)
        return NULL;
    size_t lo = 0, hi = t->count;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (t->syms[mid].addr <= vaddr)
            lo = mid;
        else
            hi = mid;
    }
    /* A sized symbol names only its own bytes: an address past the end of the
     * function below it belongs to one whose symbol is gone (stripped objects keep
     * only exported ones).  Symbols may nest or share an address: the nearest few
     * are tried.  A symbol of unknown size (0) names what follows it only when no
     * sized symbol does. */
    for (size_t i = lo + 1, tried = 0; i-- > 0 && tried < 16 && t->syms[i].addr <= vaddr; tried++) {
        const struct ml_sym *s = &t->syms[i];
        if (s->size && vaddr - s->addr < s->size)
            return s->name;
    }
    const struct ml_sym *s = &t->syms[lo];
    return s->addr <= vaddr && !s->size ? s->name : NULL;
}

unsigned ml_symtab_loads(void)
{
    return __atomic_load_n(&loads, __ATOMIC_RELAXED);
}
