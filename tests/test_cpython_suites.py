"""CPython's own tests of isolated modules (xxlimited, _testmultiphase through
test_importlib's extension tests, test_capi's module-state and multi-phase tests)
pass under modlife as they do without it, with no finding beyond the known ones
of docs/known-findings.supp."""
import os
import subprocess

import pytest

from modlife_testlib import HERE, INTERPRETERS, run_modlife

SUITES = ["test.test_xxlimited", "test.test_importlib.extension.test_loader", "test.test_capi.test_misc"]
KNOWN = os.path.join(HERE, "..", "docs", "known-findings.supp")


@pytest.mark.parametrize("version", ["3.12.1", "3.13.0"])
def test_isolation_suites_are_clean(version, tmp_path):
    interp = next(i for i in INTERPRETERS if i.name == "pyenv-" + version)
    command = [interp.path, "-m", "unittest"] + SUITES
    plain = subprocess.run(command, capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert plain.returncode == 0, plain.stderr[-2000:]
    run = run_modlife(["--suppressions", KNOWN, "--"] + command, tmp_path / "logs", cwd=str(tmp_path), timeout=900)
    assert run.proc.returncode == 0, run.proc.stderr[-4000:]
    assert "modlife: ERROR" not in run.proc.stderr and "modlife: WARNING" not in run.proc.stderr
    def counts(stderr):
        return [line.split(" in ")[0] for line in stderr.splitlines() if line.startswith(("Ran ", "OK"))]
    assert counts(run.proc.stderr) == counts(plain.stderr)
