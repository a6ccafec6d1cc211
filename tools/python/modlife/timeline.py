"""`modlife timeline LOG... -o FILE.html`: one self-contained HTML page (no network)
with a timeline per process and interpreter: a bar per module instance and heap
type from creation to death, module exec and clear marked on the bar, findings as
markers that open their report, stacks included.

The data goes into the page once, as JSON; the page's script draws it.  Rows past
MAX_ROWS per interpreter are left out of the drawing, and the page says so (`modlife
lifetimes` lists them all), so that a log of millions of records still gives a page
a browser opens.

Every name is the program's and may hold anything (see visible): the data goes in
through visible.script_json, the title through html.escape, and both placeholders
of the page are filled in one pass, so that nothing filled in is read again."""
import html
import os
import re

from modlife import findings, lifetimes, model, report_text, visible

MAX_ROWS = 2000
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timeline_page.html")
_PLACEHOLDER = re.compile("%(TITLE|DATA)%")


def _row(life, process):
    end = life.freed if life.freed is not None else process.end
    row = {"what": life.what, "name": life.label, "interp": life.interp, "start": life.created, "end": end,
           "alive": life.freed is None and life.what != "static type"}
    for key in ("executed", "cleared"):
        if getattr(life, key) is not None:
            row[key] = getattr(life, key)
    if life.module and life.what == "type":
        row["module"] = "%s #%s" % (life.module, life.instance)
    return row


def _finding_rows(process, groups_by_record):
    out = []
    for record in process.findings:
        group = groups_by_record.get(id(record))
        # Drawn where the access happened; "interp" is the owner's (older logs: crash_interp).
        where = record.get("access_interp", record.get("crash_interp", record.get("interp", 0)))
        out.append({"kind": record.get("kind"), "t": record.get("t", 0), "interp": where,
                    "module": record.get("module"), "instance": record.get("instance"),
                    "type": record.get("type"), "severity": group.severity if group else "error",
                    "message": record.get("message", ""),
                    "report": report_text.render(group) if group else ""})
    return out


def process_data(process, args):
    # Each finding gets its own report: group one process's findings one at a time.
    groups_by_record = {}
    for record in process.findings:
        view = model.Process(process.path, process.start, process.objects, findings=[record])
        group = findings.group([view])
        if group:
            groups_by_record[id(record)] = group[0]
    interps = []
    for interp in sorted(process.interps.values(), key=lambda i: i.id):
        if args.interp is not None and interp.id != args.interp:
            continue
        lives = [life for life in process.lives if life.interp == interp.id and lifetimes.selected(life, args)]
        interps.append({"id": interp.id, "main": interp.main, "created": interp.created,
                        "finalized": interp.finalized,
                        "rows": [_row(life, process) for life in lives[:MAX_ROWS]],
                        "left_out": max(0, len(lives) - MAX_ROWS)})
    found = [f for f in _finding_rows(process, groups_by_record)
             if args.interp is None or f["interp"] == args.interp]
    return {"name": process.name, "log": process.path, "end": process.end, "crashed": process.crashed,
            "ending": process.ending,
            "interps": interps, "findings": found}


def render(processes, args):
    data = {"processes": [process_data(p, args) for p in processes]}
    with open(PAGE, encoding="utf-8") as f:
        page = f.read()
    # A file name may hold bytes that are not UTF-8 (surrogates here): shown escaped.
    title = "modlife timeline: " + ", ".join(visible.terminal(os.path.basename(p.path)) for p in processes[:3])
    fill = {"TITLE": html.escape(title, quote=True), "DATA": visible.script_json(data)}
    return _PLACEHOLDER.sub(lambda m: fill[m.group(1)], page)


def main(args, out):
    processes = model.load_all(args.logs)
    text = render(processes, args)
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise model.logfile.LogError("cannot write %s: %s" % (args.output, e.strerror))
    out.write("modlife: timeline of %d process%s written to %s\n" % (
        len(processes), "" if len(processes) == 1 else "es", args.output))
    return 0
