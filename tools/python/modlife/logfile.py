"""Reading modlife logs: one JSON object per line, one file per process.

A process that crashed or was killed may leave a last line cut short: it is
dropped without complaint.  Anything else that is not a modlife record is an
error naming the file and line."""
import json
import os


class LogError(Exception):
    pass


def find_logs(paths):
    """Log files named by paths: files as given, directories for their *.jsonl."""
    found = []
    for p in paths:
        if os.path.isdir(p):
            found.extend(sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith(".jsonl")))
        elif os.path.exists(p):
            found.append(p)
        else:
            raise LogError("%s: no such file or directory" % p)
    return found


def read_records(path):
    """The records of one log, in order.  Raises LogError for a log that is not modlife's."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is a cut-off record, or empty
    records = []
    for number, raw in enumerate(complete, 1):
        try:
            record = json.loads(raw)
        except ValueError as e:
            raise LogError("%s:%d: not a modlife log record (%s)" % (path, number, e)) from None
        if not isinstance(record, dict) or "event" not in record:
            raise LogError("%s:%d: not a modlife log record (no \"event\")" % (path, number))
        if number == 1 and record["event"] != "process-start":
            raise LogError("%s:1: not a modlife log (it must start with a process-start record)" % path)
        records.append(record)
    return records


def objects_by_id(records):
    return {r["id"]: r for r in records if r["event"] == "object-load"}
