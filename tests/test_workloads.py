"""Real workloads that no one here wrote, the quick subset: CPython's own suites of
isolated and multi-phase modules on 3.12 and 3.13, three of Debian's 3.11 suites
through the pytest plugin, and Debian's compiled extension packages, each run side by side without and under modlife.  They must give the same
results, and modlife no finding beyond docs/known-findings.supp.  The full runs
(every suite on every interpreter) are tests/workloads/real_workloads.py."""
import os
import subprocess
import sys

import pytest

from modlife_testlib import HERE, NOT_COVERED, Interpreter, modlife_command, require_module

sys.path.insert(0, os.path.join(HERE, "workloads"))
import real_workloads  # noqa: E402



def select():
    """The quick subset, and a skip reason for each family whose interpreter or test
    package is missing here."""
    found, missing = [], {}
    for family in ("cpython", "pytest", "packages"):
        try:
            found += real_workloads.select(quick=True, only=family, keyword=None)
        except SystemExit as e:
            why = str(e).replace("real_workloads: ", "").split(": install it")[0]
            missing[family] = "%s%s workloads (%s)" % (NOT_COVERED, family, why)
    return found, missing


WORKLOADS, MISSING = select()
PARAMS = [pytest.param(w, id=w.name.replace(" ", "-")) for w in WORKLOADS] + \
    [pytest.param(None, id="missing-" + f, marks=pytest.mark.skip(reason=r)) for f, r in MISSING.items()]


@pytest.mark.parametrize("workload", PARAMS)
def test_workload_runs_as_without_modlife(workload, tmp_path):
    if workload.kind == "script":
        package = workload.name.split(" python3-")[1]
        require_module(Interpreter("debian-3.11", workload.interpreter), package, "python3-" + package)
    verdict = real_workloads.check(workload, modlife_command(), str(tmp_path), timeout=600)
    assert verdict.ok, "%s: %s\n%s" % (workload.name, verdict.summary, "\n".join(verdict.details))


def test_the_quick_subset_covers_every_family():
    if MISSING:
        pytest.skip(" ".join(MISSING.values()))
    kinds = {}
    for w in WORKLOADS:
        kinds.setdefault(w.kind, set()).add(w.name.split()[0])
    assert kinds == {"regrtest": {"pyenv-3.12.1", "pyenv-3.13.0"}, "pytest": {"debian-3.11"},
                     "script": {"debian-3.11"}}
    assert sum(w.kind == "script" for w in WORKLOADS) == len(real_workloads.PACKAGES)


def test_a_difference_fails_the_workload(tmp_path):
    """The comparison can fail: a script whose output changes under modlife."""
    script = tmp_path / "differs.py"
    script.write_text("import os\nprint('LD_PRELOAD' in os.environ)\n")
    workload = real_workloads.Workload("differs", real_workloads.DEBIAN_PYTHON, [str(script)], "script")
    verdict = real_workloads.check(workload, modlife_command(), str(tmp_path), timeout=60)
    assert not verdict.ok and any("output differs" in d for d in verdict.details), verdict.details


def test_the_runner_has_no_tests_for_pytest_to_take():
    """real_workloads.py is a program, not a test module: pytest given it finds nothing
    (it took its helpers named test_* for tests, which then failed for want of fixtures)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           os.path.join(HERE, "workloads", "real_workloads.py")], capture_output=True, text=True)
    assert proc.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, proc.stdout + proc.stderr
