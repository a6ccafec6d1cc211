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

/* Returns the number of references redirected, or -1 if the object is unreadable;
 * *python_refs: how many of its references name the Python C-API (Py*, _Py*). */
int ml_got_patch(const struct dl_phdr_info *obj, enum ml_patch_scope scope, int *python_refs);

#endif
