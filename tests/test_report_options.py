"""The detector options as users set them: halt_on_error, exitcode, suppressions,
report_kinds, python_stack, python_frames, and one report per bug and place."""
import os
import re
import subprocess

import pytest

from modlife_testlib import (FINDINGS_STATUS, INTERPRETERS, build_extension, events, modlife_command, read_log,
                             run_modlife, run_python)

INTERP = next(i for i in INTERPRETERS if i.name == "pyenv-3.12.1")
pytestmark = pytest.mark.needs(INTERP)

TWO_KINDS = """
import state_non_module as m, heap_type_slots as h
for _ in range(3):
    m.Thing().bad_state()         # state-from-non-module, three times at one place
h.new_gc_with_pyobject_new(h.make_types(["Tidy"])["Tidy"])   # pyobject-new-on-gc-type
print("reached the end")
"""


@pytest.fixture(scope="module")
def fixtures(ext_root):
    out = str(ext_root / INTERP.name)
    for name in ("state_non_module", "heap_type_slots"):
        build_extension(INTERP, name, out)
    return out


def run(fixtures, tmp_path, *flags, code=TWO_KINDS):
    return run_modlife(list(flags) + ["--", INTERP.path, "-c", code], tmp_path, env={"PYTHONPATH": fixtures})


def kinds(result):
    return [r["kind"] for p in result.logs for r in events(read_log(p), "finding")]


def test_defaults_report_each_bug_once_and_set_the_status(fixtures, tmp_path):
    result = run(fixtures, tmp_path)
    assert result.proc.returncode == FINDINGS_STATUS
    assert "reached the end" in result.proc.stdout
    assert kinds(result) == ["state-from-non-module", "pyobject-new-on-gc-type"]
    assert result.proc.stderr.count("SUMMARY: modlife:") == 2
    assert "Python stack (innermost first):" in result.proc.stderr


def test_halt_on_error_stops_at_the_first(fixtures, tmp_path):
    result = run(fixtures, tmp_path, "--halt-on-error", "--exitcode", "42")
    assert result.proc.returncode == 42
    assert "reached the end" not in result.proc.stdout
    assert kinds(result) == ["state-from-non-module"]


def test_failing_program_keeps_its_status(fixtures, tmp_path):
    result = run(fixtures, tmp_path, code=TWO_KINDS + "\nraise SystemExit(3)\n")
    assert result.proc.returncode == 3 and len(kinds(result)) == 2


@pytest.mark.parametrize("line", [
    "state-from-non-module:state_non_module.Thing",      # names nothing of this finding
    "state-from-non-module:Thing_bad_*",                  # by function
    "*:state_non_module.cpython-*.so",                    # by object file
])
def test_suppressions(fixtures, tmp_path, line):
    supp = tmp_path / "supp.txt"
    supp.write_text("# ours\n%s\n" % line)
    result = run(fixtures, tmp_path / "logs", "--suppressions", str(supp))
    found = kinds(result)
    if line.endswith("state_non_module.Thing"):  # not the module, type or a frame of this finding
        assert found == ["state-from-non-module", "pyobject-new-on-gc-type"]
    else:
        assert found == ["pyobject-new-on-gc-type"]
        assert "state-from-non-module" not in result.proc.stderr


def test_suppression_by_module_and_type(fixtures, tmp_path):
    supp = tmp_path / "supp.txt"
    supp.write_text("pyobject-new-on-gc-type:heap_type_slots.Tidy\n")
    result = run(fixtures, tmp_path / "logs", "--suppressions", str(supp))
    assert kinds(result) == ["state-from-non-module"]
    supp.write_text("pyobject-new-on-gc-type:heap_type_slots\n")
    result = run(fixtures, tmp_path / "logs2", "--suppressions", str(supp))
    assert kinds(result) == ["state-from-non-module"]


def test_malformed_suppressions_name_file_and_line(fixtures, tmp_path):
    supp = tmp_path / "supp.txt"
    supp.write_text("state-from-non-module:x\nnot a suppression\n")
    result = run(fixtures, tmp_path / "logs", "--suppressions", str(supp))
    # The library's message, from its check before the command starts (which it does not).
    assert result.proc.returncode == 2
    assert result.proc.stderr == (
        "modlife run: MODLIFE_OPTIONS: %s:2: expected kind:pattern, got 'not a suppression'\n"
        "modlife run: %s was not started\n" % (supp, INTERP.path))


@pytest.mark.parametrize("spec, expected", [
    ("pyobject-new-on-gc-type", ["pyobject-new-on-gc-type"]),
    ("-pyobject-new-on-gc-type", ["state-from-non-module"]),
    ("all", ["state-from-non-module", "pyobject-new-on-gc-type"]),
])
def test_report_kinds(fixtures, tmp_path, spec, expected):
    assert kinds(run(fixtures, tmp_path, "--report-kinds=" + spec)) == expected


def test_unknown_report_kind_is_an_error(fixtures, tmp_path):
    result = run(fixtures, tmp_path, "--report-kinds", "state-use-after-lunch")
    assert result.proc.returncode == 2 and result.proc.stdout == ""
    assert "report_kinds: unknown finding kind 'state-use-after-lunch'" in result.proc.stderr


def test_python_stack_off(fixtures, tmp_path):
    result = run(fixtures, tmp_path, "--no-python-stack")
    assert "Python stack" not in result.proc.stderr
    assert "SUMMARY: modlife: state-from-non-module" in result.proc.stderr


PLUGGY = "def call(f):\n    f()\n"
RUNNER_SCRIPT = """
import finalize_crash as m
from pluggy import call
m.arm("leak_type_ref")
call(lambda: m.Tracker())
"""
LEFT_OUT = re.compile(r"      \.\.\. (\d+) frames? of importlib/pytest/pluggy left out \((.*)\)")


def _python_stacks(text):
    """The Python stacks of a report's text: lists of their frame lines."""
    stacks, current = [], None
    for line in text.splitlines():
        if line == "  Python stack (innermost first):":
            current = []
            stacks.append(current)
        elif current is not None and line.startswith("      "):
            current.append(line.strip())
        else:
            current = None
    return stacks


def test_runner_python_frames_left_out(interp, fixtures_for, tmp_path):
    """Frames of importlib, pytest and pluggy are left out of the reports, counted; the
    log keeps them; python_frames=all and report --all-python-frames keep them."""
    lib = tmp_path / "lib" / "pluggy"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text(PLUGGY)
    path = fixtures_for("finalize_crash") + ":" + str(tmp_path / "lib")
    run = run_python(interp, RUNNER_SCRIPT, tmp_path / "logs", pythonpath=path, status=FINDINGS_STATUS)
    decref = [r for r in events(run.records(), "finding") if r["kind"] == "dealloc-missing-type-decref"][0]
    logged = [f["file"] for f in decref["python_stack"]]
    assert logged == [str(lib / "__init__.py"), "<string>"]
    created = [f["file"] for f in decref["context"][0]["python_stack"]]
    frozen = sum(1 for f in created if f.startswith("<frozen importlib."))
    assert frozen >= 2 and created[-1] == "<string>"
    report = subprocess.run([modlife_command(), "report", run.log_dir], capture_output=True, text=True).stdout
    for text, hint in ((run.proc.stderr, "MODLIFE_OPTIONS python_frames=all"), (report, "report --all-python-frames")):
        stacks = _python_stacks(text.split("SUMMARY: modlife: dealloc-missing-type-decref")[0])
        assert stacks[0] == ["<string>:5 in <module>", "... 1 frame of importlib/pytest/pluggy left out (%s)" % hint]
        assert stacks[1] == ["<string>:2 in <module>",
                             "... %d frames of importlib/pytest/pluggy left out (%s)" % (frozen, hint)]
    full = run_python(interp, RUNNER_SCRIPT, tmp_path / "all", pythonpath=path, status=FINDINGS_STATUS,
                      env={"MODLIFE_OPTIONS": "python_frames=all"})
    report_all = subprocess.run([modlife_command(), "report", "--all-python-frames", run.log_dir],
                                capture_output=True, text=True).stdout
    for text in (full.proc.stderr, report_all):
        assert not LEFT_OUT.search(text)
        stacks = _python_stacks(text.split("SUMMARY: modlife: dealloc-missing-type-decref")[0])
        assert len(stacks[0]) == 2 and stacks[0][0].startswith(str(lib / "__init__.py") + ":2 in ")
        assert len(stacks[1]) == len(created)
