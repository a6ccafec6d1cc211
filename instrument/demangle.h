/* C++ names as people read them, for reports. */
#ifndef MODLIFE_DEMANGLE_H
#define MODLIFE_DEMANGLE_H

#include <stddef.h>

/* name demangled into buf when it is a C++ name and the process has libstdc++'s
 * demangler (a C++ extension brings it); else name itself.  Allocates: not for
 * signal handlers. */
const char *ml_demangle(const char *name, char *buf, size_t size);

#endif
