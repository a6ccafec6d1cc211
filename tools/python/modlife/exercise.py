"""`modlife exercise [--python PY] MODULE_OR_PACKAGE...`: put extension modules
through the lifecycle the HOWTO "Isolating Extension Modules" says must work,
without a test suite, under modlife.

Each extension module of the given modules, packages (their extension files,
walked) or directories (their extension files, as top-level modules) runs in a
process of its own under modlife (exercise_child.py): import; instances of its
types that take no arguments, made and dropped; a second module object of the
same definition; import in a legacy subinterpreter, in one with its own GIL
(3.12+, where the module declares it), in two at once from threads, and in one
destroyed with instances alive; removal from sys.modules, collection and
re-import; finalization with instances referenced from the module.  No function
of the module is called.  A step that crashes the process is reported as
crashed, and a new process goes on with the next one.

For each module it prints what the module declares (read from its PyModuleDef
by ctypes), each step's outcome and findings (from the logs, attributed to the
step that ran when they were written, one per bug as `modlife report` groups
them; and the workload's values of a stale class) and a verdict.  It leaves with the
exitcode option's status (default 23) when a module had an error finding
(warnings too with MODLIFE_OPTIONS=exit_on_warnings=1) or a step crashed."""
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import types
from dataclasses import dataclass, field
from typing import Optional

from modlife import (exercise_child, findings, kinds, logfile, model, options, preflight, rundir, run, suppressions,
                     visible)

STEPS = exercise_child.STEPS
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exercise_child.py")
OUTCOMES = ("ran", "opted out", "not declared", "not applicable", "not supported", "failed", "crashed",
            "timed out", "not run")

DISCOVER = r'''
import importlib.machinery, importlib.util, json, os, sys
suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
def ext_name(filename):
    for s in suffixes:
        if filename.endswith(s) and len(filename) > len(s):
            return filename[:-len(s)]
    return None
def walk(top, prefix):
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        parts = [] if rel == "." else rel.split(os.sep)
        if parts and not os.path.exists(os.path.join(dirpath, "__init__.py")):
            dirnames[:] = []
            continue
        dirnames.sort()
        for f in sorted(filenames):
            n = ext_name(f)
            if n and n.isidentifier():
                found.append((".".join([prefix] + parts + [n]), os.path.join(dirpath, f)))
    return found
out = []
for target in sys.argv[1:]:
    item = {"target": target, "modules": [], "path": []}
    if os.path.isdir(target):
        top = os.path.abspath(target)
        item["path"] = [top]
        item["modules"] = [(n, os.path.join(top, f)) for f in sorted(os.listdir(top))
                           for n in [ext_name(f)] if n and n.isidentifier()]
    else:
        try:
            spec = importlib.util.find_spec(target)
        except Exception as e:
            spec, item["error"] = None, "%s: %s" % (type(e).__name__, e)
        if spec is None:
            item.setdefault("error", "no module named %r" % target)
        elif spec.submodule_search_locations:
            item["package"] = target.split(".")[0]
            for d in spec.submodule_search_locations:
                item["modules"] += [(n, p) for n, p in walk(d, target)]
        elif spec.origin and ext_name(os.path.basename(spec.origin)):
            item["modules"] = [(target, spec.origin)]
            item["package"] = target.split(".")[0] if "." in target else None
        if not item["modules"] and "error" not in item:
            item["error"] = "%r has no extension module" % target
    out.append(item)
print(json.dumps(out))
'''


@dataclass
class Target:
    module: str
    file: str
    package: Optional[str] = None
    path: list = field(default_factory=list)


@dataclass
class Step:
    name: str
    outcome: str = "not run"
    detail: str = ""
    findings: list = field(default_factory=list)


@dataclass
class Result:
    target: Target
    steps: dict
    declares: dict = field(default_factory=dict)
    types: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)       # this module's, each with "step"
    elsewhere: int = 0                                  # findings about other modules
    suppressed: int = 0
    logs: list = field(default_factory=list)
    stderr: str = ""
    processes: list = field(default_factory=list)      # (model.Process, (step starts, interps), attempt)
    stale: list = field(default_factory=list)           # the child's records of stale classes
    crashing: list = field(default_factory=list)        # (type name, step): a process died making or using one

    def errors(self):
        return [r for r in self.findings if kinds.severity(r) == "error"]

    def crashed(self):
        return [s for s in self.steps.values() if s.outcome in ("crashed", "timed out")]

    def fails(self, on_warnings):
        return bool(self.crashed() or self.errors() or (on_warnings and self.findings))

    def verdict(self):
        crashed = self.crashed()
        words = []
        if crashed:
            words.append("%s in %s" % (crashed[0].outcome, ", ".join(s.name for s in crashed)))
        if self.findings:
            errors = len(self.errors())
            words.append("%d finding%s (%d error%s: %s)" % (
                len(self.findings), "" if len(self.findings) == 1 else "s", errors, "" if errors == 1 else "s",
                ", ".join(sorted(count_kinds(self.findings)))))
        if self.steps["import"].outcome != "ran":
            words.append("not imported")
        failed = [s.name for s in self.steps.values() if s.outcome == "failed" and s.name != "import"]
        if failed:  # an exception that is no ImportError: said, but no finding
            words.append("failed in %s" % ", ".join(failed))
        if not words:
            return "clean"
        return "; ".join(words)


def count_kinds(records):
    counts = {}
    for r in records:
        counts[r.get("kind", "?")] = counts.get(r.get("kind", "?"), 0) + 1
    return counts


def kinds_text(records):
    counts = count_kinds(records)
    return ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())) or "-"


class Failed(Exception):
    pass


def discover(python, targets):
    try:
        proc = subprocess.run([python, "-c", DISCOVER] + list(targets), capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    except OSError as e:
        raise Failed("cannot run %s: %s" % (python, e.strerror))
    if proc.returncode != 0:
        raise Failed("%s could not list the modules: %s" % (python, proc.stderr.strip().splitlines()[-1:]))
    found, errors = [], []
    for item in json.loads(proc.stdout):
        if "error" in item:
            errors.append("%s: %s" % (item["target"], item["error"]))
        for name, path in item["modules"]:
            found.append(Target(name, path, item.get("package"), item["path"]))
    return found, errors


def _options(args):
    """modlife run's options for a module's process.  Its exit status is left alone
    (exitcode=0): a finding is read from the log, and a status is the step's."""
    return types.SimpleNamespace(stack_depth=None, no_python_stack=False, halt_on_error=False,
                                 exitcode=0, suppressions=args.suppressions and os.path.abspath(args.suppressions),
                                 report_kinds=None, audit=False)


def _read_progress(path):
    records = []
    try:
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    records.append(json.loads(line))
    except OSError:
        pass
    return records


def _signal_name(returncode):
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return "signal %d" % -returncode


def _progress(result, records):
    """Fills result from a child's progress records: (step starts as (wall_ns, step),
    the step it was in when it ended, whether it reached finalize, the step that made
    each subinterpreter by its id, the type it was making or using an instance of)."""
    starts, current, exiting, interps, trying = [], None, False, {}, None
    for r in records:
        if "trying" in r:
            trying = r["trying"]
        elif "interp" in r:
            interps[r["interp"]] = r["step"]
        elif "stale" in r:
            result.stale.append(r)
        elif "declares" in r:
            result.declares = r["declares"]
            result.target.file = r.get("file") or result.target.file
        elif "types" in r:
            result.types = r["types"]
        elif r.get("phase") in ("start", "setup"):
            starts.append((r["wall_ns"], r["step"]))
            current, trying = (r["step"] if r["phase"] == "start" else None), None
        elif r.get("phase") in ("end", "exiting"):
            step = result.steps[r["step"]]
            step.outcome, step.detail = _split(r["status"])
            current, exiting, trying = None, r["phase"] == "exiting", None
    return starts, current, exiting, interps, trying


def _split(status):
    outcome, _, detail = status.partition(": ")
    if outcome not in OUTCOMES:
        outcome, detail = "failed", status
    detail = detail.strip()
    return outcome, (detail.splitlines()[0][:200] if detail and outcome != "ran" else detail)


class Exerciser:
    def __init__(self, args, log_root):
        self.args = args
        self.log_root = log_root
        self.env_options = _options(args)

    def run_child(self, target, first, attempt, skip_types=()):
        where = os.path.join(self.log_root, re.sub(r"[^\w.-]", "_", target.module), str(attempt))
        os.makedirs(where, exist_ok=True)
        env = run.environment(self.env_options, where)
        progress = os.path.join(where, "exercise.progress")
        spec = {"module": target.module, "package": target.package, "path": target.path, "progress": progress,
                "steps": [first], "workload": self.args.workload, "skip_types": list(skip_types)}
        with open(os.path.join(where, "output.txt"), "w") as out:
            proc = subprocess.Popen([self.args.python, CHILD, json.dumps(spec)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=where)
            try:
                returncode = proc.wait(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                returncode = None
        return where, progress, returncode

    def exercise(self, target):
        result = Result(target, {name: Step(name) for name in STEPS})
        first, attempt = "import", 0
        while first is not None:
            attempt += 1
            skip = [name for name, _ in result.crashing]
            where, progress, returncode = self.run_child(target, first, attempt, skip)
            first = self._account(result, where, _read_progress(progress), returncode, attempt, first)
        self._count(result)
        return result

    def _account(self, result, where, records, returncode, attempt, first):
        """Fills result from one child's progress and logs; the step to go on with."""
        starts, current, exiting, interps, trying = _progress(result, records)
        try:
            with open(os.path.join(where, "output.txt"), errors="replace") as f:
                result.stderr += f.read()
        except OSError as e:
            result.stderr += "modlife exercise: cannot read the output of %s: %s\n" % (where, e.strerror)
        self._findings(result, where, (starts, interps), attempt)
        ended = self._ending(returncode)
        if exiting:  # finalize is the process's end: its status says how it went
            if ended is not None:
                result.steps["finalize"].outcome, result.steps["finalize"].detail = ended
            return None
        if current is None:
            if ended is not None and not starts:
                result.steps["import"].outcome, result.steps["import"].detail = "failed", (
                    "the process ended (%s) before importing" % ended[1])
            elif ended is not None and attempt > 1:  # in the import before its first step
                result.steps[first].detail = "the import before it %s in a new process" % ended[0]
            return None
        step = result.steps[current]
        step.outcome, step.detail = ended or ("crashed", "the process left with status 0")
        if trying is not None:  # the later processes leave that type alone
            step.detail += " in %s() or its use" % trying
            result.crashing.append((trying, current))
        following = STEPS.index(current) + 1
        return STEPS[following] if current != "import" and following < len(STEPS) else None

    def _ending(self, returncode):
        """(outcome, detail) of a process that did not end well, else None."""
        if returncode is None:
            return "timed out", "after %ds" % self.args.timeout
        if returncode < 0:
            return "crashed", "killed by %s" % _signal_name(returncode)
        if returncode != 0:
            return "crashed", "the process left with status %d" % returncode
        return None

    def _names(self, result):
        names = {result.target.module, result.target.module.rpartition(".")[2]}
        if result.declares.get("m_name"):
            names.add(result.declares["m_name"])
        return names

    def _findings(self, result, where, steps, attempt):
        try:
            processes = model.load_all([where], events=model.FINDINGS_ONLY)
        except logfile.LogError as e:
            result.steps["import"].detail = "unreadable log: %s" % e
            return
        result.logs.append(where)
        for p in processes:
            result.suppressed += len(p.suppressed)
            result.processes.append((p, steps, attempt))

    @staticmethod
    def _step(process, steps, record):
        """The step that ran when the record was written; for a subinterpreter's
        module that outlived it, the step that ran that interpreter."""
        starts, interps = steps
        if record.get("kind") == "module-outlives-interpreter" and record.get("interp") in interps:
            return interps[record["interp"]]
        at = (process.start.get("wall_ns") or 0) - process.start.get("t", 0) + record.get("t", 0)
        step = "import"
        for wall, name in starts:
            if wall <= at:
                step = name
        return step

    def _count(self, result):
        """One finding per bug, as `modlife report` groups them (findings.group): a
        type or state that every module object, interpreter and process of the
        exercise shows again is one bug.  Each step lists the bugs it showed; the
        module's findings are the bugs, each with the first step that showed it."""
        names = self._names(result)
        runs = {id(p): (steps, attempt) for p, steps, attempt in result.processes}
        for g in findings.group([p for p, _, _ in result.processes]):
            if g.record.get("module") and g.record["module"] not in names:
                result.elsewhere += 1
                continue
            seen = []
            for process, r in g.members:
                steps, attempt = runs[id(process)]
                step = self._step(process, steps, r)
                if attempt > 1 and step == "import":
                    continue  # the setup import of a later process: its findings were the first's
                if step not in seen:
                    seen.append(step)
                    result.steps[step].findings.append(dict(r, step=step))
                    if len(seen) == 1:
                        result.findings.append(dict(r, step=step))
        self._count_stale(result)

    def _count_stale(self, result):
        """The workload's values of a stale class (exercise_child._exercise_stale), as
        findings: what the library cannot see when the class is a Python one the
        extension calls.  One per class, listed in each step that showed it."""
        seen = {}
        for r in result.stale:
            module, _, qualname = r["stale"].partition(":")
            name = "%s.%s" % (module, qualname)
            if r["step"] in seen.setdefault(name, []):
                continue
            seen[name].append(r["step"])
            finding = {"kind": "type-from-other-interpreter", "severity": "error", "module": result.target.module,
                       "type": name, "step": r["step"], "source": "exercise",
                       "message": "the workload got an object of class '%s' in %s, which is not that interpreter's "
                                  "sys.modules[%r].%s: a class of a dropped module instance or of another "
                                  "interpreter, made by a C global set by the dropped module"
                                  % (name, r["where"], module, qualname)}
            result.steps[r["step"]].findings.append(finding)
            if len(seen[name]) == 1:
                result.findings.append(finding)


DECLARED_MI = {0: "not supported", 1: "supported (shared GIL)", 2: "per-interpreter GIL supported"}
DECLARED_GIL = {0: "Py_MOD_GIL_USED", 1: "Py_MOD_GIL_NOT_USED"}


def declared_text(d):
    if not d:
        return "(unknown: the module was not imported)"
    if d.get("def") is None:
        return "(no PyModuleDef: %s)" % d.get("why", "?")
    parts = [d["init"], "m_size %d" % d["m_size"]]
    if d["init"] == "multi-phase":
        mi = d.get("multiple_interpreters")
        parts.append("Py_mod_multiple_interpreters: %s" % (DECLARED_MI.get(mi, str(mi)) if mi is not None else "none"))
        gil = d.get("gil")
        parts.append("Py_mod_gil: %s" % (DECLARED_GIL.get(gil, str(gil)) if gil is not None else "none"))
    return ", ".join(parts)


def table(result):
    t = result.target
    lines = ["== %s (%s)" % (t.module, t.file),
             "declares: %s" % declared_text(result.declares)]
    if result.types:
        lines.append("types:    made %s; need arguments: %s" % (", ".join(result.types.get("made")) or "none",
                                                                 ", ".join(result.types.get("refused")) or "none"))
    for name, step in result.crashing:
        lines.append("crashing: %s() or its use, in %s (not made in the later steps)" % (name, step))
    lines.append("  %-24s %-44s %s" % ("step", "outcome", "findings"))
    for name in STEPS:
        s = result.steps[name]
        outcome = s.outcome + (": " + s.detail if s.detail else "")
        if len(outcome) > 44:
            outcome = outcome[:41] + "..."
        lines.append("  %-24s %-44s %s" % (name, outcome, kinds_text(s.findings)))
    lines.append("findings: %s" % kinds_text(result.findings))
    if result.suppressed:
        lines.append("suppressed: %d" % result.suppressed)
    if result.elsewhere:
        lines.append("elsewhere: %d finding%s about other modules in these processes (modlife report the logs)"
                     % (result.elsewhere, "" if result.elsewhere == 1 else "s"))
    lines.append("verdict:  %s" % result.verdict())
    if result.findings or result.crashed() or result.elsewhere:
        lines.append("logs:     %s" % ", ".join(result.logs))
    return "\n".join(visible.terminal(line) for line in lines) + "\n"


def as_json(result):
    t = result.target
    return {"module": t.module, "file": t.file, "declares": result.declares, "types": result.types,
            "steps": [{"step": s.name, "outcome": s.outcome, "detail": s.detail,
                       "findings": count_kinds(s.findings)} for s in result.steps.values()],
            "findings": count_kinds(result.findings), "suppressed": result.suppressed,
            "elsewhere": result.elsewhere,
            "crashing": [{"type": name, "step": step} for name, step in result.crashing],
            "verdict": result.verdict(), "logs": result.logs,
            "types_of_findings": sorted({r.get("type") for r in result.findings if r.get("type")})}


def _exitcode(args):
    if args.exitcode is not None:
        return args.exitcode
    try:
        return int(options.value(os.environ.get("MODLIFE_OPTIONS"), "exitcode", "23"))
    except ValueError:
        return 23


def _on_warnings():
    return options.value(os.environ.get("MODLIFE_OPTIONS"), "exit_on_warnings", "0") in ("1", "true", "yes")


def exercise_all(args, log_root, targets):
    exerciser = Exerciser(args, log_root)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        return list(pool.map(exerciser.exercise, targets))


def main(args, out):
    if args.suppressions and suppressions.refused(args.suppressions, "exercise"):
        return 2
    try:
        targets, errors = discover(args.python, args.targets)
    except Failed as e:
        sys.stderr.write("modlife exercise: %s\n" % e)
        return 2
    for e in errors:
        sys.stderr.write("modlife exercise: %s\n" % visible.terminal(e))
    if errors or not targets:
        return 2
    try:
        log_root = os.path.abspath(args.log_dir or rundir.create(rundir.DEFAULT_PARENT))
        os.makedirs(log_root, exist_ok=True)
    except OSError as e:
        sys.stderr.write("modlife exercise: cannot create the log directory: %s\n" % e.strerror)
        return 2
    try:
        bad = preflight.problem(run.environment(_options(args), log_root))
    except options.Unquotable as e:
        bad = str(e)
    if bad:
        sys.stderr.write("modlife exercise: %s\n" % bad)
        return 2
    results = exercise_all(args, log_root, targets)
    if args.format == "json":
        json.dump([as_json(r) for r in results], out, indent=1)
        out.write("\n")
    else:
        for r in results:
            out.write(table(r) + "\n")
        failing = [r for r in results if r.fails(_on_warnings())]
        out.write("modlife exercise: %d module%s, %d clean, %d failing%s\n" % (
            len(results), "" if len(results) == 1 else "s",
            sum(1 for r in results if r.verdict() == "clean"), len(failing),
            (": " + ", ".join(r.target.module for r in failing)) if failing else ""))
    out.flush()
    return _exitcode(args) if any(r.fails(_on_warnings()) for r in results) else 0
