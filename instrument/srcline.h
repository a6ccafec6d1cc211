/* file:line of native code addresses, from DWARF through libdw.  Slow, and not
 * async-signal-safe: for the frames of findings only. */
#ifndef MODLIFE_SRCLINE_H
#define MODLIFE_SRCLINE_H

#include <stdint.h>

struct ml_srcline {
    const char *file; /* NULL if unknown; stays valid for the process */
    int line;
};

struct ml_srcline ml_srcline(uintptr_t addr);

#endif
