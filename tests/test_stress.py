"""Stress: the library must not crash, deadlock or lose records when threads look up
module state while others import and drop modules, when a thread forks while
another runs Python, with 100 subinterpreters, with threads each running
subinterpreters of their own GIL side by side, and when the process is killed.
Every case has a time bound; every log must read back whole (`modlife lifetimes`)."""
import os
import signal
import subprocess
import time

import pytest

from modlife_testlib import (CREATE_ISOLATED_SUBINTERPRETER, INTERPRETERS, build_extension, modlife_command, read_log,
                             run_modlife)

STRESSED = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.12.1", "pyenv-3.13.0")]
BOUND = 120  # seconds: far above a healthy run, far below a hang


@pytest.fixture(params=STRESSED, ids=[i.name for i in STRESSED])
def stressed(request, ext_root):
    interp = request.param
    out = str(ext_root / interp.name)
    build_extension(interp, "isolated", out)
    return interp, out


def run(stressed, tmp_path, code):
    interp, path = stressed
    result = run_modlife(["--", interp.path, "-c", code], tmp_path / "logs", env={"PYTHONPATH": path},
                         timeout=BOUND)
    assert result.proc.returncode == 0, result.proc.stderr[-3000:]
    for log in result.logs:
        proc = subprocess.run([modlife_command(), "lifetimes", log], capture_output=True, text=True, timeout=BOUND)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return result


def test_lookups_while_other_threads_import_and_drop(stressed, tmp_path):
    result = run(stressed, tmp_path, """
import gc, sys, threading, importlib
import isolated
stop = threading.Event()
def look():
    while not stop.is_set():
        m = sys.modules.get("isolated") or importlib.import_module("isolated")
        m.lookup_state(2000)
def churn():
    for _ in range(150):
        sys.modules.pop("isolated", None)
        m = importlib.import_module("isolated")
        m.Thing()
        gc.collect(0)
lookers = [threading.Thread(target=look) for _ in range(4)]
churners = [threading.Thread(target=churn) for _ in range(2)]
for t in lookers + churners: t.start()
for t in churners: t.join()
stop.set()
for t in lookers: t.join()
""")
    records = read_log(result.logs[0])
    creates = [r for r in records if r["event"] == "module-create" and r["module"] == "isolated"]
    assert len(creates) >= 150
    assert not [r for r in records if r["event"] == "finding"]
    assert records[-1]["event"] == "process-exit"


def test_fork_from_a_thread_while_another_runs_python(stressed, tmp_path):
    result = run(stressed, tmp_path, """
import os, sys, threading, isolated
stop = threading.Event()
def busy():
    while not stop.is_set():
        isolated.lookup_state(1000)
        sum(range(1000))
workers = [threading.Thread(target=busy) for _ in range(3)]
for t in workers: t.start()
def forker():
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            sys.modules.pop("isolated", None)
            import isolated as again
            again.lookup_state(10)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
f = threading.Thread(target=forker); f.start(); f.join()
stop.set()
for t in workers: t.join()
""")
    assert len(result.logs) == 21
    children = [read_log(p) for p in result.logs]
    forked = [r for r in children if r[0].get("forked")]
    assert len(forked) == 20
    for records in forked:
        creates = [r for r in records if r["event"] == "module-create"]
        assert [r.get("note") for r in creates] == ["inherited at fork", None]
        # os._exit: the _exit interposer's record, and no damage
        assert [(r.get("how"), r.get("status")) for r in records if r["event"] == "process-exit"] == [("_exit", 0)]
        assert records[-1]["event"] == "process-exit"


def test_a_hundred_subinterpreters(stressed, tmp_path):
    interp, _ = stressed
    result = run(stressed, tmp_path, """
import _testcapi
for i in range(100):
    assert _testcapi.run_in_subinterp(
        "import gc, sys, isolated; isolated.Thing(); isolated.lookup_state(10);"
        "del sys.modules['isolated']; gc.collect()") == 0
""")
    records = read_log(result.logs[0])
    interps = {r["interp"] for r in records if r["event"] == "interp-create"}
    assert len(interps) == 101
    frees = [r for r in records if r["event"] == "module-free" and r["module"] == "isolated"]
    assert len(frees) == 100
    assert not [r for r in records if r["event"] == "finding"]


@pytest.mark.needs("pgrep")
def test_killed_in_the_middle(stressed, tmp_path):
    interp, path = stressed
    log_dir = tmp_path / "logs"
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("MODLIFE_OPTIONS", None)
    proc = subprocess.Popen([modlife_command(), "run", "--quiet", "--log-dir", str(log_dir), "--", interp.path, "-c", """
import gc, sys, isolated
print("ready", flush=True)
while True:
    sys.modules.pop("isolated", None)
    import isolated
    isolated.Thing()
    gc.collect(0)
"""], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    time.sleep(1.5)
    child = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)], text=True).split()[0])
    os.kill(child, signal.SIGKILL)
    assert proc.wait(timeout=BOUND) == -signal.SIGKILL
    (log,) = [os.path.join(log_dir, n) for n in os.listdir(log_dir)]
    data = open(log, "rb").read()
    whole = data[:data.rfind(b"\n") + 1]
    lifetimes = subprocess.run([modlife_command(), "lifetimes", log], capture_output=True, text=True, timeout=BOUND)
    assert lifetimes.returncode == 0 and lifetimes.stderr == ""
    assert "alive when the log ends (the process crashed or was killed)" in lifetimes.stdout
    modules = lifetimes.stdout.count("\n  module ")
    assert modules == whole.count(b'"event":"module-create"') and modules > 10


# Three threads, each running ten isolated subinterpreters (their own GIL: 3.12+) one
# after the other, side by side: each interpreter makes heap types and Python
# subclasses of them, uses instances and collects; its types die when it is
# destroyed, and the next interpreters' types are made at the addresses just freed.
# A Python subclass made at the address of a dead heap type of ours must reach its own
# base's slots, not the dead type's (it got _json's scanner_traverse for _decimal's
# SignalDict, about one run in ten).
SUBINTERPRETER_THREADS_SCRIPT = "import sys, threading\n" + CREATE_ISOLATED_SUBINTERPRETER + r'''
if sys.version_info >= (3, 13):  # _decimal makes SignalDict, a Python subclass of its heap type
    MORE = """
import _decimal
ctx = _decimal.Context()
ctx.traps[_decimal.Inexact] = True
d = _decimal.Decimal("1.5") + _decimal.Decimal(3)
"""
else:  # 3.12 cannot load _decimal in an isolated interpreter: a subclass of our own
    MORE = """
import _csv
class Dialect(_csv.Dialect): pass
d = [Dialect(delimiter=";")]
d.append(d)
"""
CODE = MORE + """
import _json, gc
class Opts:
    strict = True; object_hook = None; object_pairs_hook = None
    parse_float = float; parse_int = int; parse_constant = float; memo = {}
assert _json.make_scanner(Opts())('[1, 2, {"a": 3}]', 0) == ([1, 2, {"a": 3}], 16)
gc.collect()
"""
def work():
    for _ in range(10):
        iid = create()
        interpreters.run_string(iid, CODE)
        interpreters.destroy(iid)
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ok")
'''

SUBINTERPRETER_THREADS = [i for i in INTERPRETERS if i.name in ("pyenv-3.12.1", "pyenv-3.13.0")]


@pytest.mark.parametrize("interp", SUBINTERPRETER_THREADS, ids=[i.name for i in SUBINTERPRETER_THREADS])
def test_threads_each_running_subinterpreters(interp, tmp_path):
    script = tmp_path / "threads_subinterpreters.py"
    script.write_text(SUBINTERPRETER_THREADS_SCRIPT)
    failed = []
    for run_number in range(50):
        result = run_modlife(["--", interp.path, str(script)], tmp_path / ("logs%d" % run_number), timeout=BOUND)
        findings = [r for log in result.logs for r in read_log(log) if r["event"] == "finding"]
        if result.proc.returncode != 0 or result.proc.stdout != "ok\n" or findings:
            failed.append((run_number, result.proc.returncode, result.proc.stderr[-2000:], findings[:3]))
    assert failed == [], "%d of 50 runs failed, first: %r" % (len(failed), failed[0])
