"""One directory per run of `modlife run`: DIR/<UTC time>-<pid>/, so that separate
runs are never read as one.  The tools given DIR read its latest run."""
import os
import re
import sys
import time

from modlife import visible

DEFAULT_PARENT = "modlife-logs"
# 20261201T034512.123456Z-4242: names sort in the order the runs started.
_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-\d+\Z")


def create(parent):
    """A fresh directory for this run under parent (made if need be)."""
    os.makedirs(parent, exist_ok=True)
    while True:
        now = time.time()
        name = "%s.%06dZ-%d" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)),
                                int(now % 1 * 1e6), os.getpid())
        path = os.path.join(parent, name)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue  # the same microsecond, as the clock says it: the next one


def runs(parent):
    """The run directories under parent, oldest first."""
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    return sorted(n for n in names if _NAME.match(n) and os.path.isdir(os.path.join(parent, n)))


def latest(path, stream=None):
    """path, or its latest run when path is a directory of runs (no logs of its own);
    says which run it read."""
    if not os.path.isdir(path) or any(n.endswith(".jsonl") for n in os.listdir(path)):
        return path
    found = runs(path)
    if not found:
        return path
    chosen = os.path.join(path, found[-1])
    (stream or sys.stderr).write("modlife: reading the latest run, %s (%d run%s in %s)\n"
                                 % (visible.terminal(chosen), len(found), "" if len(found) == 1 else "s",
                                    visible.terminal(path)))
    return chosen
