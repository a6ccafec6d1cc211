"""Stacks: lifetime records' native frames are written unnamed, so that a process
without findings loads no symbol tables, and the tools name them from the
object-load records; findings' stacks are still named in the run; and the stderr
reports of two threads, each in a subinterpreter of its own GIL, come out whole,
one after the other (the report lock)."""
import re
import subprocess

import pytest

from modlife_testlib import (CREATE_ISOLATED_SUBINTERPRETER, INTERPRETERS, build_extension, modlife_command, read_log,
                             run_python)

NAMED = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]
OWN_GIL = [i for i in INTERPRETERS if i.name in ("pyenv-3.12.1", "pyenv-3.13.0")]
LIFETIME = ("module-create", "module-exec", "type-create", "type-dealloc")


def fixtures(interp, ext_root, *names):
    out = str(ext_root / interp.name)
    for name in names:
        build_extension(interp, name, out)
    return out


def only(records, event):
    (record,) = [r for r in records if r["event"] == event]
    return record


@pytest.mark.parametrize("interp", NAMED, ids=[i.name for i in NAMED])
def test_no_findings_no_symbol_tables_and_the_tools_name_the_frames(interp, ext_root, tmp_path):
    path = fixtures(interp, ext_root, "isolated")
    code = "import gc, json, decimal, datetime, isolated\nt = isolated.Thing()\ndel t\ngc.collect()\n"
    run = run_python(interp, code, tmp_path / "logs", pythonpath=path)
    (log,) = run.logs
    records = read_log(log)
    assert not [r for r in records if r["event"] == "finding"]
    frames = [f for r in records if r["event"] in LIFETIME for f in r.get("stack", ())]
    assert len(frames) > 10 and all("obj" in f and "off" in f for f in frames)
    assert [f for f in frames if "fn" in f or "file" in f] == []
    assert only(records, "process-exit")["symbol_tables"] == 0
    out = subprocess.run([modlife_command(), "events", log], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    suffix = r"\.cpython-\d+-x86_64-linux-gnu\.so"
    assert re.search(r"type-create +isolated\.Thing of isolated #1 interp 0  at isolated_exec \(isolated%s\)\n"
                     % suffix, out.stdout), out.stdout


@pytest.mark.parametrize("interp", NAMED, ids=[i.name for i in NAMED])
def test_findings_stacks_are_named_in_the_run(interp, ext_root, tmp_path):
    path = fixtures(interp, ext_root, "state_non_module")
    run = run_python(interp, "import state_non_module as m\nm.state_of(0)\n", tmp_path / "logs", pythonpath=path)
    (log,) = run.logs
    records = read_log(log)
    finding = only(records, "finding")
    top = finding["stack"][0]
    assert top["fn"] == "state_of" and top["file"].endswith("tests/fixtures/state_non_module.c"), top
    assert re.search(r"#0 0x[0-9a-f]+ in state_of \S*tests/fixtures/state_non_module\.c:\d+ ", run.proc.stderr), \
        run.proc.stderr
    assert only(records, "process-exit")["symbol_tables"] >= 1
    # The lifetime records of the same process stay unnamed.
    frames = [f for r in records if r["event"] in LIFETIME for f in r.get("stack", ())]
    assert frames and [f for f in frames if "fn" in f] == []


# Two threads, each running a subinterpreter of its own GIL, meet CALLS findings each
# at once, every one at its own Python place (so each is reported).
CALLS = 150
TWO_GILS = "import threading\n" + CREATE_ISOLATED_SUBINTERPRETER + r'''
CODE = """
import state_non_module as m
for i in range(%d):
    exec(compile("m.state_of(0)", "<thread %d call %%d>" %% i, "exec"))
"""
ready = threading.Barrier(2)
def run(k):
    sub = create()
    interpreters.run_string(sub, "import state_non_module")
    ready.wait()
    interpreters.run_string(sub, CODE % (CALLS, k))
threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
'''.replace("CALLS", str(CALLS))
RULE = "=" * 65


def reports_of(stderr):
    """The reports in stderr, each checked whole: its lines from rule to rule, one
    headline, one summary, nothing of another report in between."""
    reports, current = [], None
    for line in stderr.splitlines():
        if current is None:
            assert line == RULE, "a line outside any report: %r" % line
            current = []
        elif line == RULE:
            assert re.match(r"==\d+==WARNING: modlife: state-from-non-module: ", current[0]), current
            assert current[-1].startswith("SUMMARY: modlife: state-from-non-module "), current
            assert sum(1 for x in current if "==WARNING: " in x or x.startswith("SUMMARY: ")) == 2, current
            reports.append(current)
            current = None
        else:
            current.append(line)
    assert current is None, "a report cut short: %r" % current
    return reports


@pytest.mark.parametrize("interp", OWN_GIL, ids=[i.name for i in OWN_GIL])
def test_reports_of_two_interpreters_with_their_own_gil_never_interleave(interp, ext_root, tmp_path):
    path = fixtures(interp, ext_root, "state_non_module")
    run = run_python(interp, TWO_GILS, tmp_path / "logs", pythonpath=path)
    reports = reports_of(run.proc.stderr)
    places = []
    for report in reports:
        calls = [m.groups() for line in report for m in [re.match(r" +<thread (\d) call (\d+)>:1 in <module>$", line)]
                 if m]
        assert len(calls) == 1, report
        places.append(calls[0])
    assert sorted(places) == sorted((str(k), str(i)) for k in range(2) for i in range(CALLS))
    (log,) = run.logs
    findings = [r for r in read_log(log) if r["event"] == "finding"]
    assert len(findings) == 2 * CALLS and {r["access_interp"] for r in findings} == {1, 2}
