/* LD_PRELOAD entry point: start the engine before main(), and see every dlopen so
 * that extension modules are patched as soon as they are loaded.  Nothing else. */
#include "engine.h"
#include "real_dlopen.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* Under LD_AUDIT the auditor loads this library and starts it itself. */
static int loaded_by_auditor(void)
{
    const char *audit = secure_getenv("LD_AUDIT");
    return audit && strstr(audit, "libmodlife_audit");
}

__attribute__((constructor)) static void modlife_preload_start(void)
{
    if (!loaded_by_auditor())
        ml_engine_start(ML_ENTRY_PRELOAD);
}

__attribute__((visibility("default"))) void *dlopen(const char *file, int mode)
{
    void *handle = ml_real_dlopen(file, mode);
    if (handle)
        ml_engine_objects_changed();
    return handle;
}
