"""A machine with gcc and one Python: what the suite can use but does not need (pyenv's
interpreters, gdb, valgrind, chromium, setpriv, clang with libFuzzer) is hidden here -
PYENV_ROOT an empty directory, PATH a copy of this one without those tools - and the
suite must still pass, skipping what needs them with the reason, and end by saying
what it did not cover; configure must succeed without clang and say fuzzing is off."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from modlife_testlib import HERE, INTERPRETERS, path_without

SOURCE_ROOT = os.path.dirname(HERE)
HIDDEN = ("gdb", "valgrind", "chromium", "setpriv")
PYENV = [i for i in INTERPRETERS if i.name.startswith("pyenv-")]


def reduced_env(tmp_path):
    (tmp_path / "pyenv").mkdir()
    env = dict(os.environ, PATH=path_without(str(tmp_path / "bin"), HIDDEN), PYENV_ROOT=str(tmp_path / "pyenv"),
               MODLIFE_HAVE_FUZZ="no")
    env.pop("MODLIFE_REQUIRE_ALL", None)
    return env


def pytest_run(tmp_path, env, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
                           "--basetemp", str(tmp_path / "inner"), *args],
                          env=env, capture_output=True, text=True, timeout=600)


def test_suite_without_optional_tools(tmp_path):
    env = reduced_env(tmp_path)
    files = [os.path.join(HERE, f) for f in ("test_engine.py", "test_gdb_helper.py", "test_valgrind.py",
                                             "test_timeline.py", "test_bad_environment.py")]
    proc = pytest_run(tmp_path, env, *files, "-k", "test_xxlimited_lifecycle or test_single_phase_and_static_type"
                      " or test_gdb_helper or test_valgrind or test_timeline"
                      " or test_setuid_processes_get_no_instrumentation")
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-3000:]
    # Debian's 3.11 and its -dbg ran (xxlimited with both entries); every pyenv case was skipped.
    assert re.search(r"\b6 passed\b", out), out[-3000:]
    summary = out[out.index("= not covered ="):]
    lines = [line for line in summary.splitlines() if line.startswith("not covered: ")]
    for i in PYENV:
        where = os.path.join(str(tmp_path / "pyenv"), "versions", i.name[len("pyenv-"):])
        assert "not covered: %s (missing at %s/bin/python%s): 3 test(s) skipped" % (
            i.name, where, i.name[len("pyenv-"):].rsplit(".", 1)[0]) in lines, summary
    for tool in ("gdb", "valgrind", "chromium", "setpriv"):
        assert any(line.startswith("not covered: %s (not on PATH; Debian package " % tool) for line in lines), summary
    assert lines[-1] == ("not covered: libFuzzer targets fuzz_options, fuzz_suppressions "
                         "(clang with libFuzzer not found by configure)")
    # Each skip says why in pytest's own list too.
    assert "SKIPPED [2] " in out and ": not covered: gdb (not on PATH; Debian package gdb)" in out


def test_require_all_fails_what_is_not_covered(tmp_path):
    """.ci/run's MODLIFE_REQUIRE_ALL=1: where everything is installed, a skip for
    something missing fails the run."""
    env = dict(reduced_env(tmp_path), MODLIFE_REQUIRE_ALL="1")
    proc = pytest_run(tmp_path, env, os.path.join(HERE, "test_gdb_helper.py"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 skipped" in proc.stdout and "failed" not in proc.stdout
    assert "\nMODLIFE_REQUIRE_ALL=1: everything must be covered here; failing the run\n" in proc.stdout


def test_configure_without_clang(tmp_path):
    """In a copy of what configure reads, with clang-* and clang off PATH: configure
    succeeds and says fuzzing is off; the fuzz step of make check says it was skipped."""
    if not os.path.exists(os.path.join(SOURCE_ROOT, "configure")):
        pytest.skip("no ./configure in %s (run ./bootstrap)" % SOURCE_ROOT)
    src = tmp_path / "src"
    (src / "instrument").mkdir(parents=True)
    for name in ("configure", "configure.ac", "Makefile.am", "Makefile.in", "aclocal.m4"):
        shutil.copy2(os.path.join(SOURCE_ROOT, name), src / name)
    for name in ("build-aux", "m4"):
        if os.path.isdir(os.path.join(SOURCE_ROOT, name)):
            shutil.copytree(os.path.join(SOURCE_ROOT, name), src / name)
    shutil.copy2(os.path.join(SOURCE_ROOT, "instrument", "engine.c"), src / "instrument" / "engine.c")
    env = dict(os.environ, PATH=path_without(str(tmp_path / "bin"), ("clang",)))
    env.pop("FUZZ_CC", None)
    proc = subprocess.run(["./configure"], cwd=src, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "checking whether clang links libFuzzer targets... no\n" in proc.stdout
    assert "configure: WARNING: fuzzing is off: the libFuzzer targets need clang with libFuzzer" in proc.stderr
    assert proc.stdout.endswith("configure: fuzzing: off, clang with libFuzzer not found "
                                "(make check skips the libFuzzer targets)\n")
    # Not a sub-make of the make check that runs this test: no "Leaving directory" lines.
    plain = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    make = subprocess.run(["make", "fuzz-check-libfuzzer"], cwd=src, env=plain, capture_output=True, text=True,
                          timeout=120)
    assert make.returncode == 0, make.stdout + make.stderr
    assert make.stdout.splitlines()[-1].startswith(
        "fuzz_options, fuzz_suppressions: skipped, clang with libFuzzer is missing")
