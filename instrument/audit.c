/* LD_AUDIT entry point (libmodlife_audit.so), the alternative to LD_PRELOAD.
 *
 * An auditor lives in a link namespace of its own, where libunwind could not see
 * the program's objects; so it loads the core (libmodlife.so, next to it) into the
 * program's namespace once the program is relocated (la_preinit), and from then on
 * only forwards: PLT bindings made from extension code to a hooked C-API function
 * are answered with the hook (la_symbind64), and after each dlopen the core patches
 * the remaining references.
 *
 * "After each dlopen" is not la_activity(LA_ACT_CONSISTENT): glibc's dlopen reports
 * consistency once the new objects are mapped, *before* it relocates them.  Patching
 * then is undone by the relocation that follows, and a RELRO page the patch leaves
 * read-only makes the loader's own relocation fault (a Rust extension, whose C-API
 * calls all go through GLOB_DAT, crashed that way).  So a consistent namespace only
 * marks the objects pending, and they are handed to the core at the next point
 * where the loader is known to be done with them: a dlsym (Python looks up
 * PyInit_<name> right after dlopen returns, before any extension code runs) or the
 * start of the next dlopen.  Both hold the loader's lock, as the dlopen does. */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

static void *(*core_replacement)(const char *symbol);
static void (*core_objects_changed)(void);
static struct link_map *main_map;
static int objects_pending;

static void load_core(void)
{
    Dl_info self;
    char path[4096];
    if (!dladdr((void *)load_core, &self) || !self.dli_fname)
        return;
    snprintf(path, sizeof path, "%s", self.dli_fname);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
             "libmodlife.so");
    void *core = dlmopen(LM_ID_BASE, path, RTLD_NOW | RTLD_GLOBAL);
    if (!core) {
        dprintf(2, "modlife: LD_AUDIT: cannot load %s: %s\n", path, dlerror());
        return;
    }
    void (*start)(void) = (void (*)(void))dlsym(core, "modlife_audit_start");
    void *(*replacement)(const char *) = (void *(*)(const char *))dlsym(core, "modlife_audit_replacement");
    void (*objects_changed)(void) = (void (*)(void))dlsym(core, "modlife_audit_objects_changed");
    if (!start || !replacement || !objects_changed)
        return;
    /* Published only once started: the core's own dlsym calls while it starts must
     * not re-enter it. */
    start();
    core_replacement = replacement;
    core_objects_changed = objects_changed;
}

static void hand_over_pending_objects(void)
{
    if (core_objects_changed && __atomic_exchange_n(&objects_pending, 0, __ATOMIC_ACQ_REL))
        core_objects_changed();
}

unsigned int la_version(unsigned int version)
{
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    *cookie = (uintptr_t)map;
    if (lmid != LM_ID_BASE)
        return 0;
    if (!main_map)
        main_map = map;
    return LA_FLG_BINDTO | LA_FLG_BINDFROM;
}

void la_preinit(uintptr_t *cookie)
{
    (void)cookie;
    load_core();
}

void la_activity(uintptr_t *cookie, unsigned int flag)
{
    (void)cookie;
    if (flag == LA_ACT_ADD)
        hand_over_pending_objects(); /* the previous dlopen has finished relocating */
    else if (flag == LA_ACT_CONSISTENT && core_objects_changed)
        __atomic_store_n(&objects_pending, 1, __ATOMIC_RELEASE);
}

uintptr_t la_symbind64(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook,
                       unsigned int *flags, const char *symname)
{
    (void)ndx;
    if (*flags & LA_SYMB_DLSYM)
        hand_over_pending_objects();
    /* Only calls from one object into another that is not the executable: the
     * interpreter's own calls (libpython to itself, or a static executable to
     * itself) stay direct. */
    if (!core_replacement || *refcook == *defcook || (struct link_map *)*refcook == main_map)
        return sym->st_value;
    void *replacement = core_replacement(symname);
    return replacement ? (uintptr_t)replacement : sym->st_value;
}
