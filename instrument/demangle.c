/* C++ names demangled (see demangle.h). */
#include "demangle.h"

#include "real_dlopen.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char *(*cxa_demangle_fn)(const char *, char *, size_t *, int *);

/* Looked up until found: libstdc++ comes with the first C++ extension, at any time.
 * modlife does not link it itself: C programs would then carry it for nothing. */
static cxa_demangle_fn demangler(void)
{
    static cxa_demangle_fn found;
    cxa_demangle_fn f = __atomic_load_n(&found, __ATOMIC_ACQUIRE);
    if (!f) {
        /* Extensions are loaded RTLD_LOCAL: their libstdc++ is not in the global
         * scope, but can be named.  RTLD_NOLOAD: never load it ourselves. */
        ml_own_load_begin();
        void *lib = ml_real_dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
        f = lib ? (cxa_demangle_fn)dlsym(lib, "__cxa_demangle") : NULL;
        ml_own_load_end();
        if (lib)
            dlclose(lib); /* the extension holds it: the function stays */
        __atomic_store_n(&found, f, __ATOMIC_RELEASE);
    }
    return f;
}

const char *ml_demangle(const char *name, char *buf, size_t size)
{
    if (!name || strncmp(name, "_Z", 2) != 0 || !size)
        return name;
    cxa_demangle_fn f = demangler();
    int status = -1;
    char *out = f ? f(name, NULL, NULL, &status) : NULL;
    if (!out || status != 0) {
        free(out);
        return name;
    }
    snprintf(buf, size, "%s", out);
    free(out);
    return buf;
}
