"""`modlife run [options] -- CMD...`: run CMD with modlife in every Python process
it starts, one log per process in the log directory."""
import os
import resource
import signal
import subprocess
import sys

from modlife import locate, suppressions


def options_from_args(args, log_dir):
    opts = ["log_path=%s" % os.path.join(log_dir, "modlife")]
    if args.stack_depth is not None:
        opts.append("stack_depth=%d" % args.stack_depth)
    if args.no_python_stack:
        opts.append("python_stack=0")
    if args.halt_on_error:
        opts.append("halt_on_error=1")
    if args.exitcode is not None:
        opts.append("exitcode=%d" % args.exitcode)
    if args.suppressions:
        opts.append("suppressions=%s" % os.path.abspath(args.suppressions))
    if args.report_kinds:
        opts.append("report_kinds=%s" % args.report_kinds)
    return opts


def environment(args, log_dir):
    env = dict(os.environ)
    existing = env.get("MODLIFE_OPTIONS")
    # Ours come last: the library lets later keys win.
    env["MODLIFE_OPTIONS"] = ":".join(([existing] if existing else []) + options_from_args(args, log_dir))
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
        os.kill(os.getpid(), sig)
        return 128 + sig
    return returncode


def main(args, out):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.stderr.write("modlife run: no command given (usage: modlife run [options] -- CMD...)\n")
        return 2
    if args.suppressions:
        # The library would refuse it in the first Python process: say so before anything runs.
        try:
            suppressions.check(os.path.abspath(args.suppressions))
        except suppressions.BadFile as e:
            sys.stderr.write("modlife run: %s\n" % e)
            return 2
    log_dir = os.path.abspath(args.log_dir)
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as e:
        sys.stderr.write("modlife run: cannot create the log directory %s: %s\n" % (log_dir, e.strerror))
        return 2
    before = set(os.listdir(log_dir))
    env = environment(args, log_dir)
    try:
        proc = subprocess.Popen(command, env=env)
    except OSError as e:
        sys.stderr.write("modlife run: cannot run %s: %s\n" % (command[0], e.strerror))
        return 127 if isinstance(e, FileNotFoundError) else 126
    while True:
        try:
            returncode = proc.wait()
            break
        except KeyboardInterrupt:
            continue  # the child got the SIGINT too; its status is what counts
    if not args.quiet:
        try:
            logs = sorted(set(os.listdir(log_dir)) - before)
            sys.stderr.write("modlife: %d log%s in %s\n" % (len(logs), "" if len(logs) == 1 else "s", log_dir))
        except OSError as e:
            sys.stderr.write("modlife: the log directory %s is gone (%s)\n" % (log_dir, e.strerror))
    return exit_like(returncode)
