"""Crashes at finalize, four ways, each on every interpreter: the report names the
signal, the interpreter and its phase, the slot that was running, what of the
module was still alive and its last lifetime events (in the log, on stderr and in
`modlife report`), and the process dies as it would without modlife."""

import json
import re
import signal
import subprocess

import pytest

from modlife_testlib import events, modlife_command, run_python

SIGSEGV, SIGABRT = -signal.SIGSEGV, -signal.SIGABRT

CASES = {
    # m_free frees a buffer that an instance's tp_dealloc uses later
    "buffer-freed-by-m_free": ("finalize_crash", """
import gc, sys, finalize_crash as m
m.arm("buffer_after_free"); t = m.Tracker()
del sys.modules["finalize_crash"], m
gc.collect()
del t
""", SIGSEGV, SIGSEGV),
    # a type's tp_dealloc fetches module state after m_clear, at shutdown
    "state-in-dealloc-after-clear": ("finalize_state", """
import finalize_state as m
m.keep(m.Holder()); m.arm("state_in_dealloc")
""", SIGSEGV, SIGSEGV),
    # a state pointer cached in a C global, used by an exit function
    "cached-state-at-exit": ("finalize_state", """
import finalize_state as m
m.keep(m.Holder()); m.arm("cached_state_at_exit")
""", SIGSEGV, (0, SIGSEGV)),  # without modlife: a silent read of freed memory, or a crash
    # abort() in m_clear, at shutdown
    "abort-in-m_clear": ("finalize_crash", """
import finalize_crash as m
m.arm("abort_in_clear")
""", SIGABRT, SIGABRT),
}
TWINS = {
    "finalize_crash": """
import gc, sys, finalize_crash as m
t = m.Tracker()
del sys.modules["finalize_crash"], m
gc.collect()
del t
""",
    "finalize_state": """
import finalize_state as m
m.keep(m.Holder())
""",
}


def crash_record(run):
    records = run.records()
    crashes = [r for r in events(records, "finding") if r.get("signal")]
    assert len(crashes) == 1, [r["kind"] for r in events(records, "finding")]
    return records, crashes[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_crash_report(case, interp, fixtures_for, tmp_path):
    fixture, script, status, plain_status = CASES[case]
    path = fixtures_for(fixture)
    run = run_python(interp, script, tmp_path, pythonpath=path, status=status)
    records, crash = crash_record(run)
    module = fixture
    assert crash["signal"] == ("SIGABRT" if status == SIGABRT else "SIGSEGV")
    assert crash["crash_interp"] == 0
    assert crash["finalizing"] is (case != "buffer-freed-by-m_free")
    assert ("fault_address" in crash) is (status == SIGSEGV)
    recent = [(e["event"], e["module"]) for e in crash["recent_events"]]
    assert recent and all(m == module for _, m in recent) and recent[0] == ("module-create", module)
    if case == "buffer-freed-by-m_free":
        assert crash["kind"] == "finalize-crash" and crash["type"] == "finalize_crash.Tracker"
        assert crash["in_slot"] == {"slot": "tp_dealloc", "owner": "type 'finalize_crash.Tracker'"}
        assert recent[-1] == ("module-free", module)
        assert len(crash["alive"]) == 1
        assert re.fullmatch(r"type 'finalize_crash\.Tracker' of instance #\d+", crash["alive"][0])
    elif case == "state-in-dealloc-after-clear":
        assert crash["kind"] == "finalize-crash"
        assert crash["in_slot"] == {"slot": "tp_dealloc", "owner": "type 'finalize_state.Holder'"}
        assert ("module-free", module) not in recent  # it crashed before m_free
        assert "Holder_dealloc" in [f.get("fn") for f in crash["stack"]]
        kinds = [r["kind"] for r in events(records, "finding")]
        assert kinds == ["state-use-after-clear", "finalize-crash"]
    elif case == "cached-state-at-exit":
        assert crash["kind"] == "state-use-after-free" and crash["module"] == module
        assert "in_slot" not in crash and recent[-1] == ("module-free", module)
        assert crash["stack"][0]["fn"] == "count_exit"
    else:
        assert crash["kind"] == "finalize-crash"
        assert crash["in_slot"]["slot"] == "m_traverse/m_clear/m_free"
        assert crash["in_slot"]["owner"].startswith("module 'finalize_crash' instance #")
    # The same story on stderr, and from the log in `modlife report`.
    for text in (run.proc.stderr, subprocess.run([modlife_command(), "report", run.log_dir],
                                                 capture_output=True, text=True).stdout):
        assert "  Signal: %s" % crash["signal"] in text
        assert "  Interpreter: 0, %s" % ("finalizing" if crash["finalizing"] else "running") in text
        assert "  Last lifetime events of module %s (oldest first):" % module in text
        assert "SUMMARY: modlife: %s" % crash["kind"] in text


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_status_is_the_uninstrumented_one(case, interp, fixtures_for, tmp_path):
    """The same signal and status as without modlife; a cached pointer into freed
    state is the exception: modlife's quarantine turns the silent read into the
    reported SIGSEGV, as AddressSanitizer would (without it, it may or may not crash)."""
    fixture, script, status, plain_status = CASES[case]
    path = fixtures_for(fixture)
    plain = subprocess.run([interp.path, "-c", script], env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
                           capture_output=True)
    assert plain.returncode in (plain_status if isinstance(plain_status, tuple) else (plain_status,))
    run_python(interp, script, tmp_path, pythonpath=path, status=status)


@pytest.mark.parametrize("fixture", sorted(TWINS))
def test_twins_do_not_crash(fixture, interp, fixtures_for, tmp_path):
    run = run_python(interp, TWINS[fixture], tmp_path, pythonpath=fixtures_for(fixture), status=0)
    assert events(run.records(), "finding") == []


def test_still_alive_lists_only_the_living(interp, fixtures_for, tmp_path):
    """A first instance of the module and its type died before the crash: the story's
    "Still alive" leaves them out (their records stay in the registry, dead)."""
    script = """
import gc, sys, finalize_crash as first
del sys.modules["finalize_crash"]
import finalize_crash as m
del first
gc.collect()
m.arm("buffer_after_free"); t = m.Tracker()
del sys.modules["finalize_crash"], m
gc.collect()
del t
"""
    run = run_python(interp, script, tmp_path, pythonpath=fixtures_for("finalize_crash"), status=SIGSEGV)
    records, crash = crash_record(run)
    deaths = [r for r in events(records, "type-dealloc") if r["type"] == "finalize_crash.Tracker"]
    assert len(deaths) == 1
    assert len(crash["alive"]) == 1, crash["alive"]
    assert re.fullmatch(r"type 'finalize_crash\.Tracker' of instance #\d+", crash["alive"][0])
    assert crash["alive"][0] != "type 'finalize_crash.Tracker' of instance #%s" % deaths[0]["instance"]
    assert ("type-dealloc", "finalize_crash") in [(e["event"], e["module"]) for e in crash["recent_events"]]


def test_crash_while_running_is_no_finalize_crash(interp, fixtures_for, tmp_path):
    """A tp_dealloc crashes while its module lives and the interpreter runs: not a
    teardown's crash.  No finding; the signal goes on as without modlife."""
    script = """
import finalize_crash as m
t = m.Tracker(); m.arm("crash_in_dealloc")
del t
"""
    run = run_python(interp, script, tmp_path, pythonpath=fixtures_for("finalize_crash"), status=SIGSEGV)
    assert events(run.records(), "finding") == []
    assert "finalize-crash" not in run.proc.stderr


def test_tools_place_a_crash_where_it_happened(interp, fixtures_for, tmp_path):
    """A subinterpreter uses the state of the main interpreter's freed instance and
    crashes: the timeline draws the finding in the subinterpreter (the log's "interp"
    is the owner's); `lifetimes` says the interpreters were not finalized."""
    script = """
import gc, sys, _testcapi, state_after_free as m
m.bad_cached_counter()
del sys.modules["state_after_free"], m
gc.collect()
_testcapi.run_in_subinterp("import state_after_free as m2; m2.bad_cached_counter()")
"""
    run = run_python(interp, script, tmp_path / "logs", pythonpath=fixtures_for("state_after_free"),
                     status=SIGSEGV)
    records, crash = crash_record(run)
    sub = crash["crash_interp"]
    assert crash["kind"] == "state-use-after-free" and crash["interp"] == 0 and sub > 0
    assert crash["access_interp"] == sub
    page = tmp_path / "t.html"
    subprocess.run([modlife_command(), "timeline", run.log_dir, "-o", str(page)], check=True, capture_output=True)
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page.read_text(),
                                re.S).group(1))
    # The global found dangling at the module's free, in the main interpreter, then the crash.
    assert [(f["kind"], f["interp"]) for f in data["processes"][0]["findings"]] == [
        ("dangling-global", 0), ("state-use-after-free", sub)]
    lifetimes = subprocess.run([modlife_command(), "lifetimes", run.log_dir], capture_output=True, text=True,
                               check=True).stdout
    heads = re.findall(r"^  interpreter (\d+)(?: \(main\))?: created [\d.]+s, (.*)$", lifetimes, re.M)
    assert heads == [("0", "not finalized"), (str(sub), "not finalized")], lifetimes
    assert "-s" not in lifetimes
