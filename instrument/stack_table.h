/* Each distinct stack of lifetime events written once per log.  Extensions make
 * their types and modules from a handful of places: a loop that creates 10^5 types
 * would otherwise write (and symbolize) the same 20 native and Python frames 10^5
 * times.  The first event from a place writes a "stack" record:
 *     {"event":"stack","id":N,"stack":[...],"python_stack":[...]}
 * and every event from it, this one included, says "stack_id":N.  Findings keep
 * their stacks inline: they are few, and a report must stand alone. */
#ifndef MODLIFE_STACK_TABLE_H
#define MODLIFE_STACK_TABLE_H

#include "json_writer.h"
#include "stack.h"

/* The id of native frames plus Python frames (the "file\tline\tfunction\n" text of
 * a saved stack, or NULL), writing its record first if it is new.  -1 if the table
 * cannot take it (memory): the caller writes the stacks inline. */
long long ml_stack_table_id(const struct ml_stack *native, const char *python);

/* Writes "stack_id", or the stacks inline when they have no id (or stack_ids=0). */
void ml_stack_table_write(struct json *j, const struct ml_stack *native, const char *python);

/* In a forked child: a new log, whose ids start again. */
void ml_stack_table_atfork_prepare(void);
void ml_stack_table_atfork_parent(void);
void ml_stack_table_atfork_child(void);

#endif
