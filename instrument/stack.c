/* Native and Python stack capture (see stack.h). */
#define UNW_LOCAL_ONLY
#include "stack.h"

#include "objects.h"
#include "pyapi.h"

#include <libunwind.h>
#include <stdint.h>

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

void ml_stack_write(struct json *j, const char *key, const struct ml_stack *s, int symbolize)
{
    json_key(j, key);
    json_begin_array(j);
    for (int i = 0; i < s->depth && json_room(j) > FRAME_ROOM; i++) {
        uintptr_t ip = (uintptr_t)s->ips[i];
        /* Every kept frame is a return address: look up the call instruction. */
        struct ml_object_ref ref = ml_objects_resolve(ip - 1, symbolize);
        json_begin_object(j);
        json_kv_hex(j, "ip", ip);
        if (ref.id >= 0) {
            json_kv_int(j, "obj", ref.id);
            json_kv_hex(j, "off", ip - ref.base);
        }
        if (ref.function)
            json_kv_string(j, "fn", ref.function);
        json_end_object(j);
    }
    json_end_array(j);
}

static void write_python_frame(struct json *j, PyFrameObject *f)
{
    PyCodeObject *code = py.PyFrame_GetCode(f);
    PyObject *file = py.PyObject_GetAttrString((PyObject *)code, "co_filename");
    PyObject *name = py.PyObject_GetAttrString((PyObject *)code, py.minor >= 11 ? "co_qualname" : "co_name");
    json_begin_object(j);
    json_kv_string(j, "file", file ? py.PyUnicode_AsUTF8(file) : NULL);
    json_kv_int(j, "line", py.PyFrame_GetLineNumber(f));
    json_kv_string(j, "function", name ? py.PyUnicode_AsUTF8(name) : NULL);
    json_end_object(j);
    if (file)
        py.Py_DecRef(file);
    if (name)
        py.Py_DecRef(name);
    py.Py_DecRef((PyObject *)code);
}

void ml_python_stack_write(struct json *j, const char *key, int max_depth)
{
    if (!ml_py_tstate())
        return;
    /* A pending exception must survive our attribute lookups untouched. */
    PyObject *type, *value, *tb;
    py.PyErr_Fetch(&type, &value, &tb);
    PyFrameObject *f = py.PyEval_GetFrame();
    if (f)
        py.Py_IncRef((PyObject *)f);
    json_key(j, key);
    json_begin_array(j);
    for (int depth = 0; f; depth++) {
        if (depth < max_depth && json_room(j) > FRAME_ROOM)
            write_python_frame(j, f);
        PyFrameObject *back = depth < max_depth ? py.PyFrame_GetBack(f) : NULL;
        py.Py_DecRef((PyObject *)f);
        f = back;
    }
    json_end_array(j);
    py.PyErr_Clear();
    py.PyErr_Restore(type, value, tb);
}
