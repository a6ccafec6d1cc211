/* Stacks that explain an event: native frames (libunwind) with the object and, for
 * findings, the function and file:line; Python frames (file, line, function) where
 * the thread has a thread state. */
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

/* How much a written native frame says.  Every frame has "ip" and, in a known
 * object, "obj" and "off": enough for the tools to name it later (symbolize.py). */
enum ml_frame_names {
    ML_FRAMES_BARE,   /* that alone: lifetime records, so that a process without
                         findings loads no symbol tables */
    ML_FRAMES_LINES,  /* "fn" and, where DWARF has them, "file" and "line": findings */
    ML_FRAMES_SIGNAL, /* "fn", loading symbols with system calls only, no locks:
                         findings of the crash handler */
};

/* Writes "key": [{"ip","obj","off"...}...], innermost first: the one native frame
 * writer. */
void ml_frames_write(struct json *j, const char *key, void *const *ips, int depth, enum ml_frame_names names);

/* Kept Python frames are text: per frame, file ML_PY_FIELD line ML_PY_FIELD function
 * ML_PY_END.  The separators are bytes UTF-8 never holds, and names are UTF-8
 * (PyUnicode_AsUTF8), so that no file or function name, whatever it holds (a tab, a
 * newline), can shift the fields. */
#define ML_PY_FIELD '\xfe'
#define ML_PY_END '\xff'

/* One frame of that text: file and function are not NUL-terminated. */
struct ml_py_frame {
    const char *file, *function;
    size_t file_len, function_len;
    int line;
};

/* The one reader of that text: the frame at *text, *text moved past it; 0 at its
 * end (or at a frame cut short). */
int ml_python_text_next(const char **text, struct ml_py_frame *frame);

/* Writes "key": [{"file","line","function"}...] from Python frames' text. */
void ml_python_text_write(struct json *j, const char *key, const char *text);

/* Writes "stack" and, if python is not NULL, "python_stack" from its text. */
void ml_stacks_write(struct json *j, void *const *ips, int depth, const char *python, enum ml_frame_names names);

/* Writes "key": [{"file","line","function"}...] if this thread runs Python. */
void ml_python_stack_write(struct json *j, const char *key, int max_depth);

/* Calls fn for each Python frame of this thread, innermost first (with the GIL). */
void ml_python_frames(void (*fn)(const char *file, int line, const char *function, void *arg),
                      void *arg, int max_depth);

/* A short stack kept with a registry record to explain a later finding: the top
 * native frames and the Python frames as text (ML_PY_FIELD above).  Usually
 * a view of an interned entry (stack_table.h), shared and never freed; a block of
 * its own only when the table cannot take it (or stack_ids=0).  Moving one to
 * another record: copy the struct, then ml_saved_stack_moved on the source. */
#define ML_SAVED_DEPTH 16

struct ml_stack_entry;

struct ml_saved_stack {
    int depth;
    void *const *ips;
    const char *python; /* NULL if none */
    const struct ml_stack_entry *entry;
    void *owned;
};

void ml_saved_stack_capture(struct ml_saved_stack *s);
/* Keeps the top of native and takes the Python frames now. */
void ml_saved_stack_from(struct ml_saved_stack *s, const struct ml_stack *native);
void ml_saved_stack_release(struct ml_saved_stack *s);
/* s was moved to another record: releasing it frees nothing. */
void ml_saved_stack_moved(struct ml_saved_stack *s);
/* A copy that to owns (shares an entry, or copies a block of its own). */
void ml_saved_stack_copy(struct ml_saved_stack *to, const struct ml_saved_stack *from);
/* The native part as a struct ml_stack. */
void ml_saved_stack_native(const struct ml_saved_stack *s, struct ml_stack *out);

#endif
