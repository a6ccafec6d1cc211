"""`modlife report` (text, json, sarif) and `modlife lifetimes` on logs of real runs
of the fixture extensions: grouping across the processes of one run, symbolization
after the fact, filters, truncated and foreign logs."""
import json
import os
import re
import subprocess
import sys

import pytest

from modlife_testlib import FINDINGS_STATUS, HERE, INTERPRETERS, build_extension, modlife_command, read_log, run_modlife

INTERP = next(i for i in INTERPRETERS if i.name == "pyenv-3.12.1")
pytestmark = pytest.mark.needs(INTERP)
SRCDIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRCDIR, "tools", "python"))
from modlife.kinds import KINDS  # noqa: E402

# The same finding in a parent and its forked child: one group, seen twice.
FORKED = """
import gc, os, sys, state_after_clear as m
pid = os.fork()
m.keep(m.Holder())
del sys.modules["state_after_clear"], m
gc.collect()
import state_after_clear
if pid:
    os.waitpid(pid, 0)
"""

SUBINTERPRETER = """
import _testcapi, xxlimited
assert _testcapi.run_in_subinterp("import state_after_clear as m; m.keep(m.Holder())") == 0
"""

ALIVE_AT_EXIT = """
import gc, sys, type_outlives as m
del sys.modules["type_outlives"], m
gc.collect()
"""


@pytest.fixture(scope="module")
def fixtures(ext_root):
    out = str(ext_root / INTERP.name)
    for name in ("state_after_clear", "type_outlives"):
        build_extension(INTERP, name, out)
    return out


def run_script(fixtures, log_dir, code, options=None, extra_env=None):
    env = {"PYTHONPATH": fixtures}
    env.update(extra_env or {})
    if options:
        env["MODLIFE_OPTIONS"] = options
    run = run_modlife(["--", INTERP.path, "-c", code], log_dir, env=env)
    assert run.proc.returncode == FINDINGS_STATUS, run.proc.stderr
    return run


@pytest.fixture(scope="module")
def forked(fixtures, tmp_path_factory):
    return run_script(fixtures, tmp_path_factory.mktemp("forked"), FORKED)


@pytest.fixture(scope="module")
def unsymbolized(fixtures, tmp_path_factory):
    """A run that named no frames itself: the report must do it."""
    return run_script(fixtures, tmp_path_factory.mktemp("unsymbolized"), FORKED.replace("os.fork()", "0"),
                      options="symbolize=0")


def modlife(*args, check=True):
    proc = subprocess.run([modlife_command()] + list(args), capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


FIXTURE_FRAME = re.compile(r"in (\w+) \S*tests/fixtures/state_after_clear\.c:(\d+) ")


def test_text_report_groups_the_same_finding_of_two_processes(forked):
    assert len(forked.logs) == 2
    out = modlife("report", forked.log_dir).stdout
    assert out.count("ERROR: modlife: state-use-after-clear:") == 1
    assert "Seen 2 times in 2 processes" in out
    summary = [line for line in out.splitlines() if line.startswith("SUMMARY: ")]
    assert len(summary) == 1
    assert re.match(r"SUMMARY: modlife: state-use-after-clear \S*tests/fixtures/state_after_clear\.c:\d+ "
                     r"in state_of_type \(module state_after_clear\)$", summary[0]), summary[0]
    assert [m.group(1) for m in FIXTURE_FRAME.finditer(out)][:2] == ["state_of_type", "Holder_dealloc"]
    assert "was cleared (m_clear) here:" in out and "was created here:" in out
    assert "Rule: Module state must not be used after the module's m_clear has run" in out
    table = out[out.index("modlife: 2 findings"):]
    assert re.search(r"state-use-after-clear\s+error\s+2\s+state_after_clear", table), table


def test_report_symbolizes_what_the_run_did_not(unsymbolized):
    records = read_log(unsymbolized.logs[0])
    lifetime_frames = [f for r in records if r["event"] == "module-create" for f in r["stack"]]
    assert lifetime_frames and not any("fn" in f for f in lifetime_frames)
    out = modlife("report", unsymbolized.log_dir).stdout
    assert [m.group(1) for m in FIXTURE_FRAME.finditer(out)][:2] == ["state_of_type", "Holder_dealloc"]
    # libpython's frames get file:line from its own debug info.
    assert re.search(r"in module_clear Objects/moduleobject\.c:\d+ \(libpython3\.12", out), out


def test_json_report(forked):
    doc = json.loads(modlife("report", "--format", "json", forked.log_dir).stdout)
    assert len(doc["processes"]) == 2
    (finding,) = doc["findings"]
    assert finding["kind"] == "state-use-after-clear" and finding["severity"] == "error"
    assert finding["module"] == "state_after_clear" and finding["count"] == 2
    assert finding["location"]["fn"] == "state_of_type"
    assert finding["location"]["file"].endswith("tests/fixtures/state_after_clear.c")
    assert [c["what"] for c in finding["context"]] == ["cleared (m_clear)", "created"]
    assert doc["summary"] == [{"kind": "state-use-after-clear", "severity": "error", "count": 2,
                               "modules": ["state_after_clear"]}]


def test_sarif_report(forked):
    doc = json.loads(modlife("report", "--format", "sarif", "--source-root", SRCDIR, forked.log_dir).stdout)
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    (run,) = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    # One rule per kind of the library (instrument/kinds.def; tests/test_contracts.py).
    assert [(r["id"], r["defaultConfiguration"]["level"]) for r in rules] == [(k.name, k.severity) for k in KINDS]
    for rule in rules:
        assert rule["help"]["text"].startswith(rule["fullDescription"]["text"])
        assert rule["shortDescription"]["text"] and rule["helpUri"].startswith("https://docs.python.org/")
    (result,) = run["results"]
    assert result["ruleId"] == "state-use-after-clear" and result["level"] == "error"
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert result["message"]["text"].endswith("(module state_after_clear)")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "tests/fixtures/state_after_clear.c", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] >= 1
    assert result["locations"][0]["logicalLocations"][0]["name"] == "state_of_type"
    assert [s["message"]["text"].split(" was ")[-1] for s in result["stacks"][1:]] == \
        ["cleared (m_clear) here", "created here"]
    assert result["partialFingerprints"]["modlifeFinding/v1"]


def test_lifetimes_lists_instances_types_and_what_is_alive(fixtures, tmp_path, forked):
    out = modlife("lifetimes", forked.logs[0]).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("  module ") or line.startswith("  type ")]
    assert [(r[0], r[1], r[2] if r[0] == "module" else None) for r in rows if r[0] == "module"] == \
        [("module", "state_after_clear", "#1"), ("module", "state_after_clear", "#2")]
    assert sorted({r[1] for r in rows if r[0] == "type"}) == ["state_after_clear.Holder", "state_after_clear.Keeper"]
    assert "alive at exit: 0 module instance(s), 0 heap type(s)" in out

    alive = run_script(fixtures, tmp_path / "alive", ALIVE_AT_EXIT, extra_env={"TYPE_OUTLIVES_WIDGET": "1"})
    out = modlife("lifetimes", "--alive", alive.log_dir).stdout
    rows = [line for line in out.splitlines() if line.startswith("  type ") or line.startswith("  module ")]
    assert len(rows) == 1 and "type_outlives.Widget" in rows[0] and "ALIVE at exit" in rows[0], out


def lifetime_rows(out):
    """(what, name, interp) of each row of `modlife lifetimes`."""
    rows = []
    for line in out.splitlines():
        cols = line.split()
        if line.startswith("  module "):
            rows.append(("module", cols[1] + " " + cols[2], int(cols[3])))
        elif line.startswith("  type "):
            rows.append(("type", cols[1], int(cols[2])))
    return rows


def test_lifetimes_filters_by_module_and_interpreter(fixtures, tmp_path):
    run = run_script(fixtures, tmp_path, SUBINTERPRETER)
    everything = lifetime_rows(modlife("lifetimes", run.log_dir).stdout)
    assert any(r[1].startswith("xxlimited #") and r[2] == 0 for r in everything)
    assert any(r[1].startswith("state_after_clear #") and r[2] == 1 for r in everything)
    sub = lifetime_rows(modlife("lifetimes", "--interp", "1", run.log_dir).stdout)
    assert sub == [r for r in everything if r[2] == 1] and sub
    only = lifetime_rows(modlife("lifetimes", "--module", "xx*", run.log_dir).stdout)
    assert only == [r for r in everything if r[1].startswith("xxlimited")] and only


def test_truncated_log_is_read_up_to_the_last_whole_record(forked, tmp_path):
    log = forked.logs[0]
    data = open(log, "rb").read()
    cut = data.rindex(b'{"event":"finding"') + 40  # in the middle of the finding record
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(data[:cut])
    proc = modlife("report", str(truncated))
    assert "modlife: 0 findings" in proc.stdout and proc.stderr == ""
    assert "ended without a process-exit record" in proc.stdout
    out = modlife("lifetimes", str(truncated)).stdout
    assert "alive when the log ends" in out


def test_a_stack_id_with_no_stack_record_is_a_clear_error(tmp_path):
    path = tmp_path / "foreign.jsonl"
    path.write_bytes(b'{"event":"process-start","t":0,"pid":1}\n{"event":"stack","t":1,"id":1,"stack":[]}\n'
                     b'{"event":"module-create","t":2,"module":"m","stack_id":1}\n'
                     b'{"event":"type-create","t":3,"type":"m.T","stack_id":2}\n')
    proc = modlife("events", str(path), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("modlife: %s:4: corrupt type-create record: its \"stack_id\" names no earlier stack "
                           "record\n" % path), proc.stderr


@pytest.mark.parametrize("content, message", [
    (b"not json at all\n", r"foreign\.jsonl:1: not a modlife log record"),
    (b'{"event":"process-start","t":0,"pid":1}\n{"pid": 2}\n', r"foreign\.jsonl:2: not a modlife log record \(no \"event\"\)"),
    (b'{"event":"finding"}\n', r"foreign\.jsonl:1: not a modlife log \(it must start with a process-start record\)"),
    # Found by tests/fuzz/fuzz_logreader.py: values of the wrong type reached the tools.
    (b'{"event":"process-start","t":0,"pid":1}\n{"event":"object-load","t":1,"id":0,"path":true}\n',
     r"foreign\.jsonl:2: corrupt object-load record: field \"path\" must be a string"),
    (b'{"event":"process-start","t":0,"pid":1}\n{"event":"object-load","t":1,"path":"/x"}\n',
     r"foreign\.jsonl:2: corrupt object-load record: no \"id\""),
    (b'{"event":"process-start","t":0,"pid":1,"argv":[1]}\n',
     r"foreign\.jsonl:1: corrupt process-start record: \"argv\" must hold strings"),
    (b'{"event":"process-start","t":0,"pid":1}\n{"event":"finding","t":2,"kind":"x","stack":[{"off":3}]}\n',
     r"foreign\.jsonl:2: corrupt finding record: in \"stack\": field \"off\" must be a hex string"),
    (b'{"event":"process-start","t":0,"pid":1,"log_format":3}\n',
     r"foreign\.jsonl:1: written by a newer modlife \(log format 3; this one reads formats 1 to 2\)"),
    (b'{"event":"process-start","t":0,"pid":1}\n{"event":["module-create"],"t":2}\n',
     r"foreign\.jsonl:2: not a modlife log record \(no \"event\"\)"),
])
@pytest.mark.parametrize("command", ["report", "lifetimes", "events"])
def test_foreign_log_is_a_clear_error(tmp_path, content, message, command):
    path = tmp_path / "foreign.jsonl"
    path.write_bytes(content)
    proc = modlife(command, str(path), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert re.fullmatch(r"modlife: \S*%s.*\n" % message, proc.stderr), proc.stderr


def test_missing_log_is_a_clear_error(tmp_path):
    proc = modlife("report", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2 and proc.stderr == "modlife: %s: no such file or directory\n" % (tmp_path / "nope")
    proc = modlife("report", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no modlife logs (*.jsonl) there" in proc.stderr


def test_report_help():
    proc = subprocess.run([modlife_command(), "report", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: modlife report ") and "--fail-on" in proc.stdout


def test_long_log_with_progress_on_a_terminal(forked, tmp_path):
    """A long log (the benchmark, tests/bench/log_tools.py, times 10^6 records) is read
    whole, and a terminal sees progress while it is."""
    import pty
    sys_path = os.path.join(HERE, "bench")
    import sys
    sys.path.insert(0, sys_path)
    import biglog
    big = tmp_path / "big.jsonl"
    source = [p for p in forked.logs if any('"finding"' in line for line in open(p))][0]
    biglog.write(source, str(big), 100000)
    master, slave = pty.openpty()
    proc = subprocess.run([modlife_command(), "lifetimes", str(big)], stdout=subprocess.PIPE, stderr=slave,
                          text=True, timeout=300)
    os.close(slave)
    progress = b""
    try:
        while True:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            progress += chunk
    except OSError:
        pass  # EIO: the other side is closed
    os.close(master)
    assert proc.returncode == 0
    assert b"modlife: reading " in progress and b"%" in progress
    rows = lifetime_rows(proc.stdout)
    modules = [r for r in rows if r[0] == "module"]
    assert len(modules) > 10000 and len(set(r[1] for r in modules)) == len(modules)
    report = modlife("report", "--format", "json", str(big)).stdout
    assert json.loads(report)["findings"][0]["kind"] == "state-use-after-clear"


FORK_EXEC = """
import os, sys, state_after_clear
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-c", "import type_outlives"])
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
"""


def test_a_log_ended_by_exec_is_not_a_crash(fixtures, tmp_path):
    """fork then exec (what subprocess does): the child's first log ends without a
    process-exit record, and goes on in the log of the program it became."""
    run = run_modlife(["--", INTERP.path, "-c", FORK_EXEC], tmp_path, env={"PYTHONPATH": fixtures})
    assert run.proc.returncode == 0, run.proc.stderr
    assert len(run.logs) == 3, run.logs
    document = json.loads(modlife("report", "--format", "json", run.log_dir).stdout)
    assert [p["crashed"] for p in document["processes"]] == [False, False, False]
    report = modlife("report", run.log_dir).stdout
    assert "crashed" not in report
    lifetimes = modlife("lifetimes", run.log_dir).stdout
    assert "alive when it exec'd pid" in lifetimes and "python3.12 -c import type_outlives" in lifetimes
    assert "alive when the log ends" not in lifetimes
    # A child that is killed is still a crash.
    killed = run_modlife(["--", INTERP.path, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                         tmp_path / "killed")
    document = json.loads(modlife("report", "--format", "json", killed.log_dir).stdout)
    assert [p["crashed"] for p in document["processes"]] == [True]
