"""Every finding kind (instrument/kinds.c, README's Findings), each through at least
two paths, and the correct twins that must report nothing; on every interpreter.
Assertions name the kind, module, type and the guilty function (the innermost frame
of the report)."""
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field

import pytest

from modlife_testlib import FINDINGS_STATUS, events, modlife_command, run_python

SIGSEGV = -signal.SIGSEGV
SIGABRT = -signal.SIGABRT


@dataclass
class Case:
    name: str
    fixture: str
    script: str
    findings: list          # (kind, module, type, guilty function) in report order
    status: int = None      # default: FINDINGS_STATUS for errors, 0 for warnings only (as in ASan)
    env: dict = field(default_factory=dict)
    min_version: tuple = (3, 9)

    def __post_init__(self):
        if self.status is None:
            errors = [f for f in self.findings if f[0] not in WARNINGS]
            self.status = FINDINGS_STATUS if errors else 0


WARNINGS = {"traverse-missing-type-visit", "static-type-in-multiphase-module", "state-from-non-module"}


# A module state pointer cached in a C global, used after the module is gone.
CACHED_STATE_AFTER_FREE = """
import gc, sys, state_after_free as m
m.bad_cached_counter()
del sys.modules["state_after_free"], m
gc.collect()
import state_after_free as m2
m2.bad_cached_counter()
"""

# The state's global found at the module's free (tests/test_globals.py has the
# details): no frame of the fixture runs there.
DANGLING_CACHED = ("dangling-global", "state_after_free", None, None)

CASES = [
    # state-use-after-clear
    Case("after-clear-dealloc-in-m_clear", "state_after_clear", """
import gc, sys, state_after_clear as m
m.keep(m.Holder())
del sys.modules["state_after_clear"], m
gc.collect()
""", [("state-use-after-clear", "state_after_clear", None, "state_of_type")]),
    Case("after-clear-at-shutdown", "state_after_clear", """
import state_after_clear as m
m.keep(m.Holder())
""", [("state-use-after-clear", "state_after_clear", None, "state_of_type")]),
    Case("after-clear-in-subinterpreter", "state_after_clear", """
import _testcapi
assert _testcapi.run_in_subinterp("import state_after_clear as m; m.keep(m.Holder())") == 0
""", [("state-use-after-clear", "state_after_clear", None, "state_of_type")]),
    Case("after-clear-twin", "state_after_clear", """
import gc, sys, state_after_clear as m
m.keep(m.Keeper()); k = m.Keeper()
del sys.modules["state_after_clear"], m
gc.collect()
""", [], status=0),
    # state-use-after-free
    Case("after-free-cached-in-global", "state_after_free", CACHED_STATE_AFTER_FREE,
         [DANGLING_CACHED, ("state-use-after-free", "state_after_free", None, "bad_cached_counter")],
         status=SIGSEGV),
    # tracemalloc installed its allocator before modlife and restores it at exit:
    # quarantined state must still be caught, and never reach the restored free().
    Case("after-free-under-tracemalloc", "state_after_free", CACHED_STATE_AFTER_FREE,
         [DANGLING_CACHED, ("state-use-after-free", "state_after_free", None, "bad_cached_counter")],
         status=SIGSEGV,
         env={"PYTHONTRACEMALLOC": "1"}),
    Case("state-alive-at-exit-under-tracemalloc-twin", "state_after_clear state_after_free", """
import state_after_clear, state_after_free
k = state_after_clear.Keeper()
""", [], status=0, env={"PYTHONTRACEMALLOC": "1"}),
    Case("after-free-kept-by-object", "state_after_free", """
import gc, sys, state_after_free as m
r = m.make_ref()
del sys.modules["state_after_free"], m
gc.collect()
r.read()
""", [("state-use-after-free", "state_after_free", None, "Ref_read")], status=SIGSEGV),
    Case("after-free-twin", "state_after_free", """
import gc, sys, state_after_free as m
m.good_counter()
del sys.modules["state_after_free"], m
gc.collect()
import state_after_free as m2
assert m2.good_counter() == 1
""", [], status=0),
    # type-outlives-module
    Case("outlives-reused-by-next-instance", "type_outlives", """
import gc, sys, type_outlives as m
w = m.make_widget(); del w
del sys.modules["type_outlives"], m
gc.collect()
import type_outlives as m2
m2.make_widget()
""", [# the global Widget_Type found at the module's free, decided at the next instance
      ("type-outlives-module", "type_outlives", "type_outlives.Widget", "exec_module"),
      ("type-outlives-module", "type_outlives", "type_outlives.Widget", "make_widget"),
      ("type-outlives-module", "type_outlives", "type_outlives.Widget", "exec_module")],
         env={"TYPE_OUTLIVES_WIDGET": "1"}),
    Case("outlives-alive-at-exit", "type_outlives", """
import gc, sys, type_outlives as m
del sys.modules["type_outlives"], m
gc.collect()
""", [("type-outlives-module", "type_outlives", "type_outlives.Widget", "exec_module")],
         env={"TYPE_OUTLIVES_WIDGET": "1"}),
    Case("outlives-twin", "type_outlives", """
import gc, sys, type_outlives as m
g = m.make_gadget(); del g
del sys.modules["type_outlives"], m
gc.collect()
import type_outlives as m2
m2.make_gadget()
""", [], status=0),
    # dealloc-missing-type-decref: the leaked reference keeps the type (and its
    # module) alive past exit, which is reported as well
    Case("decref-own-instance", "heap_type_slots", """
import heap_type_slots as h
T = h.make_types(["Leaky"])["Leaky"]
x = T(); del x
""", [("dealloc-missing-type-decref", "heap_type_slots", "heap_type_slots.Leaky", "dealloc_leaky")]),
    Case("decref-python-subclass", "heap_type_slots", """
import heap_type_slots as h
T = h.make_types(["Leaky"])["Leaky"]
class Sub(T): pass
x = Sub(); del x
""", [("dealloc-missing-type-decref", "heap_type_slots", "heap_type_slots.Leaky", "dealloc_leaky")]),
    # traverse-missing-type-visit
    Case("traverse-by-gc", "heap_type_slots", """
import gc, heap_type_slots as h
T = h.make_types(["Blind"])["Blind"]
x = T(); gc.collect()
""", [("traverse-missing-type-visit", "heap_type_slots", "heap_type_slots.Blind", "traverse_without_type")]),
    Case("traverse-c-subclass-by-get-referents", "heap_type_slots", """
import gc, heap_type_slots as h
T = h.make_types(["BlindSub"])["BlindSub"]
gc.get_referents(T())
""", [("traverse-missing-type-visit", "heap_type_slots", "heap_type_slots.BlindSub", "traverse_without_type")]),
    # pyobject-new-on-gc-type
    Case("pyobject-new-in-function", "heap_type_slots", """
import heap_type_slots as h
h.new_gc_with_pyobject_new(h.make_types(["Tidy"])["Tidy"])
""", [("pyobject-new-on-gc-type", "heap_type_slots", "heap_type_slots.Tidy", "new_gc_with_pyobject_new")]),
    Case("pyobject-newvar-in-tp-new", "heap_type_slots", """
import heap_type_slots as h
T = h.make_types(["NewVarGC"])["NewVarGC"]
x = T(); del x
""", [("pyobject-new-on-gc-type", "heap_type_slots", "heap_type_slots.NewVarGC", "NewVarGC_new")]),
    # tp-free-override
    Case("tp-free-override", "heap_type_slots", """
import heap_type_slots as h
h.make_types(["GCFreedWrong", "PlainFreedWrong"])
""", [("tp-free-override", "heap_type_slots", "heap_type_slots.GCFreedWrong", "make_type"),
      ("tp-free-override", "heap_type_slots", "heap_type_slots.PlainFreedWrong", "make_type")]),
    Case("heap-type-slots-twins", "heap_type_slots", """
import gc, heap_type_slots as h
types = h.make_types(["Tidy", "GCFreedRight"])
class Sub(types["Tidy"]): pass
objs = [types["Tidy"](), Sub(), h.new_gc_right(types["Tidy"])]
gc.collect(); [gc.get_referents(o) for o in objs]
del objs
""", [], status=0),
    # static-type-in-multiphase-module
    # Reported once a second instance of the module shares the type.
    Case("static-types-second-instance", "static_type", """
import sys, static_type
del sys.modules["static_type"]
import static_type
""", [("static-type-in-multiphase-module", "static_type", "static_type.Early", "PyInit_static_type"),
      ("static-type-in-multiphase-module", "static_type", "static_type.Late", "exec_module")]),
    Case("static-types-in-subinterpreter", "static_type", """
import _testcapi, static_type
assert _testcapi.run_in_subinterp("import static_type") == 0
""", [("static-type-in-multiphase-module", "static_type", "static_type.Early", "PyInit_static_type"),
      ("static-type-in-multiphase-module", "static_type", "static_type.Late", "exec_module")]),
    Case("static-type-twins", "static_type_ok legacy", """
import sys, static_type_ok, legacy
del sys.modules["static_type_ok"]
import static_type_ok
""", [], status=0),
    # One instance shares nothing; nor does a module that refuses a second one.
    Case("static-type-one-instance-twin", "static_type", "import static_type", [], status=0),
    Case("static-type-opt-out-twin", "static_type_once", """
import sys, _testcapi, static_type_once
del sys.modules["static_type_once"]
try:
    import static_type_once
except ImportError as e:
    assert "more than once" in str(e), e
else:
    raise AssertionError("imported twice")
assert _testcapi.run_in_subinterp("import static_type_once") == -1
""", [], status=0),
    # state-from-non-module
    Case("state-from-non-module", "state_non_module", """
import state_non_module as m
m.Thing().bad_state()
m.state_of(m.Thing)
""", [("state-from-non-module", None, None, "Thing_bad_state"),
      ("state-from-non-module", None, None, "state_of")]),
    # Warnings change the status only when asked.
    Case("state-from-non-module-exit-on-warnings", "state_non_module", """
import state_non_module as m
m.Thing().bad_state()
""", [("state-from-non-module", None, None, "Thing_bad_state")], status=FINDINGS_STATUS,
         env={"MODLIFE_OPTIONS": "exit_on_warnings=1"}),
    Case("state-from-module-twin", "state_non_module", """
import sys, state_non_module as m
m.Thing().good_state(); m.state_of(sys)
""", [], status=0),
    # finalize-crash
    Case("abort-in-m_clear-at-exit", "finalize_crash", """
import finalize_crash as m
m.arm("abort_in_clear")
""", [("finalize-crash", None, None, "clear_module")], status=SIGABRT),
    Case("dealloc-uses-buffer-freed-by-m_free", "finalize_crash", """
import gc, sys, finalize_crash as m
m.arm("buffer_after_free"); t = m.Tracker()
del sys.modules["finalize_crash"], m
gc.collect()
del t
""", [("finalize-crash", None, "finalize_crash.Tracker", "Tracker_dealloc")], status=SIGSEGV),
    # Python's faulthandler (on in pytest and regrtest) handles the fault first and
    # raises it again from its own handler: the report must still come, whole.
    Case("after-free-under-faulthandler", "state_after_free", CACHED_STATE_AFTER_FREE,
         [DANGLING_CACHED, ("state-use-after-free", "state_after_free", None, "bad_cached_counter")],
         status=SIGSEGV,
         env={"PYTHONFAULTHANDLER": "1"}),
    Case("finalize-crash-under-faulthandler", "finalize_crash", """
import gc, sys, finalize_crash as m
m.arm("buffer_after_free"); t = m.Tracker()
del sys.modules["finalize_crash"], m
gc.collect()
del t
""", [("finalize-crash", None, "finalize_crash.Tracker", "Tracker_dealloc")], status=SIGSEGV,
         env={"PYTHONFAULTHANDLER": "1"}),
    Case("abort-in-m_clear-under-faulthandler", "finalize_crash", """
import finalize_crash as m
m.arm("abort_in_clear")
""", [("finalize-crash", None, None, "clear_module")], status=SIGABRT, env={"PYTHONFAULTHANDLER": "1"}),
    Case("finalize-twin", "finalize_crash", """
import gc, sys, finalize_crash as m
t = m.Tracker()
del sys.modules["finalize_crash"], m
gc.collect()
del t
""", [], status=0),
]


def guilty_function(finding, records, fixtures):
    """As the SUMMARY line: the innermost frame in a fixture, else the innermost."""
    paths = {r["id"]: r["path"] for r in records if r["event"] == "object-load"}
    frames = finding.get("stack", [])
    for frame in frames:
        if os.path.basename(paths.get(frame.get("obj"), "")).split(".")[0] in fixtures:
            return frame.get("fn")
    return frames[0].get("fn") if frames else None


def summarize(finding, records, fixtures):
    return (finding["kind"], finding.get("module"), finding.get("type"), guilty_function(finding, records, fixtures))


def matches(expected, actual):
    kind, module, type_, fn = expected
    return (actual[0] == kind and (module is None or actual[1] == module) and
            (type_ is None or actual[2] == type_) and (fn is None or actual[3] == fn))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_finding(case, interp, fixtures_for, tmp_path):
    if interp.version < case.min_version:
        pytest.skip("needs Python %d.%d" % case.min_version)
    path = fixtures_for(*case.fixture.split())
    run = run_python(interp, case.script, tmp_path, pythonpath=path, env=case.env, status=case.status)
    records = run.records()
    found = [summarize(f, records, case.fixture.split()) for f in events(records, "finding")]
    assert len(found) == len(case.findings), "findings: %s\nstderr:\n%s" % (found, run.proc.stderr)
    for expected, actual in zip(case.findings, found):
        assert matches(expected, actual), "expected %s, got %s" % (expected, actual)
    # One report on stderr per finding, with its SUMMARY line.
    assert run.proc.stderr.count("SUMMARY: modlife: ") == len(case.findings)
    for kind, _, _, fn in case.findings:
        assert "SUMMARY: modlife: %s" % kind in run.proc.stderr
        if fn is None:  # no frame of the fixture: the interpreter's, which may be stripped
            continue
        assert (" in %s" % fn) in run.proc.stderr
        if case.status >= 0:  # reports from the fatal-signal handler do not read DWARF
            sources = "|".join(re.escape(f) for f in case.fixture.split())
            assert re.search(r"SUMMARY: modlife: %s \S*/(%s)\.c:\d+ in %s\b" % (kind, sources, fn),
                             run.proc.stderr), "no file:line for %s in:\n%s" % (fn, run.proc.stderr)


def test_crashes_die_as_without_modlife(interp, fixtures_for, tmp_path):
    """A crash at finalize keeps its signal, exit status included."""
    path = fixtures_for("finalize_crash")
    crashes = [c for c in CASES if c.fixture == "finalize_crash" and c.status < 0]
    assert len(crashes) >= 2, [c.name for c in crashes]
    for case in crashes:
        plain = subprocess.run([interp.path, "-c", case.script], env=dict(os.environ, PYTHONPATH=path),
                               capture_output=True, text=True)
        assert plain.returncode == case.status
        run_python(interp, case.script, tmp_path / case.name, pythonpath=path, status=case.status)


def test_type_outlives_module_names_the_leaking_dealloc(interp, fixtures_for, tmp_path):
    """The type outlives its module because its tp_dealloc leaks references to it: the
    type-outlives-module report says so and points at that dealloc (log, stderr and
    `modlife report`), not at the generic PyType_FromModuleAndSpec advice."""
    script = """
import gc, sys, finalize_crash as m
m.arm("leak_type_ref"); t = m.Tracker(); del t
del sys.modules["finalize_crash"], m
gc.collect()
"""
    run = run_python(interp, script, tmp_path, pythonpath=fixtures_for("finalize_crash"), status=FINDINGS_STATUS)
    found = {r["kind"]: r for r in events(run.records(), "finding")}
    assert sorted(found) == ["dealloc-missing-type-decref", "type-outlives-module"]
    outlives = found["type-outlives-module"]
    assert outlives["cause"] == {"kind": "dealloc-missing-type-decref", "slot": "tp_dealloc",
                                 "slot_function": "Tracker_dealloc"}
    assert outlives["message"] == (
        "heap type 'finalize_crash.Tracker' made by module 'finalize_crash' (instance #1) is still alive at exit, "
        "after the module was freed; its instances leaked references to it: tp_dealloc Tracker_dealloc does not "
        "Py_DECREF its type (dealloc-missing-type-decref)")
    fix = ("Fix: Fix the dealloc-missing-type-decref of tp_dealloc Tracker_dealloc (Py_DECREF(tp) after "
           "tp->tp_free(self)): the references it leaks keep the type alive past its module.")
    report = subprocess.run([modlife_command(), "report", run.log_dir], capture_output=True, text=True).stdout
    for text in (run.proc.stderr, report):
        assert fix in text.splitlines()
        assert "PyType_FromModuleAndSpec, store it" not in text
