"""What a log says, as objects: one Process per log with its interpreters, the
lives of its module instances and heap types, and its findings.  Lifetime
records are read without their stacks (see logfile), findings whole."""
import os
from dataclasses import dataclass, field
from typing import Optional

from modlife import logfile


@dataclass
class Life:
    """One module instance or one heap (or static) type, from creation to death."""
    what: str                      # "module", "type" or "static type"
    name: str
    key: int                       # module instance number or type id
    interp: int
    created: int                   # ns since process start
    module: Optional[str] = None   # for types: the module it was made for
    instance: Optional[int] = None
    executed: Optional[int] = None
    cleared: Optional[int] = None
    freed: Optional[int] = None
    address: Optional[str] = None
    detail: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)  # indexes into Process.findings

    @property
    def label(self):
        if self.what == "module":
            return "%s #%d" % (self.name, self.key)
        return self.name

    def alive_at(self, t):
        return self.created <= t and (self.freed is None or self.freed > t)


@dataclass
class Interp:
    id: int
    main: bool
    created: int
    finalized: Optional[int] = None


@dataclass
class Process:
    path: str
    start: dict
    objects: dict = field(default_factory=dict)
    interps: dict = field(default_factory=dict)
    lives: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    suppressed: list = field(default_factory=list)  # finding-suppressed records
    exit: Optional[dict] = None
    incomplete: Optional[str] = None  # why the library could not write the rest of the log
    end: int = 0                   # time of the last record
    replaced_by: Optional["Process"] = None  # the program it exec'd, when that ended its log

    @property
    def pid(self):
        return self.start.get("pid")

    @property
    def name(self):
        argv = self.start.get("argv") or ["?"]
        command = " ".join([os.path.basename(argv[0])] + argv[1:])
        command = " ".join(command.split())  # one line, whatever -c scripts hold
        return "pid %s: %s" % (self.pid, command if len(command) <= 72 else command[:69] + "...")

    @property
    def crashed(self):
        return self.exit is None and self.replaced_by is None and self.incomplete is None

    @property
    def exited_early(self):
        """Ended by _exit (os._exit, every multiprocessing fork child): no finalization."""
        return self.exit is not None and self.exit.get("how") == "_exit"

    @property
    def ending(self):
        """How the log ends when not by a normal exit or exec, as a phrase; else None."""
        if self.incomplete is not None:
            return "the log is incomplete: %s" % self.incomplete
        if self.exited_early:
            return "ended by os._exit/_exit without finalizing"
        if self.crashed:
            return "ended without a process-exit record (it %s)" % self.crash_reason
        return None

    @property
    def crash_reason(self):
        # Under LD_AUDIT the library comes after libc, so _exit is not interposed.
        if self.start.get("entry") == "audit":
            return "crashed, was killed, or left by _exit, which --audit does not record"
        return "crashed or was killed"


class _Builder:
    def __init__(self, path):
        self.process = None
        self.path = path
        self.modules = {}   # (module name, instance) -> Life: instances count per name
        self.types = {}     # type id -> Life
        self.statics = {}   # (name, interp) -> Life

    def handlers(self):
        """event name -> bound method, looked up once (a log has millions of records)."""
        return {name[3:].replace("_", "-"): getattr(self, name) for name in dir(self) if name.startswith("on_")}

    def on_process_start(self, r):
        self.process = Process(self.path, r)

    def on_object_load(self, r):
        self.process.objects[r["id"]] = r

    def on_interp_create(self, r):
        self.process.interps.setdefault(r["interp"], Interp(r["interp"], bool(r.get("main")), r["t"]))

    def on_interp_finalize(self, r):
        self.on_interp_create(r)
        self.process.interps[r["interp"]].finalized = r["t"]

    def _module(self, r):
        life = self.modules.get((r.get("module"), r.get("instance")))
        if life is None:
            life = Life("module", r.get("module") or "?", r.get("instance", 0), r.get("interp", 0), r["t"],
                        address=r.get("address"))
            self.modules[(r.get("module"), r.get("instance"))] = life
            self.process.lives.append(life)
        for k in ("init", "def", "state", "state_lookups", "note"):
            if k in r:
                life.detail[k] = r[k]
        return life

    def on_module_create(self, r):
        self._module(r)

    def on_module_exec(self, r):
        life = self._module(r)
        life.executed = life.executed or r["t"]

    def on_module_clear(self, r):
        life = self._module(r)
        life.cleared = life.cleared or r["t"]

    def on_module_free(self, r):
        self._module(r).freed = r["t"]

    def _type(self, r):
        life = self.types.get(r.get("type_id"))
        if life is None:
            life = Life("type", r.get("type") or "?", r.get("type_id", 0), r.get("interp", 0), r["t"],
                        module=r.get("module"), instance=r.get("instance"), address=r.get("address"))
            self.types[life.key] = life
            self.process.lives.append(life)
        for k in ("bound", "gc"):
            if k in r:
                life.detail[k] = r[k]
        return life

    def on_type_create(self, r):
        self._type(r)

    def on_type_dealloc(self, r):
        self._type(r).freed = r["t"]

    def on_type_ready(self, r):
        key = (r.get("type"), r.get("interp"))
        if key not in self.statics:
            life = Life("static type", r.get("type") or "?", len(self.statics) + 1, r.get("interp", 0), r["t"],
                        address=r.get("address"))
            self.statics[key] = life
            self.process.lives.append(life)

    def on_finding(self, r):
        index = len(self.process.findings)
        self.process.findings.append(r)
        life = self.modules.get((r["module"], r.get("instance"))) if r.get("module") else None
        if life is not None:
            life.findings.append(index)
        for t in self.types.values():
            if r.get("type") and t.name == r["type"] and t.interp == r.get("interp"):
                t.findings.append(index)

    def on_finding_suppressed(self, r):
        self.process.suppressed.append(r)

    def on_process_exit(self, r):
        self.process.exit = r

    def on_log_incomplete(self, r):
        self.process.incomplete = r.get("reason") or "the library could not write the rest"


# What a report needs: no lifetime records, which are nearly all of a long log.
FINDINGS_ONLY = frozenset(("process-start", "object-load", "interp-create", "interp-finalize", "finding",
                           "finding-suppressed", "process-exit", "log-incomplete"))


def suppression_counts(processes):
    """(suppression, findings it matched) over processes, most first."""
    counts = {}
    for p in processes:
        for r in p.suppressed:
            rule = r.get("suppression") or "?"
            counts[rule] = counts.get(rule, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def suppressed_line(counts):
    """'N findings suppressed: 2 by kind:pattern, 1 by ...', or ''."""
    if not counts:
        return ""
    total = sum(n for _, n in counts)
    return "%d finding%s suppressed: %s" % (total, "" if total == 1 else "s",
                                           ", ".join("%d by %s" % (n, rule) for rule, n in counts))


def load(path, stacks=False, events=None):
    """The Process of one log; stacks=True keeps lifetime records' stacks (slow);
    events, a set of event names, reads only those records."""
    builder = _Builder(path)
    handlers = builder.handlers()
    last = 0
    for record in logfile.iter_records(path, stacks=stacks, events=events):
        handler = handlers.get(record["event"])
        if handler:
            handler(record)
        last = record.get("t", last)
    if builder.process is None:
        raise logfile.EmptyLog("%s: empty log (the process ended before its first record)" % path)
    builder.process.end = last
    for life in builder.process.lives:
        builder.process.interps.setdefault(life.interp, Interp(life.interp, life.interp == 0, life.created))
    return builder.process


def load_all(paths, events=None):
    """Processes of the logs named by paths (files or directories), empty logs skipped."""
    processes = []
    for path in logfile.find_logs(paths):
        try:
            processes.append(load(path, events=events))
        except logfile.EmptyLog:
            continue
    _link_execs(processes)
    return processes


def _link_execs(processes):
    """A log without process-exit whose pid went on in a later, not forked, log ended
    with exec (fork then exec is how subprocess starts programs), not with a crash."""
    by_pid = {}
    for p in processes:
        by_pid.setdefault(p.pid, []).append(p)
    for same in by_pid.values():
        same.sort(key=lambda p: p.start.get("wall_ns") or 0)
        for before, after in zip(same, same[1:]):
            if before.exit is None and not after.start.get("forked"):
                before.replaced_by = after
