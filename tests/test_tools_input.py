"""What the tools make of input that is not a whole modlife log, and how they tell
the end of a process: deeply nested JSON and garbage are one-line FILE:LINE errors
(never a traceback) under one rule for every tool; a cut last line and the zeros
of a killed process's mapped log are still read; a process that left by os._exit
(every multiprocessing fork child) or whose log is incomplete is not said to have
crashed."""
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from modlife_testlib import HERE, INTERPRETERS, modlife_command, read_log, run_modlife

CHOSEN = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]
TOOLS = os.path.join(os.path.dirname(HERE), "tools", "python")


def line(record):
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


START = line({"event": "process-start", "t": 0, "tid": 1, "pid": 4242, "ppid": 1, "forked": False,
              "argv": ["python3", "prog.py"], "python": "3.13", "libpython": "static", "entry": "preload",
              "log_format": 2})
MODULE = line({"event": "module-create", "t": 10, "tid": 1, "module": "m", "instance": 1, "interp": 0,
               "init": "multi-phase"})
EXIT = line({"event": "process-exit", "t": 100, "tid": 1, "alive_modules": [], "alive_module_count": 0,
             "alive_type_count": 0})
DEEP = b"[" * 100000


def tool(args, timeout=60):
    proc = subprocess.run([modlife_command()] + args, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def every_tool(path, out_dir):
    """(name, argv) of every tool that reads logs."""
    return [("events", ["events", path]), ("report", ["report", path]), ("lifetimes", ["lifetimes", path]),
            ("timeline", ["timeline", path, "-o", os.path.join(str(out_dir), "t.html")]),
            ("sarif", ["report", "--format", "sarif", path]), ("json", ["report", "--format", "json", path])]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# -- (a) deeply nested JSON ------------------------------------------------------------

@pytest.mark.parametrize("data, number, readers", [
    (DEEP + b"\n", 1, "all"),                                                       # a whole line of '['
    (DEEP, 1, "all"),                                                               # ... without newline
    (START + b'{"event":"finding","t":5,"kind":"state-use-after-clear","x":' + DEEP + b"\n", 2, "all"),
    (START + b'{"event":"module-create","t":5,"module":' + DEEP + b"\n" + EXIT, 2,  # head parsing
     ("events", "lifetimes", "timeline")),
    (START + b'{"event":"stack","id":1,"stack":' + DEEP + b"\n" + EXIT, 2, ("events",)),  # stack table
], ids=["line1", "line1-cut", "finding", "lifetime-head", "stack-record"])
def test_deeply_nested_json_is_a_file_line_error(tmp_path, data, number, readers):
    path = write(tmp_path, "deep.jsonl", data)
    expected = ("modlife: %s:1: not a modlife log (it must start with a process-start record)\n" % path
                if data == DEEP else "modlife: %s:%d: not a modlife log record (nested too deeply)\n" % (path, number))
    checked = [name for name, _ in every_tool(path, tmp_path) if readers == "all" or name in readers]
    assert checked and (readers == "all" or sorted(checked) == sorted(readers)), checked  # no reader misnamed
    for name, args in every_tool(path, tmp_path):
        if name in checked:
            assert tool(args) == (2, "", expected), name


def test_plugin_live_reader_reports_deep_json_as_a_test_failure(tmp_path):
    (tmp_path / "test_writes_log.py").write_text(textwrap.dedent('''
        import os
        def test_garbage_log():
            log_dir = os.environ["MODLIFE_PYTEST_SESSION"]
            with open(os.path.join(log_dir, "modlife.1.jsonl"), "wb") as f:
                f.write(%r + b'{"event":"finding","t":5,"kind":"state-use-after-clear","x":' + b"[" * 100000 + b"\\n")
        def test_after():
            pass
        ''' % START))
    env = dict(os.environ, PYTHONPATH=TOOLS)
    env.pop("MODLIFE_OPTIONS", None)
    env.pop("LD_PRELOAD", None)
    proc = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-p", "modlife.pytest_plugin", "--modlife",
                           "-p", "no:cacheprovider", "-rf", "--modlife-log-dir", str(tmp_path / "logs"),
                           "test_writes_log.py"], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=120)
    log = tmp_path / "logs" / "modlife.1.jsonl"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "RecursionError" not in proc.stdout + proc.stderr
    assert ("\nmodlife: cannot read the logs: %s:2: not a modlife log record (nested too deeply)\n" % log
            in proc.stdout)
    assert "FAILED test_writes_log.py::test_garbage_log" in proc.stdout and "1 failed, 1 passed" in proc.stdout
    assert proc.stderr == ""   # said once, not again by the parent


# -- (b) one rule for what is a log ------------------------------------------------------

def random_bytes():
    data = bytes(b for b in random.Random(14).getrandbits(8 * 400).to_bytes(400, "little") if b not in b"\n{")
    return data[:100]


@pytest.mark.parametrize("data, expected", [
    (random_bytes(), "%s:1: not a modlife log (it must start with a process-start record)"),
    (b"\0" * 100, "%s:1: not a modlife log (it must start with a process-start record)"),
    (b"hello\n", "%s:1: not a modlife log record (Expecting value: line 1 column 1 (char 0))"),
    (START + MODULE + b"garbage", "%s:3: not a modlife log record (a last line without its newline must be "
                                  "the start of one)"),
    (START + MODULE + b"\0\0\0" + b'{"event":"module-cr', "%s:3: not a modlife log record (a last line "
                                                           "without its newline must be the start of one)"),
], ids=["random-bytes", "zeros-only", "text", "garbage-last-line", "zeros-before-record"])
def test_garbage_is_an_error_for_every_tool(tmp_path, data, expected):
    path = write(tmp_path, "garbage.jsonl", data)
    for name, args in every_tool(path, tmp_path):
        assert tool(args) == (2, "", "modlife: %s\n" % (expected % path)), name


@pytest.mark.parametrize("data", [
    START + MODULE + b'{"event":"module-cr',                        # killed while writing a record
    START + MODULE + b"\0" * 70000,                                 # killed: the mapped file's zeros
    START + MODULE + b'{"event":"module-create","t":' + b"\0" * 5000,
], ids=["cut-line", "zeros", "cut-line-and-zeros"])
def test_a_killed_process_log_is_read(tmp_path, data):
    path = write(tmp_path, "killed.jsonl", data)
    for name, args in every_tool(path, tmp_path):
        rc, out, err = tool(args)
        assert (rc, err) == (0, ""), name
    assert "module-create    m #1 interp 0" in tool(["events", path])[1]
    assert "ended without a process-exit record (it crashed or was killed)" in tool(["report", path])[1]


@pytest.mark.parametrize("data", [b"", b'{"event":"proc'], ids=["empty", "cut-first-record"])
def test_a_log_without_a_whole_record_is_skipped_by_every_tool(tmp_path, data):
    path = write(tmp_path, "empty.jsonl", data)
    for name, args in every_tool(path, tmp_path):
        rc, out, err = tool(args)
        assert (rc, err) == (0, ""), name
    assert tool(["events", path])[1] == ""
    assert tool(["report", path])[1] == "modlife: 0 findings (0 errors, 0 warnings) in 0 processes\n"


@pytest.mark.parametrize("path, kind", [("/dev/zero", "not a regular file")], ids=["dev-zero"])
def test_a_device_is_no_log(tmp_path, path, kind):
    for name, args in every_tool(path, tmp_path):
        assert tool(args, timeout=30) == (2, "", "modlife: /dev/zero: not a modlife log (not a regular file)\n"), name


# -- (c) os._exit --------------------------------------------------------------------------

MULTIPROCESSING = """
import multiprocessing, os, sys
def work(n):
    return n * 2
if __name__ == "__main__":
    pool = multiprocessing.get_context("fork").Pool(2)
    assert pool.map(work, range(4)) == [0, 2, 4, 6]
    pool.close(); pool.join()
    child = multiprocessing.get_context("fork").Process(target=work, args=(1,))
    child.start(); child.join()
    print("exit codes ok", child.exitcode)
"""


@pytest.mark.parametrize("interp", CHOSEN, ids=[i.name for i in CHOSEN])
def test_multiprocessing_fork_children_did_not_crash(tmp_path, interp):
    script = tmp_path / "mp.py"
    script.write_text(MULTIPROCESSING)
    run = run_modlife(["--", interp.path, str(script)], tmp_path / "logs")
    assert run.proc.returncode == 0 and run.proc.stdout == "exit codes ok 0\n", run.proc.stderr
    assert len(run.logs) == 4   # the parent, two pool workers, one process
    hows = sorted(str([r.get("how") for r in read_log(p) if r["event"] == "process-exit"]) for p in run.logs)
    assert hows == ["['_exit']"] * 3 + ["[None]"]   # exactly one each: no double record
    rc, report, err = tool(["report", run.log_dir])
    assert rc == 0 and err == "" and "crashed or was killed" not in report
    assert "note: 3 processes ended by os._exit/_exit without finalizing" in report
    rc, lifetimes, err = tool(["lifetimes", run.log_dir])
    assert rc == 0 and "crashed" not in lifetimes
    assert lifetimes.count("alive when it ended by os._exit/_exit without finalizing:") == 3
    rc, events, err = tool(["events", run.log_dir])
    assert events.count("(ended by os._exit/_exit without finalizing, status 0)") == 3
    assert "ended abruptly" not in events


@pytest.mark.parametrize("interp", CHOSEN, ids=[i.name for i in CHOSEN])
def test_os_exit_status_is_kept_and_recorded(tmp_path, interp):
    run = run_modlife(["--", interp.path, "-c", "import os, json; print('before', flush=True); os._exit(3)"],
                      tmp_path / "logs")
    assert (run.proc.returncode, run.proc.stdout) == (3, "before\n")
    records = run.records()
    assert records[-1]["event"] == "process-exit" and records[-1]["how"] == "_exit"
    assert records[-1]["status"] == 3
    assert sum(r["event"] == "process-exit" for r in records) == 1
    with open(run.logs[0], "rb") as f:
        assert f.read().endswith(b"}\n")   # cut to its records, as a normal exit leaves it


def test_audit_says_it_cannot_tell_an_os_exit(tmp_path):
    interp = CHOSEN[0]
    run = run_modlife(["--audit", "--", interp.path, "-c", "import os; os._exit(0)"], tmp_path / "logs")
    assert run.proc.returncode == 0
    rc, report, err = tool(["report", run.log_dir])
    assert "(it crashed, was killed, or left by _exit, which --audit does not record)" in report


# -- (d) the log is incomplete -------------------------------------------------------------

def test_log_incomplete_is_not_a_crash(tmp_path):
    path = write(tmp_path, "full.jsonl", START + MODULE + line(
        {"event": "log-incomplete", "t": 50, "tid": 1, "reason": "no space left on the device"}))
    rc, report, err = tool(["report", path])
    assert (rc, err) == (0, "")
    assert "  note: pid 4242: python3 prog.py: the log is incomplete: no space left on the device\n" in report
    rc, lifetimes, err = tool(["lifetimes", path])
    assert "alive when the log ends (the log is incomplete: no space left on the device): 1 module instance(s)" \
        in lifetimes
    rc, events, err = tool(["events", path])
    assert "  (the log is incomplete: no space left on the device)\n" in events
    assert tool(["timeline", path, "-o", str(tmp_path / "t.html")])[0] == 0
    assert "the log is incomplete: no space left on the device" in (tmp_path / "t.html").read_text()
    path = write(tmp_path, "esc.jsonl", START + MODULE + line({"event": "log-incomplete", "t": 50, "reason": "\x1b[2Jx"}))
    for args in (["report", path], ["lifetimes", path], ["events", path]):
        rc, out, err = tool(args)
        assert rc == 0 and "\x1b" not in out and "the log is incomplete: \\x1b[2Jx" in out, args
    for text in (report, lifetimes, events, (tmp_path / "t.html").read_text()):
        assert "crashed or was killed" not in text and "crashed or killed" not in text.replace(
            'proc.crashed ? " — the process ended without a process-exit " +\n    "record (crashed or killed)', "")
