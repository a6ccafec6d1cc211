/* Module state in quarantine, to catch state-use-after-free as it happens.
 *
 * When a module is created its state block is moved to pages of its own in a
 * reserved region (the PyMem_SetAllocator hooks, public API, let CPython's own
 * PyMem_Free of it come back to us).  When CPython frees it after m_free, the pages
 * become PROT_NONE and stay reserved: a later use through a cached pointer faults,
 * and the crash handler finds the block, its module and where it was freed.
 * Lookups are lock-free and allocation-free, for the crash handler. */
#ifndef MODLIFE_QUARANTINE_H
#define MODLIFE_QUARANTINE_H

#include "pyabi.h"
#include "stack.h"

#include <stddef.h>
#include <stdint.h>

struct ml_quarantined {
    uintptr_t start, end; /* the state block; its pages follow */
    const char *module;   /* the definition's name: static in the extension */
    unsigned long long instance;
    long long interp;
    int freed;
    int created_depth, freed_depth;
    void *created[ML_SAVED_DEPTH];
    void *freed_at[ML_SAVED_DEPTH];
};

/* Installs the allocator hooks; call with the GIL, once the interpreter runs. */
void ml_quarantine_install(void);

/* Moves module's state (size bytes) into the region.  Returns the new block, or
 * NULL (state left where it was): region full, unknown layout. */
void *ml_quarantine_adopt(PyObject *module, size_t size, const char *name, unsigned long long instance,
                          long long interp, const struct ml_saved_stack *created);

/* Called from the module's m_free, just before CPython frees its state with
 * PyMem_Free: hands CPython a block of the allocator in place now and retires the
 * quarantined one.  The allocator hooks alone are not enough: whoever installed an
 * allocator before us may restore it (tracemalloc does when it stops at exit), and
 * the quarantined block must never reach another allocator's free. */
void ml_quarantine_give_back(PyObject *module);

/* The block containing addr, or NULL.  Async-signal-safe. */
const struct ml_quarantined *ml_quarantine_find(uintptr_t addr);

#endif
