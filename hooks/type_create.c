/* Type creation: the PyType_From* family makes heap types (adopted: slots wrapped,
 * death watched); PyType_Ready on a static type is recorded as such, since a
 * static type is shared by every module instance and interpreter.  A heap type an
 * extension allocates and readies itself (pybind11 makes its classes so) is adopted
 * like a spec type; the Python classes of `class X:` are readied by type_new inside
 * libpython, which is never patched, and are not (their subtype_dealloc and
 * subtype_traverse are CPython's, and there are many). */
#include "hooks.h"

#include "../instrument/events.h"
#include "../instrument/interpreters.h"
#include "../instrument/findings.h"
#include "../instrument/elf_objects.h"
#include "../instrument/pyapi.h"

#include <stdint.h>
#include <stdio.h>

static void check_tp_free(const struct ml_type_rec *type, const PyType_Spec *spec);

/* The checks of the type as made run once it is adopted: they report on its record. */
static PyObject *adopted(PyObject *type, PyObject *module, const PyType_Spec *spec)
{
    struct ml_type_rec rec;
    if (type && (((PyTypeObject *)type)->tp_flags & ML_TPFLAGS_HEAPTYPE) &&
        ml_type_adopt((PyTypeObject *)type, module, spec, &rec))
        check_tp_free(&rec, spec);
    return type;
}

PyObject *ml_hook_PyType_FromSpec(PyType_Spec *spec)
{
    return adopted(py.PyType_FromSpec(spec), NULL, spec);
}

PyObject *ml_hook_PyType_FromSpecWithBases(PyType_Spec *spec, PyObject *bases)
{
    return adopted(py.PyType_FromSpecWithBases(spec, bases), NULL, spec);
}

PyObject *ml_hook_PyType_FromModuleAndSpec(PyObject *module, PyType_Spec *spec, PyObject *bases)
{
    return adopted(py.PyType_FromModuleAndSpec(module, spec, bases), module, spec);
}

PyObject *ml_hook_PyType_FromMetaclass(PyTypeObject *meta, PyObject *module, PyType_Spec *spec,
                                       PyObject *bases)
{
    return adopted(py.PyType_FromMetaclass(meta, module, spec, bases), module, spec);
}

/* Called from an extension: with LD_AUDIT, libpython's own calls could bind here too. */
static int called_by_extension(const void *return_address)
{
    return ml_objects_is_extension(ml_objects_resolve((uintptr_t)return_address - 1, 0).id);
}

int ml_hook_PyType_Ready(PyTypeObject *type)
{
    int already = (type->tp_flags & ML_TPFLAGS_READY) != 0;
    /* Set by its maker, not inherited by PyType_Ready from the base. */
    int own_dealloc = type->tp_dealloc != NULL, own_traverse = type->tp_traverse != NULL;
    int result = py.PyType_Ready(type);
    if (result == 0 && !already && (type->tp_flags & ML_TPFLAGS_HEAPTYPE) &&
        called_by_extension(__builtin_return_address(0))) {
        ml_type_adopt_readied(type, own_dealloc, own_traverse);
        return result;
    }
    if (result == 0 && !already && !(type->tp_flags & ML_TPFLAGS_HEAPTYPE)) {
        struct ml_capture c;
        ml_capture_stacks(&c);
        ml_event_static_type(type, ml_interp_current(ML_INTERP_ANY), &c);
        ml_static_type_readied(type, &c.saved);
        ml_saved_stack_release(&c.saved);
    }
    return result;
}

/* tp-free-override, as the HOWTO words it: "tp_free ... must be set to
 * PyObject_GC_Del. This is the default; do not override it."  Any Py_tp_free but the
 * default that matches the type's allocation is reported: an error when it cannot
 * free what tp_alloc made, a warning for a function of the extension's own (which
 * may still end in the right deallocator). */
static void check_tp_free(const struct ml_type_rec *type, const PyType_Spec *spec)
{
    void *tp_free = NULL;
    for (const PyType_Slot *s = spec ? spec->slots : NULL; s && s->slot; s++)
        if (s->slot == ML_tp_free)
            tp_free = s->pfunc;
    void *matching = type->gc ? (void *)py.PyObject_GC_Del : (void *)py.PyObject_Free;
    if (!tp_free || tp_free == matching || !ml_finding_enabled(ML_TP_FREE_OVERRIDE))
        return;
    struct ml_finding f = {.kind = ML_TP_FREE_OVERRIDE, .severity = ML_SEVERITY_ERROR};
    ml_finding_set_type(&f, type, NULL);
    if (type->gc && tp_free == (void *)py.PyObject_Free)
        snprintf(f.message, sizeof f.message, "heap type '%s' sets tp_free to PyObject_Free (PyObject_Del) on a GC "
                 "type, whose objects start with a GC header: use PyObject_GC_Del", type->qualname);
    else if (!type->gc && tp_free == (void *)py.PyObject_GC_Del)
        snprintf(f.message, sizeof f.message, "heap type '%s' sets tp_free to PyObject_GC_Del on a type without "
                 "Py_TPFLAGS_HAVE_GC: use PyObject_Free", type->qualname);
    else {
        char name[256];
        ml_function_name(tp_free, name, sizeof name);
        f.severity = ML_SEVERITY_WARNING;
        snprintf(f.message, sizeof f.message, "heap type '%s' overrides tp_free with %s: leave Py_tp_free out of "
                 "the spec (the default, %s, is the one that matches its allocation)", type->qualname, name,
                 type->gc ? "PyObject_GC_Del" : "PyObject_Free");
    }
    ml_finding_report(&f);
}
