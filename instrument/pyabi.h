/* The slice of CPython's ABI that modlife reads, mirrored so that one build of the
 * library serves every interpreter from 3.9 to 3.13 (default builds and Py_DEBUG,
 * not free-threaded).  Only layouts that are identical across those versions are
 * mirrored; tests/test_abi.py checks every offset against each interpreter's headers.
 * Everything else goes through functions resolved at run time (pyapi.h).
 *
 * The types keep CPython's names (PyObject, PyTypeObject, PyType_Spec...), on
 * purpose: the library never includes Python.h, so nothing in it can clash with
 * them, and each hook then reads with the signature of the C-API function it stands
 * for.  The names that carry values CPython also defines (flags, slot ids, method
 * flags) are ML_-prefixed, so that a value is never taken for CPython's own without
 * a look here.  Code that includes Python.h beside this file (tests/abi_check.c)
 * renames the types with macros first. */
#ifndef MODLIFE_PYABI_H
#define MODLIFE_PYABI_H

#include <stddef.h>
#include <sys/types.h>

typedef ssize_t Py_ssize_t;

typedef struct ml_pyobject {
    Py_ssize_t ob_refcnt; /* a union with immortality bits in 3.12+, same size */
    struct ml_pytype *ob_type;
} PyObject;

typedef void (*destructor)(PyObject *);
typedef int (*visitproc)(PyObject *, void *);
typedef int (*traverseproc)(PyObject *, visitproc, void *);
typedef int (*inquiry)(PyObject *);
typedef void (*freefunc)(void *);
typedef PyObject *(*PyCFunction)(PyObject *, PyObject *);

typedef struct ml_pytype {
    PyObject ob_base;
    Py_ssize_t ob_size;
    const char *tp_name;
    Py_ssize_t tp_basicsize, tp_itemsize;
    destructor tp_dealloc;
    Py_ssize_t tp_vectorcall_offset;
    void *tp_getattr, *tp_setattr, *tp_as_async, *tp_repr;
    void *tp_as_number, *tp_as_sequence, *tp_as_mapping;
    void *tp_hash, *tp_call, *tp_str, *tp_getattro, *tp_setattro;
    void *tp_as_buffer;
    unsigned long tp_flags;
    const char *tp_doc;
    traverseproc tp_traverse;
    inquiry tp_clear;
    void *tp_richcompare;
    Py_ssize_t tp_weaklistoffset;
    void *tp_iter, *tp_iternext;
    void *tp_methods, *tp_members, *tp_getset;
    struct ml_pytype *tp_base;
    PyObject *tp_dict;
    void *tp_descr_get, *tp_descr_set;
    Py_ssize_t tp_dictoffset;
    void *tp_init, *tp_alloc, *tp_new;
    freefunc tp_free;
    inquiry tp_is_gc;
    PyObject *tp_bases, *tp_mro, *tp_cache;
    void *tp_subclasses;
    PyObject *tp_weaklist;
    destructor tp_del;
    unsigned int tp_version_tag;
    destructor tp_finalize;
} PyTypeObject;

#define ML_TPFLAGS_HEAPTYPE (1UL << 9)
#define ML_TPFLAGS_READY (1UL << 12)
#define ML_TPFLAGS_HAVE_GC (1UL << 14)
#define ML_TPFLAGS_TYPE_SUBCLASS (1UL << 31)

typedef struct {
    int slot;
    void *value;
} PyModuleDef_Slot;

#define ML_mod_create 1
#define ML_mod_exec 2

typedef struct {
    PyObject ob_base;
    PyObject *(*m_init)(void);
    Py_ssize_t m_index;
    PyObject *m_copy;
} PyModuleDef_Base;

typedef struct ml_moduledef {
    PyModuleDef_Base m_base;
    const char *m_name;
    const char *m_doc;
    Py_ssize_t m_size;
    void *m_methods;
    PyModuleDef_Slot *m_slots;
    traverseproc m_traverse;
    inquiry m_clear;
    freefunc m_free;
} PyModuleDef;

typedef struct {
    int slot;
    void *pfunc;
} PyType_Slot;

#define ML_tp_dealloc 52
#define ML_tp_traverse 71
#define ML_tp_free 74

typedef struct {
    const char *name;
    int basicsize;
    int itemsize;
    unsigned int flags;
    PyType_Slot *slots;
} PyType_Spec;

typedef struct {
    const char *ml_name;
    PyCFunction ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;

#define ML_METH_NOARGS 0x0004
#define ML_METH_O 0x0008

/* The head of a module object, the same from 3.9 to 3.13 (not free-threaded).  It is
 * internal (not in the headers to check it against), so its users check it against
 * the C API on a real module first: the state lookups (hooks/module_state.c) and
 * the quarantine, which moves md_state (instrument/quarantine.c). */
typedef struct {
    PyObject ob_base;
    PyObject *md_dict;
    PyModuleDef *md_def;
    void *md_state;
} ml_module_head;

/* offsetof(PyHeapTypeObject, ht_module) by minor version: the layout before it grew
 * in 3.10 and 3.12 (tests/abi_check.c checks each interpreter's headers). */
#define ML_HT_MODULE_OFFSET(minor) ((minor) <= 9 ? 872 : (minor) <= 11 ? 880 : 888)

/* Opaque to modlife. */
typedef struct ml_interp PyInterpreterState;
typedef struct ml_tstate PyThreadState;
typedef struct ml_frame PyFrameObject;
typedef struct ml_code PyCodeObject;

#define ML_TYPE(o) (((PyObject *)(o))->ob_type)

#endif
