/* GOT/PLT relocation patching (see got_patch.h). */
#include "got_patch.h"

#include <elf.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ML_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define ML_R_GLOB_DAT R_X86_64_GLOB_DAT
#define ML_R_ABS64 R_X86_64_64
#elif defined(__aarch64__)
#define ML_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define ML_R_GLOB_DAT R_AARCH64_GLOB_DAT
#define ML_R_ABS64 R_AARCH64_ABS64
#else
#error "modlife patches relocations on x86_64 and aarch64 only"
#endif

struct dynamic_info {
    const Elf64_Sym *symtab;
    const char *strtab;
    const Elf64_Rela *jmprel, *rela;
    size_t jmprel_size, rela_size;
    uintptr_t relro_start, relro_end;
};

/* glibc relocates d_ptr in place on most targets; a value below the base is not. */
static uintptr_t dyn_ptr(uintptr_t base, Elf64_Addr ptr)
{
    return ptr < base ? base + ptr : ptr;
}

static int read_dynamic(const struct dl_phdr_info *obj, struct dynamic_info *info)
{
    const Elf64_Dyn *dyn = NULL;
    memset(info, 0, sizeof *info);
    for (int i = 0; i < obj->dlpi_phnum; i++) {
        const Elf64_Phdr *ph = &obj->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const Elf64_Dyn *)(obj->dlpi_addr + ph->p_vaddr);
        else if (ph->p_type == PT_GNU_RELRO) {
            info->relro_start = obj->dlpi_addr + ph->p_vaddr;
            info->relro_end = info->relro_start + ph->p_memsz;
        }
    }
    if (!dyn)
        return -1;
    int plt_is_rela = 1;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: info->symtab = (const Elf64_Sym *)dyn_ptr(obj->dlpi_addr, dyn->d_un.d_ptr); break;
        case DT_STRTAB: info->strtab = (const char *)dyn_ptr(obj->dlpi_addr, dyn->d_un.d_ptr); break;
        case DT_JMPREL: info->jmprel = (const Elf64_Rela *)dyn_ptr(obj->dlpi_addr, dyn->d_un.d_ptr); break;
        case DT_PLTRELSZ: info->jmprel_size = dyn->d_un.d_val; break;
        case DT_PLTREL: plt_is_rela = dyn->d_un.d_val == DT_RELA; break;
        case DT_RELA: info->rela = (const Elf64_Rela *)dyn_ptr(obj->dlpi_addr, dyn->d_un.d_ptr); break;
        case DT_RELASZ: info->rela_size = dyn->d_un.d_val; break;
        default: break;
        }
    }
    if (!plt_is_rela)
        info->jmprel = NULL; /* REL-style PLT does not occur on our targets */
    return info->symtab && info->strtab ? 0 : -1;
}

static void write_slot(const struct dynamic_info *info, void **slot, void *value)
{
    if (*slot == value)
        return;
    uintptr_t addr = (uintptr_t)slot;
    if (addr >= info->relro_start && addr < info->relro_end) {
        long page = sysconf(_SC_PAGESIZE);
        void *start = (void *)(addr & ~((uintptr_t)page - 1));
        if (mprotect(start, (size_t)page, PROT_READ | PROT_WRITE) != 0)
            return;
        __atomic_store_n(slot, value, __ATOMIC_RELEASE);
        mprotect(start, (size_t)page, PROT_READ);
        return;
    }
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
}

static int is_python_name(const char *name)
{
    if (name[0] == '_')
        name++;
    return name[0] == 'P' && name[1] == 'y';
}

/* What a relocation table is read for. */
enum table_use {
    PATCH_ALL,        /* JUMP_SLOT, GLOB_DAT and absolute references */
    PATCH_JUMP_SLOTS, /* the PLT's table: its JUMP_SLOTs */
    COUNT_ONLY,       /* references to Python counted, none rewritten (LD_AUDIT's PLT) */
};

static int patch_table(const struct dl_phdr_info *obj, const struct dynamic_info *info,
                       const Elf64_Rela *rel, size_t size, enum table_use use, ml_patch_lookup lookup,
                       int *python_refs)
{
    int patched = 0;
    for (size_t i = 0; rel && i < size / sizeof *rel; i++) {
        unsigned type = ELF64_R_TYPE(rel[i].r_info);
        int wanted = type == ML_R_JUMP_SLOT || type == ML_R_GLOB_DAT ||
                     (type == ML_R_ABS64 && rel[i].r_addend == 0);
        if (!wanted || (use != PATCH_ALL && type != ML_R_JUMP_SLOT))
            continue;
        const Elf64_Sym *sym = &info->symtab[ELF64_R_SYM(rel[i].r_info)];
        if (sym->st_shndx != SHN_UNDEF) /* defined here: not a call into Python */
            continue;
        *python_refs += is_python_name(info->strtab + sym->st_name);
        if (use == COUNT_ONLY)
            continue;
        struct ml_patch_target hook;
        if (!lookup(info->strtab + sym->st_name, &hook))
            continue;
        void **slot = (void **)(obj->dlpi_addr + rel[i].r_offset);
        /* Only over what the loader bound there (a PLT slot may also still hold its
         * lazy-binding stub): a slot holding anything else is not relocated yet, and
         * writing it, or leaving its page read-only, would break the relocation to
         * come. */
        if (type != ML_R_JUMP_SLOT && *slot != hook.original && *slot != hook.replacement)
            continue;
        write_slot(info, slot, hook.replacement);
        patched++;
    }
    return patched;
}

int ml_got_patch(const struct dl_phdr_info *obj, enum ml_patch_scope scope, ml_patch_lookup lookup,
                 int *python_refs)
{
    struct dynamic_info info;
    *python_refs = 0;
    if (read_dynamic(obj, &info) != 0)
        return -1;
    int patched = patch_table(obj, &info, info.rela, info.rela_size, PATCH_ALL, lookup, python_refs);
    /* Under LD_AUDIT the PLT is only counted: la_symbind64 redirects it. */
    patched += patch_table(obj, &info, info.jmprel, info.jmprel_size,
                           scope == ML_PATCH_ALL ? PATCH_JUMP_SLOTS : COUNT_ONLY, lookup, python_refs);
    return patched;
}
