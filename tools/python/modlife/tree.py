"""The findings of one run of `modlife run`, over its whole process tree: the line it
ends with, and whether they change its exit status.  A process's own status says
only what that process found; a multiprocessing parent whose fork children found
bugs exits 0, and pytest keeps its subprocesses' reports to itself."""
import os
import shlex
from dataclasses import dataclass, field

from modlife import kinds, logfile, model, visible


@dataclass
class Tally:
    processes: int = 0
    with_findings: int = 0
    findings: int = 0
    errors: int = 0
    error_kinds: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)   # (log, why)
    suppressed: list = field(default_factory=list)   # (suppression, findings it matched)

    @property
    def warnings(self):
        return self.findings - self.errors


def tally(paths):
    """What the logs at paths (one per process) found."""
    t = Tally()
    processes = []
    for path in paths:
        try:
            if os.path.getsize(path) == 0:
                continue
            process = model.load(path, events=model.FINDINGS_ONLY)
        except (OSError, logfile.LogError) as e:
            t.unreadable.append((path, str(e)))
            continue
        t.processes += 1
        processes.append(process)
        if process.findings:
            t.with_findings += 1
        for r in process.findings:
            t.findings += 1
            if kinds.severity(r) == "error":
                t.errors += 1
                if r.get("kind") not in t.error_kinds:
                    t.error_kinds.append(r.get("kind"))
    t.suppressed = model.suppression_counts(processes)
    return t


def shown_dir(log_dir):
    """The log directory as the user would type it: relative when under the current one."""
    relative = os.path.relpath(log_dir)
    return relative if not relative.startswith(os.pardir + os.sep) and relative != os.pardir else log_dir


def summary_line(t, log_dir):
    """`modlife: N findings (K errors: kinds) in M of P processes - modlife report DIR`."""
    errors = "%d error%s" % (t.errors, "" if t.errors == 1 else "s")
    if t.error_kinds:
        errors += ": " + ", ".join(t.error_kinds)
    return "modlife: %d finding%s (%s) in %d of %d process%s - modlife report %s\n" % (
        t.findings, "" if t.findings == 1 else "s", errors, t.with_findings, t.processes,
        "" if t.processes == 1 else "es", visible.terminal(shlex.quote(shown_dir(log_dir))))


def suppressed_line(t):
    line = model.suppressed_line(t.suppressed)
    return "modlife: %s\n" % visible.terminal(line) if line else ""


def fails(t, on_warnings):
    """Do the findings turn a successful run into the exitcode option's status?"""
    return t.errors > 0 or (on_warnings and t.findings > 0)
