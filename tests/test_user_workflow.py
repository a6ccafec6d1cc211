"""Issue 15's "done means": a user's extension package under modlife, start to end.

tests/fixtures/xxbugs is a package as an extension author has one: setup.py
(setuptools), a C module written like CPython's Modules/xxlimited.c (multi-phase
init, module state, heap types) with two planted bugs - Xxo's tp_dealloc keeps its
type (dealloc-missing-type-decref) and a Watcher the module remembered asks for the
module's state when it dies in m_clear (state-use-after-clear) - and its pytest tests
(suite.py, copied as tests/test_xxbugs.py): clean ones, two reaching the first bug,
and the second bug reached from a test, a subinterpreter and a multiprocessing fork
child.  The modlife wheel (built once per session, see test_install) and the package
(pip --no-build-isolation) go into a fresh --system-site-packages venv of Debian's
python3.11 (Debian's pytest and pytest-xdist); then, each in its own copy of the
project, as a user types them: `python -m pytest --modlife`, `python -m pytest -n 2
--modlife` and `modlife run -- python -m pytest`."""
import os
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from modlife_testlib import HERE, INTERPRETERS, require_module
from test_install import clean_env, ok, run

DEBIAN = next(i for i in INTERPRETERS if i.name == "debian-3.11")
PACKAGE = os.path.join(HERE, "fixtures", "xxbugs")

DEALLOC = "dealloc-missing-type-decref"
CLEAR = "state-use-after-clear"
# test name -> the kind it fails with, None for a clean test.
EXPECTED = {
    "test_foo": None,
    "test_error": None,
    "test_watcher_counts": None,
    "test_xxo_new": DEALLOC,
    "test_xxo_attributes": DEALLOC,
    "test_second_instance": CLEAR,
    "test_subinterpreter": CLEAR,
    "test_multiprocessing_child": CLEAR,
}
# The bug tests reversed, the clean ones left out: each still fails alone.
REVERSED = ["tests/test_xxbugs.py::" + name for name, kind in reversed(EXPECTED.items()) if kind]
COMMANDS = {
    "plugin": ["-m", "pytest", "--modlife"],
    "reversed": ["-m", "pytest", "--modlife"],
    "xdist": ["-m", "pytest", "-n", "2", "--modlife"],
    "run": None,  # modlife run -- python -m pytest
}
HEADLINE = re.compile(r"==\d+==ERROR: modlife: ([a-z-]+): ")


@pytest.fixture(scope="session")
def venv(tmp_path_factory, request):
    """A fresh venv of Debian's python3.11 with modlife's wheel and the user's package."""
    for module, package in (("setuptools", "python3-setuptools"), ("pytest", "python3-pytest"),
                            ("xdist", "python3-pytest-xdist")):
        require_module(DEBIAN, module, package)
    wheel = request.getfixturevalue("wheel")
    d = tmp_path_factory.mktemp("user-venv")
    ok([DEBIAN.path, "-m", "venv", "--system-site-packages", d])
    ok([d / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel])
    source = tmp_path_factory.mktemp("user-source") / "xxbugs"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("suite.py", "helpers.py", "__pycache__"))
    ok([d / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
        "--no-cache-dir", source])
    return d


class Run:
    def __init__(self, proc, project):
        self.proc = proc
        self.project = project
        self.out = proc.stdout + proc.stderr
        self.outcomes = outcomes(project / "junit.xml")

    def failing(self):
        return sorted(name for name, outcome in self.outcomes.items() if outcome == "failed")

    def report(self, log_dir="modlife-logs"):
        proc = ok([self.project.parent.parent / "bin" / "modlife", "report", log_dir], cwd=self.project)
        return proc.stdout


def outcomes(junit):
    """test name -> passed, failed or skipped ({} when pytest wrote no junit file)."""
    result = {}
    if not junit.exists():
        return result
    for case in ET.parse(str(junit)).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            result[case.get("name")] = "failed"
        elif case.find("skipped") is not None:
            result[case.get("name")] = "skipped"
        else:
            result[case.get("name")] = "passed"
    return result


@pytest.fixture(scope="session")
def runs(venv):
    """mode -> its Run, each made once, in its own copy of the project (own modlife-logs)."""
    made = {}

    def get(mode):
        if mode not in made:
            project = venv / "projects" / mode
            os.makedirs(project / "tests")
            shutil.copy(os.path.join(PACKAGE, "suite.py"), project / "tests" / "test_xxbugs.py")
            shutil.copy(os.path.join(PACKAGE, "helpers.py"), project / "tests" / "helpers.py")
            python = venv / "bin" / "python"
            pytest_args = ["-p", "no:cacheprovider", "--junitxml", project / "junit.xml"] + (
                REVERSED if mode == "reversed" else ["tests"])
            if COMMANDS[mode] is None:
                argv = [venv / "bin" / "modlife", "run", "--", python, "-m", "pytest"] + pytest_args
            else:
                argv = [python] + COMMANDS[mode] + pytest_args
            made[mode] = Run(run(argv, cwd=project, timeout=120, env=clean_env()), project)
        return made[mode]
    return get


def failure_sections(stdout):
    """test name -> its section of pytest's FAILURES."""
    parts = re.split(r"^_{3,} (test_\w+) _{3,}$", stdout, flags=re.M)
    sections = {}
    for name, text in zip(parts[1::2], parts[2::2]):
        sections[name] = re.split(r"^={3,} ", text, flags=re.M)[0]
    return sections


@pytest.mark.parametrize("mode", ["plugin", "xdist", "reversed"])
def test_plugin_fails_the_tests_that_reach_a_bug(runs, mode):
    r = runs(mode)
    assert r.proc.returncode == 1, r.out
    assert r.outcomes == {name: "failed" if kind else "passed" for name, kind in EXPECTED.items()
                          if kind or mode != "reversed"}, r.out
    if mode == "reversed":
        assert re.findall(r"^FAILED tests/test_xxbugs.py::(\w+)", r.out, re.M) == [
            n.split("::")[1] for n in REVERSED], r.out
    # Each failing test shows its bug once: not again as captured stderr, nor in any
    # other test or a session teardown.
    sections = failure_sections(r.proc.stdout)
    assert sorted(sections) == r.failing()
    for name, text in sections.items():
        assert HEADLINE.findall(text) == [EXPECTED[name]], text
    assert sorted(HEADLINE.findall(r.out)) == sorted(k for k in EXPECTED.values() if k), r.out
    assert "session teardown" not in r.out
    assert "modlife: 5 findings in 5 tests" in r.proc.stdout, r.out


@pytest.mark.parametrize("mode", ["plugin", "xdist"])
def test_plugin_logs_group_one_report_per_bug(runs, mode):
    r = runs(mode)
    text = r.report()
    assert sorted(HEADLINE.findall(text)) == [DEALLOC, CLEAR], text
    # Two tests in one process, or two workers under -n 2.
    assert re.search(r"Seen 2 times in (1 process|2 processes) ", text), text
    assert "Seen 2 times in 1 process " in text or mode == "xdist", text
    # A test, a subinterpreter and a fork child: one place in xxbugs.c and helpers.py.
    assert re.search(r"Seen 3 times in [23] processes ", text), text
    assert "Seen 3 times in 2 processes " in text or mode == "xdist", text


def test_plugin_numbers_instances_per_module(runs):
    """The test module's import made instance #1; the test's own instance is #2."""
    r = runs("plugin")
    section = failure_sections(r.proc.stdout)["test_second_instance"]
    assert "for module 'xxbugs' (instance #2) after its m_clear ran" in section, section


def test_modlife_run_says_why_pytest_passed_and_it_failed(runs):
    r = runs("run")
    # Without the plugin the bugs fail no test; the tree had errors, so modlife run
    # turns pytest's 0 into 23, and its one line on stderr says why (pytest kept the reports).
    assert r.outcomes == {name: "passed" for name in EXPECTED}, r.out
    assert r.proc.returncode == 23, r.out
    assert "ERROR: modlife" not in r.out
    m = re.fullmatch(r"modlife: (\d+) findings \((\d+) errors: %s, %s\) in (\d+) of (\d+) processes"
                  r" - modlife report (modlife-logs/\d{8}T\d{6}\.\d{6}Z-\d+)\n" % (DEALLOC, CLEAR), r.proc.stderr)
    assert m, r.proc.stderr
    assert m.group(1) == m.group(2)
    assert int(m.group(4)) == 2  # pytest and the fork child
    text = r.report(m.group(5))
    assert sorted(HEADLINE.findall(text)) == [DEALLOC, CLEAR], text
    assert r.report() == text  # modlife report modlife-logs reads the latest run


def test_modlife_run_counts_the_fork_childs_finding(runs):
    r = runs("run")
    m = re.search(r"in (\d+) of (\d+) processes - modlife report (\S+)\n\Z", r.proc.stderr)
    assert m and m.group(1, 2) == ("2", "2"), r.proc.stderr
    assert "Seen 3 times in 2 processes " in r.report(m.group(3))


FORK_AFTER_BUG = """
import os, xxbugs
x = xxbugs.Xxo(); del x
pid = os.fork()
if pid == 0:
    raise SystemExit(0)
print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_modlife_run_fork_child_keeps_its_status(venv, tmp_path):
    """ASan semantics: a process's status changes for its own errors only."""
    proc = run([venv / "bin" / "modlife", "run", "--", venv / "bin" / "python", "-c", FORK_AFTER_BUG],
               cwd=tmp_path)
    assert proc.returncode == 23, proc.stdout + proc.stderr  # the parent's finding
    assert proc.stdout == "child 0\n", proc.stderr
