/* Stacks interned: each distinct stack kept once in the process and written once per
 * log.  Extensions make their types and modules from a handful of places: a loop
 * that creates 10^5 types would otherwise keep, write and symbolize the same 20
 * native and Python frames 10^5 times.
 *
 * In memory, a registry record's saved stacks point at an entry (stack.h); entries
 * are immutable and never freed, so the crash handler reads them without a lock.
 * In the log, the first record that names an entry is preceded by its "stack"
 * record:
 *     {"event":"stack","id":N,"stack":[...],"python_stack":[...]}
 * and names it as "stack_id":N.  Its native frames are unnamed (ML_FRAMES_BARE):
 * the tools name them from the object-load records.  Findings keep their stacks
 * inline: they are few, and a report must stand alone. */
#ifndef MODLIFE_STACK_TABLE_H
#define MODLIFE_STACK_TABLE_H

#include "json_writer.h"
#include "stack.h"

struct ml_stack_entry;

/* The entry of native frames plus Python frames (their text, stack.h, or NULL);
 * NULL if the table cannot take it (full, or no memory). */
const struct ml_stack_entry *ml_stack_intern(const struct ml_stack *native, const char *python);

/* What an entry holds. */
void ml_stack_entry_frames(const struct ml_stack_entry *e, void *const **ips, int *depth, const char **python);

/* How a "stack" record's frames are written (unnamed, through stack.c's
 * ml_stacks_write), handed in by the record's writer, since stack.c interns its
 * stacks here. */
typedef void (*ml_frames_writer)(struct json *j, void *const *ips, int depth, const char *python);

/* Writes "stack_id", and first the entry's "stack" record if this log has not had it. */
void ml_stack_entry_write_id(struct json *j, const struct ml_stack_entry *e, ml_frames_writer write_frames);

/* fork: in the child the log is new, and every entry is written to it again. */
void ml_stack_table_new_log(void);
void ml_stack_table_atfork_prepare(void);
void ml_stack_table_atfork_parent(void);
void ml_stack_table_atfork_child(void);

#endif
