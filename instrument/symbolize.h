/* Function names for native frames, from an object's .symtab (static functions
 * included) or, when stripped, its .dynsym.  Loaded only when a finding's stack is
 * named: lifetime records' frames are written unnamed and named by the tools from
 * the object-load records (path, base, build id), which also give file:line. */
#ifndef MODLIFE_SYMBOLIZE_H
#define MODLIFE_SYMBOLIZE_H

#include <stdint.h>

struct ml_symtab;

/* Maps the file and indexes its function symbols; NULL if it has none.  Only
 * system calls, no malloc or locks: the crash handler may load a table. */
struct ml_symtab *ml_symtab_load(const char *path);

/* The function containing vaddr (an address as the object's ELF file lays it out). */
const char *ml_symtab_lookup(const struct ml_symtab *t, uintptr_t vaddr);

/* How many tables this process opened (process-exit "symbol_tables"). */
unsigned ml_symtab_loads(void);

#endif
