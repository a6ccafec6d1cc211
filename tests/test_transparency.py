"""modlife's first promise: a program behaves exactly as it would without it.

Each program here runs twice, plain and under `modlife run`, each in a work directory
of its own, and the two runs must agree byte for byte: standard output and error,
exit status, and every file the program wrote.  The programs do what daemons,
sandboxes and log rotation do to a process's descriptors and files."""
import glob
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from modlife_testlib import INTERPRETERS, modlife_command, read_log

# Debian's static 3.11 and a shared 3.13: the two ways libpython is linked.
TRANSPARENCY_INTERPRETERS = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]

# Many module instances and their types: xxlimited imported again and again.  300 of
# them take a log past its first 64 KiB, into the file's mapping.
CHURN = textwrap.dedent("""\
    def churn(n):
        for _ in range(n):
            sys.modules.pop("xxlimited", None)
            import xxlimited
            xxlimited.Xxo()
    """)

# A daemon that closes every descriptor it did not open and then writes a file of its
# own: the number it gets must be the one it gets without modlife, and nothing of
# modlife's may land in the file, however long modlife's log grows meanwhile.
FD_CLOSING_DAEMON = textwrap.dedent("""\
    import os, sys
    {churn}
    first = os.open("early.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    print("first descriptor", first)
    os.write(first, b"early\\n")
    churn(int(sys.argv[1]))
    os.closerange(3, 4096)
    out = os.open("own.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    print("own descriptor", out)
    for i in range(40):
        os.write(out, bytes([65 + i % 26]) * 2048)
        churn(10)
    os.close(out)
    dup = os.open("dup.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    for fd in range(dup + 1, 1024):
        os.dup2(dup, fd)  # every free number up to 1024 now names the program's file
    churn(20)
    os.write(dup, b"tail\\n")
    print("done", len(os.listdir("/proc/self/fd")) > 1000)
    """).format(churn=CHURN)

# logrotate's copytruncate: the log is copied, then cut to nothing under the process,
# which writes on.  ROTATE names the logs to cut (nothing in the plain run).
ROTATED = textwrap.dedent("""\
    import glob, os, sys
    {churn}
    for round in range(3):
        churn(int(sys.argv[1]))
        for log in glob.glob(os.environ.get("ROTATE", "")):
            os.truncate(log, 0)
        print("round", round)
    """).format(churn=CHURN)


def run_both(interp, program, args, tmp_path, env=None):
    """(plain, traced, log_dir): each a (status, stdout, stderr, files) of one run."""
    results = []
    log_dir = tmp_path / "logs"
    for name in ("plain", "traced"):
        work = tmp_path / name
        work.mkdir()
        script = tmp_path / ("program-%s.py" % name)
        script.write_text(program)
        cmd = [interp.path, str(script)] + [str(a) for a in args]
        full_env = dict(os.environ, **(env or {}))
        full_env.pop("MODLIFE_OPTIONS", None)
        if name == "traced":
            cmd = [modlife_command(), "run", "--quiet", "--log-dir", str(log_dir), "--"] + cmd
            full_env["ROTATE"] = str(log_dir / "modlife.*.jsonl")
        proc = subprocess.run(cmd, cwd=work, env=full_env, capture_output=True, timeout=300)
        files = {n: (work / n).read_bytes() for n in sorted(os.listdir(work))}
        results.append((proc.returncode, proc.stdout, proc.stderr, files))
    return results[0], results[1], log_dir


def assert_same(plain, traced):
    names = ("exit status", "stdout", "stderr", "files written")
    for what, a, b in zip(names, plain, traced):
        assert a == b, "%s differs under modlife:\nplain:  %r\ntraced: %r" % (what, a, b)


@pytest.mark.parametrize("interp", TRANSPARENCY_INTERPRETERS, ids=lambda i: i.name)
@pytest.mark.parametrize("before", [1, 300], ids=["short-log", "mapped-log"])
def test_a_daemon_that_closes_descriptors_keeps_its_files(interp, before, tmp_path):
    plain, traced, log_dir = run_both(interp, FD_CLOSING_DAEMON, [before], tmp_path)
    assert plain[0] == 0, plain
    assert b"first descriptor 3\n" in plain[1]
    assert_same(plain, traced)
    # The log went on after the program took its descriptor: found again by its path.
    (log,) = glob.glob(str(log_dir / "modlife.*.jsonl"))
    records = read_log(log)
    execs = [r for r in records if r["event"] == "module-exec" and r["module"] == "xxlimited"]
    assert len(execs) == before + 40 * 10 + 20
    assert records[-1]["event"] == "process-exit"


@pytest.mark.parametrize("interp", TRANSPARENCY_INTERPRETERS, ids=lambda i: i.name)
@pytest.mark.parametrize("per_round", [1, 300], ids=["short-log", "mapped-log"])
def test_a_log_cut_by_rotation_neither_kills_nor_pads(interp, per_round, tmp_path):
    plain, traced, log_dir = run_both(interp, ROTATED, [per_round], tmp_path)
    assert plain[0] == 0, plain
    assert_same(plain, traced)
    # What follows the last cut stands alone: it starts again with process-start, and
    # no zeros stand where the records before the cut were.
    (log,) = glob.glob(str(log_dir / "modlife.*.jsonl"))
    data = open(log, "rb").read()
    assert data == b"" or (not data.startswith(b"\0") and data.endswith(b"}\n") and b"\0" not in data)
    tools = subprocess.run([modlife_command(), "events", str(log_dir)], capture_output=True, text=True)
    assert tools.returncode == 0, tools.stderr


@pytest.mark.parametrize("interp", TRANSPARENCY_INTERPRETERS, ids=lambda i: i.name)
def test_records_after_a_rotation_start_a_log_of_their_own(interp, tmp_path):
    code = CHURN + textwrap.dedent("""\
        import glob, os
        churn(5)
        (log,) = glob.glob(os.environ["ROTATE"])
        os.truncate(log, 0)
        churn(3)
        """)
    log_dir = tmp_path / "logs"
    env = dict(os.environ, ROTATE=str(log_dir / "modlife.*.jsonl"))
    env.pop("MODLIFE_OPTIONS", None)
    proc = subprocess.run([modlife_command(), "run", "--quiet", "--log-dir", str(log_dir), "--",
                           interp.path, "-c", "import sys\n" + code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (log,) = glob.glob(str(log_dir / "modlife.*.jsonl"))
    records = read_log(log)  # every stack id names a stack record of the new log
    assert records[0]["event"] == "process-start" and records[0]["continued"] is True
    assert any(r["event"] == "object-load" for r in records)
    execs = [r for r in records if r["event"] == "module-exec" and r["module"] == "xxlimited"]
    assert len(execs) == 3 and all("stack" in r for r in execs)
    assert records[-1]["event"] == "process-exit"


# A cutter thread truncates the log every half millisecond while the program makes
# module instances and types: cuts land before, between and inside records.
CUT_WHILE_WRITING = textwrap.dedent("""\
    import glob, os, sys, threading, time
    {churn}
    stop = False
    def cutter():
        while not stop:
            for log in glob.glob(os.environ.get("ROTATE", "")):
                os.truncate(log, 0)
            time.sleep(0.0005)
    thread = threading.Thread(target=cutter)
    thread.start()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        churn(10)
    stop = True
    thread.join()
    print("done")
    """).format(churn=CHURN)


@pytest.mark.parametrize("interp", TRANSPARENCY_INTERPRETERS, ids=lambda i: i.name)
def test_a_log_cut_again_and_again_while_written(interp, tmp_path):
    plain, traced, log_dir = run_both(interp, CUT_WHILE_WRITING, [], tmp_path)
    assert plain[0] == 0, plain
    assert_same(plain, traced)
    tools = subprocess.run([modlife_command(), "report", str(log_dir)], capture_output=True, text=True)
    assert tools.returncode == 0, tools.stderr
