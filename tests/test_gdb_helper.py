"""The gdb helper (tools/gdb/modlife-gdb.py) prints modlife's registries from a live
process and from a core file of it."""
import os
import subprocess
import time

import pytest

from modlife_testlib import HERE, INTERPRETERS, SANITIZED, build_extension, modlife_command

INTERP = next(i for i in INTERPRETERS if i.name == "pyenv-3.12.1")
pytestmark = pytest.mark.needs("gdb", "pgrep", INTERP)
HELPER = os.path.join(os.path.dirname(HERE), "tools", "gdb", "modlife-gdb.py")
SCRIPT = """
import gc, sys, time, xxlimited, state_after_clear as m
x = xxlimited.Xxo()
m.keep(m.Holder())
del sys.modules["state_after_clear"], m
gc.collect()
print("ready", flush=True)
time.sleep(120)
"""


def registries(*target):
    proc = subprocess.run(["gdb", "-batch", "-nx", *target, "-x", HELPER, "-ex", "modlife-registries"],
                          capture_output=True, text=True, timeout=120)
    return [line for line in proc.stdout.splitlines() if line.startswith(("modlife: ", "  module ", "  type "))]


def check(lines):
    # state_after_clear was dropped and freed: only xxlimited is alive.
    assert lines[0] == "modlife: 1 module instance(s)", lines
    module = lines[1].split()
    assert module[1:3] == ["xxlimited", "#1"] and module[4:8] == ["0", "phase", "executed", "module"]
    types = {line.split()[1]: line for line in lines if line.startswith("  type ")}
    assert "of xxlimited #1" in types["xxlimited.Xxo"] and "of xxlimited #1" in types["xxlimited.Str"]


@pytest.fixture
def stopped_process(ext_root, tmp_path):
    out = str(ext_root / INTERP.name)
    build_extension(INTERP, "state_after_clear", out)
    env = dict(os.environ, PYTHONPATH=out)
    env.pop("MODLIFE_OPTIONS", None)
    proc = subprocess.Popen([modlife_command(), "run", "--quiet", "--log-dir", str(tmp_path / "logs"), "--",
                             INTERP.path, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    child = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)], text=True).split()[0])
    yield child
    proc.kill()
    subprocess.run(["kill", "-9", str(child)])
    proc.wait()


def test_live_process(stopped_process):
    check(registries("-p", str(stopped_process)))


@pytest.mark.skipif(SANITIZED, reason="gcore of an ASan process writes its shadow memory: tens of GiB")
def test_core_file(stopped_process, tmp_path):
    core = tmp_path / "core"
    subprocess.run(["gcore", "-o", str(core), str(stopped_process)], check=True, capture_output=True, timeout=120)
    (core_file,) = [p for p in tmp_path.iterdir() if p.name.startswith("core")]
    check(registries(INTERP.path, str(core_file)))
