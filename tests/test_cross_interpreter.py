"""state-from-other-interpreter: a module object or heap type kept in a C global by the
first interpreter to import, used from another interpreter (tests/fixtures/
xinterp_state.c), and the correct twins that fetch the state from the module or
instance at hand, on every interpreter (all have a subinterpreter module: 3.9-3.12's
_xxsubinterpreters, 3.13's _interpreters)."""
import os

import pytest

from modlife_testlib import FINDINGS_STATUS, events, require_module, run_python

# Legacy subinterpreters (shared GIL): the fixture does not declare a per-interpreter
# GIL, which isolated 3.12+ interpreters would refuse to import.
SUBINTERPRETERS = """
try:
    import _interpreters as _i
    def new():
        return _i.create("legacy")
    def run(i, code):
        err = _i.run_string(i, code)
        if err is not None:
            raise SystemExit("subinterpreter failed: %r" % (err,))
except ImportError:
    import _xxsubinterpreters as _i
    def new():
        try:
            return _i.create(isolated=False)
        except TypeError:
            return _i.create()
    run = _i.run_string
"""

GLOBAL_MODULE = SUBINTERPRETERS + """
import xinterp_state as m
assert m.good_counter() == 1
sub = new()
run(sub, "import xinterp_state as m; assert m.bad_global_module() == 2")
print("sub", int(sub))
_i.destroy(sub)
"""

CACHED_TYPE = SUBINTERPRETERS + """
import xinterp_state as m
assert m.Widget().good_state() == 1
sub = new()
run(sub, "import xinterp_state as m; w = m.Widget(); assert w.bad_state() == 2; assert w.bad_state() == 3")
print("sub", int(sub))
_i.destroy(sub)
"""

# The subinterpreter runs in a thread of its own: another thread state, another
# thread's lookup cache.
GLOBAL_MODULE_IN_THREAD = SUBINTERPRETERS + """
import threading
import xinterp_state as m
assert m.good_counter() == 1
sub = new()
t = threading.Thread(target=run, args=(sub, "import xinterp_state as m; assert m.bad_global_module() == 2"))
t.start(); t.join()
assert m.good_counter() == 3
print("sub", int(sub))
_i.destroy(sub)
"""

# The first import is the subinterpreter's: the main interpreter then reaches the
# subinterpreter's module through the global.
SUBINTERPRETER_FIRST = SUBINTERPRETERS + """
sub = new()
run(sub, "import xinterp_state as m; assert m.good_counter() == 1")
import xinterp_state as m
assert m.bad_global_module() == 2
print("sub", int(sub))
_i.destroy(sub)
"""

# Twins: every interpreter has its own module and state, the globals notwithstanding.
TWIN_OWN_STATE = SUBINTERPRETERS + """
import xinterp_state as m
assert (m.good_counter(), m.Widget().good_state()) == (1, 2)
subs = [new(), new()]
for sub in subs:
    run(sub, "import xinterp_state as m; assert (m.good_counter(), m.Widget().good_state()) == (1, 2)")
for sub in subs:
    run(sub, "import xinterp_state as m; assert (m.good_counter(), m.Widget().good_state()) == (3, 4)")
    _i.destroy(sub)
assert (m.good_counter(), m.Widget().good_state()) == (3, 4)
"""

TWIN_SUBINTERPRETER_ONLY = SUBINTERPRETERS + """
sub = new()
run(sub, "import xinterp_state as m; w = m.Widget(); assert (w.good_state(), w.bad_state(), m.bad_global_module()) == (1, 2, 3)")
_i.destroy(sub)
"""


def by_def_api(interp):
    """The fixture's stand-in for PyType_GetModuleByDef, public from 3.11."""
    return "PyType_GetModuleByDef()" if interp.version >= (3, 11) else "PyType_GetModule()"


def run_case(interp, fixtures_for, tmp_path, script, status=FINDINGS_STATUS):
    run = run_python(interp, script, tmp_path, pythonpath=fixtures_for("xinterp_state"), status=status)
    return run, events(run.records(), "finding")


def subinterpreter_id(run):
    return int(run.proc.stdout.split("sub ")[1].split()[0])


def assert_finding(f, api, owner, here, function):
    assert f["kind"] == "state-from-other-interpreter"
    assert f["severity"] == "error"
    assert (f["module"], f["instance"], f["interp"], f["access_interp"]) == ("xinterp_state", 1, owner, here)
    assert f["message"] == (
        "%s for module 'xinterp_state' (instance #1) owned by interpreter %d, called in interpreter %d "
        "(a module object, type or state kept in a C global from another interpreter)" % (api, owner, here))
    assert f["stack"][0]["fn"] == function
    assert [c["what"] for c in f["context"]] == ["created"]
    assert "PyModule_ExecDef" in [fr.get("fn") for fr in f["context"][0]["stack"]]


@pytest.mark.parametrize("script", [GLOBAL_MODULE, GLOBAL_MODULE_IN_THREAD], ids=["same-thread", "in-thread"])
def test_global_module_used_in_subinterpreter(interp, fixtures_for, tmp_path, script):
    run, found = run_case(interp, fixtures_for, tmp_path, script)
    assert len(found) == 1, run.proc.stderr
    assert_finding(found[0], "PyModule_GetState()", 0, subinterpreter_id(run), "bad_global_module")
    assert run.proc.stderr.count("SUMMARY: modlife: state-from-other-interpreter ") == 1
    assert "xinterp_state.c:" in run.proc.stderr.split("SUMMARY: modlife: state-from-other-interpreter ")[1]


def test_cached_type_used_in_subinterpreter(interp, fixtures_for, tmp_path):
    """Once per place: the second call of the same method is not reported again, and
    the PyModule_GetState that follows the lookup in the same function neither."""
    run, found = run_case(interp, fixtures_for, tmp_path, CACHED_TYPE)
    assert len(found) == 1, run.proc.stderr
    assert_finding(found[0], by_def_api(interp), 0, subinterpreter_id(run), "Widget_bad_state")


def test_subinterpreter_module_used_in_main(interp, fixtures_for, tmp_path):
    """g_type, the subinterpreter's Widget, holds its module: that module outlives
    the subinterpreter too (module-outlives-interpreter)."""
    run, found = run_case(interp, fixtures_for, tmp_path, SUBINTERPRETER_FIRST)
    assert [f["kind"] for f in found] == ["state-from-other-interpreter", "module-outlives-interpreter"], \
        run.proc.stderr
    sub = subinterpreter_id(run)
    assert_finding(found[0], "PyModule_GetState()", sub, 0, "bad_global_module")
    assert (found[1]["module"], found[1]["instance"], found[1]["interp"]) == ("xinterp_state", 1, sub)
    assert "heap type 'xinterp_state.Widget'" in found[1]["message"]


def test_twins_report_nothing(interp, fixtures_for, tmp_path):
    """Each interpreter's module uses its own state."""
    run, found = run_case(interp, fixtures_for, tmp_path, TWIN_OWN_STATE, status=0)
    assert found == [] and "modlife:" not in run.proc.stderr, run.proc.stderr


def test_globals_of_one_interpreter(interp, fixtures_for, tmp_path):
    """The globals are harmless while a single interpreter uses the module, but the
    type kept in g_type holds that subinterpreter's module past its end."""
    run, found = run_case(interp, fixtures_for, tmp_path, TWIN_SUBINTERPRETER_ONLY)
    assert [f["kind"] for f in found] == ["module-outlives-interpreter"], run.proc.stderr
    assert "heap type 'xinterp_state.Widget'" in found[0]["message"]


# type-from-other-interpreter (tests/fixtures/xinterp_type.c): the first importer's
# Item type used in a subinterpreter, by C (PyObject_GC_New, a call) and by Python
# code calling the type handed out; and the last importer's (a subinterpreter's)
# Item type called in the main interpreter.
FIRST_TYPE = SUBINTERPRETERS + """
import xinterp_type as m
m.new_own(); m.call_own(); m.new_first(); m.call_first()
sub = new()
run(sub, "import xinterp_type as m; m.new_own(); m.call_own(); m.new_first(); m.call_first(); m.call_first()")
run(sub, "import xinterp_type as m; t = m.first_type(); t()")
print("sub", int(sub))
_i.destroy(sub)
"""

LAST_TYPE = SUBINTERPRETERS + """
import xinterp_type as m
sub = new()
run(sub, "import xinterp_type as m; m.call_last()")
m.call_last()
m.call_own()
print("sub", int(sub))
_i.destroy(sub)
"""

TWIN_OWN_TYPE = SUBINTERPRETERS + """
import xinterp_type as m
subs = [new(), new()]
for sub in subs:
    run(sub, "import xinterp_type as m; m.new_own(); m.call_own(); m.Item(); type('Sub', (m.Item,), {})()")
m.new_own(); m.call_own(); m.Item()
for sub in subs:
    _i.destroy(sub)
"""

# One interpreter uses the module (another runs without it): the globals then hold
# its own types.
TWIN_TYPE_ONE_INTERP = SUBINTERPRETERS + """
sub = new()
run(sub, "import xinterp_leak")
import xinterp_type as m
m.new_first(); m.call_first(); m.call_last(); m.first_type()()
_i.destroy(sub)
"""

# A single-phase module's type reaches a legacy subinterpreter through CPython's own
# copy of the module (m_copy): shared by design, not a finding.  (The subinterpreter
# imports a multi-phase module first, so that modlife knows it: the copy runs no
# hook.)
SINGLE_PHASE_SHARED = SUBINTERPRETERS + """
import xinterp_single as m
m.make(); m.Thing()
sub = new()
run(sub, "import xinterp_leak, xinterp_single as m; m.make(); m.Thing(); assert type(m.make()) is m.Thing")
_i.destroy(sub)
"""


def run_type_case(interp, fixtures_for, tmp_path, script, fixture="xinterp_type", status=FINDINGS_STATUS):
    path = os.pathsep.join([fixtures_for(fixture), fixtures_for("xinterp_leak")])
    run = run_python(interp, script, tmp_path, pythonpath=path, status=status)
    return run, events(run.records(), "finding")


def assert_type_finding(f, api, owner, here, instance):
    assert f["kind"] == "type-from-other-interpreter"
    assert f["severity"] == "error"
    assert (f["module"], f["instance"], f["type"], f["interp"], f["access_interp"]) == (
        "xinterp_type", instance, "xinterp_type.Item", owner, here)
    assert f["message"] == (
        "%s makes an instance of heap type 'xinterp_type.Item' of module 'xinterp_type' (instance #%d) owned by "
        "interpreter %d, in interpreter %d (a type kept in a C global from another interpreter)"
        % (api, instance, owner, here))
    assert [c["what"] for c in f["context"]] == ["created"]
    assert "exec_module" in [fr.get("fn") for fr in f["context"][0]["stack"]]


def stack_functions(f):
    return [fr.get("fn") for fr in f["stack"]]


def test_first_importers_type_used_in_subinterpreter(interp, fixtures_for, tmp_path):
    """Each place once: the second call_first() is not reported again; the main
    interpreter's own uses of the globals are fine."""
    run, found = run_type_case(interp, fixtures_for, tmp_path, FIRST_TYPE)
    sub = subinterpreter_id(run)
    assert len(found) == 3, run.proc.stderr
    by_new = [f for f in found if "PyObject_GC_New()" in f["message"]]
    assert len(by_new) == 1
    assert_type_finding(by_new[0], "PyObject_GC_New()", 0, sub, 1)
    assert stack_functions(by_new[0])[:2] == ["gc_new", "new_first"]
    by_call = [f for f in found if "call_first" in stack_functions(f)]
    assert len(by_call) == 1
    assert_type_finding(by_call[0], "tp_alloc", 0, sub, 1)
    from_python = [f for f in found if f not in by_new + by_call]
    assert len(from_python) == 1
    assert_type_finding(from_python[0], "tp_alloc", 0, sub, 1)
    assert from_python[0]["python_stack"][0]["function"] == "<module>"
    assert run.proc.stderr.count("SUMMARY: modlife: type-from-other-interpreter ") == 3


def test_last_importers_type_used_in_main(interp, fixtures_for, tmp_path):
    """kiwisolver 1.4.4's shape: every exec overwrites the global, so the main
    interpreter makes the subinterpreter's Items."""
    run, found = run_type_case(interp, fixtures_for, tmp_path, LAST_TYPE)
    assert len(found) == 1, run.proc.stderr
    assert_type_finding(found[0], "tp_alloc", subinterpreter_id(run), 0, 2)
    assert "call_last" in stack_functions(found[0])
    assert "xinterp_type.c:" in run.proc.stderr.split("SUMMARY: modlife: type-from-other-interpreter ")[1]


@pytest.mark.parametrize("script", [TWIN_OWN_TYPE, TWIN_TYPE_ONE_INTERP], ids=["own-type", "one-interp"])
def test_type_twins_report_nothing(interp, fixtures_for, tmp_path, script):
    """Types from the module at hand, Python subclasses of them included; the
    globals are harmless while a single interpreter uses the module."""
    run, found = run_type_case(interp, fixtures_for, tmp_path, script, status=0)
    assert found == [] and "modlife:" not in run.proc.stderr, run.proc.stderr


def test_single_phase_type_shared_by_design(interp, fixtures_for, tmp_path):
    run, found = run_type_case(interp, fixtures_for, tmp_path, SINGLE_PHASE_SHARED, fixture="xinterp_single",
                               status=0)
    assert found == [] and "modlife:" not in run.proc.stderr, run.proc.stderr


# module-outlives-interpreter (tests/fixtures/xinterp_leak.c): a subinterpreter's
# module kept by a C global (the module itself, or its type, which holds it) after
# the subinterpreter was destroyed; the twins keep it in its own state (a cycle the
# collector frees) or borrowed and forgotten in m_free.
LEAK = SUBINTERPRETERS + """
import sys
sub = new()
run(sub, "import xinterp_leak as m; m.%s()" % sys.argv[1])
print("sub", int(sub))
_i.destroy(sub)
print("destroyed")
"""


def run_leak(interp, fixtures_for, tmp_path, how, status):
    script = LEAK.replace("sys.argv[1]", repr(how))
    run = run_python(interp, script, tmp_path, pythonpath=fixtures_for("xinterp_leak"), status=status)
    return run, events(run.records(), "finding")


@pytest.mark.parametrize("how", ["keep_module", "keep_type"])
def test_module_kept_after_its_interpreter_ended(interp, fixtures_for, tmp_path, how):
    run, found = run_leak(interp, fixtures_for, tmp_path, how, FINDINGS_STATUS)
    sub = subinterpreter_id(run)
    assert len(found) == 1, run.proc.stderr
    f = found[0]
    assert f["kind"] == "module-outlives-interpreter" and f["severity"] == "error"
    assert (f["module"], f["instance"], f["interp"]) == ("xinterp_leak", 1, sub)
    assert f["message"] == (
        "module 'xinterp_leak' (instance #1) of interpreter %d and its state are still alive after the interpreter "
        "ended, with its heap type 'xinterp_leak.Widget' (a type made with PyType_FromModuleAndSpec holds its "
        "module): a reference from outside the interpreter (a C global, a leaked object) keeps them" % sub)
    assert "PyModule_ExecDef" in stack_functions(f)
    assert [c["what"] for c in f["context"]] == ["created"]
    # Found once the subinterpreter is gone: when Py_EndInterpreter returns, or at
    # the main interpreter's finalization where destroy does not call it.
    assert run.proc.stderr.count("SUMMARY: modlife: module-outlives-interpreter ") == 1
    assert run.proc.stdout.endswith("destroyed\n")


@pytest.mark.parametrize("how", ["keep_in_state", "note_module"])
def test_module_outlives_twins_report_nothing(interp, fixtures_for, tmp_path, how):
    run, found = run_leak(interp, fixtures_for, tmp_path, how, 0)
    assert found == [] and "modlife:" not in run.proc.stderr, run.proc.stderr
    modules = events(run.records(), "module-free", module="xinterp_leak")
    assert len(modules) == 1, "the subinterpreter's module is freed with it"


# The re-import case (tests/fixtures/xinterp_reimport.c): the first module instance's
# Part type, which does not hold its module, called after that instance was dropped
# and freed (type-outlives-module through the type's tp_alloc); and called in a
# subinterpreter (type-from-other-interpreter).  The twin calls its own module's.
REIMPORT = """
import os; os.environ["XINTERP_REIMPORT_GLOBAL"] = "1"
import gc, sys, xinterp_reimport as m
m.call_part(); m.call_own()
del sys.modules["xinterp_reimport"], m
gc.collect()
import xinterp_reimport as m2
m2.call_own()
m2.call_part()
"""

REIMPORT_TWIN = """
import gc, sys, xinterp_reimport as m
m.call_own()
del sys.modules["xinterp_reimport"], m
gc.collect()
import xinterp_reimport as m2
m2.call_own()
"""

PART_IN_SUBINTERPRETER = SUBINTERPRETERS + """
import os; os.environ["XINTERP_REIMPORT_GLOBAL"] = "1"
import xinterp_reimport as m
m.call_part()
sub = new()
run(sub, "import xinterp_reimport as m; m.call_own(); m.call_part()")
print("sub", int(sub))
_i.destroy(sub)
"""


def test_reimported_module_calls_the_dropped_instances_type(interp, fixtures_for, tmp_path):
    """Also reported where the library tells it (at the module's free, with the
    global's name, and at exit): the call through tp_alloc is this test's."""
    run, found = run_type_case(interp, fixtures_for, tmp_path, REIMPORT, fixture="xinterp_reimport")
    assert {(f["kind"], f["type"], f["instance"]) for f in found} == {
        ("type-outlives-module", "xinterp_reimport.Part", 1)}, run.proc.stderr
    called = [f for f in found if f["message"].startswith("tp_alloc()")]
    assert len(called) == 1, run.proc.stderr
    assert called[0]["message"] == (
        "tp_alloc() makes an instance of heap type 'xinterp_reimport.Part' whose module 'xinterp_reimport' "
        "(instance #1) was freed: the type is kept beyond its module")
    assert "call_part" in stack_functions(called[0])


def test_reimport_twin_reports_nothing(interp, fixtures_for, tmp_path):
    run, found = run_type_case(interp, fixtures_for, tmp_path, REIMPORT_TWIN, fixture="xinterp_reimport", status=0)
    assert found == [] and "modlife:" not in run.proc.stderr, run.proc.stderr


def test_first_instances_type_called_in_subinterpreter(interp, fixtures_for, tmp_path):
    """The global also keeps Part beyond its module's end at finalization."""
    run, found = run_type_case(interp, fixtures_for, tmp_path, PART_IN_SUBINTERPRETER, fixture="xinterp_reimport")
    assert [f["kind"] for f in found] == ["type-from-other-interpreter", "type-outlives-module"], run.proc.stderr
    f = found[0]
    assert (f["kind"], f["type"], f["module"], f["instance"], f["interp"], f["access_interp"]) == (
        "type-from-other-interpreter", "xinterp_reimport.Part", "xinterp_reimport", 1, 0, subinterpreter_id(run))
    assert "call_part" in stack_functions(f)


# Debian's python3-kiwisolver 1.4.4 keeps its types in C++ statics that every exec
# overwrites (Variable::TypeObject = PyType_FromSpec(...)): once a subinterpreter
# imported it, the main interpreter's `-v` makes a Term of the subinterpreter's type
# (and `v + 1` raises TypeError: its type checks use the same statics).
KIWI = SUBINTERPRETERS + """
import kiwisolver as k
v = k.Variable("x"); t = -v; assert type(t) is k.Term
sub = new()
run(sub, "import kiwisolver")
t = -v
assert type(t) is not k.Term
print("sub", int(sub))
"""


def test_kiwisolver_types_from_the_last_importer(interp, tmp_path):
    if interp.name != "debian-3.11":
        pytest.skip("python3-kiwisolver is built for Debian's python3.11")
    require_module(interp, "kiwisolver", "python3-kiwisolver")
    run = run_python(interp, KIWI, tmp_path, status=FINDINGS_STATUS)
    found = [f for f in events(run.records(), "finding") if f["kind"] == "type-from-other-interpreter"]
    assert len(found) == 1, run.proc.stderr
    f = found[0]
    assert (f["type"], f["module"], f["instance"], f["interp"], f["access_interp"]) == (
        "kiwisolver.Term", "_cext", 2, subinterpreter_id(run), 0)
    assert f["message"].startswith("tp_alloc makes an instance of heap type 'kiwisolver.Term' of module '_cext' "
                                   "(instance #2) owned by interpreter %d, in interpreter 0" % subinterpreter_id(run))
