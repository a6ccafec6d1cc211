/* The C library's dlopen (see real_dlopen.h). */
#include "real_dlopen.h"

#include <dlfcn.h>
#include <stddef.h>

static __thread int own_loads __attribute__((tls_model("initial-exec")));

void ml_own_load_begin(void) { own_loads++; }
void ml_own_load_end(void) { own_loads--; }
int ml_own_load_running(void) { return own_loads > 0; }

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
