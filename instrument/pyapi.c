/* Run-time resolution of the Python C-API (see pyapi.h). */
#include "pyapi.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ml_pyapi py;

int ml_pyapi_present(void)
{
    return dlsym(RTLD_DEFAULT, "Py_IsInitialized") != NULL &&
           dlsym(RTLD_DEFAULT, "PyModule_GetState") != NULL;
}

static int parse_version(const char *v, int *major, int *minor)
{
    char *end;
    long ma = strtol(v, &end, 10);
    if (*end != '.')
        return -1;
    long mi = strtol(end + 1, &end, 10);
    *major = (int)ma;
    *minor = (int)mi;
    return 0;
}

int ml_pyapi_resolve(char *why, size_t why_size)
{
#define ML_PYAPI_RESOLVE(ret, name, params, required)                                   \
    *(void **)&py.name = dlsym(RTLD_DEFAULT, #name);                                     \
    if (!py.name && (required)) {                                                        \
        snprintf(why, why_size, "the Python C-API function %s was not found", #name);  \
        return -1;                                                                       \
    }
    ML_PYAPI_FUNCTIONS(ML_PYAPI_RESOLVE)
#undef ML_PYAPI_RESOLVE
    py.module_type = dlsym(RTLD_DEFAULT, "PyModule_Type");
    if (!py.module_type) {
        snprintf(why, why_size, "the Python C-API object PyModule_Type was not found");
        return -1;
    }
    py.none = dlsym(RTLD_DEFAULT, "_Py_NoneStruct");
    if (!py.none) {
        snprintf(why, why_size, "the Python C-API object _Py_NoneStruct was not found");
        return -1;
    }
    const char *version = py.Py_GetVersion();
    if (parse_version(version, &py.major, &py.minor) != 0) {
        snprintf(why, why_size, "cannot read the Python version from \"%.40s\"", version);
        return -1;
    }
    if (py.major != 3 || py.minor < ML_PY_MIN_MINOR || py.minor > ML_PY_MAX_MINOR) {
        snprintf(why, why_size,
                 "Python %d.%d is not supported (supported: 3.%d to 3.%d)", py.major,
                 py.minor, ML_PY_MIN_MINOR, ML_PY_MAX_MINOR);
        return -1;
    }
    if (!py._PyThreadState_UncheckedGet && !py.PyThreadState_GetUnchecked) {
        snprintf(why, why_size, "no way to read the current thread state was found");
        return -1;
    }
    py.debug_build = dlsym(RTLD_DEFAULT, "_Py_NegativeRefcount") != NULL;
    /* Which object defines the API: the executable (static libpython) or a library. */
    Dl_info info;
    struct link_map *defining = NULL;
    py.libpython = "";
    if (dladdr1((void *)py.PyModule_GetState, &info, (void **)&defining, RTLD_DL_LINKMAP) &&
        defining && defining != _r_debug.r_map && info.dli_fname)
        py.libpython = info.dli_fname;
    return 0;
}

PyThreadState *ml_py_tstate(void)
{
    if (py.PyThreadState_GetUnchecked)
        return py.PyThreadState_GetUnchecked();
    return py._PyThreadState_UncheckedGet();
}

int ml_py_is_module(PyObject *obj)
{
    return obj && (ML_TYPE(obj) == py.module_type ||
                   py.PyType_IsSubtype(ML_TYPE(obj), py.module_type));
}
