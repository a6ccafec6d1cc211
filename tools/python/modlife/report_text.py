"""Findings as text, in the library's fixed report format (instrument/report_text.c):
a headline, the access stack, the stacks that explain it, the rule, a SUMMARY
line.  A crash report also tells the story around the fault.  Every line is
escaped for the terminal (visible.terminal): names in it are the program's."""
import os

from modlife import kinds, model, visible

RULER = "=" * 65


def frame_line(i, f):
    text = "    #%d %s in %s" % (i, f.get("ip") or "?", f.get("fn") or "??")
    if f.get("file") and f.get("line"):
        text += " %s:%d" % (f["file"], f["line"])
    if f.get("object"):
        text += " (%s+0x%x)" % (os.path.basename(f["object"]), f.get("off") or 0)
    return text


# Of each run of frames in the interpreter (its eval loop, calls, imports), the
# first few are shown and the rest counted, as the library does
# (instrument/report_text.c); the log and the JSON report keep every frame.
INTERP_FRAMES_SHOWN = 2
INTERP_RUN_FOLDED = 4


def interpreter_object(process):
    """The path of the object that is the interpreter: libpython, or the executable
    when libpython is linked in statically."""
    start = getattr(process, "start", None) or {}
    if start.get("libpython") == "static":
        return (process.objects.get(0) or {}).get("path")
    return start.get("libpython")


def stack_lines(stack, interpreter=None):
    lines, i = [], 0
    while i < len(stack):
        run = 0
        while interpreter and i + run < len(stack) and stack[i + run].get("object") == interpreter:
            run += 1
        if run < INTERP_RUN_FOLDED:
            lines.append(frame_line(i, stack[i]))
            i += 1
            continue
        lines.extend(frame_line(i + k, stack[i + k]) for k in range(INTERP_FRAMES_SHOWN))
        lines.append("    ... %d frames in %s" % (run - INTERP_FRAMES_SHOWN, os.path.basename(interpreter)))
        i += run
    return lines


# Frames of the machinery that ran the code, not of the code: the import system and
# the test runner (the library leaves out the same ones, report_text.c).
RUNNER_FRAMES = ("<frozen importlib.", "/_pytest/", "/pluggy/")


def runner_frame(frame):
    file = frame.get("file") or ""
    return file.startswith(RUNNER_FRAMES[0]) or any(part in file for part in RUNNER_FRAMES[1:])


def python_lines(python_stack, all_frames=False):
    if not python_stack:
        return []
    shown = [p for p in python_stack if all_frames or not runner_frame(p)]
    lines = ["  Python stack (innermost first):"] + [
        "      %s:%s in %s" % (p.get("file", "?"), p.get("line", "?"), p.get("function", "?"))
        for p in shown]
    if len(shown) < len(python_stack):
        n = len(python_stack) - len(shown)
        lines.append("      ... %d frame%s of importlib/pytest/pluggy left out (report --all-python-frames)"
                     % (n, "" if n == 1 else "s"))
    return lines


def _caller(stack):
    """file:line of a symbolized frame, else its function and object."""
    f = stack[0] if isinstance(stack, list) and stack and isinstance(stack[0], dict) else {}
    if f.get("file") and f.get("line"):
        return "%s:%d" % (os.path.basename(f["file"]), f["line"])
    where = "%s+0x%x" % (os.path.basename(f.get("object") or "?"), f.get("off") or 0)
    return "%s (%s)" % (f["fn"], where) if f.get("fn") else where


def crash_story(record):
    """What the fatal-signal handler told about a crash, as the library prints it."""
    if not record.get("signal"):
        return []
    out = ["  Signal: %s%s" % (record["signal"], " at fault address %s" % record["fault_address"]
                                 if record.get("fault_address") else "")]
    out.append("  Interpreter: %s, %s" % (record.get("crash_interp", "?"),
                                           "finalizing" if record.get("finalizing") else "running"))
    slot = record.get("in_slot")
    if isinstance(slot, dict):
        out.append("  In: %s of %s" % (slot.get("slot", "?"), slot.get("owner") or "?"))
    null = record.get("null_lookup")
    if isinstance(null, dict):
        out.append("  %s returned NULL at %s: %s" % (null.get("api", "?"), _caller(null.get("stack")),
                                                    null.get("why", "?")))
    events = [e for e in record.get("recent_events") or [] if isinstance(e, dict)]
    module = next((e.get("module") for e in events if e.get("module")), None)
    alive = [a for a in record.get("alive") or [] if isinstance(a, str)]
    if module:
        out.append("  Still alive of module '%s':%s" % (module, "" if alive else " nothing"))
        out.extend("      " + a for a in alive)
    if events:
        out.append("  Last lifetime events%s (oldest first):" % (" of module " + module if module else ""))
        for e in events:
            out.append("      %9.6fs  %-14s %s #%s%s (interp %s)" % (
                (e.get("t") or 0) / 1e9, e.get("event", "?"), e.get("module", "?"), e.get("instance", "?"),
                " " + e["type"] if e.get("type") else "", e.get("interp", "?")))
    return out


def summary_line(group):
    r, g = group.record, group.guilty
    text = "SUMMARY: modlife: %s" % r["kind"]
    if g:
        if g.get("file") and g.get("line"):
            text += " %s:%d" % (g["file"], g["line"])
        if g.get("fn") or not g.get("object"):
            text += " in %s" % (g.get("fn") or "??")
        else:  # no symbol holds it: the object and offset still tell the place
            text += " in %s+0x%x" % (os.path.basename(g["object"]), g.get("off") or 0)
    if r.get("module"):
        text += " (module %s)" % r["module"]
    if r.get("type"):
        text += " (type %s)" % r["type"]
    return text


def render(group, all_python_frames=False):
    r = group.record
    headline = "==%s==%s: modlife: %s: %s" % (group.process.pid, "ERROR" if group.severity == "error" else "WARNING",
                                            r["kind"], r.get("message", ""))
    interpreter = interpreter_object(group.process)
    lines = [RULER, headline] + stack_lines(r["stack"], interpreter)
    lines += python_lines(r.get("python_stack"), all_python_frames)
    story = crash_story(r)
    if story:
        lines += [""] + story
    for c in r.get("context", []):
        lines += ["", "%s was %s here:" % (c.get("of", "it"), c.get("what", "?"))]
        lines += stack_lines(c["stack"], interpreter) + python_lines(c.get("python_stack"), all_python_frames)
    lines += ["", "Rule: %s" % kinds.rule(r["kind"])]
    known = kinds.BY_NAME.get(r["kind"])
    if r.get("fix"):  # this finding's own, when another finding is its cause
        lines.append("Fix: %s" % r["fix"])
    elif known:
        lines.append("Fix: %s" % known.fix)
    if group.count > 1 or len(group.pids) > 1:
        lines.append("Seen %d times in %d process%s (pid %s)" % (
            group.count, len(group.pids), "" if len(group.pids) == 1 else "es", ", ".join(map(str, group.pids))))
    lines += [summary_line(group), RULER]
    return "\n".join(visible.terminal(line) for line in lines) + "\n"


def summary_table(rows, processes):
    total = sum(r[2] for r in rows)
    errors = sum(r[2] for r in rows if r[1] == "error")
    lines = ["modlife: %d finding%s (%d error%s, %d warning%s) in %d process%s" % (
        total, "" if total == 1 else "s", errors, "" if errors == 1 else "s", total - errors,
        "" if total - errors == 1 else "s", len(processes), "" if len(processes) == 1 else "es")]
    if rows:
        width = max(len("kind"), max(len(r[0]) for r in rows))
        lines.append("  %-*s  %-8s %6s  %s" % (width, "kind", "severity", "count", "modules"))
        for kind, severity, count, modules in rows:
            lines.append("  %-*s  %-8s %6d  %s" % (width, kind, severity, count, ", ".join(modules)))
    suppressed = model.suppressed_line(model.suppression_counts(processes))
    if suppressed:
        lines.append("  " + suppressed)
    for p in processes:
        if p.crashed:
            lines.append("  note: %s %s" % (p.name, p.ending))
        elif p.incomplete is not None:
            lines.append("  note: %s: %s" % (p.name, p.ending))
    early = [p for p in processes if p.exited_early]
    if early:
        # Every multiprocessing fork child ends so: one line for them all.
        lines.append("  note: %d process%s ended by os._exit/_exit without finalizing (pid %s)" % (
            len(early), "" if len(early) == 1 else "es", ", ".join(str(p.pid) for p in early)))
    return "\n".join(visible.terminal(line) for line in lines) + "\n"
