"""Helpers for modlife's tests: the interpreters to test against, building fixture
extensions for each, running Python under `modlife run`, and reading its logs."""
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")


def pyenv_root():
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


@dataclass
class Interpreter:
    name: str
    path: str
    static_libpython: bool = False
    symbols: bool = True  # are CPython's own functions named in native frames?
    info: dict = field(default_factory=dict)

    def query(self):
        if not self.info:
            code = ("import json, sys, sysconfig; print(json.dumps({'include': sysconfig.get_paths()['include'],"
                    " 'suffix': sysconfig.get_config_var('EXT_SUFFIX'), 'version': sys.version_info[:2]}))")
            self.info = json.loads(subprocess.check_output([self.path, "-c", code], text=True))
        return self.info

    @property
    def version(self):
        return tuple(self.query()["version"])

    def __str__(self):
        return self.name


def interpreters():
    """Every interpreter the suite runs on (README, Layout: tests/): Debian's (static
    libpython, and -dbg) and pyenv's."""
    found = [
        Interpreter("debian-3.11", "/usr/bin/python3.11", static_libpython=True, symbols=False),
        Interpreter("debian-3.11-dbg", "/usr/bin/python3.11-dbg", static_libpython=True),
    ]
    for version in ("3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"):
        minor = version.rsplit(".", 1)[0]
        found.append(Interpreter("pyenv-" + version,
                                 os.path.join(pyenv_root(), "versions", version, "bin", "python" + minor)))
    return found


INTERPRETERS = interpreters()
INTERPRETER_IDS = [i.name for i in INTERPRETERS]

# What the suite can use but a machine with gcc and one Python may lack (other
# interpreters, gdb, valgrind, chromium, setpriv, pgrep, groff, Debian's extension packages): a test
# that needs a missing one is skipped with this prefix in its reason, and conftest.py
# lists each such reason once at the end of the run.
NOT_COVERED = "not covered: "


def skip_missing(what, why):
    pytest.skip("%s%s (%s)" % (NOT_COVERED, what, why))


def require_interpreter(interp):
    if not os.access(interp.path, os.X_OK):
        skip_missing(interp.name, "missing at %s" % interp.path)
    return interp


# The Debian package of each tool, for the skip reason.
TOOL_PACKAGES = {"gdb": "gdb", "valgrind": "valgrind", "chromium": "chromium", "setpriv": "util-linux",
                 "pgrep": "procps", "groff": "groff-base"}


def require_tool(name):
    """The tool's path; found on PATH only, so that a reduced PATH shows what a
    machine without it runs."""
    path = shutil.which(name)
    if not path:
        skip_missing(name, "not on PATH; Debian package %s" % TOOL_PACKAGES.get(name, name))
    return path


def path_without(where, hidden):
    """A PATH of one new directory, where: a link to every program of this PATH but
    those whose names start with one of hidden (a machine without them)."""
    os.makedirs(where)
    for d in os.environ["PATH"].split(os.pathsep):
        for name in os.listdir(d) if os.path.isdir(d) else ():
            link = os.path.join(where, name)
            if not name.startswith(tuple(hidden)) and not os.path.lexists(link):
                os.symlink(os.path.join(d, name), link)
    return where


def require_module(interp, module, package):
    """Skips unless interp imports module (a Debian package such as python3-numpy)."""
    require_interpreter(interp)
    found = subprocess.run([interp.path, "-c", "import importlib.util, sys; "
                            "sys.exit(importlib.util.find_spec(sys.argv[1]) is None)", module],
                           capture_output=True, timeout=60)
    if found.returncode != 0:
        skip_missing(package, "not installed for %s" % interp.path)


def build_extension(interp, source, out_dir, name=None):
    """Compile fixtures/<source>.c as an extension module for interp into out_dir."""
    name = name or source
    info = interp.query()
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, name + info["suffix"])
    if not os.path.exists(target):
        subprocess.run(["cc", "-shared", "-fPIC", "-g", "-Wall", "-Werror",
                        "-Wno-unused-parameter", "-O0", "-fno-inline", "-I" + info["include"],
                        os.path.join(FIXTURES, source + ".c"), "-o", target],
                       check=True)
    return out_dir


def modlife_command():
    cmd = os.environ.get("MODLIFE")
    if not cmd or not os.access(cmd, os.X_OK):
        raise RuntimeError("MODLIFE must name the built tools/modlife (run the tests with `make check`)")
    return cmd


def library_path():
    return os.path.join(os.environ["MODLIFE_LIBDIR"], "libmodlife.so")


# A library built with --enable-sanitizers (make check passes the runtime's path).
SANITIZED = bool(os.environ.get("MODLIFE_SANITIZER_PRELOAD"))


def preload_env(**extra):
    """os.environ plus extra, preloading the library directly as a user would (after
    the sanitizer runtime, in a sanitized build)."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "python"))
    from modlife import locate
    env = dict(os.environ, **extra)
    env.pop("LD_PRELOAD", None)
    return locate.preload_environment(env, library_path())


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    log_dir: str

    @property
    def logs(self):
        return sorted(os.path.join(self.log_dir, n) for n in os.listdir(self.log_dir) if n.endswith(".jsonl"))

    def records(self):
        """Records of the single log of this run."""
        logs = self.logs
        assert len(logs) == 1, "expected one log, got %s\nstderr:\n%s" % (logs, self.proc.stderr)
        return read_log(logs[0])


def run_modlife(args, log_dir, env=None, cwd=None, timeout=120):
    full_env = dict(os.environ)
    full_env.pop("MODLIFE_OPTIONS", None)
    full_env.update(env or {})
    proc = subprocess.run([modlife_command(), "run", "--quiet", "--log-dir", str(log_dir)] + args,
                          env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return Run(proc, str(log_dir))


FINDINGS_STATUS = 23  # MODLIFE_OPTIONS exitcode default


def run_python(interp, code, log_dir, pythonpath=None, entry="preload", env=None, extra_args=(), status=0):
    env = dict(env or {})
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    args = (["--audit"] if entry == "audit" else []) + list(extra_args) + ["--", interp.path, "-c", code]
    run = run_modlife(args, log_dir, env=env)
    assert run.proc.returncode == status, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
        run.proc.returncode, run.proc.stdout, run.proc.stderr)
    return run


# Source for test programs: create(), a new subinterpreter with its own GIL, through
# 3.13's _interpreters or the older _xxsubinterpreters (as interpreters).
CREATE_ISOLATED_SUBINTERPRETER = '''\
try:
    import _interpreters as interpreters
    def create():
        return interpreters.create(interpreters.new_config("isolated"))
except ImportError:
    import _xxsubinterpreters as interpreters
    def create():
        return interpreters.create(isolated=True)
'''


def xxlimited_status(interp):
    """3.9's xxlimited keeps its Xxo type in a C global: a real type-outlives-module."""
    return FINDINGS_STATUS if interp.version == (3, 9) else 0


def read_log(path):
    """The records of a log, as the tools see them: each lifetime record's "stack_id"
    replaced by the stacks of the "stack" record it names (those left out).  A last
    line without its newline is a record cut short, or the zeros the library's file
    grows ahead of its records when the process did not exit normally: not read."""
    with open(path) as f:
        return resolve_stacks([json.loads(line) for line in f if line.endswith("\n")])


def resolve_stacks(raw):
    stacks, records = {}, []
    for r in raw:
        if r["event"] == "stack":
            stacks[r["id"]] = {k: r[k] for k in ("stack", "python_stack") if k in r}
            continue
        if "stack_id" in r:
            r = dict(r, **stacks[r["stack_id"]])
            del r["stack_id"]
        records.append(r)
    return records


def events(records, event, **match):
    return [r for r in records if r["event"] == event and all(r.get(k) == v for k, v in match.items())]


def one(records, event, **match):
    found = events(records, event, **match)
    assert len(found) == 1, "expected one %s %s, got %d" % (event, match, len(found))
    return found[0]


def function_names(record, records):
    """The function of each native frame of record as the tools name it: the run
    writes lifetime records' frames unnamed, and they are named from the log's
    object-load records (modlife.symbolize, as `modlife events` does)."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "python"))
    from modlife import symbolize
    loads = {r["id"]: r for r in records if r["event"] == "object-load"}
    return [f.get("fn") or ("off" in f and symbolize.function_name(loads.get(f.get("obj")), int(f["off"], 16)))
            or None for f in record.get("stack", [])]


def object_paths(records):
    return {r["id"]: r["path"] for r in records if r["event"] == "object-load"}


def frame_objects(record, records):
    paths = object_paths(records)
    return [os.path.basename(paths.get(f.get("obj"), "?")) for f in record.get("stack", [])]
