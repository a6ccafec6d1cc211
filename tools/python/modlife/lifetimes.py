"""`modlife lifetimes LOG...`: every module instance and heap type of each process,
with its interpreter and when it was created, executed, cleared and freed (seconds
since the process started), and what was still alive at exit."""
import fnmatch

from modlife import model, visible


def _seconds(t):
    return "-" if t is None else "%.6f" % (t / 1e9)


def selected(life, args):
    if args.interp is not None and life.interp != args.interp:
        return False
    if args.module:
        names = [life.name, life.module or "", life.name.split(".")[0]]
        return any(fnmatch.fnmatchcase(n, pattern) for pattern in args.module for n in names)
    return True


def _notes(life, process):
    notes = []
    if life.what == "type" and life.module:
        notes.append("of %s #%s" % (life.module, life.instance))
    elif life.what == "type":
        notes.append("no module")
    if life.detail.get("init"):
        notes.append(life.detail["init"])
    if life.detail.get("state_lookups"):
        notes.append("%s state lookups" % life.detail["state_lookups"])
    if life.findings:
        notes.append("%d finding%s" % (len(life.findings), "" if len(life.findings) == 1 else "s"))
    if life.freed is None and life.what != "static type":
        notes.append("alive when it exec'd" if process.replaced_by else
                     "alive at _exit" if process.exited_early else
                     "ALIVE at exit" if not process.ending else "alive when the log ends")
    return ", ".join(notes)


def print_process(process, lives, out):
    out.write("== %s (%s)\n" % (visible.terminal(process.name), visible.terminal(process.path)))
    for i in sorted(process.interps.values(), key=lambda i: i.id):
        out.write("  interpreter %d%s: created %ss, %s\n" % (
            i.id, " (main)" if i.main else "", _seconds(i.created),
            "not finalized" if i.finalized is None else "finalized %ss" % _seconds(i.finalized)))
    if not lives:
        out.write("  (no module instances or heap types%s)\n" % (" match" if process.lives else ""))
        return
    labels = [visible.terminal(life.label) for life in lives]
    width = max(len("name"), max(len(label) for label in labels))
    out.write("  %-11s %-*s %6s %11s %11s %11s %11s  %s\n" % (
        "what", width, "name", "interp", "created", "executed", "cleared", "freed", "notes"))
    for life, label in zip(lives, labels):
        out.write("  %-11s %-*s %6d %11s %11s %11s %11s  %s\n" % (
            life.what, width, label, life.interp, _seconds(life.created), _seconds(life.executed),
            _seconds(life.cleared), _seconds(life.freed), visible.terminal(_notes(life, process))))
    alive = [life for life in lives if life.freed is None and life.what != "static type"]
    out.write("  %s: %d module instance(s), %d heap type(s)\n" % (
        "alive when it exec'd %s" % visible.terminal(process.replaced_by.name) if process.replaced_by else
        "alive at exit" if not process.ending else
        "alive when it %s" % process.ending if process.exited_early else
        "alive when the log ends (%s)" % (visible.terminal(process.ending) if process.incomplete is not None else
                                          "the process " + process.crash_reason),
        sum(1 for life in alive if life.what == "module"), sum(1 for life in alive if life.what == "type")))


def main(args, out):
    for process in model.load_all(args.logs):
        lives = [life for life in process.lives if selected(life, args)]
        if args.alive:
            lives = [life for life in lives if life.freed is None and life.what != "static type"]
        print_process(process, lives, out)
    return 0
