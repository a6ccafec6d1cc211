"""Reading modlife logs: one JSON object per line, one file per process.

A process that crashed or was killed may leave a last line cut short: it is
dropped without complaint.  Anything else that is not a modlife record is an
error naming the file and line.

Logs of long runs hold millions of records, nearly all lifetime events whose
stacks a summary does not need.  The library writes every record's scalar
fields before "stack", so `iter_records(..., stacks=False)` parses only that
head of each line: several times faster, and the result is the same record
without its stacks."""
import json
import os
import sys
import time


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
    if not found:
        raise LogError("%s: no modlife logs (*.jsonl) there" % ", ".join(paths))
    return found


class Progress:
    """'reading LOG: 42%' on stderr, only when stderr is a terminal."""

    def __init__(self, path, total, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and total > (8 << 20)
        self.path, self.total, self.last = path, total, 0.0

    def update(self, done):
        if self.enabled and time.monotonic() - self.last > 0.25:
            self.last = time.monotonic()
            self.stream.write("\rmodlife: reading %s: %3d%%" % (self.path, 100 * done // self.total))
            self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


_STACK_KEY = b',"stack":['
_HEAVY_EVENTS = (b'"event":"finding"', b'"event":"object-load"', b'"event":"process-start"',
                 b'"event":"process-exit"')


def _parse(raw, stacks):
    if not stacks:
        cut = raw.find(_STACK_KEY)
        if cut > 0 and not any(h in raw[:cut] for h in _HEAVY_EVENTS):
            return json.loads(raw[:cut] + b"}")
    return json.loads(raw)


def iter_records(path, stacks=True, progress=True):
    """The records of one log, in order.  Raises LogError for a log that is not
    modlife's.  stacks=False leaves out the stacks of lifetime events."""
    size = os.path.getsize(path)
    meter = Progress(path, size) if progress else None
    number = 0
    done = 0
    with open(path, "rb") as f:
        for raw in f:
            number += 1
            done += len(raw)
            if not raw.endswith(b"\n"):
                break  # cut off by a crash: everything before it is whole
            try:
                record = _parse(raw, stacks)
            except ValueError as e:
                raise LogError("%s:%d: not a modlife log record (%s)" % (path, number, e)) from None
            if not isinstance(record, dict) or "event" not in record:
                raise LogError("%s:%d: not a modlife log record (no \"event\")" % (path, number))
            if number == 1 and record["event"] != "process-start":
                raise LogError("%s:1: not a modlife log (it must start with a process-start record)" % path)
            if meter and number % 4096 == 0:
                meter.update(done)
            yield record
    if meter:
        meter.close()


def read_records(path, stacks=True):
    return list(iter_records(path, stacks))


def objects_by_id(records):
    return {r["id"]: r for r in records if r["event"] == "object-load"}
