/* Redirects an object's own references to hooked C-API functions: its JUMP_SLOT,
 * GLOB_DAT and absolute relocations are rewritten to the replacements after the
 * dynamic linker resolved them.  RELRO pages are made writable for the write and
 * read-only again after. */
#ifndef MODLIFE_GOT_PATCH_H
#define MODLIFE_GOT_PATCH_H

#include <link.h>

enum ml_patch_scope {
    ML_PATCH_ALL,     /* LD_PRELOAD: every reference */
    ML_PATCH_NON_PLT, /* LD_AUDIT: la_symbind64 handles the PLT */
};

/* What a reference to a hooked function is rewritten to, and the original the loader
 * bound there. */
struct ml_patch_target {
    void *original;
    void *replacement;
};

/* 1 with *target filled if symbol is to be redirected, else 0.  The hook table's
 * (hooks/hook_table.c), handed in by the engine: patching knows no hook. */
typedef int (*ml_patch_lookup)(const char *symbol, struct ml_patch_target *target);

/* Returns the number of references redirected, or -1 if the object is unreadable;
 * *python_refs: how many of its references name the Python C-API (Py*, _Py*). */
int ml_got_patch(const struct dl_phdr_info *obj, enum ml_patch_scope scope, ml_patch_lookup lookup,
                 int *python_refs);

#endif
