/* LD_PRELOAD entry point: start the engine before main(), and see every dlopen so
 * that extension modules are patched as soon as they are loaded.  Nothing else. */
#include "engine.h"

#include <dlfcn.h>

__attribute__((constructor)) static void modlife_preload_start(void)
{
    ml_engine_start(ML_ENTRY_PRELOAD);
}

__attribute__((visibility("default"))) void *dlopen(const char *file, int mode)
{
    static void *(*real_dlopen)(const char *, int);
    if (!real_dlopen)
        *(void **)&real_dlopen = dlsym(RTLD_NEXT, "dlopen");
    void *handle = real_dlopen(file, mode);
    if (handle)
        ml_engine_objects_changed();
    return handle;
}
