"""`modlife run` leaves the command as it would be without it: a process that cannot
create its log (privileges dropped, a log directory named with ':' or '="', every
plain name taken, a fork child whose directory went away) runs on with one line on
stderr and is named at the end by modlife run; signals sent to modlife run reach the
command once, and modlife run's status is the command's; a clean run's output is
the command's, byte for byte."""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import termios
import time

import pytest

from modlife_testlib import INTERPRETERS, modlife_command

PAIR = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]

# Output on both streams and a status of its own: what must come out unchanged.
PROGRAM = r"""
import sys, _json, _decimal
print("out: program ran")
sys.stdout.flush()
sys.stderr.write("err: program ran\n")
sys.exit(5)
"""

NO_LOG_LINE = (r"modlife: cannot create the log file '(?P<path>{dir}/modlife\.(?P<pid>\d+)\.jsonl)': {reason} "
               r"\(log_path must name a writable directory and file prefix\); this process runs without modlife\n")
NOTICE_LINE = (r"modlife: 1 process had no log: pid (?P=pid): cannot create the log file '(?P=path)': {reason} "
               r"\(log_path must name a writable directory and file prefix\)\n")


@pytest.fixture(params=PAIR, ids=[i.name for i in PAIR])
def interp(request):
    return request.param


def plain(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=60, **kw)


def wrapped(log_dir, cmd, *options, **kw):
    return subprocess.run([modlife_command(), "run", *options, "--log-dir", str(log_dir), "--"] + cmd,
                          capture_output=True, timeout=60, **kw)


def logs(log_dir):
    return sorted(n for n in os.listdir(log_dir) if n.endswith(".jsonl"))


# -- item 4: no log, and the program runs on ------------------------------------------

def drop_privileges(interp):
    # dac_read_search: nobody may still read pyenv's interpreter under /root, never write.
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search", interp.path]


@pytest.mark.skipif(os.geteuid() != 0, reason="not covered: dropping privileges with setpriv (needs root)")
@pytest.mark.needs("setpriv")
def test_privilege_drop_runs_on_without_a_log(interp, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    cmd = drop_privileges(interp) + ["-c", PROGRAM]
    ref = plain(cmd, cwd="/")
    assert ref.returncode == 5 and ref.stdout == b"out: program ran\n", ref
    got = wrapped(log_dir, cmd, cwd="/")
    assert (got.returncode, got.stdout) == (ref.returncode, ref.stdout), got.stderr
    pattern = (NO_LOG_LINE.format(dir=re.escape(str(log_dir)), reason="Permission denied")
               + re.escape(ref.stderr.decode())
               + NOTICE_LINE.format(reason="Permission denied"))
    assert re.fullmatch(pattern, got.stderr.decode()), got.stderr.decode()
    assert logs(log_dir) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="not covered: dropping privileges with setpriv (needs root)")
@pytest.mark.needs("setpriv")
def test_each_process_without_a_log_is_named(tmp_path):
    interp = PAIR[0]
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    py = " ".join(drop_privileges(interp))
    got = wrapped(log_dir, ["sh", "-c", "%s -c pass 2>/dev/null; %s -c pass 2>/dev/null; exit 3" % (py, py)],
                  cwd="/")
    assert got.returncode == 3 and got.stdout == b""
    lines = got.stderr.decode().splitlines()
    assert lines[0] == "modlife: 2 processes had no log:" and len(lines) == 3, lines
    expected = (r"modlife:   pid \d+: cannot create the log file '%s/modlife\.\d+\.jsonl': Permission denied "
                r"\(log_path must name a writable directory and file prefix\)" % re.escape(str(log_dir)))
    assert all(re.fullmatch(expected, line) for line in lines[1:]), lines


@pytest.mark.parametrize("name", ["col:on", 'q="x', "a='b:c", 'x="y:z'])
def test_log_dir_names_reach_the_library(interp, tmp_path, name):
    """':' ended the value and '="' opened a quote that never closed: each stopped the
    program with status 1."""
    log_dir = tmp_path / name
    ref = plain([interp.path, "-c", PROGRAM])
    got = wrapped(log_dir, [interp.path, "-c", PROGRAM])
    assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)
    (log,) = logs(log_dir)
    with open(log_dir / log) as f:
        start = f.readline()
    assert '"options":{"log_path":%s' % _json_string(str(log_dir / "modlife")) in start, start


def _json_string(text):
    return json.dumps(text, separators=(",", ":"))


def test_log_dir_with_both_quotes_is_refused(tmp_path):
    proc = wrapped(tmp_path / "a'b\"c", ["true"])
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().startswith("modlife run: ") and "which MODLIFE_OPTIONS cannot carry" in \
        proc.stderr.decode(), proc.stderr


def test_every_plain_name_taken(interp, tmp_path):
    """100 names made ahead for the pid (as anyone can in a shared /tmp directory): the
    library used to give up; it takes a name nobody can guess."""
    script = ('touch "$1/modlife.$$.jsonl"; i=1; while [ $i -lt 100 ]; do touch "$1/modlife.$$.$i.jsonl"; '
              'i=$((i+1)); done; exec "$2" -c "$3"')
    ref_dir, log_dir = tmp_path / "ref", tmp_path / "logs"
    ref_dir.mkdir()
    log_dir.mkdir()
    ref = plain(["sh", "-c", script, "sh", str(ref_dir), interp.path, PROGRAM])
    got = wrapped(log_dir, ["sh", "-c", script, "sh", str(log_dir), interp.path, PROGRAM])
    assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)
    made = [n for n in logs(log_dir) if os.path.getsize(log_dir / n)]
    assert len(logs(log_dir)) == 101 and len(made) == 1, logs(log_dir)
    m = re.fullmatch(r"modlife\.(\d+)\.[0-9a-f]{16}\.jsonl", made[0])
    assert m and os.stat(log_dir / made[0]).st_mode & 0o777 == 0o600, made
    with open(log_dir / made[0]) as f:
        assert f.readline().startswith('{"event":"process-start"')


def test_fork_child_without_a_log_runs_on(interp, tmp_path, fixtures_for):
    """The parent has its log; its directory is renamed before a fork, so the child
    cannot create one: it used to leave with status 1.  It keeps the parent's hooks,
    but a bug they see there is not reported (state-use-after-clear: a Holder kept in
    the module state asks for the state in m_clear)."""
    log_dir = tmp_path / "logs"
    code = ("import gc, os, sys\n"
            "import state_after_clear as m\n"
            "os.rename(%r, %r)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    m.keep(m.Holder())\n"
            "    del sys.modules['state_after_clear'], m\n"
            "    gc.collect()\n"
            "    print('child ran'); sys.stdout.flush(); sys.exit(7)\n"
            "print('child status', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
            % (str(log_dir), str(tmp_path / "moved")))
    env = dict(os.environ, PYTHONPATH=fixtures_for("state_after_clear"))
    got = wrapped(log_dir, [interp.path, "-c", code], env=env)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"child ran\nchild status 7\n"
    pattern = (NO_LOG_LINE.format(dir=re.escape(str(log_dir)), reason="No such file or directory")
               + NOTICE_LINE.format(reason="No such file or directory"))
    assert re.fullmatch(pattern, got.stderr.decode()), got.stderr.decode()
    assert len(logs(tmp_path / "moved")) == 1


# -- item 5: signals, status and silence ----------------------------------------------

FORWARDED = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGQUIT", "SIGALRM", "SIGWINCH", "SIGCONT",
             "SIGTSTP", "SIGTTIN", "SIGTTOU"]

# Handles the signals named in argv[2], says it is ready, then writes what it got
# (a second delivery has time to arrive) and leaves with 100 + the first one.
CATCHER = r"""
import os, signal, sys, time
out, names = sys.argv[1], [n for n in sys.argv[2].split(",") if n]
got = []
for name in names:
    signal.signal(getattr(signal, name), lambda s, f: got.append(s))
with open(out + ".tmp", "w") as f:
    f.write("%d" % os.getpid())
os.rename(out + ".tmp", out + ".ready")
deadline = time.monotonic() + 10
while not got and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.5)
with open(out, "w") as f:
    f.write(" ".join(signal.Signals(s).name for s in got))
sys.exit(100 + got[0] if got else 99)
"""


def start_catcher(interp, tmp_path, handled, **popen):
    script = tmp_path / "catcher.py"
    script.write_text(CATCHER)
    out = tmp_path / "got"
    proc = subprocess.Popen([modlife_command(), "run", "--log-dir", str(tmp_path / "logs"), "--", interp.path,
                             str(script), str(out), ",".join(handled)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    ready = tmp_path / "got.ready"
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc, out, int(ready.read_text())


def finish(proc, child):
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in (proc.pid, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate()
        pytest.fail("modlife run did not end")


@pytest.mark.parametrize("name", FORWARDED)
def test_signal_to_modlife_run_reaches_the_command(interp, tmp_path, name):
    proc, out, child = start_catcher(interp, tmp_path, FORWARDED)
    sig = getattr(signal, name)
    os.kill(proc.pid, sig)
    stdout, stderr = finish(proc, child)
    assert out.read_text() == name
    assert proc.returncode == 100 + sig and (stdout, stderr) == (b"", b"")


def test_command_dies_of_the_forwarded_signal(interp, tmp_path):
    proc, out, child = start_catcher(interp, tmp_path, ["SIGUSR1"])
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = finish(proc, child)
    assert proc.returncode == -signal.SIGTERM and (stdout, stderr) == (b"", b"")
    with pytest.raises(ProcessLookupError):  # not left running, orphaned
        os.kill(child, 0)


def test_process_group_interrupt_arrives_once(interp, tmp_path):
    """kill(-pgrp) of modlife run's group: the command gets one SIGINT, not two."""
    proc, out, child = start_catcher(interp, tmp_path, ["SIGINT"], start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = finish(proc, child)
    assert out.read_text() == "SIGINT"
    assert proc.returncode == 100 + signal.SIGINT and (stdout, stderr) == (b"", b"")


def _controlling_terminal():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_terminal_ctrl_c_arrives_once(interp, tmp_path):
    """A real ^C on a terminal modlife run controls: once, and modlife run adds nothing."""
    master, slave = os.openpty()
    try:
        proc, out, child = start_catcher(interp, tmp_path, ["SIGINT"], stdin=slave,
                                         preexec_fn=_controlling_terminal)
        os.write(master, b"\x03")
        stdout, stderr = finish(proc, child)
    finally:
        os.close(slave)
        os.close(master)
    assert out.read_text() == "SIGINT"
    assert proc.returncode == 100 + signal.SIGINT and (stdout, stderr) == (b"", b"")


def test_clean_run_adds_nothing(interp, tmp_path):
    ref = plain([interp.path, "-c", PROGRAM])
    got = wrapped(tmp_path / "logs", [interp.path, "-c", PROGRAM])
    assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)
    assert len(logs(tmp_path / "logs")) == 1
    verbose = wrapped(tmp_path / "logs2", [interp.path, "-c", PROGRAM], "--verbose")
    assert verbose.stderr == ref.stderr + b"modlife: 1 log in %s\n" % str(tmp_path / "logs2").encode()


def test_findings_bring_the_log_line(interp, tmp_path, fixtures_for):
    """A process that reported findings: modlife run counts them and names the logs, unless --quiet."""
    code = ("import gc, sys, state_after_clear as m\n"
            "m.keep(m.Holder()); del sys.modules['state_after_clear'], m; gc.collect()\n")
    env = dict(os.environ, PYTHONPATH=fixtures_for("state_after_clear"))
    got = wrapped(tmp_path / "logs", [interp.path, "-c", code], env=env)
    assert got.returncode == 23 and got.stderr.endswith(
        b"\nmodlife: 1 finding (1 error: state-use-after-clear) in 1 of 1 process - modlife report %s\n"
        % str(tmp_path / "logs").encode())
    quiet = wrapped(tmp_path / "quiet", [interp.path, "-c", code], "--quiet", env=env)
    assert quiet.returncode == 23 and b"modlife report" not in quiet.stderr and b"state-use-after-clear" in quiet.stderr


def test_status_of_a_signal_death_is_kept(interp, tmp_path):
    # SIGHUP's default action set first: a run under nohup inherits it ignored.
    code = "import os, signal; signal.signal(signal.SIGHUP, signal.SIG_DFL); os.kill(os.getpid(), signal.SIGHUP)"
    got = wrapped(tmp_path / "logs", [interp.path, "-c", code])
    assert got.returncode == -signal.SIGHUP and (got.stdout, got.stderr) == (b"", b"")


# -- the pytest plugin passes its options the same way, and names processes without a log

PLUGIN_SUITE = '''
import os, subprocess, sys

def test_subprocess_without_a_log():
    options = os.environ["MODLIFE_OPTIONS"] + ":log_path=/nonexistent/dir/m"
    subprocess.run([sys.executable, "-c", "print('sub ran')"], env=dict(os.environ, MODLIFE_OPTIONS=options),
                   check=True)
'''


def test_plugin_quotes_its_options_and_names_processes_without_a_log(tmp_path):
    (tmp_path / "test_suite.py").write_text(PLUGIN_SUITE)
    log_dir = tmp_path / 'col:on="q'
    tools = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "python")
    env = dict(os.environ, PYTHONPATH=tools)
    env.pop("MODLIFE_OPTIONS", None)
    proc = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-p", "modlife.pytest_plugin", "--modlife", "-p",
                           "no:cacheprovider", "-q", "-s", "--modlife-log-dir", str(log_dir), "test_suite.py"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "sub ran\n" in proc.stdout
    assert re.search(r"\nmodlife: 1 process had no log: pid \d+: cannot create the log file '/nonexistent/dir/"
                     r"m\.\d+\.jsonl': No such file or directory \(log_path must name a writable directory and "
                     r"file prefix\)\n\Z", proc.stdout), proc.stdout
    assert len(logs(log_dir)) == 1  # the session's own


# A job-control shell in miniature: runs argv[2:] as a foreground job on its terminal
# (stdin), waits for it to stop, continues it in the foreground, and writes to argv[1]
# what it saw.
MINI_SHELL = r"""
import os, signal, sys
for s in (signal.SIGTTOU, signal.SIGTSTP, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpid())
    for s in (signal.SIGTTOU, signal.SIGTSTP, signal.SIGINT):
        signal.signal(s, signal.SIG_DFL)
    os.execv(sys.argv[2], sys.argv[2:])
try:
    os.setpgid(pid, pid)
except OSError:
    pass
os.tcsetpgrp(0, pid)
seen = []
_, status = os.waitpid(pid, os.WUNTRACED)
if os.WIFSTOPPED(status):
    seen.append("stopped " + signal.Signals(os.WSTOPSIG(status)).name)
    os.tcsetpgrp(0, os.getpgrp())
    os.tcsetpgrp(0, pid)  # fg
    os.killpg(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, 0)
seen.append("status %d" % os.waitstatus_to_exitcode(status))
with open(sys.argv[1], "w") as f:
    f.write(", ".join(seen))
"""


def test_terminal_ctrl_z_stops_the_job_and_fg_continues_it(interp, tmp_path):
    """^Z stops the command (in its own group, which has the terminal); modlife run
    stops too, so that the shell sees the job stopped; fg continues both."""
    shell, seen = tmp_path / "shell.py", tmp_path / "seen"
    shell.write_text(MINI_SHELL)
    script = tmp_path / "catcher.py"
    script.write_text(CATCHER)
    out = tmp_path / "got"
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(["/usr/bin/python3", str(shell), str(seen), modlife_command(), "run", "--log-dir",
                                 str(tmp_path / "logs"), "--", interp.path, str(script), str(out), "SIGCONT"],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_controlling_terminal)
        ready = tmp_path / "got.ready"
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        os.write(master, b"\x1a")
        stdout, stderr = finish(proc, int(ready.read_text()))
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0 and (stdout, stderr) == (b"", b"")
    assert seen.read_text() == "stopped SIGTSTP, status %d" % (100 + signal.SIGCONT)
    assert out.read_text() == "SIGCONT"
