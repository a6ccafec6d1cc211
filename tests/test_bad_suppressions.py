"""Suppressions files that are not text files of kind:pattern lines: a FIFO (which
must not block start-up), /dev/zero (which has no end), a directory, a binary file,
an embedded NUL, a file over the 1 MiB cap.  Each gets one line naming the file and
what would be right, from `modlife run` before the command starts, from the library
itself when preloaded directly, and from the pytest plugin as a usage error."""
import os
import subprocess

import pytest

from modlife_testlib import HERE, INTERPRETERS, modlife_command, preload_env

CHOSEN = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]
WANTED = "give a text file of kind:pattern lines"
CODE = "print('the program ran')"


def make_fifo(d):
    os.mkfifo(d / "fifo")
    return str(d / "fifo"), "the suppressions file '%s' is a FIFO: " + WANTED


def make_dev_zero(d):
    return "/dev/zero", "the suppressions file '%s' is a character device: " + WANTED


def make_directory(d):
    (d / "dir").mkdir()
    return str(d / "dir"), "the suppressions file '%s' is a directory: " + WANTED


def make_binary(d):
    (d / "binary").write_bytes(b"# a comment\n\x7fELF\x02\x01\x01")
    return str(d / "binary"), "%s:2: byte 0x7f is not text: " + WANTED


def make_nul(d):
    (d / "nul.supp").write_bytes(b"state-use-after-clear:a\n*:lib\x00foo.so\n")
    return str(d / "nul.supp"), "%s:2: a NUL byte: " + WANTED


def make_too_large(d):
    (d / "large.supp").write_bytes(b"# padding\n" * ((1 << 20) // 10 + 1))
    return str(d / "large.supp"), "the suppressions file '%s' is larger than 1 MiB: " + WANTED + " of at most 1 MiB"


CASES = [make_fifo, make_dev_zero, make_directory, make_binary, make_nul, make_too_large]
CASE_IDS = [c.__name__[5:] for c in CASES]


@pytest.fixture(params=CHOSEN, ids=[i.name for i in CHOSEN])
def chosen_interp(request):
    return request.param


@pytest.mark.parametrize("make", CASES, ids=CASE_IDS)
def test_modlife_run_refuses_before_the_command_starts(tmp_path, chosen_interp, make):
    path, message = make(tmp_path)
    proc = subprocess.run([modlife_command(), "run", "--log-dir", str(tmp_path / "logs"), "--suppressions", path,
                           "--", chosen_interp.path, "-c", CODE],
                          capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", "modlife run: %s\n" % (message % path))
    assert not os.path.exists(tmp_path / "logs")


@pytest.mark.parametrize("make", CASES, ids=CASE_IDS)
def test_library_refuses_at_start_up(tmp_path, chosen_interp, make):
    path, message = make(tmp_path)
    env = preload_env(MODLIFE_OPTIONS="log_path=%s/m:suppressions=%s" % (tmp_path, path))
    proc = subprocess.run([chosen_interp.path, "-c", CODE], env=env, capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", "modlife: MODLIFE_OPTIONS: %s\n" % (message % path))


@pytest.mark.parametrize("make", [make_fifo, make_nul], ids=["fifo", "nul"])
def test_pytest_plugin_usage_error(tmp_path, make):
    path, message = make(tmp_path)
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(HERE), "tools", "python"))
    env.pop("MODLIFE_OPTIONS", None)
    env.pop("LD_PRELOAD", None)
    proc = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-p", "modlife.pytest_plugin", "--modlife",
                           "-p", "no:cacheprovider", "--modlife-log-dir", str(tmp_path / "logs"),
                           "--modlife-suppressions", path, "test_nothing.py"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr == "ERROR: --modlife-suppressions: %s\n\n" % (message % path), proc.stderr
    assert "test_nothing" not in proc.stdout
