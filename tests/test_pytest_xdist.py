"""The pytest plugin with pytest-xdist (`pytest -n 2 --modlife`): each finding fails
the test that made it, in whichever worker it ran; a crash names its test; a test's
result does not depend on which tests ran before it; each report is shown once."""
import os
import re
import subprocess

import pytest

from modlife_testlib import build_extension
from test_pytest_plugin import INTERP, PYTEST_PYTHON, TOOLS, outcomes

XDIST = subprocess.run([PYTEST_PYTHON, "-c", "import xdist"], capture_output=True).returncode == 0
needs_xdist = pytest.mark.skipif(not XDIST, reason="not covered: python3-pytest-xdist (not installed for %s)"
                                 % PYTEST_PYTHON)

# Two planted bugs: state-use-after-clear (a Holder dying in m_clear asks for the
# state) and dealloc-missing-type-decref (Leaky's tp_dealloc keeps its type).
SUITE = '''
import gc, os, subprocess, sys, time
import pytest

def drop():
    import state_after_clear as m
    m.keep(m.Holder())
    del sys.modules["state_after_clear"], m
    gc.collect()

def leak():
    import heap_type_slots as h
    T = h.make_types(["Leaky"])["Leaky"]
    x = T(); del x

def test_clean_1(): time.sleep(0.3)
def test_clean_2(): time.sleep(0.3)
def test_clean_3(): time.sleep(0.3)
def test_clean_4(): time.sleep(0.3)
def test_after_clear(): drop()
def test_leak_a(): leak()
def test_leak_b(): leak()
def test_clean_5(): time.sleep(0.3)

@pytest.fixture
def leaked():
    leak()

def test_fixture_a(leaked): pass
def test_fixture_b(leaked): pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n): drop()

DROP = "import gc, sys, state_after_clear as m; m.keep(m.Holder()); del sys.modules['state_after_clear'], m; gc.collect()"

def test_in_shell_subprocess():   # sh has no log: found by the log name it passes on
    subprocess.run('%s -c "%s"' % (sys.executable, DROP), shell=True, check=True)

def test_in_forked_child():       # keeps the worker's log name: found by its ppid
    pid = os.fork()
    if pid == 0:
        drop()
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
def test_clean_6(): time.sleep(0.3)
'''

CRASH = '''
import gc, sys

def test_fine():
    pass

def test_crash():
    import state_after_free as m
    m.bad_cached_counter()
    del sys.modules["state_after_free"], m
    gc.collect()
    import state_after_free as m2
    m2.bad_cached_counter()
'''

FAILING = {"test_after_clear": "state-use-after-clear", "test_leak_a": "dealloc-missing-type-decref",
           "test_leak_b": "dealloc-missing-type-decref", "test_fixture_a": "dealloc-missing-type-decref",
           "test_fixture_b": "dealloc-missing-type-decref", "test_param[1]": "state-use-after-clear",
           "test_param[2]": "state-use-after-clear", "test_in_shell_subprocess": "state-use-after-clear",
           "test_in_forked_child": "state-use-after-clear"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("xdist")
    for source in ("state_after_clear", "heap_type_slots", "state_after_free"):
        build_extension(INTERP, source, str(root))
    (root / "test_suite.py").write_text(SUITE)
    (root / "test_crash.py").write_text(CRASH)
    return root


def run_pytest(project, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TOOLS, str(project)]))
    for name in ("MODLIFE_OPTIONS", "LD_PRELOAD", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    junit = project / "junit.xml"
    if junit.exists():
        junit.unlink()
    proc = subprocess.run([PYTEST_PYTHON, "-m", "pytest", "-p", "modlife.pytest_plugin", "--modlife",
                           "-p", "no:cacheprovider", "-p", "no:randomly", "--junitxml", str(junit),
                           "-o", "junit_family=xunit1", "-rA",
                           "--modlife-log-dir", str(project / "logs")] + list(args),
                          cwd=str(project), env=env, capture_output=True, text=True, timeout=300)
    return proc, outcomes(junit)


def failed(result):
    return {name for name, (outcome, _) in result.items() if outcome in ("failed", "error")}


@needs_xdist
def test_each_finding_fails_its_own_test_in_its_worker(project):
    proc, result = run_pytest(project, "-n", "2", "test_suite.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert len(result) == 15, out
    assert failed(result) == set(FAILING), out
    for name, kind in FAILING.items():
        text = result[name][1]
        assert "SUMMARY: modlife: %s" % kind in text, (name, text)
        if "fixture" not in name and "_in_" not in name:
            assert "in %s" % name.split("[")[0] in text, (name, text)   # its own Python stack
    # Every finding of the run in the summary, by test, and none given to session teardown
    # but the types Leaky kept alive at exit.
    assert "FAILED state-use-after-clear [call] test_suite.py::test_after_clear:" in proc.stdout
    assert "FAILED dealloc-missing-type-decref [call] test_suite.py::test_leak_a:" in proc.stdout
    assert "FAILED dealloc-missing-type-decref [call] test_suite.py::test_leak_b:" in proc.stdout
    teardown = proc.stdout.split("findings at session teardown")[1:]
    assert all("state-use-after-clear" not in t and "dealloc-missing-type-decref" not in t for t in teardown), out


@needs_xdist
def test_each_report_is_shown_once(project):
    """The library's stderr report is the failure text: not shown again as captured stderr."""
    proc, _ = run_pytest(project, "-n", "2", "test_suite.py")
    headline = re.compile(r"^==[0-9]+==ERROR: modlife: state-use-after-clear", re.M)
    assert len(headline.findall(proc.stdout)) == 5, proc.stdout   # test_after_clear, test_param[1], [2], _in_
    proc, _ = run_pytest(project, "test_suite.py", "-k", "after_clear")
    assert len(headline.findall(proc.stdout)) == 1, proc.stdout
    assert "Captured stderr" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("order", [
    ["test_leak_a", "test_leak_b"],
    ["test_leak_b", "test_leak_a"],
    ["test_leak_b"],
    ["test_clean_1", "test_leak_a", "test_after_clear", "test_leak_b"],
    # The same Python stack in both: a fixture's, a parametrized test's.
    ["test_fixture_a", "test_fixture_b"],
    ["test_fixture_b", "test_fixture_a"],
    ["test_param[2]", "test_param[1]"],
])
def test_results_do_not_depend_on_order(project, order):
    proc, result = run_pytest(project, *["test_suite.py::%s" % name for name in order])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert failed(result) == set(order) & set(FAILING), proc.stdout


@pytest.mark.parametrize("xdist", [False, pytest.param(True, marks=needs_xdist)])
def test_crash_names_its_test(project, xdist):
    proc, result = run_pytest(project, *(["-n", "2"] if xdist else []), "test_crash.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "modlife: findings during test_crash.py::test_crash (call), the test running when process" in out, out
    assert "SUMMARY: modlife: state-use-after-free" in out.split("the test running when process")[1], out
    assert "findings at session teardown" not in out or "state-use-after-free" not in \
        out.split("findings at session teardown")[1], out
    if xdist:   # xdist's own word for it, and the other test is unharmed
        assert "crashed while running 'test_crash.py::test_crash'" in out, out
        assert result.get("test_fine", ("",))[0] == "passed", out
