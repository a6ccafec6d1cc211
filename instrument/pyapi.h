/* The Python C-API as modlife calls it: every function is resolved at run time
 * (dlsym in the global scope, which finds the executable's exports for a static
 * libpython and libpython's for a shared one).  modlife's own calls go straight to
 * these addresses, never through a patched GOT, so they never re-enter its hooks. */
#ifndef MODLIFE_PYAPI_H
#define MODLIFE_PYAPI_H

#include "pyabi.h"

/* X(return type, name, parameter list, required) */
#define ML_PYAPI_FUNCTIONS(X)                                                          \
    X(const char *, Py_GetVersion, (void), 1)                                          \
    X(PyObject *, PyModuleDef_Init, (PyModuleDef *), 1)                                \
    X(PyObject *, PyModule_Create2, (PyModuleDef *, int), 1)                           \
    X(PyObject *, PyModule_FromDefAndSpec2, (PyModuleDef *, PyObject *, int), 1)       \
    X(void *, PyModule_GetState, (PyObject *), 1)                                      \
    X(PyModuleDef *, PyModule_GetDef, (PyObject *), 1)                                 \
    X(PyObject *, PyModule_GetDict, (PyObject *), 1)                                   \
    X(PyObject *, PyDict_GetItemString, (PyObject *, const char *), 1)                 \
    X(PyObject *, PyType_FromSpec, (PyType_Spec *), 1)                                 \
    X(PyObject *, PyType_FromSpecWithBases, (PyType_Spec *, PyObject *), 1)            \
    X(PyObject *, PyType_FromModuleAndSpec, (PyObject *, PyType_Spec *, PyObject *), 1)\
    X(PyObject *, PyType_FromMetaclass,                                                \
      (PyTypeObject *, PyObject *, PyType_Spec *, PyObject *), 0)                      \
    X(int, PyType_Ready, (PyTypeObject *), 1)                                          \
    X(PyObject *, PyType_GetModule, (PyTypeObject *), 1)                               \
    X(void *, PyType_GetModuleState, (PyTypeObject *), 1)                              \
    X(PyObject *, PyType_GetModuleByDef, (PyTypeObject *, PyModuleDef *), 0)           \
    X(PyThreadState *, Py_NewInterpreter, (void), 1)                                   \
    X(void, Py_EndInterpreter, (PyThreadState *), 1)                                   \
    X(PyThreadState *, _PyThreadState_UncheckedGet, (void), 0)                         \
    X(PyThreadState *, PyThreadState_GetUnchecked, (void), 0)                          \
    X(PyInterpreterState *, PyThreadState_GetInterpreter, (PyThreadState *), 1)        \
    X(long long, PyInterpreterState_GetID, (PyInterpreterState *), 1)                  \
    X(PyInterpreterState *, PyInterpreterState_Main, (void), 1)                        \
    X(PyInterpreterState *, PyInterpreterState_Head, (void), 1)                        \
    X(PyInterpreterState *, PyInterpreterState_Next, (PyInterpreterState *), 1)        \
    X(PyObject *, PyType_GenericAlloc, (PyTypeObject *, Py_ssize_t), 1)                \
    X(PyFrameObject *, PyEval_GetFrame, (void), 1)                                     \
    X(PyCodeObject *, PyFrame_GetCode, (PyFrameObject *), 1)                           \
    X(PyFrameObject *, PyFrame_GetBack, (PyFrameObject *), 1)                          \
    X(int, PyFrame_GetLineNumber, (PyFrameObject *), 1)                                \
    X(PyObject *, PyObject_GetAttrString, (PyObject *, const char *), 1)               \
    X(const char *, PyUnicode_AsUTF8, (PyObject *), 1)                                 \
    X(PyObject *, PyImport_ImportModule, (const char *), 1)                            \
    X(PyObject *, PyObject_CallMethod, (PyObject *, const char *, const char *, ...), 1) \
    X(PyObject *, PyCFunction_NewEx, (PyMethodDef *, PyObject *, PyObject *), 1)       \
    X(PyObject *, PyWeakref_NewRef, (PyObject *, PyObject *), 1)                       \
    X(int, PyType_IsSubtype, (PyTypeObject *, PyTypeObject *), 1)                      \
    X(void, PyErr_Fetch, (PyObject **, PyObject **, PyObject **), 1)                   \
    X(void, PyErr_Restore, (PyObject *, PyObject *, PyObject *), 1)                    \
    X(void, PyErr_Clear, (void), 1)                                                    \
    X(PyObject *, _PyObject_New, (PyTypeObject *), 1)                                  \
    X(PyObject *, _PyObject_NewVar, (PyTypeObject *, Py_ssize_t), 1)                   \
    X(PyObject *, _PyObject_GC_New, (PyTypeObject *), 1)                               \
    X(PyObject *, _PyObject_GC_NewVar, (PyTypeObject *, Py_ssize_t), 1)                \
    X(int, PyModule_AddType, (PyObject *, PyTypeObject *), 1)                          \
    X(int, PyModule_AddObject, (PyObject *, const char *, PyObject *), 1)              \
    X(int, PyModule_AddObjectRef, (PyObject *, const char *, PyObject *), 0)           \
    X(void, PyObject_Free, (void *), 1)                                                \
    X(void, PyObject_GC_Del, (void *), 1)                                              \
    X(void, Py_IncRef, (PyObject *), 1)                                                \
    X(void, Py_DecRef, (PyObject *), 1)

struct ml_pyapi {
#define ML_PYAPI_FIELD(ret, name, params, required) ret(*name) params;
    ML_PYAPI_FUNCTIONS(ML_PYAPI_FIELD)
#undef ML_PYAPI_FIELD
    PyTypeObject *module_type; /* PyModule_Type, for the module check */
    PyObject *none;            /* _Py_NoneStruct */
    int major, minor;          /* parsed from Py_GetVersion() */
    int debug_build;           /* Py_DEBUG: _Py_NegativeRefcount is exported */
    const char *libpython;     /* path of the object defining the API, "" for the executable */
};

extern struct ml_pyapi py;

/* Lowest and highest interpreter versions modlife knows the ABI of. */
#define ML_PY_MIN_MINOR 9
#define ML_PY_MAX_MINOR 13

/* 1 if this process has the C-API loaded (is or embeds Python), else 0. */
int ml_pyapi_present(void);

/* Resolves everything; returns 0, or -1 with a one-line reason in why. */
int ml_pyapi_resolve(char *why, size_t why_size);

/* The calling thread's thread state, or NULL (no Python on this thread). */
PyThreadState *ml_py_tstate(void);

int ml_py_is_module(PyObject *obj);

#endif
