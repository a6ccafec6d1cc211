/* Stacks that explain an event: native frames (libunwind) with the object and, when
 * symbolize=1, the function; Python frames (file, line, function) where the thread
 * has a thread state. */
#ifndef MODLIFE_STACK_H
#define MODLIFE_STACK_H

#include "json_writer.h"

#define ML_STACK_MAX 256

struct ml_stack {
    void *ips[ML_STACK_MAX];
    int depth;
};

/* Captures the caller's stack, modlife's own frames left out. */
void ml_stack_capture(struct ml_stack *s, int max_depth);

/* Writes "key": [{"ip","obj","off","fn"}...], innermost first. */
void ml_stack_write(struct json *j, const char *key, const struct ml_stack *s, int symbolize);

/* Writes "key": [{"file","line","function"}...] if this thread runs Python. */
void ml_python_stack_write(struct json *j, const char *key, int max_depth);

#endif
