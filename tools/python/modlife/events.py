"""`modlife events LOG...`: the lifetime records of each process, one line each."""
import os

from modlife import logfile, symbolize, visible

LIFETIME = {
    "interp-create", "interp-finalize", "module-create", "module-exec", "module-clear",
    "module-free", "type-create", "type-dealloc", "type-ready", "finding",
}


def top_frame(record, objects):
    for frame in record.get("stack", []):
        obj = objects.get(frame.get("obj"), {})
        where = os.path.basename(obj.get("path", "?"))
        # Lifetime records' frames come unnamed: named here, as the run would have.
        fn = frame.get("fn") or ("off" in frame and symbolize.function_name(obj, int(frame["off"], 16)))
        if fn:
            return "%s (%s)" % (fn, where)
        return "%s+%s" % (where, frame.get("off", frame.get("ip")))
    return ""


def describe(record):
    e = record["event"]
    if e.startswith("interp-"):
        return "interp %s%s" % (record["interp"], " (main)" if record.get("main") else "")
    if e.startswith("module-"):
        text = "%s #%s interp %s" % (record.get("module"), record.get("instance"), record.get("interp"))
        if e in ("module-clear", "module-free"):
            text += ", %s state lookups" % record.get("state_lookups", 0)
        if record.get("note"):
            text += " [%s]" % record["note"]
        return text
    if e.startswith("type-"):
        owner = " of %s #%s" % (record["module"], record.get("instance")) if record.get("module") else ""
        return "%s%s interp %s" % (record.get("type"), owner, record.get("interp"))
    if e == "finding-suppressed":
        return "%s, suppressed by %s" % (record.get("kind"), record.get("suppression"))
    return record.get("kind", "")


def header(path, start):
    return "== %s: pid %s, Python %s (%s), %s%s" % (
        path, start.get("pid"), start.get("python"), start.get("libpython"), start.get("entry"),
        ", forked from %s" % start.get("ppid") if start.get("forked") else "")


def print_log(path, records, out):
    objects = logfile.objects_by_id(records)
    out.write(visible.terminal(header(path, records[0])) + "\n")
    for r in records:
        if r["event"] not in LIFETIME:
            continue
        line = "  %9.6fs  %-16s %s" % (r["t"] / 1e9, r["event"], describe(r))
        frame = top_frame(r, objects)
        if frame:
            line += "  at " + frame
        out.write(visible.terminal(line) + "\n")
    end = [r for r in records if r["event"] == "process-exit"]
    incomplete = [r for r in records if r["event"] == "log-incomplete"]
    if incomplete:
        out.write("  (the log is incomplete: %s)\n" % visible.terminal(
            incomplete[-1].get("reason") or "the library could not write the rest"))
    elif end and end[-1].get("how") == "_exit":
        out.write("  (ended by os._exit/_exit without finalizing, status %s)\n" % end[-1].get("status", "?"))
    elif end:
        out.write("  alive at exit: %s module instance(s), %s heap type(s)\n"
                  % (end[-1].get("alive_module_count", "?"), end[-1].get("alive_type_count", "?")))
    else:
        out.write("  (no process-exit record: the process ended abruptly)\n")


def main(args, out):
    for path in logfile.find_logs(args.logs):
        records = logfile.read_records(path)
        if records:
            print_log(path, records, out)
    return 0
