"""pytest plugin: run a test session under modlife and fail the tests that hit findings.

    pytest -p modlife.pytest_plugin --modlife [--modlife-fail-on=KINDS]
           [--modlife-log-dir=DIR] [--modlife-suppressions=FILE]

(`--modlife` alone once modlife is installed: `make install` registers the plugin.)

    pytest -p modlife.pytest_plugin --modlife-exercise=PKG

adds one test per extension module of PKG, `modlife exercise` on it (exercise_pytest).

The library must be in the process from its start, so a session started without it
runs pytest again as a child under it, with the same argv and environment, and
leaves with the child's exit status, telling which processes had no log (see
modlife.nolog).  In the child, the logs are read after every
setup, call and teardown: a finding written meanwhile belongs to that test (also one
from a subprocess or a subinterpreter it started), which fails with the report as
its failure text; xfail, -x and -k work as usual.  Findings made after the session,
while the interpreter finalizes, are read by the parent once the child has exited
and reported as "session teardown"; they fail the run too; those of a process that
died are reported with the test it ran then.  With pytest-xdist every worker reads
the logs of its own process tree, the controller what no worker read."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from modlife import findings, kinds, locate, logfile, model, nolog, preflight, report_text, suppressions, visible
from modlife import options as modlife_options

_CHILD = "MODLIFE_PYTEST_SESSION"   # set in the child: the log directory
_SESSION_START = "pytest-session-start.json"   # logs of earlier sessions in the directory, skipped
# One per pytest process of the run (the child; with pytest-xdist its controller and each
# worker): the logs it read and how far, the test it runs now, whether its session ended.
# The parent reports what came after, naming the test a process died in.
_SESSION_FILE = "pytest-session.%d.json"
_SESSION_FILES = re.compile(r"pytest-session\.[0-9]+\.json\Z")


def pytest_addoption(parser):
    group = parser.getgroup("modlife", "modlife: module lifecycle checks for C extensions")
    group.addoption("--modlife", action="store_true",
                    help="run the session under modlife; findings fail the test they happen in")
    group.addoption("--modlife-fail-on", metavar="KINDS", default="all",
                    help="finding kinds that fail a test: a comma list, 'all' (default), 'errors' "
                         "(error severity only); the others are only listed in the summary")
    group.addoption("--modlife-log-dir", metavar="DIR", default="modlife-logs",
                    help="where the logs go, one per process (default: ./modlife-logs)")
    group.addoption("--modlife-suppressions", metavar="FILE",
                    help="a suppressions file of kind:pattern lines")
    group.addoption("--modlife-exercise", metavar="PKG", action="append", default=[],
                    help="one test per extension module of PKG (repeatable): `modlife exercise` "
                         "puts it through its lifecycle; findings or a crash fail it")


def _fail_kinds(spec):
    """Whether a finding record fails its test.  "errors" is a severity, which a
    finding can have of its own (a tp-free-override of a custom tp_free is a warning)."""
    names = [k.name for k in kinds.KINDS]
    if spec == "all":
        return lambda record: True
    if spec == "errors":
        return lambda record: kinds.severity(record) == "error"
    chosen = set(filter(None, spec.split(",")))
    unknown = chosen - set(names)
    if unknown:
        raise pytest.UsageError("--modlife-fail-on: unknown kind %s (kinds: all, errors, %s)"
                                % (", ".join(sorted(unknown)), ", ".join(names)))
    return lambda record: record.get("kind") in chosen


def _library_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return any("libmodlife.so" in line for line in maps)
    except OSError:
        return False


# -- the parent: run the session again under the library ---------------------------

def _child_argv():
    if hasattr(sys, "orig_argv"):
        return list(sys.orig_argv)
    main = os.path.basename(sys.argv[0])
    if main == "__main__.py":  # python -m pytest
        return [sys.executable, "-m", "pytest"] + sys.argv[1:]
    return [sys.executable] + sys.argv


def suppressions_file(options):
    """--modlife-suppressions as an absolute path (None when not given), checked as the
    library will check it: a bad file stops the session before any test runs."""
    if not options.modlife_suppressions:
        return None
    path = os.path.abspath(options.modlife_suppressions)
    try:
        suppressions.check(path)
    except suppressions.BadFile as e:
        raise pytest.UsageError("--modlife-suppressions: %s" % e)
    return path


def _child_env(options, log_dir, notify):
    env = dict(os.environ)
    # Every test sees its own findings: the same bug reached from two tests is two places.
    opts = [("log_path", os.path.join(log_dir, "modlife")), ("exitcode", 0), ("dedup_python_frames", 256),
            ("notify", notify)]
    path = suppressions_file(options)
    if path:
        opts.append(("suppressions", path))
    try:
        env["MODLIFE_OPTIONS"] = modlife_options.join(env.get("MODLIFE_OPTIONS"), opts)
    except modlife_options.Unquotable as e:
        raise pytest.UsageError("modlife: %s" % e)
    try:
        library = locate.preload_library()
    except locate.NotFound as e:
        raise pytest.UsageError("modlife: %s" % e)
    env = locate.preload_environment(env, library)
    env[_CHILD] = log_dir
    return env


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _write_json(path, value):
    try:
        with open(path + ".new", "w") as f:
            json.dump(value, f)
        os.replace(path + ".new", path)   # a process dying meanwhile leaves the last whole one
    except OSError as e:
        raise pytest.UsageError("modlife: cannot write %s: %s" % (path, e.strerror))


def _session_files(log_dir):
    try:
        names = [n for n in os.listdir(log_dir) if _SESSION_FILES.match(n)]
    except OSError:
        return []
    return [os.path.join(log_dir, n) for n in sorted(names)]


def _claims(log_dir, but):
    """log name -> pid of the session process that reads it, of every session file but one."""
    owner = {}
    for path in _session_files(log_dir):
        if os.path.basename(path) == _SESSION_FILE % but:
            continue
        session = _read_json(path)
        if session.get("pid") != but:
            owner.update((name, session.get("pid")) for name in session.get("positions", {}))
    return owner


def _finalize_findings(log_dir):
    """Findings written after the sessions' last look at the logs, each with where it
    happened: "session teardown" (while an interpreter finalized), or the test that
    ran when its process died; and the lines of the logs that could not be read."""
    report_from = _read_json(os.path.join(log_dir, _SESSION_START))
    running = {}   # log name -> (nodeid, phase, pid) of a session that did not end
    for path in _session_files(log_dir):
        session = _read_json(path)
        for name, offset in session.get("positions", {}).items():
            report_from[name] = max(offset, report_from.get(name, 0))
            if not session.get("finished") and session.get("running"):
                running[name] = (session["running"], session.get("phase", "call"), session.get("pid"))
    tail = LogTail(log_dir, report_from=report_from)
    found = tail.read_new()
    where = {}
    for process, record in found:
        name = os.path.basename(process.path)
        where.setdefault(running.get(name), []).append((process, record))
    return where, tail.errors


def _run_child(config):
    options = config.option
    log_dir = os.path.abspath(options.modlife_log_dir)
    fail_on = _fail_kinds(options.modlife_fail_on)
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as e:
        raise pytest.UsageError("--modlife-log-dir: cannot create %s: %s" % (log_dir, e.strerror))
    _write_json(os.path.join(log_dir, _SESSION_START), LogTail(log_dir).sizes())
    for path in _session_files(log_dir):   # of an earlier run
        try:
            os.unlink(path)
        except OSError:
            pass
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    listener = nolog.Listener()
    env = _child_env(options, log_dir, listener.name)
    bad = preflight.problem(env)
    if bad:
        listener.stop()
        raise pytest.UsageError("modlife: %s" % bad)
    proc = subprocess.Popen(_child_argv(), env=env)
    listener.start()  # after the fork: the child is started from one thread
    while True:
        try:
            status = proc.wait()
            break
        except KeyboardInterrupt:
            continue  # the child got it too
    without_log = nolog.summary(listener.stop())
    late, errors = _finalize_findings(log_dir)
    for error in errors:
        sys.stderr.write("modlife: %s\n" % error)
        status = status or 1
    for running, found in sorted(late.items(), key=lambda item: item[0] is None):
        if running is None:
            sys.stdout.write("\n" + report_text.RULER + "\nmodlife: findings at session teardown "
                             "(after the last test, while the interpreter finalized):\n")
        else:
            sys.stdout.write("\n" + report_text.RULER + "\nmodlife: findings during %s (%s), the test "
                             "running when process %s died:\n" % (running[0], running[1], running[2]))
        sys.stdout.write(render(found))
        if status == 0 and any(fail_on(r) for _, r in found):
            status = 1
    if without_log:
        # Not a failure: what those processes did was not checked, and the user is told so.
        sys.stdout.write("\n" + report_text.RULER + "\n" + without_log)
    sys.stdout.flush()
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    os._exit(status)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if config.option.modlife_exercise:
        from modlife import exercise_pytest
        config.pluginmanager.register(exercise_pytest.Plugin(config), "modlife-exercise")
    if not config.option.modlife:
        return
    if _library_loaded():
        config.pluginmanager.register(Session(config), "modlife-session")
        return
    if os.environ.get(_CHILD):
        raise pytest.UsageError("modlife: the library did not load in the re-executed pytest "
                                "(LD_PRELOAD=%s); is the process setuid?" % os.environ.get("LD_PRELOAD"))
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()
    _run_child(config)


# -- the child: attribute findings to tests ------------------------------------------

class LogTail:
    """New finding records of every log in a directory since the last look: logs of
    subprocesses appear there too.  Lifetime records are skipped unparsed."""

    def __init__(self, log_dir, report_from=None, skip=None, owns=None):
        self.log_dir = log_dir
        self.owns = owns                         # owns(log name, starts) -> read it?  None: all
        self.starts = {}                         # log name -> (pid, ppid) of its process-start
        self.owned = set()
        self.foreign = set()
        self.offsets = dict(skip or {})          # log name -> offset: read from there on
        self.report_from = dict(report_from or {})  # log name -> offset: earlier findings are not new
        self.processes = {}
        self.lines = {}                          # log name -> lines before its offset (reads from 0 only)
        self.errors = []                         # "FILE:LINE: ..." of lines that are no records

    def positions(self):
        if self.owns is None:
            return dict(self.offsets)
        return {n: o for n, o in self.offsets.items() if n in self.owned}

    def _names(self):
        try:
            return sorted(n for n in os.listdir(self.log_dir) if n.endswith(".jsonl"))
        except OSError:
            return []

    def sizes(self):
        return {n: os.path.getsize(os.path.join(self.log_dir, n)) for n in self._names()}

    def read_new(self):
        found = []
        names = self._names()
        if self.owns is not None:
            names = [n for n in names if n in self.owned or self._owned(n)]
        for name in names:
            found.extend(self._read(os.path.join(self.log_dir, name), name))
        return found

    def _owned(self, name):
        if name in self.foreign:
            return False
        self._start(name)
        if self.owns(name, self.starts):
            self.owned.add(name)   # once read, read to its end
            return True
        if name in self.starts:    # its process and parents are known: for good
            self.foreign.add(name)
        return False

    def _start(self, name):
        """pid and ppid of a log's process, from its first record (once it is whole)."""
        if name in self.starts:
            return
        try:
            with open(os.path.join(self.log_dir, name), "rb") as f:
                line = f.readline(1 << 16)
        except OSError:
            return
        if line.startswith(b'{"event":"process-start"') and line.endswith(b"\n"):
            try:
                record = json.loads(line.decode("utf-8", "replace"))
                self.starts[name] = (record.get("pid"), record.get("ppid"))
            except ValueError:
                pass

    def _process(self, path):
        if path not in self.processes:
            self.processes[path] = model.Process(path, {})
        return self.processes[path]

    def _read(self, path, name):
        start = self.offsets.get(name, 0)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1   # a record being written is read next time
        self.offsets[name] = start + end
        # Line numbers are known for a log read from its start (not one skipped to an offset).
        number = 0 if start == 0 else self.lines.get(name)
        if number is not None:
            self.lines[name] = number + data.count(b"\n", 0, end)
        process = self._process(path)
        report_from = self.report_from.get(name, 0)
        found = []
        at = position = start
        try:
            for line in data[:end].split(b"\n")[:-1]:
                at, position = position, position + len(line) + 1
                number = number + 1 if number is not None else None
                if line.startswith(b'{"event":"finding"'):
                    record = self._parse(path, number, at, line)
                    if at >= report_from:
                        found.append((process, record))
                elif line.startswith(b'{"event":"finding-suppressed"'):
                    record = self._parse(path, number, at, line)
                    if at >= report_from:
                        process.suppressed.append(record)
                elif line.startswith(b'{"event":"object-load"'):
                    record = self._parse(path, number, at, line)
                    process.objects[record["id"]] = record
                elif line.startswith(b'{"event":"process-start"'):
                    process.start = self._parse(path, number, at, line)
        except logfile.LogError as e:
            if at >= report_from:        # else the session already said it
                self.errors.append(str(e))   # the rest of what was read is skipped: no traceback
        return found

    @staticmethod
    def _parse(path, number, at, line):
        text = line.decode("utf-8", "replace")   # as logfile reads names that are not UTF-8
        if number is not None:
            return logfile.parse_line(path, number, text)
        try:   # a log first read from an offset: the byte is named, not the line
            return logfile.parse_line(path, 0, text)
        except logfile.LogError as e:
            raise logfile.LogError(str(e).replace("%s:0:" % path, "%s: byte %d:" % (path, at), 1)) from None


_RUNNER_FILES = ("/_pytest/", "/pluggy/")


def _without_runner_frames(record):
    """The Python stacks up to the test: pytest's and pluggy's frames say nothing."""
    def cut(stack):
        for i, frame in enumerate(stack or []):
            if any(part in (frame.get("file") or "") for part in _RUNNER_FILES):
                return stack[:i]
        return stack
    record = dict(record, python_stack=cut(record.get("python_stack")))
    record["context"] = [dict(c, python_stack=cut(c.get("python_stack"))) for c in record.get("context", [])]
    return record


def render(found):
    """Report text of (process, finding) pairs, symbolized, grouped per process."""
    by_process = {}
    for process, record in found:
        by_process.setdefault(id(process), (process, []))[1].append(_without_runner_frames(record))
    text = []
    for process, records in by_process.values():
        view = model.Process(process.path, process.start, process.objects, findings=records)
        text.extend(report_text.render(g) for g in findings.group([view]))
    return "".join(text)


def _descends(name, starts, pid):
    """Whether a log's process is pid or was started by it, by the process-start records."""
    parents = dict(starts.values())
    at, steps = starts.get(name, (None, None))[0], 0
    while at is not None and steps < 64:
        if at == pid:
            return True
        at, steps = parents.get(at), steps + 1
    return False


_REPORT_START = re.compile(r"==[0-9]+==(ERROR|WARNING): modlife: ")


def _without_reports(text):
    """Captured stderr less the library's reports (the failure text has them already),
    each from the ruler above its headline to the ruler below its SUMMARY line."""
    kept, inside, ruler = [], False, report_text.RULER + "\n"
    for line in text.splitlines(True):
        if _REPORT_START.match(line):
            inside = True
            if kept and kept[-1] == ruler:
                kept.pop()
        elif inside == "after":
            inside = False
            if line != ruler:
                kept.append(line)
        elif not inside:
            kept.append(line)
        elif line.startswith("SUMMARY: modlife:"):
            inside = "after"
    return "".join(kept)


def _new_scope_function():
    """The library's modlife_new_scope(): a bug met again in another test is logged again."""
    try:
        import ctypes
        function = ctypes.CDLL(None).modlife_new_scope
    except (ImportError, OSError, AttributeError):
        return lambda: None   # a library of before: the first test to meet a place gets it
    function.restype = None
    function.argtypes = []
    return function


class Session:
    """Reads the logs of this pytest process.  With pytest-xdist each worker reads the
    logs of its own process tree (its own and those of the processes it started: by
    the process-start records' ppid, and by the log name its subprocesses inherit),
    and the controller what no worker claimed."""

    def __init__(self, config):
        self.config = config
        self.pid = os.getpid()
        self.log_dir = os.environ.get(_CHILD) or os.path.abspath(config.option.modlife_log_dir)
        self.fail_on = _fail_kinds(config.option.modlife_fail_on)
        self.claims = {}
        worker = getattr(config, "workerinput", None)
        self.is_worker = worker is not None
        if self.is_worker:
            prefix = "modlife-%s-%d" % (worker.get("workerid", "gw"), self.pid)
            os.environ["MODLIFE_OPTIONS"] = modlife_options.join(
                os.environ.get("MODLIFE_OPTIONS"), [("log_path", os.path.join(self.log_dir, prefix))])
            owns = lambda name, starts: name.startswith(prefix + ".") or _descends(name, starts, self.pid)
        else:
            owns = lambda name, starts: name not in self.claims
        self.tail = LogTail(self.log_dir, skip=_read_json(os.path.join(self.log_dir, _SESSION_START)), owns=owns)
        self.by_test = []      # (nodeid, phase, process, record)
        self.errors = []       # log lines that are no records
        self.suppressed = []   # finding-suppressed records the workers read (pytest-xdist)
        self.reported = set()  # (nodeid, phase) failed with the findings' reports
        self.new_scope = _new_scope_function()
        # Start-up (conftest imports) belongs to no test: listed, fails the session.
        for process, record in self._read_new():
            self.by_test.append(("session start", "setup", process, record))
        self._save()

    def _read_new(self):
        if not self.is_worker:
            self.claims = _claims(self.log_dir, but=self.pid)
        return self.tail.read_new()

    def _save(self, running=None, phase=None, finished=False):
        try:
            _write_json(os.path.join(self.log_dir, _SESSION_FILE % self.pid),
                        {"pid": self.pid, "positions": self.tail.positions(), "running": running, "phase": phase,
                         "finished": finished})
        except pytest.UsageError as e:   # not the test's fault: the run fails at its end
            if str(e) not in self.errors:
                self.errors.append(str(e))

    def _check(self, item, phase):
        found = self._read_new()
        errors, self.tail.errors = self.tail.errors, []
        self.errors.extend(errors)
        if errors:
            pytest.fail("modlife: cannot read the logs: %s" % "; ".join(errors), pytrace=False)
        for process, record in found:
            self.by_test.append((item.nodeid, phase, process, record))
        failing = [(p, r) for p, r in found if self.fail_on(r)]
        if failing:
            self.reported.add((item.nodeid, phase))
            pytest.fail("modlife: %d finding%s during %s:\n%s" % (
                len(failing), "" if len(failing) == 1 else "s", phase, render(failing)), pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):
        self.new_scope()
        self._save(item.nodeid, "setup")
        yield
        self._check(item, "setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        self._save(item.nodeid, "call")
        yield
        self._check(item, "call")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        self._save(item.nodeid, "teardown")
        yield
        self._check(item, "teardown")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if (item.nodeid, call.when) in self.reported:
            sections = [(title, _without_reports(text) if title.startswith("Captured stderr") else text)
                        for title, text in report.sections]
            report.sections = [(title, text) for title, text in sections if text]

    def pytest_sessionfinish(self, session):
        for process, record in self._read_new():
            self.by_test.append(("session teardown", "teardown", process, record))
        self._save(finished=True)
        self.errors.extend(self.tail.errors)
        if hasattr(self.config, "workeroutput"):   # to the controller, which sums up
            self.config.workeroutput["modlife"] = json.dumps({
                "findings": [(t, p, {"kind": r["kind"], "message": r.get("message", "")})
                             for t, p, _, r in self.by_test],
                "suppressed": [r for process in self.tail.processes.values() for r in process.suppressed],
                "errors": self.errors})
        if session.exitstatus == 0 and self.errors:
            session.exitstatus = 1
        if session.exitstatus == 0 and any(self.fail_on(r) and t.startswith("session ")
                                           for t, _, _, r in self.by_test):
            session.exitstatus = 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        """pytest-xdist's controller: a worker's findings, for the summary and the exit status."""
        output = json.loads(getattr(node, "workeroutput", {}).get("modlife", "{}"))
        self.by_test.extend((t, p, None, r) for t, p, r in output.get("findings", []))
        self.suppressed.extend(output.get("suppressed", []))
        self.errors.extend(output.get("errors", []))

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        tr.section("modlife")
        for error in self.errors:
            tr.write_line("modlife: cannot read the logs: %s" % error)
        ours = model.Process("", {}, suppressed=self.suppressed)   # what workers read (pytest-xdist)
        suppressed = model.suppressed_line(model.suppression_counts(list(self.tail.processes.values()) + [ours]))
        if suppressed:
            tr.write_line(visible.terminal("modlife: " + suppressed))
        if not self.by_test:
            tr.write_line("no findings (logs in %s)" % self.log_dir)
            return
        for nodeid, phase, process, record in self.by_test:
            failing = "FAILED" if self.fail_on(record) else "listed"
            tr.write_line(visible.terminal("%s %s [%s] %s: %s" % (failing, record["kind"], phase, nodeid,
                                                                  record.get("message", ""))))
        tests = {t for t, _, _, _ in self.by_test}
        tr.write_line("modlife: %d finding%s in %d test%s; logs in %s (modlife report %s)" % (
            len(self.by_test), "" if len(self.by_test) == 1 else "s", len(tests), "" if len(tests) == 1 else "s",
            self.log_dir, self.log_dir))
