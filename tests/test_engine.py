"""The engine on real interpreters: control of extension calls through LD_PRELOAD
and LD_AUDIT, the lifetime log with stacks, subinterpreters, fork, threads."""
import json
import os
import re
import stat
import subprocess

import pytest

from modlife_testlib import (INTERPRETERS, events, frame_objects, function_names, modlife_command, object_paths, one,
                             preload_env, read_log, run_modlife, run_python, xxlimited_status)

XXLIMITED_SCRIPT = """
import gc, sys
import xxlimited
o = xxlimited.Xxo()
o.answer = 42
assert o.answer == 42
del o
del sys.modules["xxlimited"], xxlimited
gc.collect()                                   # DROP LINE
"""


def xxlimited_object_id(records):
    loads = [r for r in records if r["event"] == "object-load" and "xxlimited.cpython" in r["path"]]
    assert len(loads) == 1
    return loads[0]


@pytest.mark.parametrize("entry", ["preload", "audit"])
def test_xxlimited_lifecycle(interp, entry, tmp_path):
    records = run_python(interp, XXLIMITED_SCRIPT, tmp_path, entry=entry, status=xxlimited_status(interp)).records()

    start = records[0]
    assert start["event"] == "process-start" and start["entry"] == entry
    assert start["python"] == "%d.%d" % interp.version
    assert (start["libpython"] == "static") == interp.static_libpython

    xx = xxlimited_object_id(records)
    if entry == "preload":  # PyModuleDef_Init, PyModule_GetState, PyType_From*...
        assert xx["hooked_by"] == "got" and xx["patched"] >= 2
    else:  # its PLT is redirected by la_symbind64 as it binds
        assert xx["hooked_by"] == "got+audit"
    # Only extension objects are patched: never libpython or the executable.
    for r in events(records, "object-load"):
        if "libpython" in r["path"] or r["id"] == 0:
            assert "patched" not in r, r

    lifetime = [r for r in records if r.get("module") == "xxlimited" or r["event"].startswith("interp-")]
    kinds = [r["event"] for r in lifetime]
    first = kinds.index("module-create")
    assert kinds[first:first + 2] == ["module-create", "module-exec"]
    assert kinds.index("module-clear") < kinds.index("module-free")
    create = one(records, "module-create", module="xxlimited")
    clear = one(records, "module-clear", module="xxlimited")
    free = one(records, "module-free", module="xxlimited")
    assert create["instance"] == clear["instance"] == free["instance"]
    assert create["interp"] == 0 and create["init"] == "multi-phase"

    xxo = [r for r in events(records, "type-create") if r["type"] == "xxlimited.Xxo"][-1]
    assert xxo["gc"] is True
    if interp.version >= (3, 10):  # 3.9's xxlimited makes its types with PyType_FromSpec
        assert xxo["module"] == "xxlimited" and xxo["instance"] == create["instance"]
    # The type was made by the module's exec function, inside xxlimited.
    assert frame_objects(xxo, records)[0] == os.path.basename(xx["path"])
    if interp.symbols:
        assert function_names(xxo, records)[0] == "xx_modexec"
        assert "PyModule_ExecDef" in function_names(xxo, records)
        assert "module_clear" in function_names(clear, records)
        assert "module_dealloc" in function_names(free, records)
    else:
        assert "PyModule_ExecDef" in function_names(create, records)  # exported by the executable

    # The Python stack of the teardown points at the line that dropped the module.
    line = XXLIMITED_SCRIPT.splitlines().index("gc.collect()                                   # DROP LINE") + 1
    assert free["python_stack"][0] == {"file": "<string>", "line": line, "function": "<module>"}
    assert any(r["event"] == "type-dealloc" and r["type"] == "xxlimited.Xxo" for r in records)
    assert one(records, "interp-finalize", interp=0)["main"] is True
    assert records[-1]["event"] == "process-exit"
    findings = events(records, "finding")
    if interp.version == (3, 9):
        finding = one(records, "finding")
        assert finding["kind"] == "type-outlives-module" and finding["type"] == "xxlimited.Xxo"
        assert finding["stack"][0]["fn"] == "xx_modexec"  # at exit: where the type was made
    else:
        assert findings == []


def test_subinterpreter(interp, fixtures_for, tmp_path):
    path = fixtures_for("isolated")
    code = """
import _testcapi, isolated
isolated.lookup_state(3)
assert _testcapi.run_in_subinterp("import isolated; t = isolated.Thing(); isolated.lookup_state(5)") == 0
"""
    records = run_python(interp, code, tmp_path, pythonpath=path).records()
    creates = events(records, "module-create", module="isolated")
    assert len(creates) == 2, creates
    main, sub = sorted(creates, key=lambda r: r["interp"])
    assert main["interp"] == 0 and sub["interp"] > 0
    assert main["instance"] != sub["instance"]
    assert one(records, "interp-create", interp=sub["interp"])["main"] is False
    assert len(events(records, "interp-finalize", interp=sub["interp"])) == 1
    # Each instance has its own types and its own teardown, in its own interpreter.
    sub_types = [r for r in events(records, "type-create", module="isolated", instance=sub["instance"])]
    assert {r["type"] for r in sub_types} == {"isolated.Thing", "isolated.SubThing"}
    assert all(r["interp"] == sub["interp"] for r in sub_types)
    sub_free = one(records, "module-free", module="isolated", instance=sub["instance"])
    assert sub_free["interp"] == sub["interp"]
    assert sub_free["state_lookups"] >= 5
    # The subinterpreter ended before the main one tore its instance down.
    main_free = one(records, "module-free", module="isolated", instance=main["instance"])
    assert records.index(sub_free) < records.index(main_free)


def test_fork_child_gets_its_own_log(interp, fixtures_for, tmp_path):
    path = fixtures_for("isolated")
    code = """
import os, sys, isolated
isolated.lookup_state(2)
pid = os.fork()
if pid == 0:
    isolated.lookup_state(7)
    t = isolated.Thing()
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0
print(pid)
"""
    run = run_python(interp, code, tmp_path, pythonpath=path)
    child_pid = int(run.proc.stdout.split()[-1])
    assert len(run.logs) == 2
    logs = {read_log(p)[0]["pid"]: read_log(p) for p in run.logs}
    child = logs.pop(child_pid)
    (parent_pid, parent), = logs.items()
    start = child[0]
    assert start["forked"] is True and start["ppid"] == parent_pid
    # The child's log stands alone: objects and live records are written again.
    assert any("isolated" in r["path"] for r in events(child, "object-load"))
    inherited = one(child, "module-create", module="isolated")
    assert inherited["note"] == "inherited at fork"
    child_free = one(child, "module-free", module="isolated")
    assert child_free["instance"] == inherited["instance"]
    assert child_free["state_lookups"] >= 7
    assert one(parent, "module-free", module="isolated")["instance"] == inherited["instance"]


def test_threads_count_every_lookup(interp, fixtures_for, tmp_path):
    path = fixtures_for("isolated")
    code = """
import gc, sys, threading, isolated
threads = [threading.Thread(target=isolated.lookup_state, args=(10000,)) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
del sys.modules["isolated"], isolated
gc.collect()
"""
    records = run_python(interp, code, tmp_path, pythonpath=path).records()
    clear = one(records, "module-clear", module="isolated")
    # 80000 from the threads, plus the module's own few (exec, traverse by the GC).
    assert 80000 <= clear["state_lookups"] < 80100, clear["state_lookups"]


def test_cached_lookups_give_the_c_api_answers(interp, fixtures_for, tmp_path):
    """The lookups of the last module a thread looked up are answered from the module
    object and the type's ht_module: same state, same module, each counted, as the
    cache moves between two instances and a Python subclass takes the C API's way."""
    path = fixtures_for("bench_state")
    code = """
import gc, importlib.util, sys, bench_state as a
b = importlib.util.module_from_spec(a.__spec__); a.__spec__.loader.exec_module(b)
for i in range(3):
    for m in (a, b, a):
        m.get_state_loop(100); m.type_state_loop(100); m.module_by_def_loop(100)
assert (a.calls(), b.calls()) == (1200, 600), (a.calls(), b.calls())
assert a.calls_of(a.Obj()) == 1200 and b.calls_of(b.Obj()) == 600
if sys.version_info >= (3, 11):
    class Sub(b.Obj): pass
    assert a.calls_of(Sub()) == 600
    del Sub
del sys.modules["bench_state"], a, b
gc.collect()
"""
    records = run_python(interp, code, tmp_path, pythonpath=path).records()
    lookups = sorted(r["state_lookups"] for r in events(records, "module-free", module="bench_state"))
    # Each round of the three loops: 402 lookups (100 + 101 + 201).
    assert len(lookups) == 2
    assert 1206 <= lookups[0] < 1230 and 2412 <= lookups[1] < 2440, lookups


SUBCLASS_SCRIPT = """
import gc, isolated
class PyThing(isolated.Thing): pass
class PySubThing(isolated.SubThing): pass
objs = [cls() for cls in (isolated.Thing, isolated.SubThing, PyThing, PySubThing) for _ in range(50)]
cycle = isolated.Thing(); cycle2 = PySubThing(cycle); cycle.__class__  # noqa
del objs, cycle, cycle2
gc.collect()
print(sorted(isolated.counters().items()))
"""


def plain_and_watched(interp, script, path, tmp_path):
    """The script's run without modlife and its run under modlife."""
    plain = subprocess.run([interp.path, "-c", script], env=dict(os.environ, PYTHONPATH=path),
                           capture_output=True, text=True, check=True)
    return plain, run_python(interp, script, tmp_path, pythonpath=path)


def test_subclasses_run_each_original_slot_once(interp, fixtures_for, tmp_path):
    """tp_dealloc wrapped in a type is inherited by C and Python subclasses: every
    original still runs exactly once per object, as without modlife."""
    plain, watched = plain_and_watched(interp, SUBCLASS_SCRIPT, fixtures_for("isolated"), tmp_path)
    assert plain.stdout == "[('subthing_deallocs', 101), ('thing_deallocs', 202)]\n"
    assert watched.proc.stdout == plain.stdout
    assert "modlife" not in watched.proc.stderr


# Python subclasses come and go, new ones taking the addresses of dead ones: each
# instance must still reach its own base's tp_dealloc (not one remembered for a
# dead class at the same address).
SUBCLASS_CHURN_SCRIPT = """
import gc, isolated
for i in range(400):
    base = (isolated.Thing, isolated.SubThing)[i % 3 == 0]
    cls = type("Churned%d" % i, (base,), {})
    obj = cls()
    del obj, cls
    gc.collect()
print(sorted(isolated.counters().items()))
"""


def test_subclass_churn_reaches_each_own_slot(interp, fixtures_for, tmp_path):
    plain, watched = plain_and_watched(interp, SUBCLASS_CHURN_SCRIPT, fixtures_for("isolated"), tmp_path)
    assert plain.stdout == "[('subthing_deallocs', 134), ('thing_deallocs', 400)]\n"
    assert watched.proc.stdout == plain.stdout


def test_single_phase_and_static_type(interp, fixtures_for, tmp_path):
    path = fixtures_for("legacy")
    records = run_python(interp, "import legacy; assert legacy.ping() == 42", tmp_path,
                         pythonpath=path).records()
    create = one(records, "module-create", module="legacy")
    assert create["init"] == "single-phase"
    assert "PyInit_legacy" in function_names(create, records)
    ready = one(records, "type-ready", type="legacy.Legacy")
    assert ready["static"] is True and "PyInit_legacy" in function_names(ready, records)


LIFETIME = ("module-create", "module-exec", "module-clear", "module-free", "type-create", "type-dealloc",
            "type-ready")


def test_each_stack_is_written_once(interp, tmp_path):
    """Fifty imports from one line: one "stack" record for each distinct place, written
    before the first record that names it; the readers put the stacks back."""
    run = run_python(interp, "import sys\nfor i in range(50):\n    sys.modules.pop('xxlimited', None)\n"
                             "    import xxlimited\n", tmp_path, status=xxlimited_status(interp))
    raw = [json.loads(line) for line in open(run.logs[0])]
    defined, named = set(), []
    for r in raw:
        if r["event"] == "stack":
            assert r["id"] not in defined and r["stack"]
            defined.add(r["id"])
        elif r["event"] in LIFETIME:
            assert "stack" not in r and "python_stack" not in r
            if "stack_id" in r:
                assert r["stack_id"] in defined  # defined before it is named
                named.append(r)
    creates = [r for r in named if r["event"] == "module-create" and r["module"] == "xxlimited"]
    assert len(creates) == 50 and len({r["stack_id"] for r in creates}) == 1
    assert len(defined) < len(named) / 10
    records = read_log(run.logs[0])
    resolved = events(records, "module-create", module="xxlimited")
    assert all(r["python_stack"][-1] == {"file": "<string>", "line": 4, "function": "<module>"} for r in resolved)
    assert len({tuple(function_names(r, records)) for r in resolved}) == 1 and function_names(resolved[0], records)


def test_stack_ids_off_writes_stacks_inline(tmp_path):
    interp = INTERPRETERS[0]  # Debian's 3.11
    run = run_python(interp, "import xxlimited", tmp_path, env={"MODLIFE_OPTIONS": "stack_ids=0"})
    raw = [json.loads(line) for line in open(run.logs[0])]
    assert not [r for r in raw if r["event"] == "stack" or "stack_id" in r]
    create = one(raw, "module-create", module="xxlimited")
    assert function_names(create, raw) and create["python_stack"]


def test_stack_options(interp, tmp_path):
    records = run_python(interp, XXLIMITED_SCRIPT, tmp_path, status=xxlimited_status(interp),
                         extra_args=["--stack-depth", "3", "--no-python-stack"]).records()
    with_stacks = [r for r in records if "stack" in r]
    assert with_stacks
    assert all(1 <= len(r["stack"]) <= 3 for r in with_stacks)
    assert not any("python_stack" in r for r in records)


def test_relro_restored_after_patching(tmp_path, ext_root):
    """Patching makes the extension's RELRO pages writable only for the write."""
    from modlife_testlib import INTERPRETERS, require_interpreter
    interp = require_interpreter(next(i for i in INTERPRETERS if i.name == "pyenv-3.12.1"))
    code = """
import xxlimited
print(sorted(l.split()[1] for l in open("/proc/self/maps") if "xxlimited.cpython" in l))
"""
    plain = subprocess.run([interp.path, "-c", code], capture_output=True, text=True, check=True)
    watched = run_python(interp, code, tmp_path)

    def writable(perms):
        return [p for p in eval(perms) if "w" in p]
    # The same writable mappings as without modlife (mprotect may split read-only ones).
    assert writable(plain.stdout) == ["rw-p"]
    assert writable(watched.proc.stdout) == writable(plain.stdout)
    assert xxlimited_object_id(watched.records())["patched"] >= 2


def test_non_python_processes_are_untouched(tmp_path):
    run = run_modlife(["--", "/bin/sh", "-c", "echo hello; /bin/true"], tmp_path)
    assert run.proc.returncode == 0 and run.proc.stdout == "hello\n" and run.proc.stderr == ""
    assert run.logs == []
    # A Python process whose children are a shell tool and another Python.
    code = ("import subprocess, sys; subprocess.run(['/bin/true'], check=True);"
            "subprocess.run([sys.executable, '-c', 'import xxlimited'], check=True)")
    run = run_modlife(["--", "/usr/bin/python3.11", "-c", code], tmp_path / "tree")
    assert run.proc.returncode == 0, run.proc.stderr
    assert len(run.logs) == 2  # the two Pythons, not /bin/true
    argvs = [read_log(p)[0]["argv"] for p in run.logs]
    assert sorted(a[-1] for a in argvs) == sorted([code, "import xxlimited"])


def direct(env_options, args, tmp_path):
    env = preload_env(MODLIFE_OPTIONS=env_options)
    return subprocess.run(args, env=env, capture_output=True, text=True, cwd=str(tmp_path))


@pytest.mark.parametrize("options, message", [
    ("stack_depth=abc", "modlife: MODLIFE_OPTIONS: stack_depth=abc: expected an integer from 1 to 256"),
    ("colour=blue", "modlife: MODLIFE_OPTIONS: unknown option 'colour' (known: log_path, stack_depth,"),
    ("python_stack", "modlife: MODLIFE_OPTIONS: expected key=value, got 'python_stack'"),
])
def test_bad_option_is_a_clear_error(options, message, tmp_path):
    proc = direct(options, ["/usr/bin/python3.11", "-c", "print('ran')"], tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1
    # Processes that are not Python never read the options.
    assert direct(options, ["/bin/true"], tmp_path).returncode == 0


def test_unwritable_log_path_leaves_the_program_running(tmp_path):
    """The program is the user's: it runs on without modlife, which says so in one line."""
    proc = direct("log_path=%s/missing/dir/ml" % tmp_path, ["/usr/bin/python3.11", "-c", "print('ran')"],
                  tmp_path)
    assert proc.returncode == 0 and proc.stdout == "ran\n"
    assert re.fullmatch(r"modlife: cannot create the log file '%s/missing/dir/ml\.\d+\.jsonl': No such file or "
                        r"directory \(log_path must name a writable directory and file prefix\); this process runs "
                        r"without modlife\n" % re.escape(str(tmp_path)), proc.stderr), proc.stderr


def test_log_files_are_private_and_never_follow_symlinks(tmp_path):
    target = tmp_path / "target"
    target.write_text("untouched\n")
    prefix = tmp_path / "ml"
    # The shell plants a symlink where the log of the process it becomes would go.
    script = 'ln -s %s %s.$$.jsonl && exec /usr/bin/python3.11 -c "import xxlimited"' % (target, prefix)
    proc = direct("log_path=%s" % prefix, ["/bin/sh", "-c", script], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert target.read_text() == "untouched\n"
    logs = [p for p in tmp_path.iterdir() if p.name.endswith(".jsonl") and not p.is_symlink()]
    assert len(logs) == 1 and logs[0].name.endswith(".1.jsonl")
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    assert read_log(str(logs[0]))[0]["event"] == "process-start"


OWN_GIL_SCRIPT = """
import threading
try:
    import _interpreters as interpreters   # 3.13
except ImportError:
    import _xxsubinterpreters as interpreters  # 3.12
import isolated
code = "import isolated\\nfor i in range(50):\\n    isolated.lookup_state(1000)\\n    t = isolated.Thing()\\n"
ids = [interpreters.create() for _ in range(4)]   # each with a GIL of its own
threads = [threading.Thread(target=interpreters.run_string, args=(i, code)) for i in ids]
for t in threads: t.start()
for t in threads: t.join()
for i in ids: interpreters.destroy(i)
"""


@pytest.mark.parametrize("version", ["3.12.1", "3.13.0"])
def test_subinterpreters_with_their_own_gil(version, ext_root, tmp_path):
    """Four interpreters run the fixture at the same time: every instance, type and
    lookup is recorded, each in its own interpreter."""
    from modlife_testlib import INTERPRETERS, build_extension, require_interpreter
    interp = require_interpreter(next(i for i in INTERPRETERS if i.name == "pyenv-" + version))
    path = build_extension(interp, "isolated", str(ext_root / interp.name))
    records = run_python(interp, OWN_GIL_SCRIPT, tmp_path, pythonpath=path).records()
    subs = {r["interp"] for r in events(records, "interp-create")} - {0}
    assert len(subs) == 4
    assert {r["interp"] for r in events(records, "interp-finalize")} == subs | {0}
    frees = [r for r in events(records, "module-free", module="isolated") if r["interp"] in subs]
    assert sorted(r["interp"] for r in frees) == sorted(subs)
    # 50 x 1000 from lookup_state, and a few of the module's own.
    assert all(50000 <= r["state_lookups"] < 50100 for r in frees), [r["state_lookups"] for r in frees]
    assert len([r for r in events(records, "type-create") if r["interp"] in subs]) == 8


def test_creation_variants(interp, fixtures_for, tmp_path):
    path = fixtures_for("variants")
    code = """
import gc, importlib.machinery, variants
inner = variants.make_module(importlib.machinery.ModuleSpec("variants_inner", None))
d = variants.Derived()
assert isinstance(d, variants.Plain)
del d, inner
"""
    records = run_python(interp, code, tmp_path, pythonpath=path).records()
    outer = one(records, "module-create", module="variants")
    assert outer["init"] == "multi-phase"
    # Seen as the create slot returns, inside CPython.
    assert function_names(outer, records)[0] == "PyModule_FromDefAndSpec2"
    types = {r["type"]: r for r in events(records, "type-create") if r["type"].startswith("variants.")}
    expected = {"variants.Plain", "variants.Derived"} | ({"variants.FromMetaclass"} if interp.version >= (3, 12) else set())
    assert set(types) == expected
    # PyType_FromSpec in the exec slot: made for the module, but not bound to it.
    assert types["variants.Plain"]["module"] == "variants" and types["variants.Plain"]["bound"] is False
    if interp.version >= (3, 12):
        assert types["variants.FromMetaclass"]["instance"] == outer["instance"]
    inner = one(records, "module-create", module="variants_inner")
    assert "make_module" in function_names(inner, records)
    assert one(records, "module-free", module="variants_inner")["instance"] == inner["instance"]


def test_wrapped_traverse_slots_report_the_same_referents(interp, fixtures_for, tmp_path):
    path = fixtures_for("isolated")
    code = """
import gc, isolated
t = isolated.SubThing("payload")
print(sorted(repr(r) for r in gc.get_referents(t)))
print(sorted(repr(r) for r in gc.get_referents(isolated) if isinstance(r, type)))
"""
    plain = subprocess.run([interp.path, "-c", code], env=dict(os.environ, PYTHONPATH=path),
                           capture_output=True, text=True, check=True)
    assert "isolated.SubThing" in plain.stdout and "'payload'" in plain.stdout
    assert run_python(interp, code, tmp_path, pythonpath=path).proc.stdout == plain.stdout


def test_os_exit_writes_one_process_exit_record(interp, tmp_path):
    """os._exit goes through the library's _exit: one process-exit record, "how":
    "_exit", the status kept.  A vfork child whose exec fails (subprocess) calls _exit
    in the parent's memory: it must write nothing into the parent's log."""
    code = """
import os, subprocess
try:
    subprocess.run(["/nonexistent/program"])
except FileNotFoundError:
    pass
print("before", flush=True)
os._exit(3)
"""
    run = run_python(interp, code, tmp_path, status=3)
    assert run.proc.stdout == "before\n"
    logs = [read_log(p) for p in run.logs]
    parent = next(records for records in logs if not records[0]["forked"])
    assert [(r.get("how"), r.get("status")) for r in events(parent, "process-exit")] == [("_exit", 3)]
    for records in logs:   # a fork child (if not vfork) has its own log and its own record
        assert len(events(records, "process-exit")) == 1


@pytest.mark.parametrize("entry", ["preload", "audit"])
def test_file_line_lookups_load_libdw_unlogged(interp, entry, fixtures_for, tmp_path):
    """A report's first file:line lookup loads libdw (libelf, libz under it) for
    modlife, by the real dlopen: not an object of the program's, so no object-load
    records for them, none in the middle of the report (under LD_AUDIT, where the
    auditor sees every load, they would come at the program's next load)."""
    code = "import state_non_module as m\nm.Thing().bad_state()\n"
    run = run_python(interp, code, tmp_path, pythonpath=fixtures_for("state_non_module"), entry=entry)
    assert re.search(r"in Thing_bad_state \S*state_non_module\.c:\d+ ", run.proc.stderr), run.proc.stderr
    records = run.records()
    assert [r["kind"] for r in events(records, "finding")] == ["state-from-non-module"]
    loaded = [os.path.basename(p) for p in object_paths(records).values()]
    assert [name for name in loaded if name.startswith("state_non_module.")], loaded
    assert not [name for name in loaded if name.startswith(("libdw.", "libelf"))], loaded


@pytest.mark.parametrize("entry", ["preload", "audit"])
def test_verbosity_2_tells_each_extension_patched(interp, entry, tmp_path):
    """verbosity=2 (libmodlife(7)): where the log goes, then a line per extension
    object patched, as counted in its object-load record; verbosity=1: the first only."""
    said, records = {}, {}
    for level in (1, 2):
        run = run_python(interp, "import xxlimited", tmp_path / str(level), entry=entry,
                         env={"MODLIFE_OPTIONS": "verbosity=%d" % level}, status=xxlimited_status(interp))
        said[level] = [line for line in run.proc.stderr.splitlines() if line.startswith("modlife: ")]
        assert said[level][0] == "modlife: recording to %s" % run.logs[0], said[level]
        records[level] = run.records()
    assert len(said[1]) == 1, said[1]
    told = [re.fullmatch(r"modlife: (\d+) of the (\d+) C-API references of (.+) go to hooks \((.+)\)", line)
            for line in said[2][1:]]
    assert all(told), said[2]
    loads = {r["path"]: r for r in events(records[2], "object-load")}
    hooked_by = "got" if entry == "preload" else "got; its PLT at binding, LD_AUDIT"
    for m in told:
        assert loads[m.group(3)]["patched"] == int(m.group(1)) <= int(m.group(2)), m.group(0)
        assert m.group(4) == hooked_by
    xx = xxlimited_object_id(records[2])
    assert [m.group(3) for m in told].count(xx["path"]) == 1, said[2]


def test_exit_of_a_program_that_is_not_python_is_untouched(tmp_path):
    run = run_modlife(["--", "sh", "-c", "(exit 5); /nonexistent/program 2>/dev/null; exit 7"], tmp_path)
    assert run.proc.returncode == 7 and run.logs == []


def test_instances_count_per_module_name(interp, fixtures_for, tmp_path):
    """A module's first instance is #1 whatever was imported before it, and the tools
    keep apart instances of different modules that share a number."""
    code = """
import sys, isolated, finalize_state
del sys.modules["finalize_state"]
import finalize_state
"""
    run = run_python(interp, code, tmp_path, pythonpath=fixtures_for("isolated", "finalize_state"))
    creates = [(r["module"], r["instance"]) for r in events(run.records(), "module-create")
               if r["module"] in ("isolated", "finalize_state")]
    assert creates == [("isolated", 1), ("finalize_state", 1), ("finalize_state", 2)]
    lifetimes = subprocess.run([modlife_command(), "lifetimes", run.log_dir], capture_output=True, text=True,
                               check=True).stdout
    shown = re.findall(r"^  module +(isolated|finalize_state) #(\d+) ", lifetimes, re.M)
    assert shown == [("isolated", "1"), ("finalize_state", "1"), ("finalize_state", "2")], lifetimes


def test_types_made_in_a_single_phase_init_are_the_modules(interp, fixtures_for, tmp_path):
    """PyO3's way: PyType_FromSpec in PyInit, no module given, a "builtins." spec name.
    The type is the module's being initialised on that thread; one made later is none's."""
    code = "import pyo3_like; pyo3_like.make_type()"
    records = run_python(interp, code, tmp_path, pythonpath=fixtures_for("pyo3_like")).records()
    types = {r["type"]: (r.get("module"), r.get("instance"), r.get("bound")) for r in events(records, "type-create")
             if r["type"] in ("builtins.Thing", "builtins.Later")}
    assert types == {"builtins.Thing": ("pyo3_like", 1, False), "builtins.Later": (None, None, None)}


def test_pyo3_types_are_cryptographys(tmp_path):
    """python3-cryptography's _rust (PyO3 0.17): its types belong to its module."""
    interp = INTERPRETERS[0]
    if subprocess.run([interp.path, "-c", "import cryptography.hazmat.bindings._rust"]).returncode:
        pytest.skip("python3-cryptography is not installed")
    code = "from cryptography import x509; x509.ObjectIdentifier('1.2.3')"
    records = run_modlife(["--", interp.path, "-c", code], tmp_path).records()  # its own findings: any status
    types = {r["type"]: r for r in events(records, "type-create")}
    oid = types["builtins.ObjectIdentifier"]
    assert (oid["module"], oid["instance"], oid["bound"]) == ("_rust", 1, False)
    rust = [r for r in types.values() if r["type"].startswith("builtins.")]
    assert len(rust) > 1 and all(r.get("module") == "_rust" for r in rust)
