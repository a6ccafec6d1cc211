"""The modlife command line as users run it."""
import json
import os
import signal
import subprocess

import pytest

from modlife_testlib import events, modlife_command, read_log, run_modlife


def modlife(*args, **kw):
    return subprocess.run([modlife_command()] + list(args), capture_output=True, text=True, **kw)


def test_help_names_the_subcommands():
    proc = modlife("--help")
    assert proc.returncode == 0
    for word in ("run", "events"):
        assert word in proc.stdout
    assert "--log-dir" in modlife("run", "--help").stdout


def test_run_without_a_command_is_a_usage_error():
    proc = modlife("run")
    assert proc.returncode == 2 and "no command given" in proc.stderr


def test_run_keeps_exit_status_and_output(tmp_path):
    run = run_modlife(["--", "/usr/bin/python3.11", "-c", "import sys; print('out'); sys.exit(7)"], tmp_path)
    assert run.proc.returncode == 7 and run.proc.stdout == "out\n"


@pytest.mark.parametrize("imports", [1, 300])
def test_run_dies_of_the_same_signal(tmp_path, imports):
    """A short log is written record by record; a long one (300 module instances, past
    the first 64 KiB) through the file's mapping: both whole up to the kill."""
    code = ("import os, signal, sys\nfor i in range(%d):\n    sys.modules.pop('xxlimited', None)\n"
            "    import xxlimited\nos.kill(os.getpid(), signal.SIGKILL)\n" % imports)
    run = run_modlife(["--", "/usr/bin/python3.11", "-c", code], tmp_path)
    assert run.proc.returncode == -signal.SIGKILL
    # What was recorded before SIGKILL is in the log, whole; the file the library grows
    # ahead of its records ends in the zeros of that room, which the tools pass over.
    data = open(run.logs[0], "rb").read()
    assert data.rstrip(b"\0").endswith(b"}\n") and data.endswith(b"\0") == (imports == 300)
    records = read_log(run.logs[0])
    assert len(events(records, "module-exec", module="xxlimited")) == imports
    assert any(r["event"] == "module-exec" and r["module"] == "xxlimited" for r in records)
    assert records[-1]["event"] != "process-exit"
    proc = modlife("events", run.log_dir)
    assert proc.returncode == 0 and "module-exec" in proc.stdout
    assert "ended abruptly" in proc.stdout


def test_run_reports_a_missing_program(tmp_path):
    run = run_modlife(["--", str(tmp_path / "no-such-program")], tmp_path)
    assert run.proc.returncode == 127 and "cannot run" in run.proc.stderr


def test_a_log_is_cut_to_its_records_at_exit(tmp_path):
    code = "import sys\nfor i in range(300):\n    sys.modules.pop('xxlimited', None)\n    import xxlimited\n"
    run = run_modlife(["--", "/usr/bin/python3.11", "-c", code], tmp_path)
    data = open(run.logs[0], "rb").read()
    assert data.endswith(b"}\n") and b"\0" not in data
    assert read_log(run.logs[0])[-1]["event"] == "process-exit"


def test_events_reads_a_cut_off_last_line(tmp_path):
    run = run_modlife(["--", "/usr/bin/python3.11", "-c", "import xxlimited"], tmp_path)
    log = run.logs[0]
    data = open(log, "rb").read()
    with open(log, "wb") as f:
        f.write(data[:-25])  # a crash in the middle of the last record
    proc = modlife("events", log)
    assert proc.returncode == 0, proc.stderr
    assert "module-create" in proc.stdout


def test_events_rejects_a_file_that_is_not_a_log(tmp_path):
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"event": "process-start"}\nthis is not json\n{"event": "x"}\n')
    proc = modlife("events", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.startswith("modlife: %s:2: not a modlife log record" % bad)
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    proc = modlife("events", str(other))
    assert proc.returncode == 2 and "%s:1: not a modlife log record" % other in proc.stderr


def test_installed_layout_finds_its_library(tmp_path):
    """`modlife` finds the library relative to where it is installed."""
    prefix = tmp_path / "prefix"
    top = os.environ["MODLIFE_BUILDDIR"]
    subprocess.run(["make", "-s", "-C", top, "install", "prefix=" + str(prefix)], check=True,
                   capture_output=True)
    moved = tmp_path / "moved"
    os.rename(prefix, moved)  # a relocated install still works
    proc = subprocess.run([str(moved / "bin" / "modlife"), "run", "--quiet", "--log-dir", str(tmp_path / "logs"),
                           "--", "/usr/bin/python3.11", "-c", "import xxlimited"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(os.listdir(tmp_path / "logs")) == 1
