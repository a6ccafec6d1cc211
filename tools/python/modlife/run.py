"""`modlife run [options] -- CMD...`: run CMD with modlife in every Python process
it starts, one log per process in the log directory: a new one for each run,
modlife-logs/<time>-<pid>/, unless --log-dir names one.

CMD runs in a process group of its own, which gets the terminal while modlife run
has it: a Ctrl-C or Ctrl-Z at the terminal reaches CMD's processes once, as without
modlife run.  Signals sent to modlife run itself (TERM, HUP, INT, QUIT, USR1, USR2,
ALRM, WINCH, CONT, TSTP, TTIN, TTOU), to it alone or to its process group, are
passed on to CMD's group; when CMD stops, modlife run stops too, and it leaves with
CMD's status (dying of the same signal).

The processes of CMD's tree are one run: when any of them reported findings,
modlife run ends with one line counting them, and when any reported an error
(warnings only if exit_on_warnings=1 asks) while CMD succeeded, it leaves with the
exitcode option's status (default 23).  Otherwise it prints nothing unless a
process had no log, or --verbose asks."""
import os
import resource
import signal
import subprocess
import sys

from modlife import locate, nolog, options, preflight, rundir, suppressions, tree, visible

FORWARDED = frozenset({
    signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGALRM, signal.SIGWINCH, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
_JOB_STOPS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def options_from_args(args, log_dir):
    opts = [("log_path", os.path.join(log_dir, "modlife"))]
    if args.stack_depth is not None:
        opts.append(("stack_depth", args.stack_depth))
    if args.no_python_stack:
        opts.append(("python_stack", 0))
    if args.halt_on_error:
        opts.append(("halt_on_error", 1))
    if args.exitcode is not None:
        opts.append(("exitcode", args.exitcode))
    if args.suppressions:
        opts.append(("suppressions", os.path.abspath(args.suppressions)))
    if args.report_kinds:
        opts.append(("report_kinds", args.report_kinds))
    return opts


def environment(args, log_dir, notify=None):
    env = dict(os.environ)
    pairs = options_from_args(args, log_dir) + ([("notify", notify)] if notify else [])
    env["MODLIFE_OPTIONS"] = options.join(env.get("MODLIFE_OPTIONS"), pairs)
    if args.audit:
        env["LD_AUDIT"] = ":".join(filter(None, [locate.audit_library(), env.get("LD_AUDIT")]))
        env = locate.preload_environment(env, None)  # a sanitizer runtime, if the library needs one
    else:
        env = locate.preload_environment(env, locate.preload_library())
    return env


def exit_like(returncode):
    """Leave with the child's status; a signal death is repeated on ourselves, so that
    the shell sees the same status.  The child dumped core if it was to: we do not."""
    if returncode < 0:
        sig = -returncode
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL and SIGSTOP cannot be caught anyway
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return returncode


class Terminal:
    """The controlling terminal, if any: the command's group has it while we would."""

    def __init__(self):
        try:
            self.fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            self.fd = None

    def ours(self):
        try:
            return self.fd is not None and os.tcgetpgrp(self.fd) == os.getpgrp()
        except OSError:
            return False

    def give(self, pgrp):
        """SIGTTOU is blocked here: a background group may set the foreground."""
        try:
            os.tcsetpgrp(self.fd, pgrp)
        except OSError:
            pass

    def take_back(self, child):
        try:
            if self.fd is not None and os.tcgetpgrp(self.fd) == child:
                os.tcsetpgrp(self.fd, os.getpgrp())
        except OSError:
            pass


def spawn(command, env, terminal, mask):
    handing = terminal.ours()

    def in_child():
        # As shells do, in both processes: whichever runs first.
        os.setpgid(0, 0)
        if handing:
            terminal.give(os.getpid())
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    proc = subprocess.Popen(command, env=env, preexec_fn=in_child)
    try:
        os.setpgid(proc.pid, proc.pid)
    except OSError:
        pass  # it has run exec already
    if handing:
        terminal.give(proc.pid)
    return proc


def _forward(child, sig):
    try:
        os.killpg(child, sig)
    except ProcessLookupError:
        try:  # the command left its group
            os.kill(child, sig)
        except ProcessLookupError:
            pass


def _stop_like(child, sig, terminal):
    """The command stopped: so do we, for the shell to see the job stopped."""
    terminal.take_back(child)
    if sig not in _JOB_STOPS:
        sig = signal.SIGSTOP
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    signal.pthread_sigmask(signal.SIG_BLOCK, {sig})


def supervise(child, terminal):
    """Until the command ends: its status, as Popen.returncode says it."""
    waited = FORWARDED | {signal.SIGCHLD}
    while True:
        info = signal.sigwaitinfo(waited)
        sig = info.si_signo
        if sig == signal.SIGCHLD:
            while True:
                pid, status = os.waitpid(child, os.WNOHANG | os.WUNTRACED)
                if pid == 0:
                    break
                if os.WIFSTOPPED(status):
                    _stop_like(child, os.WSTOPSIG(status), terminal)
                    continue
                return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            continue
        if info.si_pid == child and info.si_code <= 0:
            continue  # the command signalled its parent: nothing of it goes back
        if sig == signal.SIGCONT and terminal.ours():
            terminal.give(child)
        _forward(child, sig)


def _new_logs(log_dir, before):
    """The logs this run wrote, or None when the directory went away."""
    try:
        names = sorted(set(os.listdir(log_dir)) - before)
    except OSError:
        return None
    return [os.path.join(log_dir, n) for n in names if n.endswith(".jsonl")]


def _exitcode(args, env):
    if args.exitcode is not None:
        return args.exitcode
    default = options.BY_NAME["exitcode"].default
    try:
        return int(options.value(env.get("MODLIFE_OPTIONS"), "exitcode", str(default)))
    except ValueError:
        return default


def _on_warnings(env):
    return options.value(env.get("MODLIFE_OPTIONS"), "exit_on_warnings", "0") in ("1", "true", "yes")


def _end_of_run(args, log_dir, logs):
    """The run's findings: the line to print, and whether they fail a successful command."""
    if logs is None:  # each process said so already
        return ("modlife: the log directory %s is gone\n" % log_dir if args.verbose else ""), None
    t = tree.tally(logs)
    lines = "".join("modlife: cannot read %s\n" % why for _, why in t.unreadable)
    if t.findings and not args.quiet:
        lines += tree.summary_line(t, log_dir)
    elif args.verbose:
        lines += "modlife: %d log%s in %s\n" % (len(logs), "" if len(logs) == 1 else "s", log_dir)
    if not args.quiet:
        lines += tree.suppressed_line(t)
    return lines, t


def main(args, out):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.stderr.write("modlife run: no command given (usage: modlife run [options] -- CMD...)\n")
        return 2
    if args.suppressions and suppressions.refused(args.suppressions, "run"):
        return 2
    try:
        if args.log_dir is None:
            log_dir = os.path.abspath(rundir.create(rundir.DEFAULT_PARENT))
        else:
            log_dir = os.path.abspath(args.log_dir)
            os.makedirs(log_dir, exist_ok=True)
    except OSError as e:
        sys.stderr.write("modlife run: cannot create the log directory %s: %s\n"
                         % (visible.terminal(os.path.abspath(args.log_dir or rundir.DEFAULT_PARENT)), e.strerror))
        return 2
    before = set(os.listdir(log_dir))
    listener = nolog.Listener()
    try:
        env = environment(args, log_dir, listener.name)
    except options.Unquotable as e:
        sys.stderr.write("modlife run: %s\n" % e)
        return 2
    bad = preflight.problem(env)
    if bad:
        if args.log_dir is None:
            os.rmdir(log_dir)  # made for this run, which does not happen
        sys.stderr.write("modlife run: %s\nmodlife run: %s was not started\n" % (bad, visible.terminal(command[0])))
        return 2
    terminal = Terminal()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED | {signal.SIGCHLD})
    try:
        proc = spawn(command, env, terminal, mask)
    except OSError as e:
        sys.stderr.write("modlife run: cannot run %s: %s\n" % (command[0], e.strerror))
        return 127 if isinstance(e, FileNotFoundError) else 126
    listener.start()  # after the fork: the child is started from one thread
    returncode = supervise(proc.pid, terminal)
    proc.returncode = returncode
    terminal.take_back(proc.pid)
    lines, found = _end_of_run(args, log_dir, _new_logs(log_dir, before))
    sys.stderr.write(lines)
    sys.stderr.write(nolog.summary(listener.stop()))
    sys.stderr.flush()
    if returncode == 0 and found is not None and tree.fails(found, _on_warnings(env)):
        return _exitcode(args, env)
    return exit_like(returncode)
