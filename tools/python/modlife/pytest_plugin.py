"""pytest plugin: run a test session under modlife and fail the tests that hit findings.

    pytest -p modlife.pytest_plugin --modlife [--modlife-fail-on=KINDS]
           [--modlife-log-dir=DIR] [--modlife-suppressions=FILE]

(`--modlife` alone once modlife is installed: `make install` registers the plugin.)

The library must be in the process from its start, so a session started without it
runs pytest again as a child under it, with the same argv and environment, and
leaves with the child's exit status, telling which processes had no log (see
modlife.nolog).  In the child, the logs are read after every
setup, call and teardown: a finding written meanwhile belongs to that test (also one
from a subprocess or a subinterpreter it started), which fails with the report as
its failure text; xfail, -x and -k work as usual.  Findings made after the session,
while the interpreter finalizes, are read by the parent once the child has exited
and reported as "session teardown"; they fail the run too."""
import json
import os
import signal
import subprocess
import sys

import pytest

from modlife import findings, kinds, locate, logfile, model, nolog, preflight, report_text, suppressions, visible
from modlife import options as modlife_options

_CHILD = "MODLIFE_PYTEST_SESSION"   # set in the child: the log directory
_SESSION_START = "pytest-session-start.json"   # logs of earlier sessions in the directory, skipped
_SESSION_END = "pytest-session-end.json"


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


def _fail_kinds(spec):
    names = [k.name for k in kinds.KINDS]
    if spec == "all":
        return set(names)
    if spec == "errors":
        return {k.name for k in kinds.KINDS if k.severity == "error"}
    chosen = set(filter(None, spec.split(",")))
    unknown = chosen - set(names)
    if unknown:
        raise pytest.UsageError("--modlife-fail-on: unknown kind %s (kinds: all, errors, %s)"
                                % (", ".join(sorted(unknown)), ", ".join(names)))
    return chosen


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


def _child_env(options, log_dir, notify):
    env = dict(os.environ)
    # Every test sees its own findings: the same bug reached from two tests is two places.
    opts = [("log_path", os.path.join(log_dir, "modlife")), ("exitcode", 0), ("dedup_python_frames", 256),
            ("notify", notify)]
    if options.modlife_suppressions:
        path = os.path.abspath(options.modlife_suppressions)
        try:
            suppressions.check(path)
        except suppressions.BadFile as e:
            raise pytest.UsageError("--modlife-suppressions: %s" % e)
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
        with open(path, "w") as f:
            json.dump(value, f)
    except OSError as e:
        raise pytest.UsageError("modlife: cannot write %s: %s" % (path, e.strerror))


def _finalize_findings(log_dir):
    """Findings written after the child's session ended: during finalization; and
    the lines of the logs that could not be read."""
    tail = LogTail(log_dir, report_from=_read_json(os.path.join(log_dir, _SESSION_END)))
    return tail.read_new(), tail.errors


def _run_child(config):
    options = config.option
    log_dir = os.path.abspath(options.modlife_log_dir)
    fail_on = _fail_kinds(options.modlife_fail_on)
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as e:
        raise pytest.UsageError("--modlife-log-dir: cannot create %s: %s" % (log_dir, e.strerror))
    _write_json(os.path.join(log_dir, _SESSION_START), LogTail(log_dir).sizes())
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
    if late:
        sys.stdout.write("\n" + report_text.RULER + "\nmodlife: findings at session teardown "
                         "(after the last test, while the interpreter finalized):\n")
        sys.stdout.write(render(late))
        if status == 0 and any(r["kind"] in fail_on for _, r in late):
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

    def __init__(self, log_dir, report_from=None, skip=None):
        self.log_dir = log_dir
        self.offsets = dict(skip or {})          # log name -> offset: read from there on
        self.report_from = dict(report_from or {})  # log name -> offset: earlier findings are not new
        self.processes = {}
        self.lines = {}                          # log name -> lines before its offset (reads from 0 only)
        self.errors = []                         # "FILE:LINE: ..." of lines that are no records

    def positions(self):
        return dict(self.offsets)

    def _names(self):
        try:
            return sorted(n for n in os.listdir(self.log_dir) if n.endswith(".jsonl"))
        except OSError:
            return []

    def sizes(self):
        return {n: os.path.getsize(os.path.join(self.log_dir, n)) for n in self._names()}

    def read_new(self):
        found = []
        for name in self._names():
            found.extend(self._read(os.path.join(self.log_dir, name), name))
        return found

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


class Session:
    def __init__(self, config):
        self.log_dir = os.environ.get(_CHILD) or os.path.abspath(config.option.modlife_log_dir)
        self.fail_on = _fail_kinds(config.option.modlife_fail_on)
        self.tail = LogTail(self.log_dir, skip=_read_json(os.path.join(self.log_dir, _SESSION_START)))
        self.by_test = []      # (nodeid, phase, process, record)
        self.errors = []       # log lines that are no records
        # Start-up (conftest imports) belongs to no test: listed, fails the session.
        for process, record in self.tail.read_new():
            self.by_test.append(("session start", "setup", process, record))

    def _check(self, item, phase):
        found = self.tail.read_new()
        errors, self.tail.errors = self.tail.errors, []
        self.errors.extend(errors)
        if errors:
            pytest.fail("modlife: cannot read the logs: %s" % "; ".join(errors), pytrace=False)
        for process, record in found:
            self.by_test.append((item.nodeid, phase, process, record))
        failing = [(p, r) for p, r in found if r["kind"] in self.fail_on]
        if failing:
            pytest.fail("modlife: %d finding%s during %s:\n%s" % (
                len(failing), "" if len(failing) == 1 else "s", phase, render(failing)), pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):
        yield
        self._check(item, "setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        yield
        self._check(item, "call")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        yield
        self._check(item, "teardown")

    def pytest_sessionfinish(self, session):
        for process, record in self.tail.read_new():
            self.by_test.append(("session teardown", "teardown", process, record))
        _write_json(os.path.join(self.log_dir, _SESSION_END), self.tail.positions())
        self.errors.extend(self.tail.errors)
        if session.exitstatus == 0 and self.errors:
            session.exitstatus = 1
        if session.exitstatus == 0 and any(r["kind"] in self.fail_on and t.startswith("session ")
                                           for t, _, _, r in self.by_test):
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        tr.section("modlife")
        for error in self.errors:
            tr.write_line("modlife: cannot read the logs: %s" % error)
        suppressed = model.suppressed_line(model.suppression_counts(self.tail.processes.values()))
        if suppressed:
            tr.write_line(visible.terminal("modlife: " + suppressed))
        if not self.by_test:
            tr.write_line("no findings (logs in %s)" % self.log_dir)
            return
        for nodeid, phase, process, record in self.by_test:
            failing = "FAILED" if record["kind"] in self.fail_on else "listed"
            tr.write_line(visible.terminal("%s %s [%s] %s: %s" % (failing, record["kind"], phase, nodeid,
                                                                  record.get("message", ""))))
        tests = {t for t, _, _, _ in self.by_test}
        tr.write_line("modlife: %d finding%s in %d test%s; logs in %s (modlife report %s)" % (
            len(self.by_test), "" if len(self.by_test) == 1 else "s", len(tests), "" if len(tests) == 1 else "s",
            self.log_dir, self.log_dir))
