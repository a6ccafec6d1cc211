/* Object allocation by extension code.  Detectors: PyObject_New/PyObject_NewVar on
 * a type with Py_TPFLAGS_HAVE_GC allocates no GC header (pyobject-new-on-gc-type);
 * an instance of a type whose module was freed (type-outlives-module). */
#include "hooks.h"

#include "../instrument/findings.h"
#include "../instrument/pyapi.h"

#include <stdio.h>

static void check_gc(PyTypeObject *type, const char *api)
{
    if (!type || !(type->tp_flags & ML_TPFLAGS_HAVE_GC) || !ml_finding_enabled(ML_PYOBJECT_NEW_ON_GC_TYPE))
        return;
    struct ml_finding f = {.kind = ML_PYOBJECT_NEW_ON_GC_TYPE, .interp = -1};
    struct ml_type_rec copy;
    /* Not a freed one's: a dead type's, at an address now another type's. */
    if (ml_type_snapshot(type, &copy) && !copy.freed)
        ml_finding_set_type(&f, &copy, NULL);
    else
        f.type = type->tp_name;
    snprintf(f.message, sizeof f.message,
             "%s() on type '%s', which has Py_TPFLAGS_HAVE_GC: use PyObject_GC_New", api, type->tp_name);
    ml_finding_report(&f);
}

PyObject *ml_hook__PyObject_New(PyTypeObject *type)
{
    check_gc(type, "PyObject_New");
    ml_check_orphan_use(type, "PyObject_New");
    return py._PyObject_New(type);
}

PyObject *ml_hook__PyObject_NewVar(PyTypeObject *type, Py_ssize_t size)
{
    check_gc(type, "PyObject_NewVar");
    ml_check_orphan_use(type, "PyObject_NewVar");
    return py._PyObject_NewVar(type, size);
}

PyObject *ml_hook__PyObject_GC_New(PyTypeObject *type)
{
    ml_check_orphan_use(type, "PyObject_GC_New");
    return py._PyObject_GC_New(type);
}

PyObject *ml_hook__PyObject_GC_NewVar(PyTypeObject *type, Py_ssize_t size)
{
    ml_check_orphan_use(type, "PyObject_GC_NewVar");
    return py._PyObject_GC_NewVar(type, size);
}
