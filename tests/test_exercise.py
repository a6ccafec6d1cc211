"""`modlife exercise`: fixture extensions with lifecycle bugs give exactly their
findings, each in the step that shows it (tests/fixtures/exercise_bugs.c); a
correct isolated module (tests/fixtures/isolated.c, CPython's xxlimited) gives
nothing; a type leaked by its instances pins its module past its interpreter
(exercise_pinned.c); the HOWTO's opt-out is reported as opted out (exercise_optout.c); a step
that crashes is reported as crashed and the steps after it still run
(exercise_crash.c).  Then every extension module of CPython's lib-dynload and
Debian's kiwisolver, rapidjson, markupsafe, numpy and lxml, with CPython's known
findings suppressed (docs/known-findings.supp)."""
import json
import os
import subprocess

import pytest

from modlife_testlib import (FINDINGS_STATUS, HERE, INTERPRETERS, build_extension, modlife_command,
                             require_interpreter, require_module)

SUPPRESSIONS = os.path.join(os.path.dirname(HERE), "docs", "known-findings.supp")
# Debian's 3.11 (static libpython) and pyenv's 3.9 to 3.13; the -dbg build's
# lib-dynload is the same modules as Debian's 3.11.
MAIN = [i for i in INTERPRETERS if i.name != "debian-3.11-dbg"]
MAIN_IDS = [i.name for i in MAIN]
DEBIAN = next(i for i in INTERPRETERS if i.name == "debian-3.11")

STEPS = ["import", "instances", "second-module", "subinterp-legacy", "subinterp-isolated", "subinterp-threads",
         "subinterp-destroy-live", "reimport", "finalize"]


def exercise(interp, targets, tmp_path, pythonpath=None, extra=(), status=None, timeout=600):
    """modlife exercise --format json: (the process, its modules by name)."""
    env = dict(os.environ)
    env.pop("MODLIFE_OPTIONS", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([modlife_command(), "exercise", "--format", "json", "--python", interp.path,
                           "--log-dir", str(tmp_path / "logs")] + list(extra) + list(targets),
                          env=env, capture_output=True, text=True, timeout=timeout)
    if status is not None:
        assert proc.returncode == status, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, proc.stdout[-5000:], proc.stderr[-5000:])
    return proc, {m["module"]: m for m in json.loads(proc.stdout)} if proc.stdout.startswith("[") else {}


def outcomes(module):
    return {s["step"]: s["outcome"] for s in module["steps"]}


def step_kinds(module):
    return {s["step"]: sorted(s["findings"]) for s in module["steps"] if s["findings"]}


def isolated_outcome(interp):
    return "ran" if interp.version >= (3, 12) else "not supported"


def fixtures(interp, tmp_path, *names):
    out = str(tmp_path / "ext")
    for n in names:
        build_extension(interp, n, out)
    return out


@pytest.mark.parametrize("interp", INTERPRETERS, ids=[i.name for i in INTERPRETERS])
def test_bugs_reported_in_the_step_that_shows_them(interp, tmp_path):
    proc, found = exercise(interp, ["exercise_bugs"], tmp_path, fixtures(interp, tmp_path, "exercise_bugs"),
                           status=FINDINGS_STATUS)
    m = found["exercise_bugs"]
    assert outcomes(m) == dict({s: "ran" for s in STEPS}, **{"subinterp-isolated": isolated_outcome(interp)})
    kinds = step_kinds(m)
    xinterp = ["state-from-other-interpreter"]
    expected = {"instances": ["dealloc-missing-type-decref"], "subinterp-legacy": xinterp,
                "subinterp-threads": xinterp, "subinterp-destroy-live": xinterp, "finalize": ["type-outlives-module"]}
    if interp.version >= (3, 12):
        expected["subinterp-isolated"] = xinterp
    assert kinds == expected
    assert m["types_of_findings"] == ["exercise_bugs.Leaky"]  # the state findings name no type
    assert m["declares"]["init"] == "multi-phase"
    assert m["declares"].get("multiple_interpreters") == (2 if interp.version >= (3, 12) else None)
    assert m["verdict"].startswith("%d findings (" % sum(m["findings"].values()))


@pytest.mark.parametrize("interp", [DEBIAN, INTERPRETERS[-1]], ids=["debian-3.11", INTERPRETERS[-1].name])
def test_pinned_module(interp, tmp_path):
    """exercise_pinned.c: the leaked type keeps every module object alive."""
    require_interpreter(interp)
    _, found = exercise(interp, ["exercise_pinned"], tmp_path, fixtures(interp, tmp_path, "exercise_pinned"),
                        status=FINDINGS_STATUS)
    m = found["exercise_pinned"]
    assert outcomes(m) == dict({s: "ran" for s in STEPS}, **{"subinterp-isolated": isolated_outcome(interp)})
    assert step_kinds(m)["instances"] == ["dealloc-missing-type-decref"]


SUBINTERP_STEPS = ("subinterp-legacy", "subinterp-isolated", "subinterp-threads", "subinterp-destroy-live")


@pytest.mark.parametrize("interp", [DEBIAN, INTERPRETERS[-1]], ids=["debian-3.11", INTERPRETERS[-1].name])
def test_pinned_module_outlives_subinterpreter(interp, tmp_path):
    """Every subinterpreter's module outlives it; the library reports that once (one
    place: the module's exec, the same Python line), for the first interpreter it
    finds ended.  Debian's 3.11 sees the legacy one end; 3.13's _interpreters.destroy
    ends it inside libpython, unseen until exit, when the registry's order picks one:
    the finding is the step's that ran that interpreter (its id), not finalize's."""
    require_interpreter(interp)
    _, found = exercise(interp, ["exercise_pinned"], tmp_path, fixtures(interp, tmp_path, "exercise_pinned"),
                        status=FINDINGS_STATUS)
    m = found["exercise_pinned"]
    assert m["findings"] == {"dealloc-missing-type-decref": 1, "module-outlives-interpreter": 1}
    kinds = step_kinds(m)
    outlived = [s for s, k in kinds.items() if k == ["module-outlives-interpreter"]]
    assert len(outlived) == 1 and outlived[0] in SUBINTERP_STEPS, kinds
    if interp.version < (3, 12):
        assert outlived == ["subinterp-legacy"]
    assert kinds == {"instances": ["dealloc-missing-type-decref"], outlived[0]: ["module-outlives-interpreter"]}


@pytest.mark.parametrize("interp", INTERPRETERS, ids=[i.name for i in INTERPRETERS])
def test_isolated_module_is_clean(interp, tmp_path):
    proc, found = exercise(interp, ["isolated"], tmp_path, fixtures(interp, tmp_path, "isolated"), status=0)
    m = found["isolated"]
    assert outcomes(m) == dict({s: "ran" for s in STEPS}, **{"subinterp-isolated": isolated_outcome(interp)})
    assert m["findings"] == {} and m["verdict"] == "clean"
    assert sorted(m["types"]["made"]) == ["SubThing", "Thing"]
    threads = m["steps"][STEPS.index("subinterp-threads")]["detail"]
    assert threads == "2 %s interpreters at once" % ("isolated" if interp.version >= (3, 12) else "legacy")


@pytest.mark.parametrize("interp", [i for i in MAIN if i.name.startswith("pyenv-3.1")],
                         ids=[i.name for i in MAIN if i.name.startswith("pyenv-3.1")])
def test_xxlimited_is_clean(interp, tmp_path):
    """CPython's own example of an isolated module (3.10+; 3.9's keeps Xxo in a C global)."""
    proc, found = exercise(interp, ["xxlimited"], tmp_path, status=0)
    m = found["xxlimited"]
    assert m["verdict"] == "clean", proc.stdout
    assert outcomes(m) == dict({s: "ran" for s in STEPS}, **{"subinterp-isolated": isolated_outcome(interp)})


@pytest.mark.parametrize("interp", MAIN, ids=MAIN_IDS)
def test_opt_out_is_reported_as_opted_out(interp, tmp_path):
    proc, found = exercise(interp, ["exercise_optout"], tmp_path, fixtures(interp, tmp_path, "exercise_optout"),
                           status=0)
    m = found["exercise_optout"]
    refused = {s: "opted out" for s in ("second-module", "subinterp-legacy", "subinterp-threads",
                                        "subinterp-destroy-live", "reimport", "finalize")}
    # finalize imports again after the refused re-import: refused again, so it is opted out too.
    assert outcomes(m) == dict(refused, **{"import": "ran", "instances": "ran", "subinterp-isolated":
                                           "not declared" if interp.version >= (3, 12) else "not supported"})
    # Legacy subinterpreters do not check Py_mod_multiple_interpreters
    # (check_multi_interp_extensions is off): the exec refuses, in them too.
    details = {s["detail"] for s in m["steps"] if s["outcome"] == "opted out"}
    assert details == {"cannot load module more than once per process"}
    assert m["declares"].get("multiple_interpreters") == (0 if interp.version >= (3, 12) else None)
    assert m["verdict"] == "clean"


@pytest.mark.parametrize("interp", MAIN, ids=MAIN_IDS)
def test_crash_is_reported_and_later_steps_still_run(interp, tmp_path):
    proc, found = exercise(interp, ["exercise_crash"], tmp_path, fixtures(interp, tmp_path, "exercise_crash"),
                           status=FINDINGS_STATUS)
    m = found["exercise_crash"]
    crashed = {s: "crashed" for s in ("subinterp-legacy", "subinterp-threads", "subinterp-destroy-live")}
    isolated = "not declared" if interp.version >= (3, 12) else "not supported"
    assert outcomes(m) == dict({s: "ran" for s in STEPS}, **crashed, **{"subinterp-isolated": isolated})
    assert {s["detail"] for s in m["steps"] if s["outcome"] == "crashed"} == {"killed by SIGSEGV"}
    assert len(m["logs"]) == 4  # a new process after each crash
    assert m["verdict"] == "crashed in subinterp-legacy, subinterp-threads, subinterp-destroy-live"


@pytest.mark.parametrize("interp", MAIN, ids=MAIN_IDS)
def test_type_that_crashes_is_named_and_left_alone_later(interp, tmp_path):
    """The instances step dies in Fragile(): the report names it, and the later
    processes make the other type without it, so the later steps run."""
    proc, found = exercise(interp, ["exercise_fragile"], tmp_path, fixtures(interp, tmp_path, "exercise_fragile"),
                           status=FINDINGS_STATUS)
    m = found["exercise_fragile"]
    assert m["crashing"] == [{"type": "Fragile", "step": "instances"}]
    instances = next(s for s in m["steps"] if s["step"] == "instances")
    assert (instances["outcome"], instances["detail"]) == ("crashed", "killed by SIGSEGV in Fragile() or its use")
    isolated = "not declared" if interp.version >= (3, 12) else "not supported"
    assert outcomes(m) == dict({s: "ran" for s in STEPS}, instances="crashed", **{"subinterp-isolated": isolated})
    assert m["verdict"] == "crashed in instances"
    assert len(m["logs"]) == 2  # one new process, which went on to the end
    with open(os.path.join(m["logs"][1], "exercise.progress")) as f:
        tried = {json.loads(line).get("trying") for line in f} - {None}
    assert tried == {"Sturdy"}


def test_text_table(tmp_path):
    interp = require_interpreter(DEBIAN)
    path = fixtures(interp, tmp_path, "exercise_bugs", "isolated")
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("MODLIFE_OPTIONS", None)
    proc = subprocess.run([modlife_command(), "exercise", "--python", interp.path, "--log-dir", str(tmp_path / "l"),
                           "isolated", "exercise_bugs"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == FINDINGS_STATUS, proc.stderr
    out = proc.stdout
    assert out.index("== isolated (") < out.index("== exercise_bugs (")
    assert "declares: multi-phase, m_size 16, Py_mod_multiple_interpreters: none, Py_mod_gil: none\n" in out
    assert "\n  instances%sran%s1 dealloc-missing-type-decref\n" % (" " * 16, " " * 42) in out
    assert "verdict:  clean\n" in out
    assert out.endswith("modlife exercise: 2 modules, 1 clean, 1 failing: exercise_bugs\n")


def test_exitcode_and_errors(tmp_path):
    interp = require_interpreter(DEBIAN)
    path = fixtures(interp, tmp_path, "exercise_bugs")
    proc, _ = exercise(interp, ["exercise_bugs"], tmp_path, path, extra=["--exitcode", "7"], status=7)
    proc, found = exercise(interp, ["no_such_module_here"], tmp_path, status=2)
    assert proc.stderr == "modlife exercise: no_such_module_here: no module named 'no_such_module_here'\n"
    proc, found = exercise(interp, ["json"], tmp_path, status=2)
    assert proc.stderr == "modlife exercise: json: 'json' has no extension module\n"


def test_suppressions_and_timeout(tmp_path):
    interp = require_interpreter(DEBIAN)
    path = fixtures(interp, tmp_path, "exercise_bugs", "isolated")
    supp = tmp_path / "bugs.supp"
    supp.write_text("dealloc-missing-type-decref:exercise_bugs.Leaky\n")
    _, found = exercise(interp, ["exercise_bugs"], tmp_path, path, extra=["--suppressions", str(supp)],
                        status=FINDINGS_STATUS)
    m = found["exercise_bugs"]
    assert "instances" not in step_kinds(m) and m["suppressed"] > 0  # each dealloc that ran
    # A step that hangs is killed and reported; the steps after it run in a new process.
    hang = ("import inspect, time\n"
            "if any(f.function == 'step_reimport' for f in inspect.stack()): time.sleep(60)")
    proc, found = exercise(interp, ["isolated"], tmp_path, path, extra=["--timeout", "5", "--workload", hang],
                           status=FINDINGS_STATUS)
    m = found["isolated"]
    assert outcomes(m)["reimport"] == "timed out" and outcomes(m)["finalize"] == "ran"
    assert m["verdict"] == "timed out in reimport"


# lib-dynload: what CPython's own modules do that is not suppressed by
# docs/known-findings.supp (a crash cannot be suppressed): module -> {step: outcomes}.
LIB_DYNLOAD = {
    # 3.9's _asyncio.Future() without a loop makes one (a socketpair); destroying the
    # subinterpreter finalizes the socket, whose ResourceWarning reaches
    # Python/_warnings.c do_warn after the interpreter's warnings state is gone.
    (3, 9): {"_asyncio": {"subinterp-legacy": {"crashed"}}},
    # 3.12.1: Modules/_elementtree.c xmlparser_gc_clear frees the parser through the
    # module state's expat C-API (EXPAT(st, ParserFree)), already cleared when an
    # XMLParser kept in the module's globals dies at finalization (finalize-crash).
    # After legacy subinterpreters imported _decimal (below), a later
    # Py_NewInterpreterFromConfig may also crash in pymalloc_alloc
    # (Objects/obmalloc.c:1544).  _zoneinfo declares a per-interpreter GIL but needs
    # _datetime's C-API capsule, which an isolated interpreter does not get.
    (3, 12): {"_elementtree": {"finalize": {"crashed"}},
              "_zoneinfo": {s: {"failed"} for s in ("subinterp-isolated", "subinterp-threads",
                                                    "subinterp-destroy-live")}},
}


# 3.9-3.12: _decimal is single-phase and keeps its context variable in the C global
# current_context_var, made by the first interpreter; Decimal() in a subinterpreter
# (Modules/_decimal/_decimal.c current_context, 3.11.7: line 1696) may crash in
# PyContextVar_Get (Python/context.c:249) on the other interpreter's object - in
# 3.11.7 three runs in four without modlife, rarer under it, as memory reuse goes;
# what it corrupted may crash a later step.
DECIMAL = {"_decimal": {s: {"ran", "crashed"} for s in ("subinterp-legacy", "subinterp-threads",
                                                       "subinterp-destroy-live", "reimport", "finalize")}}


def lib_dynload(interp):
    code = "import os, sysconfig; print(os.path.join(sysconfig.get_path('platstdlib'), 'lib-dynload'))"
    path = subprocess.check_output([interp.path, "-c", code], text=True).strip()
    if not os.path.isdir(path):  # Debian's: under /usr/lib/python3.X
        path = "/usr/lib/python3.%d/lib-dynload" % interp.version[1]
    return path


@pytest.mark.parametrize("interp", MAIN, ids=MAIN_IDS)
def test_lib_dynload(interp, tmp_path):
    require_interpreter(interp)
    proc, found = exercise(interp, [lib_dynload(interp)], tmp_path, extra=["--suppressions", SUPPRESSIONS, "-j2"])
    assert len(found) > 40, proc.stderr
    expected = dict(DECIMAL if interp.version < (3, 13) else {}, **LIB_DYNLOAD.get(interp.version, {}))
    surprises = []
    for name, m in sorted(found.items()):
        allowed = expected.get(name, {})
        for s in m["steps"]:
            fine = allowed.get(s["step"], {"ran", "opted out", "not declared", "not applicable", "not supported"})
            if s["outcome"] not in fine:
                surprises.append("%s %s: %s %s" % (name, s["step"], s["outcome"], s["detail"]))
            # the crash handler's report cannot be suppressed
            crash = {"finalize-crash": 1} if s["outcome"] == "crashed" and "crashed" in fine else {}
            if s["findings"] and s["findings"] != crash:
                surprises.append("%s %s: findings %s" % (name, s["step"], s["findings"]))
    assert surprises == []
    crashed = any(o == "crashed" for m in found.values() for o in outcomes(m).values())
    assert proc.returncode == (FINDINGS_STATUS if crashed else 0), proc.stderr


KIWI_TYPES = ["kiwisolver." + t for t in ("Constraint", "Expression", "Solver", "Strength", "Term", "Variable")]


def test_debian_packages(tmp_path):
    """kiwisolver 1.4.4: six tp_deallocs without Py_DECREF(type), so each type
    outlives its module; rapidjson 1.4: static types in a multi-phase module (shared
    by every module object: seen on the second); markupsafe, numpy, lxml: nothing
    (numpy's and lxml's Cython modules refuse a second interpreter, as they say)."""
    interp = require_interpreter(DEBIAN)
    for module, package in (("kiwisolver", "python3-kiwisolver"), ("rapidjson", "python3-rapidjson"),
                            ("markupsafe", "python3-markupsafe"), ("numpy", "python3-numpy"), ("lxml", "python3-lxml")):
        require_module(interp, module, package)
    proc, found = exercise(interp, ["kiwisolver", "rapidjson", "markupsafe", "numpy", "lxml"], tmp_path,
                           extra=["-j2"], status=FINDINGS_STATUS)
    kiwi = found.pop("kiwisolver._cext")
    # One per bug (as modlife report groups them), whichever module instance showed
    # it: each type outlives its module; -v after a subinterpreter imported it makes
    # a Term of that interpreter's type (test_kiwisolver_cross_interpreter_types),
    # whose module was freed (the 7th type-outlives-module, at that tp_alloc).  When
    # the two subinterpreters of subinterp-threads overlap, one may make a Term of
    # the other's type too (another place: one more of each).
    once = {"dealloc-missing-type-decref": 6, "type-from-other-interpreter": 1, "type-outlives-module": 7}
    assert kiwi["findings"] in (once, dict(once, **{"type-from-other-interpreter": 2, "type-outlives-module": 8}))
    if kiwi["findings"] != once:
        assert "type-from-other-interpreter" in step_kinds(kiwi)["subinterp-threads"]
    assert kiwi["types_of_findings"] == KIWI_TYPES
    assert step_kinds(kiwi)["finalize"] == ["type-outlives-module"]
    rapidjson = found.pop("rapidjson")
    assert step_kinds(rapidjson) == {"second-module": ["static-type-in-multiphase-module"]}
    assert rapidjson["types_of_findings"] == ["rapidjson." + t for t in ("Decoder", "Encoder", "RawJSON", "Validator")]
    assert found.pop("markupsafe._speedups")["verdict"] == "clean"
    assert len([n for n in found if n.startswith("numpy.")]) >= 15
    assert len([n for n in found if n.startswith("lxml.")]) >= 5
    for name, m in found.items():
        assert m["verdict"] == "clean", (name, m)
        assert outcomes(m)["subinterp-legacy"] == "opted out", name
        assert "Interpreter change detected" in m["steps"][STEPS.index("subinterp-legacy")]["detail"]


def test_kiwisolver_cross_interpreter_types(tmp_path):
    """kiwisolver keeps its types in C globals (Term::TypeObject...) that each exec
    overwrites: once a subinterpreter imported it, the main interpreter's -Variable()
    makes a Term of the subinterpreter's type (the exercise's number operators)."""
    interp = require_interpreter(DEBIAN)
    require_module(interp, "kiwisolver", "python3-kiwisolver")
    _, found = exercise(interp, ["kiwisolver"], tmp_path, status=FINDINGS_STATUS)
    m = found["kiwisolver._cext"]
    assert m["findings"]["type-from-other-interpreter"] in (1, 2)  # 2: see test_debian_packages
    assert "type-from-other-interpreter" in step_kinds(m)["subinterp-legacy"]


@pytest.mark.parametrize("interp", [DEBIAN, INTERPRETERS[-1]], ids=["debian-3.11", INTERPRETERS[-1].name])
def test_stale_class_made_by_a_c_global(interp, tmp_path):
    """exercise_stale.c: make() makes the first import's Box (a C global set once), as
    markupsafe's escape() makes its Markup.  The exercise checks the classes of what
    the workload made against the module's: one finding, in each step that showed it."""
    require_interpreter(interp)
    path = fixtures(interp, tmp_path, "exercise_stale")
    _, found = exercise(interp, ["exercise_stale"], tmp_path, path, extra=["--workload", "m.make()"],
                        status=FINDINGS_STATUS)
    m = found["exercise_stale"]
    stale = ("subinterp-legacy", "subinterp-threads", "subinterp-destroy-live", "reimport")
    assert step_kinds(m) == {s: ["type-from-other-interpreter"] for s in stale}
    assert m["findings"] == {"type-from-other-interpreter": 1} and m["types_of_findings"] == ["exercise_stale.Box"]
    # Bound to a name: the same; the module's own Box: nothing.
    _, found = exercise(interp, ["exercise_stale"], tmp_path / "name", path, extra=["--workload", "x = m.make()"],
                        status=FINDINGS_STATUS)
    assert found["exercise_stale"]["findings"] == {"type-from-other-interpreter": 1}
    _, found = exercise(interp, ["exercise_stale"], tmp_path / "own", path, extra=["--workload", "x = m.Box()"],
                        status=0)
    assert found["exercise_stale"]["verdict"] == "clean"


def test_markupsafe_stale_markup_after_reimport(tmp_path):
    """markupsafe's _speedups (single-phase) keeps markupsafe.Markup in a C global set
    once: after markupsafe is imported again, escape() still makes the dropped
    module's Markup (and a subinterpreter's escape() the main interpreter's).  Only a
    call shows it: --workload calls escape, and the exercise checks the class of
    what it made against its module's (the library cannot see a Python class called
    through PyObject_CallFunctionObjArgs).  One bug, listed in each step that showed it."""
    interp = require_interpreter(DEBIAN)
    require_module(interp, "markupsafe", "python3-markupsafe")
    proc, found = exercise(interp, ["markupsafe"], tmp_path, extra=["--workload", "m.escape('<')"],
                           status=FINDINGS_STATUS)
    m = found["markupsafe._speedups"]
    assert outcomes(m)["reimport"] == "ran"
    stale = ("subinterp-legacy", "subinterp-threads", "subinterp-destroy-live", "reimport")
    assert step_kinds(m) == {s: ["type-from-other-interpreter"] for s in stale}
    assert m["findings"] == {"type-from-other-interpreter": 1}
    assert m["types_of_findings"] == ["markupsafe.Markup"]
    assert m["verdict"] == "1 finding (1 error: type-from-other-interpreter)"
    # A workload whose values are of the module's own classes gives nothing.
    proc, found = exercise(interp, ["markupsafe"], tmp_path / "own", status=0,
                           extra=["--workload", "import markupsafe as k; x = k.Markup('<')"])
    assert found["markupsafe._speedups"]["verdict"] == "clean"


def test_markupsafe_workload_sees_stale_markup(tmp_path):
    interp = require_interpreter(DEBIAN)
    require_module(interp, "markupsafe", "python3-markupsafe")
    check = "import markupsafe; assert type(m.escape('<')) is markupsafe.Markup, 'stale Markup'"
    proc, found = exercise(interp, ["markupsafe"], tmp_path, extra=["--workload", check], status=0)
    m = found["markupsafe._speedups"]
    stale = ("subinterp-legacy", "subinterp-threads", "subinterp-destroy-live", "reimport")
    assert {s: outcomes(m)[s] for s in stale} == {s: "failed" for s in stale}
    assert {s["detail"] for s in m["steps"] if s["step"] in stale} == {"AssertionError: stale Markup"}
    assert m["verdict"] == "failed in " + ", ".join(stale)


def test_pytest_hook(tmp_path):
    """--modlife-exercise=PKG: one test per extension module, failing with the table."""
    interp = require_interpreter(DEBIAN)
    path = fixtures(interp, tmp_path, "exercise_bugs", "isolated")
    tools = os.path.join(os.path.dirname(HERE), "tools", "python")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tools, path]))
    env.pop("MODLIFE_OPTIONS", None)
    proc = subprocess.run([interp.path, "-m", "pytest", "-p", "modlife.pytest_plugin", "-p", "no:cacheprovider",
                           "--modlife-exercise=isolated", "--modlife-exercise=exercise_bugs",
                           "--modlife-log-dir", str(tmp_path / "logs"), "-q", "-rA", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "PASSED modlife-exercise::isolated" in out
    assert "FAILED modlife-exercise::exercise_bugs" in out
    assert "1 failed, 1 passed" in out
    assert "\n  instances%sran%s1 dealloc-missing-type-decref\n" % (" " * 16, " " * 42) in out
