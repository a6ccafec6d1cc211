"""`modlife report LOG...`: the findings of a run (log files, or the log directory
of a whole process tree), grouped and de-duplicated, with symbolized stacks; then
a summary table.  --format json gives one JSON document, --format sarif SARIF
2.1.0 for GitHub code scanning.  --fail-on=errors|all|KINDS makes the status 1
when a finding of those kinds is in the report (for CI)."""
import json
import os
import sys

from modlife import findings, kinds, model, report_text, sarif, visible


def _frame_json(f):
    out = {k: f.get(k) for k in ("fn", "file", "line", "object") if f.get(k) is not None}
    if f.get("off") is not None:
        out["offset"] = "0x%x" % f["off"]
    return out


def _group_json(g):
    r = dict(g.record)
    r.pop("event", None)
    r["stack"] = [_frame_json(f) for f in r["stack"]]
    r["context"] = [dict(c, stack=[_frame_json(f) for f in c["stack"]]) for c in r.get("context", [])]
    r["severity"] = g.severity
    r["count"] = g.count
    r["pids"] = g.pids
    r["location"] = _frame_json(g.guilty)
    r["summary"] = report_text.summary_line(g)
    return r


def json_document(groups, processes):
    return {
        "modlife_report": 1,
        "processes": [{"pid": p.pid, "ppid": p.start.get("ppid"), "argv": p.start.get("argv"),
                       "python": p.start.get("python"), "log": p.path, "crashed": p.crashed,
                       "ending": p.ending,
                       "findings": len(p.findings)} for p in processes],
        "findings": [_group_json(g) for g in groups],
        "summary": [{"kind": k, "severity": s, "count": c, "modules": m}
                    for k, s, c, m in findings.summary(groups)],
        "suppressed": [{"suppression": rule, "count": n} for rule, n in model.suppression_counts(processes)],
    }


def main(args, out):
    try:
        only = kinds.names(args.kind, "--kind") if args.kind else None
        fail_on = kinds.select(args.fail_on, "--fail-on") if args.fail_on else set()
    except kinds.UnknownKind as e:
        sys.stderr.write("modlife report: %s\n" % visible.terminal(str(e)))
        return 2
    processes = model.load_all(args.logs, events=model.FINDINGS_ONLY)
    groups = findings.group(processes)
    if only:
        groups = [g for g in groups if g.kind in only]
    if args.format == "json":
        json.dump(json_document(groups, processes), out, indent=1)
        out.write("\n")
    elif args.format == "sarif":
        doc = sarif.document(groups, processes, os.path.abspath(args.source_root), args.version)
        json.dump(doc, out, indent=1)
        out.write("\n")
    else:
        for g in groups:
            out.write(report_text.render(g, args.all_python_frames))
        out.write(report_text.summary_table(findings.summary(groups), processes))
    # "errors" is a severity: a finding's own can be less than its kind's (tp-free-override).
    failing = [g for g in groups if g.kind in fail_on and (args.fail_on != "errors" or g.severity == "error")]
    return 1 if failing else 0
