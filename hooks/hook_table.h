/* The hooks: for each C-API function an extension may call, the symbol, where its
 * original lives and the replacement, side by side in one table (hook_table.c).
 * The installers (GOT patching, LD_AUDIT symbind) read it; hooks never see them. */
#ifndef MODLIFE_HOOK_TABLE_H
#define MODLIFE_HOOK_TABLE_H

#include "../instrument/got_patch.h"

#include <stddef.h>

struct ml_hook {
    const char *symbol;
    void **original; /* resolved by pyapi.c; NULL there: the interpreter lacks it */
    void *replacement;
};

extern const struct ml_hook ml_hooks[];
extern const size_t ml_hook_count;

/* The hook for symbol, or NULL when it is not hooked (or not in this Python). */
const struct ml_hook *ml_hook_find(const char *symbol);

/* Its replacement, or NULL likewise. */
void *ml_hook_replacement(const char *symbol);

/* The lookup GOT patching is given (see got_patch.h). */
int ml_hook_patch_target(const char *symbol, struct ml_patch_target *target);

#endif
