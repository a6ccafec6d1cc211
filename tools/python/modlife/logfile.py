"""Reading modlife logs: one JSON object per line, one file per process.

What is a modlife log, for every tool alike (events, report, lifetimes,
timeline, report --format sarif):
  - a regular file of lines, each one JSON object, the first a process-start
    record;
  - an empty file, or one holding only the start of its process-start record, is
    the log of a process that ended before its first whole record: it is skipped;
  - the last line may lack its newline (a process that crashed or was killed
    while writing it), and the log of a killed process may end in zero bytes (the
    file grows ahead of its records while it is mapped): that last line is dropped
    if it is the start of a record ('{"event":"...', zeros after it), and only
    once a whole record came before it for the zeros;
  - anything else (other bytes, a line that is not JSON or nested too deeply,
    a record of the wrong shape) is an error "FILE:LINE: ..." on one line, and the
    tool exits with status 2.
A tool that does not need a kind of record (report skips lifetime records) skips
a line that begins '{"event":"NAME"' for such a NAME unparsed: that is what makes
long logs fast; its head is all that is checked.

Logs of long runs hold millions of records, nearly all lifetime events whose
stacks a summary does not need.  The library writes every record's scalar
fields before "stack", so `iter_records(..., stacks=False)` parses only that
head of each line: several times faster, and the result is the same record
without its stacks.

Lifetime records name their stacks: each distinct stack is written once, in a
"stack" record ({"id", "stack", "python_stack"}) before the first record that says
"stack_id": id.  The reader puts the stacks back in place of the id and does not
hand out the "stack" records themselves.  A log that starts with a process-start
marked "continued" was cut under its process (rotation): there a stack id may name a
record that went with the cut, and the record is handed out without its stacks."""
import json
import os
import sys
import time

from modlife import _contracts, rundir


# The highest log format the tools read (instrument/events.def).
LOG_FORMAT = _contracts.LOG_FORMAT


class LogError(Exception):
    pass


class EmptyLog(LogError):
    """A log without a whole record: skipped by the tools that read several."""


def find_logs(paths):
    """Log files named by paths: files as given, directories for their *.jsonl, a
    directory of runs (modlife run's default) for its latest run's."""
    found = []
    paths = [rundir.latest(p) for p in paths]
    for p in paths:
        if os.path.isdir(p):
            found.extend(sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith(".jsonl")))
        elif os.path.isfile(p):
            found.append(p)
        elif os.path.exists(p):
            raise LogError("%s: not a modlife log (not a regular file)" % p)
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
_EVENT_AT = len(b'{"event":"')
# Records always parsed whole: they are few, and their stacks are what they are for.
_WHOLE = frozenset(("finding", "object-load", "process-start", "process-exit", "log-incomplete"))
_decode = json.JSONDecoder().decode


# The type of every field the tools read: a record that breaks this is a corrupt log,
# reported with its file and line, never a traceback from deep in a tool.
_INT, _STR, _BOOL, _LIST, _HEX = "an integer", "a string", "true or false", "a list", "a hex string"
_FIELDS = {
    "t": _INT, "tid": _INT, "pid": _INT, "ppid": _INT, "interp": _INT, "instance": _INT, "type_id": _INT,
    "id": _INT, "state_lookups": _INT, "line": _INT, "alive_module_count": _INT, "alive_type_count": _INT,
    "patched": _INT, "obj": _INT, "stack_id": _INT, "log_format": _INT,
    "event": _STR, "module": _STR, "type": _STR, "kind": _STR, "severity": _STR, "message": _STR,
    "path": _STR, "fn": _STR, "file": _STR, "function": _STR, "build_id": _STR, "what": _STR, "of": _STR,
    "init": _STR, "phase": _STR, "suppression": _STR, "note": _STR, "python": _STR, "libpython": _STR, "entry": _STR,
    "ip": _HEX, "off": _HEX, "address": _HEX, "base": _HEX, "def": _HEX, "state": _HEX,
    "main": _BOOL, "bound": _BOOL, "gc": _BOOL, "forked": _BOOL,
    "argv": _LIST, "stack": _LIST, "python_stack": _LIST, "context": _LIST, "recent_events": _LIST,
    "alive": _LIST, "finalizing": _BOOL, "crash_interp": _INT, "signal": _STR, "fault_address": _HEX,
    "access_interp": _INT, "fix": _STR,
    "how": _STR, "status": _INT, "reason": _STR,
}
_NESTED = ("stack", "python_stack", "context", "recent_events")
_REQUIRED = {"object-load": ("id", "path"), "stack": ("id",), "interp-create": ("interp",),
             "interp-finalize": ("interp",), "finding": ("kind",)}


def _type_ok(kind, v):
    if v is None:
        return kind is _STR
    if kind is _INT:
        return type(v) is int
    if kind is _STR:
        return isinstance(v, str)
    if kind is _HEX:
        if not isinstance(v, str):
            return False
        try:
            int(v, 16)
            return True
        except ValueError:
            return False
    if kind is _BOOL:
        return isinstance(v, bool)
    return isinstance(v, list)


def _drop_nulls(record):
    """A null string is written for a name the library did not have: the same as none."""
    if None in record.values():
        for key in [k for k, v in record.items() if v is None]:
            del record[key]


def _bad_field(record, deep):
    """The first field of a record (or of its frames, when deep) with the wrong type;
    null strings are dropped on the way."""
    _drop_nulls(record)
    for key, value in record.items():
        kind = _FIELDS.get(key)
        if kind is not None and not _type_ok(kind, value):
            return "field \"%s\" must be %s" % (key, kind)
        if key == "argv" and not all(isinstance(a, str) for a in value):
            return "\"argv\" must hold strings"
        if deep and key in _NESTED and value:
            for item in value:
                if not isinstance(item, dict):
                    return "\"%s\" must hold objects" % key
                bad = _bad_field(item, True)
                if bad:
                    return "in \"%s\": %s" % (key, bad)
    return None


def _check(path, number, record):
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        raise LogError("%s:%d: not a modlife log record (no \"event\")" % (path, number))
    if number == 1 and record["event"] != "process-start":
        raise LogError("%s:1: not a modlife log (it must start with a process-start record)" % path)
    bad = _bad_field(record, record["event"] in _WHOLE)
    if bad is None and record.get("log_format", 0) > LOG_FORMAT:
        raise LogError("%s:%d: written by a newer modlife (log format %d; this one reads formats 1 to %d)"
                       % (path, number, record["log_format"], LOG_FORMAT))
    for key in ("t",) + _REQUIRED.get(record["event"], ()):
        if bad is None and record.get(key) is None:
            bad = "no \"%s\"" % key
    if bad:
        raise LogError("%s:%d: corrupt %s record: %s" % (path, number, str(record["event"])[:40], bad))


class _Stacks:
    """The "stack" records of one log, by id."""

    def __init__(self, path):
        self.path, self.by_id = path, {}
        # A log cut under its process (rotation) goes on from a process-start marked
        # "continued": records on their way at the cut may name stacks written before it.
        self.continued = False

    def define(self, number, text):
        record = _decode_batch(self.path, [(number, text)])[0]
        self.by_id[record["id"]] = {k: record[k] for k in ("stack", "python_stack") if k in record}

    def resolve(self, number, record):
        stacks = self.by_id.get(record.pop("stack_id"))
        if stacks is None and self.continued:
            return
        if stacks is None:
            raise LogError("%s:%d: corrupt %s record: its \"stack_id\" names no earlier stack record"
                           % (self.path, number, record["event"]))
        record.update(stacks)


def _decode_line(path, number, text):
    try:
        return _decode(text)
    except ValueError as e:
        raise LogError("%s:%d: not a modlife log record (%s)" % (path, number, e)) from None
    except RecursionError:
        raise LogError("%s:%d: not a modlife log record (nested too deeply)" % (path, number)) from None


def parse_line(path, number, text):
    """One record from its line, checked; LogError naming the line otherwise (also
    for JSON nested deeper than the decoder can follow)."""
    record = _decode_line(path, number, text)
    _check_shallow(path, number, record)
    return record


def _check_shallow(path, number, record):
    try:
        _check(path, number, record)
    except RecursionError:
        raise LogError("%s:%d: not a modlife log record (nested too deeply)" % (path, number)) from None


def _decode_batch(path, batch):
    """Records of (line number, text) pairs: one decoder call for the lot, which is
    what makes long logs fast; line by line only to name a bad line."""
    try:
        records = _decode("[" + ",".join(text for _, text in batch) + "]")
    except (ValueError, RecursionError):
        records = None
    if records is None or len(records) != len(batch):
        records = [_decode_line(path, number, text) for number, text in batch]
    for (number, _), record in zip(batch, records):
        _check_shallow(path, number, record)
    return records


_RECORD_HEAD = b'{"event":"'
_FIRST_HEAD = b'{"event":"process-start"'


def _check_cut_line(path, number, raw):
    """A last line without its newline: dropped if it is the start of a record
    (zeros after it once a whole record came before), an error otherwise."""
    text = raw.rstrip(b"\0")
    head = _FIRST_HEAD if number == 1 else _RECORD_HEAD
    if b"\0" not in text and text[:len(head)] == head[:len(text)] and (number > 1 or text == raw):
        return
    if number == 1:
        raise LogError("%s:1: not a modlife log (it must start with a process-start record)" % path)
    raise LogError("%s:%d: not a modlife log record (a last line without its newline must be the start "
                   "of one)" % (path, number))


def iter_records(path, stacks=True, events=None, progress=True):
    """The records of one log, in order.  Raises LogError for a log that is not
    modlife's.  stacks=False leaves out the stacks of lifetime events; events, a
    set of names, keeps only those records (the others are not even parsed)."""
    meter = Progress(path, os.path.getsize(path)) if progress else None
    number = done = 0
    batch = []
    table = _Stacks(path)
    # Bytes that are not UTF-8 (an older library wrote a module's C string name as
    # it was) read as U+FFFD, as the library now writes them.
    with open(path, "rb", buffering=1 << 20) as f:
        for raw in f:
            number += 1
            if not raw.endswith(b"\n"):
                _check_cut_line(path, number, raw)
                break  # cut off by a crash: everything before it is whole
            # Inline, not calls: this loop runs once per record of logs of millions.
            end = raw.find(b'"', _EVENT_AT, 64) if raw.startswith(b'{"event":"') else -1
            event = raw[_EVENT_AT:end].decode("ascii", "replace") if end > 0 else None
            if event == "stack":
                if stacks:
                    table.define(number, raw.decode("utf-8", "replace"))
                continue
            if events is not None and event is not None and event not in events and number > 1:
                continue
            cut = raw.find(_STACK_KEY, 0, 2048) if not stacks and event not in _WHOLE else -1
            if cut > 0:
                batch.append((number, raw[:cut].decode("utf-8", "replace") + "}"))
            else:
                batch.append((number, raw.decode("utf-8", "replace")))
            if len(batch) >= 2048:
                done = f.tell()
                yield from _with_stacks(path, batch, table, stacks)
                batch = []
                if meter:
                    meter.update(done)
    if batch:
        yield from _with_stacks(path, batch, table, stacks)
    if meter:
        meter.close()


def _with_stacks(path, batch, table, stacks):
    records = _decode_batch(path, batch)
    for (number, _), record in zip(batch, records):
        if number == 1 and record.get("continued") is True:
            table.continued = True
        if "stack_id" in record:
            if stacks:
                table.resolve(number, record)
            else:
                del record["stack_id"]
    return records


def read_records(path, stacks=True):
    return list(iter_records(path, stacks=stacks))


def objects_by_id(records):
    return {r["id"]: r for r in records if r["event"] == "object-load"}
