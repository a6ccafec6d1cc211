"""The pytest plugin on a small test suite of its own: the session is re-run under the
library, findings fail the test they happen in (setup, call, subprocess,
subinterpreter), xfail/-x/-k/parametrize work, findings at finalize fail the run,
and exit statuses are kept."""
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from modlife_testlib import HERE, INTERPRETERS, build_extension

PYTEST_PYTHON = "/usr/bin/python3"   # Debian's python3-pytest (static libpython 3.11)
INTERP = next(i for i in INTERPRETERS if i.name == "debian-3.11")
pytestmark = pytest.mark.needs(INTERP)
TOOLS = os.path.join(os.path.dirname(HERE), "tools", "python")

SUITE = '''
import gc, os, subprocess, sys
import pytest

def drop():
    """state-use-after-clear: a Holder kept in the state dies in m_clear and asks for the state."""
    import state_after_clear as m
    m.keep(m.Holder())
    del sys.modules["state_after_clear"], m
    gc.collect()

def test_clean():
    import state_after_clear as m
    m.keep(m.Keeper())
    del sys.modules["state_after_clear"], m
    gc.collect()

def test_bad():
    drop()

@pytest.mark.xfail(reason="known bug")
def test_bad_but_xfail():
    drop()

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    if n == 2:
        drop()

@pytest.fixture
def dropped():
    drop()

def test_bad_fixture(dropped):
    pass

def test_bad_in_subprocess():
    code = "import gc, sys, state_after_clear as m; m.keep(m.Holder()); del sys.modules['state_after_clear'], m; gc.collect()"
    subprocess.run([sys.executable, "-c", code], check=False)

def test_bad_in_subinterpreter():
    import _testcapi
    assert _testcapi.run_in_subinterp("import state_after_clear as m; m.keep(m.Holder())") == 0
'''

EXPECTED_FAILURES = {"test_bad", "test_param[2]", "test_bad_fixture", "test_bad_in_subprocess",
                     "test_bad_in_subinterpreter"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    build_extension(INTERP, "state_after_clear", str(root))
    (root / "test_suite.py").write_text(SUITE)
    return root


def run_pytest(project, *args, suite_file="test_suite.py", env=None):
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([TOOLS, str(project)]))
    full_env.pop("MODLIFE_OPTIONS", None)
    full_env.pop("LD_PRELOAD", None)
    full_env.update(env or {})
    junit = project / "junit.xml"
    if junit.exists():
        junit.unlink()
    proc = subprocess.run([PYTEST_PYTHON, "-m", "pytest", "-p", "modlife.pytest_plugin", "--modlife",
                           "-p", "no:cacheprovider", "--junitxml", str(junit), "-o", "junit_family=xunit1",
                           "--modlife-log-dir", str(project / "logs")] + list(args) + [suite_file],
                          cwd=str(project), env=full_env, capture_output=True, text=True, timeout=300)
    return proc, outcomes(junit)


def outcomes(junit):
    """test name -> (outcome, failure text)."""
    if not junit.exists():
        return {}
    result = {}
    for case in ET.parse(str(junit)).getroot().iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            result[case.get("name")] = ("failed", failure.get("message", "") + (failure.text or ""))
        elif error is not None:
            result[case.get("name")] = ("error", error.get("message", "") + (error.text or ""))
        elif skipped is not None:
            result[case.get("name")] = (skipped.get("type", "skipped"), skipped.get("message", ""))
        else:
            result[case.get("name")] = ("passed", "")
    return result


def test_findings_fail_the_test_they_happen_in(project):
    proc, result = run_pytest(project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = {name for name, (outcome, _) in result.items() if outcome in ("failed", "error")}
    assert failed == EXPECTED_FAILURES, result
    assert result["test_clean"][0] == "passed" and result["test_param[1]"][0] == "passed"
    assert result["test_bad_but_xfail"][0] == "pytest.xfail"
    for name in EXPECTED_FAILURES:
        text = result[name][1]
        assert "SUMMARY: modlife: state-use-after-clear" in text and "Holder_dealloc" in text, (name, text)
    assert "during setup" in result["test_bad_fixture"][1]
    assert "test_suite.py:" in result["test_bad"][1] and "in test_bad" in result["test_bad"][1]
    assert "_pytest/" not in result["test_bad"][1].split("Rule:")[0].split("Python stack")[1]
    assert "modlife: 6 findings in 6 tests" in proc.stdout   # the xfail one is listed too


def test_k_and_x(project):
    proc, result = run_pytest(project, "-k", "param")
    assert proc.returncode == 1
    assert sorted(result) == ["test_param[1]", "test_param[2]"] and result["test_param[2]"][0] == "failed"
    proc, result = run_pytest(project, "-x")
    assert proc.returncode == 1
    assert sorted(result) == ["test_bad", "test_clean"] and result["test_bad"][0] == "failed"


def test_fail_on_other_kinds_lists_without_failing(project):
    proc, result = run_pytest(project, "--modlife-fail-on=type-outlives-module,dealloc-missing-type-decref",
                              "-k", "test_bad and not xfail and not sub")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {outcome for outcome, _ in result.values()} == {"passed"}
    assert "listed state-use-after-clear [call] test_suite.py::test_bad:" in proc.stdout


def test_suppressions(project, tmp_path):
    supp = tmp_path / "supp.txt"
    supp.write_text("state-use-after-clear:state_after_clear\n")
    proc, result = run_pytest(project, "--modlife-suppressions", str(supp), "-k", "test_bad and not sub")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no findings" in proc.stdout
    # How many findings the rule matched (one per test that reached the bug).
    assert "\nmodlife: 3 findings suppressed: 3 by state-use-after-clear:state_after_clear\n" in proc.stdout
    # Under pytest-xdist, the workers' counts reach the controller's summary.
    if importlib.util.find_spec("xdist") is not None:
        proc, result = run_pytest(project, "-n", "2", "--modlife-suppressions", str(supp), "-k", "test_bad and not sub")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "\nmodlife: 3 findings suppressed: 3 by state-use-after-clear:state_after_clear\n" in proc.stdout


def test_bad_fail_on_is_a_usage_error(project):
    proc, _ = run_pytest(project, "--modlife-fail-on=no-such-kind")
    assert proc.returncode == 4
    assert "--modlife-fail-on: unknown kind no-such-kind" in proc.stderr


@pytest.mark.parametrize("env_options, supp, message", [
    ("colour=blue", None, "modlife: MODLIFE_OPTIONS: unknown option 'colour' (known: log_path,"),
    ("report_kinds=nope", None, "modlife: MODLIFE_OPTIONS: report_kinds: unknown finding kind 'nope' (known: all,"),
    (None, "nope:x\n", "modlife: MODLIFE_OPTIONS: {supp}:1: unknown finding kind 'nope' (see libmodlife(7)"),
])
def test_bad_options_are_a_usage_error(project, tmp_path, env_options, supp, message):
    """Checked by the library before the session runs: no test runs (the suite would
    leave a marker); they used to make the session's process die with status 1."""
    (project / "test_marker.py").write_text("open(%r, 'w').close()\ndef test_it():\n    pass\n"
                                            % str(tmp_path / "marker"))
    args = ["--modlife-suppressions", str(tmp_path / "bad.supp")] if supp else []
    if supp:
        (tmp_path / "bad.supp").write_text(supp)
    try:
        proc, result = run_pytest(project, *args, suite_file="test_marker.py",
                                  env={"MODLIFE_OPTIONS": env_options} if env_options else None)
    finally:
        (project / "test_marker.py").unlink()
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "ERROR: " + message.format(supp=tmp_path / "bad.supp") in proc.stderr
    assert not (tmp_path / "marker").exists() and result == {}


def test_finding_at_finalize_fails_the_session(project):
    (project / "test_late.py").write_text(textwrap.dedent('''
        def test_keeps_a_holder_until_exit():
            import state_after_clear as m
            m.keep(m.Holder())
    '''))
    proc, result = run_pytest(project, suite_file="test_late.py")
    assert result == {"test_keeps_a_holder_until_exit": ("passed", "")}
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "modlife: findings at session teardown" in proc.stdout
    assert "SUMMARY: modlife: state-use-after-clear" in proc.stdout.split("findings at session teardown")[1]


@pytest.mark.parametrize("body, status", [
    ("pass", 0),
    ("assert False", 1),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", -signal.SIGSEGV),
])
def test_exit_status_is_kept(project, body, status):
    (project / "test_status.py").write_text("def test_it():\n    %s\n" % body)
    plain = subprocess.run([PYTEST_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:faulthandler",
                            "test_status.py"], cwd=str(project), capture_output=True)
    assert plain.returncode == status
    proc, _ = run_pytest(project, "-p", "no:faulthandler", suite_file="test_status.py")
    assert proc.returncode == status, proc.stdout + proc.stderr


def test_plugin_off_without_the_flag(project):
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([TOOLS, str(project)]))
    proc = subprocess.run([PYTEST_PYTHON, "-m", "pytest", "-q", "-p", "modlife.pytest_plugin", "-p", "no:cacheprovider",
                           "-k", "test_clean", "test_suite.py"], cwd=str(project), env=full_env,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "modlife" not in proc.stdout
    assert sys.version_info  # the plugin imports without the library


def test_installed_plugin_needs_only_the_flag(project, tmp_path):
    """After `make install`, `pytest --modlife` finds the plugin (entry point) and the
    library (relative to the installed package), with no environment set."""
    prefix, site = tmp_path / "prefix", tmp_path / "site"
    subprocess.run(["make", "-s", "-C", os.environ["MODLIFE_BUILDDIR"], "install", "prefix=%s" % prefix,
                    "modlife_sitedir=%s" % site], check=True, capture_output=True)
    # The package itself next to its entry point: a .pth is not read on PYTHONPATH.
    assert (site / "modlife" / "install_paths.py").exists() and not (site / "modlife.pth").exists()
    code = ("import site, sys; site.addsitedir(%r); import pytest; "
            "sys.exit(pytest.main(['--modlife', '-p', 'no:cacheprovider', '-k', 'test_bad and not sub', "
            "'--modlife-log-dir', 'installed-logs', 'test_suite.py']))" % str(site))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODLIFE") and k != "LD_PRELOAD"}
    env["PYTHONPATH"] = str(project)
    proc = subprocess.run([PYTEST_PYTHON, "-c", code], cwd=str(project), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED state-use-after-clear [call] test_suite.py::test_bad:" in proc.stdout
    maps_hint = os.listdir(project / "installed-logs")
    assert any(n.endswith(".jsonl") for n in maps_hint)


SEVERITY_SUITE = '''
def test_custom_tp_free():
    import type_checks
    type_checks.make_types(["CustomFreeGC"])   # tp-free-override, a warning

def test_wrong_tp_free():
    import heap_type_slots
    heap_type_slots.make_types(["GCFreedWrong"])   # tp-free-override, an error
'''


def test_fail_on_errors_is_the_finding_severity(project):
    """--modlife-fail-on=errors fails a test by its finding's severity, which can be
    less than its kind's (a tp-free-override of a custom function is a warning)."""
    for fixture in ("type_checks", "heap_type_slots"):
        build_extension(INTERP, fixture, str(project))
    (project / "test_severity.py").write_text(SEVERITY_SUITE)
    proc, result = run_pytest(project, "--modlife-fail-on=errors", suite_file="test_severity.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert {name: outcome for name, (outcome, _) in result.items()} == {
        "test_custom_tp_free": "passed", "test_wrong_tp_free": "failed"}
    assert "listed tp-free-override [call] test_severity.py::test_custom_tp_free:" in proc.stdout
    proc, result = run_pytest(project, suite_file="test_severity.py")
    assert {outcome for outcome, _ in result.values()} == {"failed"}, proc.stdout
