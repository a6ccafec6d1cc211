"""One report per bug and place: a bug of a type's slot (dealloc-missing-type-decref,
traverse-missing-type-visit) is the slot function's, reported once whatever instance,
module instance, interpreter, subclass or Python line met it, and `modlife report`
groups it across processes."""
import json
import os
import re

import pytest

from modlife_testlib import FINDINGS_STATUS, INTERPRETERS, events, read_log, run_modlife, require_module, run_python

# Debian's static 3.11 and pyenv's shared 3.13.
pytestmark = pytest.mark.parametrize("interp", [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")],
                                     ids=str)

# Leaky's tp_dealloc (dealloc_leaky) and Blind's tp_traverse (traverse_without_type)
# met from many places: lines, a function, a subclass, a second type object, a second
# module instance and a subinterpreter.
MANY_PLACES = """
import gc, sys, _testcapi, heap_type_slots as h
T = h.make_types(["Leaky"])["Leaky"]
def free_one():
    x = T(); del x
x = T(); del x
free_one()
class Sub(T): pass
s = Sub(); del s
y = h.make_types(["Leaky"])["Leaky"](); del y
B = h.make_types(["Blind"])["Blind"]
b = B(); gc.collect()
b2 = h.make_types(["Blind"])["Blind"](); gc.collect()
del sys.modules["heap_type_slots"]
import heap_type_slots as h2
z = h2.make_types(["Leaky"])["Leaky"](); del z
b3 = h2.make_types(["Blind"])["Blind"](); gc.collect()
assert _testcapi.run_in_subinterp(
    "import gc, heap_type_slots as h\\n"
    "x = h.make_types(['Leaky'])['Leaky'](); del x\\n"
    "b = h.make_types(['Blind'])['Blind'](); gc.collect()") == 0
"""

SLOT_KINDS = ("dealloc-missing-type-decref", "traverse-missing-type-visit")
LEAKY_MESSAGE = "tp_dealloc dealloc_leaky of type 'heap_type_slots.Leaky' does not Py_DECREF its type"
BLIND_MESSAGE = "tp_traverse traverse_without_type of heap type 'heap_type_slots.Blind' does not visit Py_TYPE(self)"


def slot_findings(records):
    return [(r["kind"], r.get("type"), r.get("slot"), r.get("slot_function"), r["message"])
            for r in events(records, "finding") if r["kind"] in SLOT_KINDS]


def stderr_headlines(stderr):
    return re.findall(r"==\d+==(?:ERROR|WARNING): modlife: ((?:%s): .*)" % "|".join(SLOT_KINDS), stderr)


EXPECTED = [
    ("dealloc-missing-type-decref", "heap_type_slots.Leaky", "tp_dealloc", "dealloc_leaky", LEAKY_MESSAGE),
    ("traverse-missing-type-visit", "heap_type_slots.Blind", "tp_traverse", "traverse_without_type", BLIND_MESSAGE),
]


def test_slot_bug_reported_once_per_slot_function(interp, fixtures_for, tmp_path):
    path = fixtures_for("heap_type_slots")
    run = run_python(interp, MANY_PLACES, tmp_path, pythonpath=path, status=FINDINGS_STATUS)
    assert slot_findings(run.records()) == EXPECTED, run.proc.stderr
    assert stderr_headlines(run.proc.stderr) == [
        "dealloc-missing-type-decref: " + LEAKY_MESSAGE, "traverse-missing-type-visit: " + BLIND_MESSAGE]
    # The stderr report tells how to fix it, as `modlife report` does.
    fixes = re.findall(r"\nRule: .*\n(Fix: .*)\nSUMMARY: modlife: (\S+)", run.proc.stderr)
    # The Leaky type that the subinterpreter's instance leaked holds its module past
    # the subinterpreter's end (module-outlives-interpreter, caused by the same dealloc).
    assert fixes[2:] == [("Fix: Fix the dealloc-missing-type-decref of tp_dealloc dealloc_leaky (Py_DECREF(tp) after "
                          "tp->tp_free(self)): the references it leaks keep the type, and the module it holds, alive "
                          "past the interpreter.", "module-outlives-interpreter")]
    assert fixes[:2] == [("Fix: In tp_dealloc: PyTypeObject *tp = Py_TYPE(self); ... tp->tp_free(self); Py_DECREF(tp);",
                      "dealloc-missing-type-decref"),
                     ("Fix: Start tp_traverse with Py_VISIT(Py_TYPE(self)); when it delegates to a base type's "
                      "tp_traverse, make sure the type is visited exactly once.", "traverse-missing-type-visit")]


def test_plugin_places_logged_but_printed_once(interp, fixtures_for, tmp_path):
    """With dedup_python_frames above 1 (the pytest plugin's 256) each Python place is
    logged, so each test sees its finding, and still printed once."""
    path = fixtures_for("heap_type_slots")
    run = run_python(interp, MANY_PLACES, tmp_path, pythonpath=path, status=FINDINGS_STATUS,
                     env={"MODLIFE_OPTIONS": "dedup_python_frames=256"})
    records = run.records()
    leaky = [r for r in events(records, "finding") if r["kind"] == SLOT_KINDS[0]]
    assert set(slot_findings(records)) == set(EXPECTED)
    # Python places of Leaky's dealloc: module line, free_one, subclass line, second
    # type (the line after the subclass's: adjacent lines were one place now and then),
    # second module instance, subinterpreter.
    places = [(r["python_stack"][0]["line"], r["python_stack"][0]["function"]) for r in leaky]
    assert places == [(6, "<module>"), (5, "free_one"), (9, "<module>"), (10, "<module>"), (16, "<module>"),
                      (2, "<module>")]
    assert stderr_headlines(run.proc.stderr) == [
        "dealloc-missing-type-decref: " + LEAKY_MESSAGE, "traverse-missing-type-visit: " + BLIND_MESSAGE]


def test_report_groups_slot_bug_across_processes(interp, fixtures_for, tmp_path):
    path = fixtures_for("heap_type_slots")
    code = ("import subprocess, sys\n"
            "assert subprocess.run([sys.executable, '-c', %r]).returncode == 23\n" % MANY_PLACES + MANY_PLACES)
    run = run_python(interp, code, tmp_path / "logs", pythonpath=path, status=FINDINGS_STATUS)
    assert len(run.logs) == 2
    assert len(stderr_headlines(run.proc.stderr)) == 4  # two per process
    report = run_modlife_report(["--format", "json", str(tmp_path / "logs")])
    groups = [(g["kind"], g["type"], g["slot_function"], g["count"], len(g["pids"]))
              for g in json.loads(report)["findings"] if g["kind"] in SLOT_KINDS]
    assert groups == [(k, t, fn, 2, 2) for k, t, _, fn, _ in EXPECTED]
    text = run_modlife_report([str(tmp_path / "logs")])
    assert text.count("Seen 2 times in 2 processes") >= 2
    assert text.count("SUMMARY: modlife: dealloc-missing-type-decref") == 1


def run_modlife_report(args):
    from modlife_testlib import modlife_command
    import subprocess
    proc = subprocess.run([modlife_command(), "report"] + args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# kiwisolver 1.4.4 (Debian's python3-kiwisolver, for /usr/bin/python3.11): six heap
# types whose tp_dealloc forgets Py_DECREF(type), each met many times by its workload.
KIWI_WORKLOAD = """
import kiwisolver as kiwi
x = kiwi.Variable("x"); y = kiwi.Variable("y")
s = kiwi.Solver()
s.addConstraint((x + y == 10) | "required")
s.addConstraint(x >= 2 * y)
s.addConstraint((x <= 100) | "weak")
s.addEditVariable(x, "strong")
for v in range(3, 8):
    s.suggestValue(x, v)
    s.updateVariables()
assert (x.value(), y.value()) == (7.0, 3.0), (x.value(), y.value())
"""
KIWI_TYPES = ["kiwisolver." + t for t in ("Constraint", "Expression", "Solver", "Strength", "Term", "Variable")]


def test_kiwisolver_one_report_per_dealloc(interp, tmp_path):
    if interp.name != "debian-3.11":
        pytest.skip("python3-kiwisolver is built for Debian's python3.11")
    require_module(interp, "kiwisolver", "python3-kiwisolver")
    run = run_python(interp, KIWI_WORKLOAD, tmp_path, status=FINDINGS_STATUS)
    found = [r for r in events(run.records(), "finding") if r["kind"] == "dealloc-missing-type-decref"]
    assert sorted(r["type"] for r in found) == KIWI_TYPES, [r["message"] for r in found]
    for r in found:
        assert r["slot"] == "tp_dealloc"
        assert re.fullmatch(r"tp_dealloc %s of type '%s' does not Py_DECREF its type"
                            % (re.escape(r["slot_function"]), re.escape(r["type"])), r["message"])
    assert len({r["slot_function"] for r in found}) == 6
    headlines = [h for h in stderr_headlines(run.proc.stderr) if h.startswith("dealloc-")]
    assert len(headlines) == 6


# -- names in stripped objects ---------------------------------------------------------

def stripped_extension(interp, ext_root):
    """fixtures/stripped_slots.c built, then stripped as Debian strips its packages."""
    from modlife_testlib import build_extension
    import subprocess
    out = build_extension(interp, "stripped_slots", str(ext_root / interp.name / "stripped"))
    path = os.path.join(out, "stripped_slots" + interp.query()["suffix"])
    subprocess.run(["strip", "--strip-unneeded", path], check=True)
    symbols = {}
    for line in subprocess.run(["nm", "-D", "--defined-only", "-S", path], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 4:
            symbols[fields[3]] = (int(fields[0], 16), int(fields[1], 16))
    return out, path, symbols


def test_stripped_object_frames_named_inside_symbols_only(interp, ext_root, tmp_path):
    out, path, symbols = stripped_extension(interp, ext_root)
    name = os.path.basename(path)
    run = run_python(interp, "import stripped_slots as s\nx = s.Leaky(); del x", tmp_path / "logs",
                     pythonpath=out, status=FINDINGS_STATUS)
    finding = events(run.records(), "finding", kind="dealloc-missing-type-decref")
    assert len(finding) == 1
    finding = finding[0]
    # The dealloc is the static function right after the small exported one.
    tiny_addr, tiny_size = symbols["stripped_slots_tiny"]
    dealloc = int(finding["stack"][0]["off"], 16) - 1
    assert dealloc == tiny_addr + tiny_size, (symbols, finding["stack"][0])
    # The library (instrument/symbolize.c): no name for it, the exported exec is named.
    assert "fn" not in finding["stack"][0]
    assert finding["slot_function"] == "%s+0x%x" % (name, dealloc)
    assert finding["message"] == ("tp_dealloc %s+0x%x of type 'stripped_slots.Leaky' does not Py_DECREF its type"
                                  % (name, dealloc))
    assert finding["context"][0]["stack"][0]["fn"] == "stripped_slots_exec"
    summary = "SUMMARY: modlife: dealloc-missing-type-decref in %s+0x%x (module stripped_slots) " \
              "(type stripped_slots.Leaky)" % (name, dealloc + 1)
    assert re.search(r"\n    #0 0x[0-9a-f]+ in \?\? \(%s\+0x%x\)\n" % (re.escape(name), dealloc + 1), run.proc.stderr)
    assert summary in run.proc.stderr.splitlines()
    # The tools (symbolize.py), through addr2line that would say stripped_slots_tiny.
    doc = json.loads(run_modlife_report(["--format", "json", str(tmp_path / "logs")]))
    group, = [g for g in doc["findings"] if g["kind"] == "dealloc-missing-type-decref"]
    assert group["stack"][0] == {"object": path, "offset": "0x%x" % (dealloc + 1)}
    assert group["location"] == group["stack"][0]
    assert group["context"][0]["stack"][0]["fn"] == "stripped_slots_exec"
    assert group["summary"] == summary
    assert "stripped_slots_tiny" not in run_modlife_report([str(tmp_path / "logs")])
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "python"))
    from modlife import symbolize
    table = symbolize.FunctionSymbols(path)
    assert table.lookup(dealloc) is None
    assert table.lookup(tiny_addr) == table.lookup(tiny_addr + tiny_size - 1) == "stripped_slots_tiny"
    exec_addr, exec_size = symbols["stripped_slots_exec"]
    assert table.lookup(exec_addr + exec_size // 2) == "stripped_slots_exec"


def test_kiwisolver_deallocs_not_named_after_neighbours(interp, tmp_path):
    """kiwisolver's _cext is stripped: its deallocs are static functions with no symbol
    left, which addr2line named after the exported function below them (Solver's
    after PyInit__cext, 12 bytes long)."""
    if interp.name != "debian-3.11":
        pytest.skip("python3-kiwisolver is built for Debian's python3.11")
    require_module(interp, "kiwisolver", "python3-kiwisolver")
    run = run_python(interp, KIWI_WORKLOAD, tmp_path / "logs", status=FINDINGS_STATUS)
    doc = json.loads(run_modlife_report(["--format", "json", str(tmp_path / "logs")]))
    groups = [g for g in doc["findings"] if g["kind"] == "dealloc-missing-type-decref"]
    assert sorted(g["type"] for g in groups) == KIWI_TYPES
    for g in groups:
        offset = int(g["location"]["offset"], 16)
        assert g["location"] == {"object": g["location"]["object"], "offset": "0x%x" % offset}
        assert g["slot_function"] == "_cext.cpython-311-x86_64-linux-gnu.so+0x%x" % (offset - 1)
        assert g["summary"].startswith("SUMMARY: modlife: dealloc-missing-type-decref in %s (module _cext)"
                                       % g["slot_function"].replace("+0x%x" % (offset - 1), "+0x%x" % offset))


def test_kiwisolver_cxx_names_demangled(interp, tmp_path):
    """C++ frames by their C++ names, on stderr (libstdc++'s demangler, which the C++
    extension brought) and in `modlife report` (c++filt)."""
    if interp.name != "debian-3.11":
        pytest.skip("python3-kiwisolver is built for Debian's python3.11")
    require_module(interp, "kiwisolver", "python3-kiwisolver")
    run = run_python(interp, KIWI_WORKLOAD, tmp_path / "logs", status=FINDINGS_STATUS)
    text = run_modlife_report([str(tmp_path / "logs")])
    for out in (run.proc.stderr, text):
        assert "_ZN" not in out
        summaries = [line for line in out.splitlines() if line.startswith("SUMMARY: modlife: type-outlives-module")]
        assert sorted(summaries) == sorted(
            "SUMMARY: modlife: type-outlives-module in kiwisolver::%s::Ready() (module _cext) (type kiwisolver.%s)"
            % ("strength" if t == "Strength" else t, t) for t in (name.split(".")[1] for name in KIWI_TYPES))


# -- interpreter frames folded -----------------------------------------------------------

def access_block(text):
    """The access stack lines of the first report in text."""
    lines = text.split("ERROR: modlife: ", 1)[1].splitlines()[1:]
    return lines[:next(i for i, line in enumerate(lines) if not line.startswith("    "))]


def test_interpreter_frames_folded(interp, fixtures_for, tmp_path):
    path = fixtures_for("heap_type_slots")
    run = run_python(interp, "import heap_type_slots as h\nT = h.make_types(['Leaky'])['Leaky']\n"
                     "def f():\n    x = T(); del x\nf()\n", tmp_path / "logs", pythonpath=path,
                     status=FINDINGS_STATUS)
    records = run.records()
    start = records[0]
    interp_path = start["libpython"] if start["libpython"] != "static" else interp.path
    interp_ids = {r["id"] for r in events(records, "object-load") if r["path"] == interp_path}
    finding, = [r for r in events(records, "finding") if r["kind"] == SLOT_KINDS[0]]
    in_interp = [f.get("obj") in interp_ids for f in finding["stack"]]
    # dealloc_leaky, then the interpreter's frames that freed the object, a run long
    # enough to fold.
    assert not in_interp[0] and all(in_interp[1:5]), finding["stack"]
    run_length = next((i for i, inside in enumerate(in_interp[1:]) if not inside), len(in_interp) - 1)
    fold = "    ... %d frames in %s" % (run_length - 2, os.path.basename(interp_path))
    report = run_modlife_report([str(tmp_path / "logs")])
    for block in (access_block(run.proc.stderr), access_block(report)):
        assert re.match(r"    #0 0x[0-9a-f]+ in dealloc_leaky ", block[0]), block
        assert [line.split(" in ")[0].split()[0] for line in block[1:3]] == ["#1", "#2"], block
        assert block[3] == fold, block
        assert all(line.startswith("    #%d " % (run_length + 1 + k)) for k, line in enumerate(block[4:])), block
    assert len(access_block(run.proc.stderr)) == len(access_block(report))
