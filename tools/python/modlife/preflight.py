"""The library's options checked before a command starts: a mistyped MODLIFE_OPTIONS,
report_kinds or suppressions file would otherwise stop every Python process of the
command with a one-line error, deep inside a test run.

The check runs `python -I -S -c pass` under the library with the command's
environment, so the options are judged by the library's own parser
(instrument/options.c), kinds table and suppressions reader: a second parser in
Python could only drift from them.  It costs one short interpreter start."""
import os
import subprocess
import sys
import tempfile

from modlife import options

_MARK = "modlife: MODLIFE_OPTIONS: "


def problem(env):
    """None, or the library's complaint about the options in env, one line without
    the "modlife: " prefix.  env already loads the library (LD_PRELOAD or LD_AUDIT)."""
    with tempfile.TemporaryDirectory(prefix="modlife-check-") as scratch:
        env = dict(env)
        env["MODLIFE_OPTIONS"] = options.join(env.get("MODLIFE_OPTIONS"),
                                              [("log_path", os.path.join(scratch, "check"))])
        try:
            proc = subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None  # no verdict: the command's own processes will tell
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if proc.returncode != 0 and line.startswith(_MARK):
            return line[len("modlife: "):]
    return None
