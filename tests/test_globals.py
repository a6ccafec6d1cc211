"""C globals that outlive what they point to (issue 16): dangling-global, the global
named in state-use-after-free, PyModule_GetState on a freed module, and heap types
kept alive by a global that m_traverse visits (type-outlives-module at the module's
free and at exit).  Each bug shape has a correct twin that reports nothing."""
import os
import signal
import subprocess

import pytest

from modlife_testlib import FINDINGS_STATUS, events, modlife_command, run_python

SIGSEGV = -signal.SIGSEGV

DROP = """
del sys.modules["{0}"], m
gc.collect()
"""


def findings(run):
    return [(f["kind"], f.get("module"), f.get("type"), f.get("global")) for f in events(run.records(), "finding")]


def innermost_fixture_function(finding, records, fixture):
    paths = {r["id"]: r["path"] for r in records if r["event"] == "object-load"}
    for frame in finding.get("stack", []):
        if os.path.basename(paths.get(frame.get("obj"), "")).startswith(fixture + "."):
            return frame.get("fn")
    return None


def check(interp, fixtures_for, tmp_path, fixture, script, expected, status=None, env=None):
    if status is None:
        status = FINDINGS_STATUS if expected else 0
    run = run_python(interp, "import gc, sys\n" + script, tmp_path / "logs", pythonpath=fixtures_for(fixture),
                     env=env, status=status)
    assert findings(run) == expected, run.proc.stderr
    assert run.proc.stderr.count("SUMMARY: modlife: ") == len(expected), run.proc.stderr
    return run


def test_state_pointer_in_global_is_dangling(interp, fixtures_for, tmp_path):
    run = check(interp, fixtures_for, tmp_path, "dangling_state", """
import dangling_state as m
m.cache_state()
""" + DROP.format("dangling_state"), [("dangling-global", "dangling_state", None, "g_state in dangling_state.c")])
    f = events(run.records(), "finding")[0]
    assert f["message"] == ("the C global g_state in dangling_state.c still points to the state of module "
                            "'dangling_state' (instance #1), freed after its m_free returned")
    assert [c["what"] for c in f["context"]] == ["freed (m_free)", "cleared (m_clear)", "created"]


def test_state_use_after_free_names_the_global(interp, fixtures_for, tmp_path):
    run = check(interp, fixtures_for, tmp_path, "dangling_state", """
import dangling_state as m
m.cache_state()
""" + DROP.format("dangling_state") + """
import dangling_state as m2
m2.cached_counter()
""", [("dangling-global", "dangling_state", None, "g_state in dangling_state.c"),
      ("state-use-after-free", "dangling_state", None, "g_state in dangling_state.c")], status=SIGSEGV)
    records = run.records()
    use = events(records, "finding")[1]
    assert use["message"].endswith("freed with the module; the C global that still pointed to it: "
                                   "g_state in dangling_state.c"), use["message"]
    assert innermost_fixture_function(use, records, "dangling_state") == "cached_counter"


BORROWED_MODULE = """
import dangling_state as m
m.Binder().remember()
p = m.Probe()
""" + DROP.format("dangling_state") + """
p.state_via_global()
"""


def no_debug_build(interp):
    # The original PyModule_GetState, called as without modlife, reads the freed
    # module: a debug build has filled it with 0xdd and crashes there.
    if interp.name.endswith("-dbg"):
        pytest.skip("the original call reads the freed module (0xdd-filled in a debug build)")


def test_module_borrowed_in_global_used_after_free(interp, fixtures_for, tmp_path):
    no_debug_build(interp)
    run = check(interp, fixtures_for, tmp_path, "dangling_state", BORROWED_MODULE,
                [("dangling-global", "dangling_state", None, "g_module in dangling_state.c"),
                 ("state-use-after-free", "dangling_state", None, "g_module in dangling_state.c")])
    records = run.records()
    dangling, use = events(records, "finding")
    assert dangling["message"].startswith("the C global g_module in dangling_state.c still points to the module "
                                          "object of module 'dangling_state' (instance #1)")
    assert use["message"] == (
        "PyModule_GetState() on module 'dangling_state' (instance #1), which was freed: the module object itself "
        "is gone (a borrowed module pointer kept beyond the module, as from PyType_GetModuleByDef); reached "
        "through the C global g_module in dangling_state.c")
    assert innermost_fixture_function(use, records, "dangling_state") == "Probe_state_via_global"
    assert [c["what"] for c in use["context"]] == ["freed (m_free)", "cleared (m_clear)", "created"]


def test_freed_module_use_is_reported_without_the_scan(interp, fixtures_for, tmp_path):
    """The use after free of the module comes from the registry, not from the scan."""
    no_debug_build(interp)
    check(interp, fixtures_for, tmp_path, "dangling_state", BORROWED_MODULE,
          [("state-use-after-free", "dangling_state", None, "g_module in dangling_state.c")],
          env={"MODLIFE_OPTIONS": "report_kinds=-dangling-global"})


def test_globals_cleared_in_m_free_twin(interp, fixtures_for, tmp_path):
    check(interp, fixtures_for, tmp_path, "dangling_state", """
import dangling_state as m
m.cache_state_cleared()
m.Binder().remember_cleared()
p = m.Probe()
""" + DROP.format("dangling_state") + """
p.state_via_global()
import dangling_state as m2
assert m2.cache_state_cleared() == 1
""", [])


KEPT = """
import kept_type as m
t = m.Tidy
m.keep_last_cleared(m.Gadget())
{0}
del t
""" + DROP.format("kept_type")


@pytest.mark.parametrize("bug, line, type_, glob, held", [
    ("widget", "", "kept_type.Widget", "Widget_Type in kept_type.c", "it"),
    ("last", "m.keep_last(m.Gadget())", "kept_type.Gadget", "g_last in kept_type.c", "an instance of it"),
])
def test_type_kept_by_visited_global_outlives_module(bug, line, type_, glob, held, interp, fixtures_for, tmp_path):
    """Found at the module's free, decided once the collection is over: here at exit,
    where one report says both (tests/test_detectors.py's outlives-reused-by-next-instance
    has it decided earlier, when the next instance is made)."""
    run = check(interp, fixtures_for, tmp_path, "kept_type", KEPT.format(line),
                [("type-outlives-module", "kept_type", type_, glob)], env={"KEPT_TYPE": bug})
    records = run.records()
    f, = events(records, "finding")
    assert f["message"] == ("heap type '%s' made by module 'kept_type' (instance #1) is still alive at exit, "
                            "after the module was freed; the C global %s points to %s" % (type_, glob, held))
    assert innermost_fixture_function(f, records, "kept_type") == "exec_module"
    assert [c["what"] for c in f["context"]] == ["created", "orphaned when its module was freed (m_free)"]
    report = subprocess.run([modlife_command(), "report", str(tmp_path / "logs")], capture_output=True, text=True)
    assert report.stdout.count("SUMMARY: modlife: type-outlives-module") == 1, report.stdout


def test_instance_in_one_slot_free_list_keeps_type(interp, fixtures_for, tmp_path):
    check(interp, fixtures_for, tmp_path, "kept_type", KEPT.format("m.Pooled()"),
          [("dealloc-missing-type-decref", "kept_type", "kept_type.Pooled", None),
           ("type-outlives-module", "kept_type", "kept_type.Pooled", "pool in kept_type.c")], env={"KEPT_TYPE": "pool"})


def test_type_pointer_without_reference_dangles(interp, fixtures_for, tmp_path):
    run = check(interp, fixtures_for, tmp_path, "kept_type", KEPT.format(""),
                [("dangling-global", "kept_type", "kept_type.Borrowed", "borrowed_type in kept_type.c")],
                env={"KEPT_TYPE": "borrowed"})
    f = events(run.records(), "finding")[0]
    assert f["message"] == ("the C global borrowed_type in kept_type.c still points to heap type "
                            "'kept_type.Borrowed' of module 'kept_type' (instance #1), which was freed")


def test_types_in_cleared_globals_twin(interp, fixtures_for, tmp_path):
    check(interp, fixtures_for, tmp_path, "kept_type", KEPT.format("p = m.Pooled(); del p") + """
import kept_type as m2
m2.keep_last_cleared(m2.Gadget())
""", [])


# The collector on every allocation: a new module object, often made at the address
# of the one dropped just before (in the freed-module ring), is traversed while its
# creation hook still captures stacks, before the module is registered.  Its
# m_traverse's PyModule_GetState is on a live module.
REUSED_ADDRESS = """
gc.set_threshold(1, 1, 1)
for _ in range(200):
    sys.modules.pop("isolated", None)
    import isolated
    isolated.Thing()
gc.set_threshold(700, 10, 10)
"""


def test_module_at_a_freed_modules_address_traversed_before_registration_twin(interp, fixtures_for, tmp_path):
    run = check(interp, fixtures_for, tmp_path, "isolated", REUSED_ADDRESS, [])
    records = run.records()
    freed, reused = set(), 0
    for r in records:
        if r.get("module") == "isolated" and r["event"] == "module-free":
            freed.add(r["address"])
        elif r.get("module") == "isolated" and r["event"] == "module-create":
            reused += r["address"] in freed
    assert reused, "no module was made at a freed one's address: the shape under test did not happen"
