"""The finding kinds: names, severities, rules and how to fix each are the library's
(instrument/kinds.c, checked by tests/test_tools_report.py), and go into reports,
SARIF rules and the man page."""
from collections import namedtuple

Kind = namedtuple("Kind", "name severity rule fix")

HOWTO = "https://docs.python.org/3/howto/isolating-extensions.html"

KINDS = [
    Kind("state-use-after-clear", "error",
         "Module state must not be used after the module's m_clear has run: its references are gone "
         "and the module is being torn down.",
         "Code that runs during teardown (tp_dealloc, tp_finalize, weakref callbacks) must not reach "
         "module state through PyType_GetModuleByDef/PyType_GetModuleState once m_clear has run; "
         "keep what the dealloc needs in the object itself, or check for NULL members."),
    Kind("state-use-after-free", "error",
         "Module state belongs to one module object and is freed with it; do not keep pointers to it "
         "(for instance in C globals) beyond the module's lifetime.",
         "Fetch the state from the module each time (PyModule_GetState, PyType_GetModuleState, "
         "the defining_class argument) instead of caching the pointer in a C global or an object "
         "that outlives the module."),
    Kind("type-outlives-module", "error",
         "A heap type made for a module belongs to that module instance; keep it in the module state "
         "(PyType_FromModuleAndSpec), not in C globals, so it dies with the module.",
         "Create the type in Py_mod_exec with PyType_FromModuleAndSpec, store it in the module state, "
         "visit it in m_traverse and clear it in m_clear."),
    Kind("dealloc-missing-type-decref", "error",
         "Instances of heap types hold a reference to their type: tp_dealloc must Py_DECREF(Py_TYPE(self)) "
         "after freeing the object.",
         "In tp_dealloc: PyTypeObject *tp = Py_TYPE(self); ... tp->tp_free(self); Py_DECREF(tp);"),
    Kind("traverse-missing-type-visit", "warning",
         "A heap type's tp_traverse must visit Py_TYPE(self) (Python 3.9+), so the garbage collector sees "
         "the instance's reference to its type.",
         "Start tp_traverse with Py_VISIT(Py_TYPE(self)); when it delegates to a base type's "
         "tp_traverse, make sure the type is visited exactly once."),
    Kind("pyobject-new-on-gc-type", "error",
         "Objects of types with Py_TPFLAGS_HAVE_GC must be allocated with PyObject_GC_New (or tp_alloc), "
         "never PyObject_New, which leaves out the GC header.",
         "Allocate with PyObject_GC_New or type->tp_alloc(type, 0), track with PyObject_GC_Track, "
         "and free with PyObject_GC_Del (tp_free)."),
    Kind("tp-free-override", "error",
         "tp_free must be left to its default, which matches how instances are allocated (PyObject_GC_Del for "
         "GC types, PyObject_Free otherwise): do not override it. A tp_free that cannot free what tp_alloc "
         "made is an error, any other override a warning.",
         "Leave Py_tp_free out of the spec so CPython inherits the matching one; release what the object "
         "holds in tp_dealloc, before calling tp_free."),
    Kind("static-type-in-multiphase-module", "warning",
         "A module with multi-phase initialization must not use static types: one type would be shared "
         "by every module instance and interpreter. Use heap types (PyType_FromModuleAndSpec).",
         "Replace the static PyTypeObject with a PyType_Spec and create the type per module in "
         "Py_mod_exec with PyType_FromModuleAndSpec."),
    Kind("state-from-non-module", "warning",
         "PyModule_GetState takes a module object; to reach the state from a method of a type, use "
         "PyType_GetModuleByDef (or the defining_class argument).",
         "Pass the module object: in a method of a type use PyType_GetModuleByDef(Py_TYPE(self), &def) "
         "or METH_METHOD and the defining_class argument."),
    Kind("finalize-crash", "error",
         "Module teardown (m_clear, m_free, tp_dealloc during finalization) must not touch state that is "
         "already gone.",
         "Read the report's stacks: the slot that was running, the module's last lifetime events and "
         "what was still alive tell which object was used after its module was torn down."),
    Kind("state-from-other-interpreter", "error",
         "Module state belongs to one module instance, which belongs to one interpreter; each interpreter has its own. Do not keep a module object, its types or its state in C globals shared by every interpreter.",
         "Reach the state from the object at hand: PyType_GetModuleByDef(Py_TYPE(self), &def), the defining_class argument, or PyModule_GetState(module) of the module the function was called with; keep per-module objects in the module state, not in static variables."),
    Kind("dangling-global", "error",
         "Module objects, module state and heap types belong to one module instance; a C global that points "
         "to them dangles once that instance is gone (and is shared by every interpreter).",
         "Do not keep the module, its state or its types in C globals: keep them in the module state and "
         "reach them from the object at hand (PyType_GetModuleByDef, defining_class); if a global cannot be "
         "avoided, set it to NULL in m_clear/m_free."),
    Kind("type-from-other-interpreter", "error",
         "A heap type belongs to the module instance it was made for, and so to one interpreter; each interpreter's module makes its own types. Do not keep a type in a C global shared by every interpreter.",
         "Keep the type in the module state and reach it from the object at hand: PyType_GetModuleByDef(Py_TYPE(self), &def) or the defining_class argument, then the state's type; never a static PyTypeObject * filled by whichever interpreter imported first (or last)."),
    Kind("module-outlives-interpreter", "error",
         "A module instance and its state die with their interpreter: nothing outside the interpreter may keep them, or objects of it, alive.",
         "Drop the reference that keeps the module alive: a module object, a heap type made with PyType_FromModuleAndSpec (which holds its module) or an instance kept in a C global; keep such references in the module state, visit them in m_traverse and release them in m_clear."),
]

BY_NAME = {k.name: k for k in KINDS}


def rule(name):
    k = BY_NAME.get(name)
    return k.rule if k else "(unknown kind: a newer modlife wrote this log)"


class UnknownKind(ValueError):
    pass


def severity(record):
    """A finding record's severity: its own, else its kind's (an unknown kind is an error)."""
    known = BY_NAME.get(record.get("kind"))
    return record.get("severity") or (known.severity if known else "error")


def select(spec, option):
    """The kind names of a list as the tools take it: "all", "errors", or kind names
    joined by ','.  A name that is no kind is an error naming the valid ones: a typo
    must not quietly select nothing."""
    if spec == "all":
        return {k.name for k in KINDS}
    if spec == "errors":
        return {k.name for k in KINDS if k.severity == "error"}
    return names([n for n in spec.split(",") if n], option, ["all", "errors"])


def names(given, option, words=()):
    unknown = [n for n in given if n not in BY_NAME]
    if unknown:
        raise UnknownKind("%s: unknown kind%s %s (kinds: %s)" % (
            option, "s" if len(unknown) > 1 else "", ", ".join("'%s'" % n for n in unknown),
            ", ".join(list(words) + [k.name for k in KINDS])))
    return set(given)
