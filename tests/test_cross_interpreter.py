"""state-from-other-interpreter: a module object or heap type kept in a C global by the
first interpreter to import, used from another interpreter (tests/fixtures/
xinterp_state.c), and the correct twins that fetch the state from the module or
instance at hand, on every interpreter (all have a subinterpreter module: 3.9-3.12's
_xxsubinterpreters, 3.13's _interpreters)."""
import pytest

from modlife_testlib import FINDINGS_STATUS, events, run_python

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
    run, found = run_case(interp, fixtures_for, tmp_path, SUBINTERPRETER_FIRST)
    assert len(found) == 1, run.proc.stderr
    assert_finding(found[0], "PyModule_GetState()", subinterpreter_id(run), 0, "bad_global_module")


@pytest.mark.parametrize("script", [TWIN_OWN_STATE, TWIN_SUBINTERPRETER_ONLY], ids=["own-state", "one-interp"])
def test_twins_report_nothing(interp, fixtures_for, tmp_path, script):
    """Each interpreter's module uses its own state; and the globals are harmless
    while a single interpreter uses the module."""
    run, found = run_case(interp, fixtures_for, tmp_path, script, status=0)
    assert found == [] and "modlife:" not in run.proc.stderr, run.proc.stderr
