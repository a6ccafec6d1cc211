/* Function names for native frames, from an object's .symtab (static functions
 * included) or, when stripped, its .dynsym.  File:line needs DWARF: srcline.c finds
 * it for a finding's report; the tools find it for the rest from the object-load
 * records (path, base, build id). */
#ifndef MODLIFE_SYMBOLIZE_H
#define MODLIFE_SYMBOLIZE_H

#include <stdint.h>

struct ml_symtab;

/* Maps the file and indexes its function symbols; NULL if it has none. */
struct ml_symtab *ml_symtab_load(const char *path);

/* The function containing vaddr (an address as the object's ELF file lays it out). */
const char *ml_symtab_lookup(const struct ml_symtab *t, uintptr_t vaddr);

#endif
