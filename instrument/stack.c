/* Native and Python stack capture (see stack.h). */
#define UNW_LOCAL_ONLY
#include "stack.h"

#include "elf_objects.h"
#include "options.h"
#include "pyapi.h"
#include "srcline.h"
#include "stack_table.h"

#include <libunwind.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Below this many free bytes a frame is not started, so the record stays whole. */
#define FRAME_ROOM 700

void ml_stack_capture(struct ml_stack *s, int max_depth)
{
    void *raw[ML_STACK_MAX + 16];
    int n = unw_backtrace(raw, ML_STACK_MAX + 16);
    s->depth = 0;
    for (int i = 0; i < n && s->depth < max_depth && s->depth < ML_STACK_MAX; i++) {
        if (ml_objects_is_self((uintptr_t)raw[i])) /* our wrappers say nothing useful */
            continue;
        s->ips[s->depth++] = raw[i];
    }
}

static void write_frame(struct json *j, uintptr_t ip, enum ml_frame_names names)
{
    /* Every kept frame is a return address: look up the call instruction. */
    struct ml_object_ref ref = names == ML_FRAMES_SIGNAL ? ml_objects_resolve_unlocked(ip - 1, 1)
                                                         : ml_objects_resolve(ip - 1, names == ML_FRAMES_LINES);
    struct ml_srcline line = names == ML_FRAMES_LINES ? ml_srcline(ip - 1) : (struct ml_srcline){NULL, 0};
    json_begin_object(j);
    json_kv_hex(j, "ip", ip);
    if (ref.id >= 0) {
        json_kv_int(j, "obj", ref.id);
        json_kv_hex(j, "off", ip - ref.base);
    }
    if (ref.function)
        json_kv_string(j, "fn", ref.function);
    if (line.file) {
        json_kv_string(j, "file", line.file);
        json_kv_int(j, "line", line.line);
    }
    json_end_object(j);
}

void ml_frames_write(struct json *j, const char *key, void *const *ips, int depth, enum ml_frame_names names)
{
    json_key(j, key);
    json_begin_array(j);
    for (int i = 0; i < depth && json_room(j) > FRAME_ROOM; i++)
        write_frame(j, (uintptr_t)ips[i], names);
    json_end_array(j);
}

void ml_stacks_write(struct json *j, void *const *ips, int depth, const char *python, enum ml_frame_names names)
{
    ml_frames_write(j, "stack", ips, depth, names);
    if (python)
        ml_python_text_write(j, "python_stack", python);
}

/* Where a code object keeps its file and function names, read off PyCode_Type's
 * member table once: the public route, an attribute lookup for each name of each
 * frame, was the larger part of recording a Python stack.  -1: not found (then the
 * lookup it is). */
struct code_names {
    Py_ssize_t file, function;
    const char *function_member; /* co_qualname from 3.11, co_name before */
};

static struct code_names code_names_of(PyObject *code)
{
    static struct code_names known;
    static int resolved;
    if (__atomic_load_n(&resolved, __ATOMIC_ACQUIRE))
        return known;
    /* PyMemberDef, the same from 3.9 to 3.13. */
    struct member {
        const char *name;
        int type;
        Py_ssize_t offset;
        int flags;
        const char *doc;
    };
    enum { T_OBJECT = 6, T_OBJECT_EX = 16 };
    struct code_names found = {-1, -1, py.minor >= 11 ? "co_qualname" : "co_name"};
    for (const struct member *m = code->ob_type->tp_members; m && m->name; m++) {
        if (m->type != T_OBJECT && m->type != T_OBJECT_EX)
            continue;
        if (strcmp(m->name, "co_filename") == 0)
            found.file = m->offset;
        else if (strcmp(m->name, found.function_member) == 0)
            found.function = m->offset;
    }
    known = found;
    __atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
    return found;
}

/* The UTF-8 of a code object's name member (the code object keeps it alive). */
static const char *code_name(PyObject *code, Py_ssize_t offset, const char *attribute, PyObject **owned)
{
    *owned = NULL;
    PyObject *name = offset >= 0 ? *(PyObject **)((char *)code + offset) : NULL;
    if (!name)
        name = *owned = py.PyObject_GetAttrString(code, attribute);
    return name ? py.PyUnicode_AsUTF8(name) : NULL;
}

void ml_python_frames(void (*fn)(const char *file, int line, const char *function, void *arg),
                      void *arg, int max_depth)
{
    if (!ml_py_tstate())
        return;
    /* A pending exception must survive our attribute lookups untouched. */
    PyObject *type, *value, *tb;
    py.PyErr_Fetch(&type, &value, &tb);
    PyFrameObject *f = py.PyEval_GetFrame();
    if (f)
        py.Py_IncRef((PyObject *)f);
    for (int depth = 0; f; depth++) {
        PyObject *code = (PyObject *)py.PyFrame_GetCode(f);
        struct code_names at = code_names_of(code);
        PyObject *file_owned, *name_owned;
        const char *file = code_name(code, at.file, "co_filename", &file_owned);
        const char *name = code_name(code, at.function, at.function_member, &name_owned);
        fn(file, py.PyFrame_GetLineNumber(f), name, arg);
        if (file_owned)
            py.Py_DecRef(file_owned);
        if (name_owned)
            py.Py_DecRef(name_owned);
        py.Py_DecRef(code);
        PyFrameObject *back = depth + 1 < max_depth ? py.PyFrame_GetBack(f) : NULL;
        py.Py_DecRef((PyObject *)f);
        f = back;
    }
    py.PyErr_Clear();
    py.PyErr_Restore(type, value, tb);
}

static void write_python_frame(const char *file, int line, const char *function, void *arg)
{
    struct json *j = arg;
    if (json_room(j) <= FRAME_ROOM)
        return;
    json_begin_object(j);
    json_kv_string(j, "file", file);
    json_kv_int(j, "line", line);
    json_kv_string(j, "function", function);
    json_end_object(j);
}

void ml_python_stack_write(struct json *j, const char *key, int max_depth)
{
    if (!ml_py_tstate())
        return;
    json_key(j, key);
    json_begin_array(j);
    ml_python_frames(write_python_frame, j, max_depth);
    json_end_array(j);
}

struct text {
    char buf[4096];
    size_t len;
};

static void append(struct text *t, const char *s, size_t n)
{
    if (n > sizeof t->buf - 1 - t->len)
        n = sizeof t->buf - 1 - t->len;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

/* One frame's text (stack.h); a frame that does not fit whole is left out. */
static void append_python_frame(const char *file, int line, const char *function, void *arg)
{
    struct text *t = arg;
    size_t mark = t->len;
    file = file ? file : "?";
    function = function ? function : "?";
    char digits[JSON_DECIMAL_MAX];
    size_t n = json_decimal(digits, line);
    static const char field = ML_PY_FIELD, end = ML_PY_END;
    append(t, file, strlen(file));
    append(t, &field, 1);
    append(t, digits + sizeof digits - n, n);
    append(t, &field, 1);
    append(t, function, strlen(function));
    if (t->len + 1 >= sizeof t->buf) {
        t->len = mark;
        return;
    }
    append(t, &end, 1);
}

void ml_saved_stack_capture(struct ml_saved_stack *s)
{
    struct ml_stack native;
    ml_stack_capture(&native, ML_SAVED_DEPTH);
    ml_saved_stack_from(s, &native);
}

/* A block of our own: the frames, then the text. */
static void own_copy(struct ml_saved_stack *s, void *const *ips, int depth, const char *python)
{
    size_t ips_size = (size_t)depth * sizeof ips[0], text = python ? strlen(python) + 1 : 0;
    char *block = depth || text ? malloc(ips_size + text) : NULL;
    *s = (struct ml_saved_stack){0};
    if (!block)
        return;
    if (depth)
        memcpy(block, ips, ips_size);
    if (text)
        memcpy(block + ips_size, python, text);
    s->owned = block;
    s->depth = depth;
    s->ips = (void *const *)block;
    s->python = text ? block + ips_size : NULL;
}

void ml_saved_stack_from(struct ml_saved_stack *s, const struct ml_stack *native)
{
    int keep = ml_opts.stack_depth < ML_SAVED_DEPTH ? ml_opts.stack_depth : ML_SAVED_DEPTH;
    struct text t; /* not = {0}: zeroing 4 KiB cost more than filling it */
    t.len = 0;
    if (ml_opts.python_stack && ml_py_tstate())
        ml_python_frames(append_python_frame, &t, ml_opts.stack_depth);
    t.buf[t.len] = '\0';
    const char *python = t.len ? t.buf : NULL;
    const struct ml_stack_entry *e = ml_opts.stack_ids ? ml_stack_intern(native, python) : NULL;
    if (!e) {
        own_copy(s, native->ips, native->depth < keep ? native->depth : keep, python);
        return;
    }
    *s = (struct ml_saved_stack){.entry = e};
    ml_stack_entry_frames(e, &s->ips, &s->depth, &s->python);
    if (s->depth > keep)
        s->depth = keep;
}

void ml_saved_stack_release(struct ml_saved_stack *s)
{
    free(s->owned);
    *s = (struct ml_saved_stack){0};
}

void ml_saved_stack_moved(struct ml_saved_stack *s)
{
    *s = (struct ml_saved_stack){0};
}

void ml_saved_stack_copy(struct ml_saved_stack *to, const struct ml_saved_stack *from)
{
    if (from->owned)
        own_copy(to, from->ips, from->depth, from->python);
    else
        *to = *from;
}

void ml_saved_stack_native(const struct ml_saved_stack *s, struct ml_stack *out)
{
    out->depth = s->depth;
    if (s->depth)
        memcpy(out->ips, s->ips, (size_t)s->depth * sizeof s->ips[0]);
}

/* Not atoi: the crash handler reads this text too. */
static int line_number(const char *digits)
{
    int sign = *digits == '-' ? -1 : 1, n = 0;
    for (digits += sign < 0; *digits >= '0' && *digits <= '9'; digits++)
        n = n * 10 + (*digits - '0');
    return sign * n;
}

int ml_python_text_next(const char **text, struct ml_py_frame *frame)
{
    const char *p = *text;
    const char *field1 = strchr(p, ML_PY_FIELD), *field2 = field1 ? strchr(field1 + 1, ML_PY_FIELD) : NULL;
    const char *end = field2 ? strchr(field2 + 1, ML_PY_END) : NULL;
    if (!end)
        return 0;
    *frame = (struct ml_py_frame){.file = p, .file_len = (size_t)(field1 - p), .line = line_number(field1 + 1),
                                  .function = field2 + 1, .function_len = (size_t)(end - field2 - 1)};
    *text = end + 1;
    return 1;
}

void ml_python_text_write(struct json *j, const char *key, const char *text)
{
    struct ml_py_frame f;
    json_key(j, key);
    json_begin_array(j);
    while (json_room(j) > FRAME_ROOM && ml_python_text_next(&text, &f)) {
        json_begin_object(j);
        json_key(j, "file");
        json_string_n(j, f.file, f.file_len);
        json_kv_int(j, "line", f.line);
        json_key(j, "function");
        json_string_n(j, f.function, f.function_len);
        json_end_object(j);
    }
    json_end_array(j);
}
