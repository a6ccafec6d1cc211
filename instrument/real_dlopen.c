/* The C library's dlopen (see real_dlopen.h). */
#include "real_dlopen.h"

#include <dlfcn.h>
#include <stddef.h>

void *ml_real_dlopen(const char *file, int mode)
{
    static void *(*real)(const char *, int);
    void *(*f)(const char *, int) = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!f) {
        /* Next after this library: the C library's, past our own interposer. */
        *(void **)&f = dlsym(RTLD_NEXT, "dlopen");
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    return f ? f(file, mode) : NULL;
}
