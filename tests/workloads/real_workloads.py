#!/usr/bin/env python3
"""Real workloads that no one here wrote, under `modlife run`: CPython's own test
suites shipped with each interpreter, and Debian's compiled extension packages
exercised by a short script each (tests/workloads/packages/).

Every workload runs twice side by side, uninstrumented and under modlife with the
known findings of docs/known-findings.supp suppressed, and passes when

  - the results are the same: per test case for CPython's suites (regrtest's
    --junit-xml), exit status and output for the package scripts;
  - modlife reported no finding at all: what remains after the known findings is
    either a bug of modlife or a new violation to explain in the known-findings file.

    tests/workloads/real_workloads.py              # every workload (tens of minutes)
    tests/workloads/real_workloads.py --quick      # the subset the test suite runs
    tests/workloads/real_workloads.py --list       # what would run
    tests/workloads/real_workloads.py -k decimal   # workloads whose name has 'decimal'

modlife is the build tree's tools/modlife when the script is run from a source
checkout that was built in place, else `modlife` on PATH; --modlife names another.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
KNOWN_FINDINGS = os.path.join(SOURCE_ROOT, "docs", "known-findings.supp")
PACKAGE_SCRIPTS = os.path.join(HERE, "packages")

PYENV_VERSIONS = ("3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0")

# CPython's suites of modules that isolation matters for.  test_capi holds the
# multi-phase and module-state tests, test_importlib.extension loads
# _testmultiphase's many module definitions; test_interpreters exists from 3.10.
SUITES = ("test_json", "test_csv", "test_decimal", "test_pickle", "test_datetime", "test_sqlite3",
          "test_sqlite", "test_array", "test_struct", "test_capi", "test_interpreters",
          "test_xxlimited", "test_importlib.extension")
# Suites that do not finish uninstrumented on an interpreter here, with why.
BROKEN = {
    ("pyenv-3.11.7", "test_interpreters"): "hangs without modlife in threaded tests (test_in_thread, "
                                           "test_from_other_thread); Debian's 3.11 runs it",
}
QUICK_SUITES = ("test_json", "test_csv", "test_struct", "test_xxlimited", "test_importlib.extension",
                "test_capi.test_misc")
QUICK_VERSIONS = ("3.12.1", "3.13.0")

# Debian's compiled extension packages, for Debian's own python3.11.
PACKAGES = ("numpy", "lxml", "yaml", "msgpack", "psutil", "ujson", "regex")
DEBIAN_PYTHON = "/usr/bin/python3.11"


@dataclass
class Workload:
    name: str
    interpreter: str
    args: list
    kind: str  # "regrtest", "pytest" (through modlife's plugin) or "script"
    env: dict = field(default_factory=dict)

    def command(self, junit_path=None, log_dir=None):
        if self.kind == "regrtest":
            return [self.interpreter] + self.args[:2] + ["--junit-xml", junit_path] + self.args[2:]
        if self.kind == "pytest":
            # --opt=value: pytest takes separate values that are paths into its rootdir
            # guess, which would rename every test case in the JUnit file.
            plugin = ["-p", "modlife.pytest_plugin", "--modlife", "--modlife-log-dir=" + log_dir,
                      "--modlife-suppressions=" + KNOWN_FINDINGS] if log_dir else []
            return [self.interpreter, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--junitxml", junit_path] + plugin + self.args
        return [self.interpreter] + self.args


def pyenv_root():
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def pyenv_python(version):
    return os.path.join(pyenv_root(), "versions", version, "bin", "python" + version.rsplit(".", 1)[0])


def stdlib_test_directory(python):
    out = subprocess.run([python, "-c", "import os, test; print(os.path.dirname(test.__file__))"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def stdlib_test_package(label, python):
    """The directory of python's test package; exits naming what to install if none."""
    test_dir = stdlib_test_directory(python) if os.access(python, os.X_OK) else None
    if test_dir is None:
        raise SystemExit("real_workloads: %s has no test package at %s: install it (pyenv's builds "
                         "ship one; Debian's is libpython3.11-testsuite, ./bootstrap installs it)"
                         % (label, python))
    return test_dir


def suite_exists(test_dir, suite):
    path = os.path.join(test_dir, *suite.split("."))
    return os.path.isdir(path) or os.path.exists(path + ".py")


def cpython_workloads(quick):
    pythons = [("pyenv-" + v, pyenv_python(v)) for v in (QUICK_VERSIONS if quick else PYENV_VERSIONS)]
    if not quick:
        pythons.append(("debian-3.11", DEBIAN_PYTHON))
    found = []
    for label, python in pythons:
        test_dir = stdlib_test_package(label, python)
        for suite in (QUICK_SUITES if quick else SUITES):
            if suite_exists(test_dir, suite) and (label, suite) not in BROKEN:
                # -u all: the resources a developer's full run uses; no -j, so every
                # suite runs in this one process, module instances and all.
                found.append(Workload("%s %s" % (label, suite), python, ["-m", "test", "-u", "all", suite],
                                      "regrtest"))
    return found


# Real suites through the pytest plugin (`pytest --modlife`), as extension authors use
# modlife: CPython's unittest suites that pytest collects as they are.
PYTEST_SUITES = ("test_csv.py", "test_struct.py", "test_array.py")


def pytest_workloads():
    test_dir = stdlib_test_package("debian-3.11", DEBIAN_PYTHON)
    files = [os.path.join(test_dir, f) for f in PYTEST_SUITES]
    return [Workload("debian-3.11 pytest --modlife " + " ".join(PYTEST_SUITES), DEBIAN_PYTHON, files, "pytest")]


def package_workloads():
    found = []
    for package in PACKAGES:
        script = os.path.join(PACKAGE_SCRIPTS, "use_%s.py" % package)
        found.append(Workload("debian-3.11 python3-%s" % package, DEBIAN_PYTHON, [script], "script"))
    return found


# -- results ------------------------------------------------------------------

def junit_cases(junit_path):
    """Counter of (test case, outcome) from a JUnit XML file (regrtest's or pytest's)."""
    cases = collections.Counter()
    if not os.path.exists(junit_path):
        return cases
    try:
        root = ElementTree.parse(junit_path).getroot()
    except ElementTree.ParseError:
        return cases
    for case in root.iter("testcase"):
        outcome = case.get("result") or case.get("status") or "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        name = ".".join(filter(None, [case.get("classname"), case.get("name")]))
        cases[(name, outcome)] += 1
    return cases


TIMED_OUT = -1000


def plugin_environment(modlife):
    """Where the plugin finds modlife's package and library: an installed modlife
    registered both; a build tree has them beside its tools/modlife."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [os.path.join(SOURCE_ROOT, "tools", "python"),
                                                       os.environ.get("PYTHONPATH")]))}
    built = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(modlife))), ".libs")
    if not os.environ.get("MODLIFE_LIBDIR") and os.path.exists(os.path.join(built, "libmodlife.so")):
        env["MODLIFE_LIBDIR"] = built
    return env


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    seconds: float
    cases: collections.Counter = None


def run_once(workload, work_dir, modlife=None, log_dir=None, timeout=None):
    os.makedirs(work_dir, exist_ok=True)
    junit = os.path.join(work_dir, "junit.xml")
    command = workload.command(junit, log_dir if workload.kind == "pytest" else None)
    if modlife and workload.kind != "pytest":
        command = [modlife, "run", "--quiet", "--log-dir", log_dir,
                   "--suppressions", KNOWN_FINDINGS, "--"] + command
    env = dict(os.environ, **workload.env)
    if modlife and workload.kind == "pytest":
        env.update(plugin_environment(modlife))
    env.pop("MODLIFE_OPTIONS", None)
    env.pop("LD_PRELOAD", None)
    start = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=work_dir, env=env, capture_output=True, text=True,
                              errors="replace", stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        proc = subprocess.CompletedProcess(command, TIMED_OUT, out, err + "\n[timed out after %d s]" % timeout)
    seconds = time.monotonic() - start
    cases = junit_cases(junit) if workload.kind != "script" else None
    return Outcome(proc.returncode, proc.stdout, proc.stderr, seconds, cases)


def findings(modlife, log_dir):
    """`modlife report --format json` over the run's logs."""
    if not os.path.isdir(log_dir) or not os.listdir(log_dir):
        return {}, "no log was written"
    proc = subprocess.run([modlife, "report", "--format", "json", log_dir], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        return {}, "modlife report failed: " + proc.stderr.strip()
    document = json.loads(proc.stdout)
    return document, None


def modules_seen(log_dir):
    """Module instances the logs recorded: a run that saw none was not traced."""
    names = collections.Counter()
    for name in os.listdir(log_dir) if os.path.isdir(log_dir) else ():
        with open(os.path.join(log_dir, name), errors="replace") as f:
            for line in f:
                if '"module-create"' in line:
                    try:
                        names[json.loads(line).get("module")] += 1
                    except ValueError:
                        pass
    return names


def differences(workload, plain, traced):
    """What differs between the uninstrumented and the traced run, as lines."""
    lines = []
    if plain.status != traced.status:
        lines.append("exit status %d uninstrumented, %d under modlife" % (plain.status, traced.status))
    if workload.kind != "script":
        if plain.cases != traced.cases:
            only_plain = plain.cases - traced.cases
            only_traced = traced.cases - plain.cases
            for (name, outcome), _ in sorted(only_plain.items())[:20]:
                lines.append("uninstrumented: %s %s" % (name, outcome))
            for (name, outcome), _ in sorted(only_traced.items())[:20]:
                lines.append("under modlife:  %s %s" % (name, outcome))
        if not plain.cases:
            lines.append("no test case results were written (--junit-xml)")
    elif plain.stdout != traced.stdout:
        lines.append("output differs:\n--- uninstrumented\n%s--- under modlife\n%s"
                     % (plain.stdout[-2000:], traced.stdout[-2000:]))
    return lines


@dataclass
class Verdict:
    workload: Workload
    ok: bool
    summary: str
    details: list


def check(workload, modlife, scratch, timeout):
    safe = workload.name.replace(" ", "-").replace("/", "_")
    base = os.path.join(scratch, safe)
    log_dir = os.path.join(base, "logs")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        plain_f = pool.submit(run_once, workload, os.path.join(base, "plain"), timeout=timeout)
        traced_f = pool.submit(run_once, workload, os.path.join(base, "modlife"), modlife, log_dir, timeout)
        plain, traced = plain_f.result(), traced_f.result()
    details = differences(workload, plain, traced)
    document, problem = findings(modlife, log_dir)
    groups = document.get("findings", [])
    # Processes that died of a signal are not failures by themselves: CPython's suites
    # crash children on purpose (faulthandler, fatal errors); a crash that was not
    # meant changes a test's result or the exit status, compared above.
    crashed = sum(1 for p in document.get("processes", []) if p.get("crashed"))
    if problem:
        details.append(problem)
    seen = modules_seen(log_dir)
    if not seen:
        details.append("the logs recorded no module instance: modlife did not trace the run")
    for g in groups:
        details.append("finding: %s (seen %d times)" % (g["summary"], g["count"]))
    if details:
        details.append("logs: " + log_dir)
        details.append("stderr under modlife (end):\n" + traced.stderr[-3000:])
    count = sum(traced.cases.values()) if traced.cases is not None else None
    summary = "%s%s, %d module instances, %d process(es) crashed, %d finding(s), %.1f s uninstrumented, " \
              "%.1f s under modlife" % (
                  "status %d" % traced.status, ", %d test cases" % count if count is not None else "",
                  sum(seen.values()), crashed, len(groups), plain.seconds, traced.seconds)
    return Verdict(workload, not details, summary, details)


def default_modlife():
    built = os.path.join(SOURCE_ROOT, "tools", "modlife")
    if os.access(built, os.X_OK):
        return built
    return shutil.which("modlife")


def select(quick, only, keyword):
    chosen = []
    if only in (None, "cpython"):
        chosen += cpython_workloads(quick)
    if only in (None, "pytest"):
        chosen += pytest_workloads()
    if only in (None, "packages"):
        chosen += package_workloads()
    if keyword:
        chosen = [w for w in chosen if keyword in w.name]
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the subset the test suite runs")
    parser.add_argument("--only", choices=("cpython", "pytest", "packages"), help="only one family of workloads")
    parser.add_argument("-k", metavar="TEXT", help="only workloads whose name contains TEXT")
    parser.add_argument("--list", action="store_true", help="print the workloads and exit")
    parser.add_argument("--modlife", default=default_modlife(), help="the modlife command to use")
    parser.add_argument("--keep", metavar="DIR", help="keep logs and outputs under DIR")
    parser.add_argument("--timeout", type=int, default=900, metavar="S",
                        help="seconds one run of a workload may take (default 900)")
    args = parser.parse_args(argv)
    chosen = select(args.quick, args.only, args.k)
    if args.list:
        for w in chosen:
            print(w.name)
        return 0
    if not args.modlife:
        parser.error("no modlife command: build it (tools/modlife) or install it, or pass --modlife")
    scratch = args.keep or tempfile.mkdtemp(prefix="modlife-workloads-")
    failed = 0
    for w in chosen:
        verdict = check(w, args.modlife, scratch, args.timeout)
        print("%-4s %-45s %s" % ("ok" if verdict.ok else "FAIL", w.name, verdict.summary), flush=True)
        for line in verdict.details:
            print("     " + line.replace("\n", "\n     "))
        failed += not verdict.ok
    print("%d workload(s), %d failed" % (len(chosen), failed))
    if not args.keep and not failed:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
