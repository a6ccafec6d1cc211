"""The process `modlife exercise` runs under modlife for one extension module: it
imports the module and puts it through the HOWTO's lifecycle, one step after the
other, writing one JSON line per step event to the progress file so that the
parent knows which step a crash or a finding belongs to.  It runs on the
interpreter being exercised (3.9 and later) and imports nothing of modlife.

    PYTHON exercise_child.py SPEC_JSON|@SPEC_FILE

SPEC_JSON: {"module", "package", "path", "progress", "steps", "workload",
"skip_types"}.  The steps before the first of "steps" are not run, but the module is
imported first (a later child goes on after a step that crashed an earlier one);
the types named in "skip_types" are not made (an earlier child crashed on them).

No function of the module is ever called: only its types, with no arguments, and
the instances they made are repr'd, compared with themselves and put through the
unary and binary number operators with themselves (what code does with a value)."""
import gc
import importlib
import importlib.util
import itertools
import json
import os
import sys
import threading
import time
import warnings

# Run in the main interpreter and, as source, in every subinterpreter.
HELPERS = r'''
def _exercise_types(module):
    found = []
    for name in sorted(vars(module)):
        value = getattr(module, name, None)
        if isinstance(value, type) and value.__module__ != "builtins" and value not in found:
            found.append(value)
    return found


def _exercise_instances(module, made=None, refused=None, skip=(), trying=None):
    """Instances of the module's types that take no arguments, each used a little;
    not of the types in skip (an earlier process crashed on them).  trying(name) is
    told of each type before it is made (the parent names the type of a crash)."""
    objects = []
    for t in _exercise_types(module):
        if t.__name__ in skip:
            continue
        if trying is not None:
            trying(t.__name__)
        try:
            obj = t()
        except Exception as e:
            if refused is not None:
                refused.append("%s (%s)" % (t.__name__, type(e).__name__))
            continue
        if made is not None:
            made.append(t.__name__)
        _exercise_use(obj)
        objects.append(obj)
    return objects


def _exercise_use(obj):
    """What code does with any value: repr, compare, and the number operators, whose
    results the module makes from the types it keeps (in C globals, maybe another
    interpreter's).  Each on its own: most types have few of them."""
    for use in (repr, lambda x: x == x, lambda x: -x, lambda x: +x, lambda x: ~x, lambda x: x + x,
                lambda x: x - x, lambda x: x * x):
        try:
            use(obj)
        except Exception:
            pass


def _exercise_workload(module, code):
    """Runs the workload; the stale classes of the values it made (_exercise_stale):
    its top-level expressions' values and its names'."""
    if not code:
        return []
    import ast
    tree = ast.parse(code, "<modlife exercise workload>")
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr):
            keep = ast.Call(ast.Name("_modlife_keep", ast.Load()), [node.value], [])
            tree.body[i] = ast.copy_location(ast.Expr(keep), node)
    ast.fix_missing_locations(tree)
    values = []
    names = {"m": module, "__name__": "__workload__", "_modlife_keep": values.append}
    exec(compile(tree, "<modlife exercise workload>", "exec"), names)
    values += [v for k, v in names.items() if k not in ("m", "_modlife_keep") and not k.startswith("__")]
    return _exercise_stale(values)


def _exercise_stale(values):
    """Classes of the values (their MROs) that their module no longer holds under
    their name, as "module:qualname": a dropped module instance's class, or another
    interpreter's, which a C global of the extension keeps and makes objects of."""
    found = []
    for value in values:
        for c in type(value).__mro__:
            module = sys.modules.get(getattr(c, "__module__", None))
            if module is None or c.__module__ == "builtins" or "<locals>" in c.__qualname__:
                continue
            current = module
            for part in c.__qualname__.split("."):
                current = getattr(current, part, None)
            name = "%s:%s" % (c.__module__, c.__qualname__)
            if isinstance(current, type) and current is not c and name not in found:
                found.append(name)
    return found
'''

# The body run in a subinterpreter: import, instances, and a status line.
SUB_BODY = r'''
import gc, importlib, sys, warnings
warnings.simplefilter("ignore")
sys.path[:] = %(path)r
def _exercise_say(text):
    with open(%(result)r, "w") as f:
        f.write(text)
try:
    _exercise_m = importlib.import_module(%(module)r)
except ImportError as e:
    _exercise_say("opted out: %%s" %% e)
except BaseException as e:
    _exercise_say("failed: %%s: %%s" %% (type(e).__name__, e))
else:
    try:
        _exercise_stale_found = _exercise_workload(_exercise_m, %(workload)r)
        if _exercise_stale_found:
            with open(%(result)r + ".stale", "w") as f:
                f.write("\n".join(_exercise_stale_found))
        _exercise_keep = _exercise_instances(_exercise_m, skip=%(skip)r)
        if not %(keep)r:
            del _exercise_keep
            gc.collect()
        _exercise_say("ran")
    except BaseException as e:
        _exercise_say("failed: %%s: %%s" %% (type(e).__name__, e))
'''

exec(HELPERS)

# The re-import comes late: a module that opts out of a second module object
# refuses it, and the steps after it have no module then.
STEPS = ["import", "instances", "second-module", "subinterp-legacy", "subinterp-isolated",
         "subinterp-threads", "subinterp-destroy-live", "reimport", "finalize"]

# Py_mod_* slot numbers and the values the HOWTO names.
MOD_CREATE, MOD_EXEC, MOD_MULTIPLE_INTERPRETERS, MOD_GIL = 1, 2, 3, 4
PER_INTERPRETER_GIL_SUPPORTED = 2
THREADS = 2  # subinterpreters at once in subinterp-threads


class Progress:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def write(self, **record):
        record["wall_ns"] = time.time_ns()
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()


def declarations(module):
    """What the module's PyModuleDef declares, read by ctypes: its slots (multi-phase
    when it has any), m_size and m_name."""
    import ctypes
    api = ctypes.pythonapi
    api.PyModule_GetDef.restype = ctypes.c_void_p
    api.PyModule_GetDef.argtypes = [ctypes.py_object]
    try:
        address = api.PyModule_GetDef(module)
    except Exception as e:
        return {"def": None, "why": "%s: %s" % (type(e).__name__, e)}
    if not address:
        return {"def": None, "why": "PyModule_GetDef returned NULL"}
    ptr = ctypes.sizeof(ctypes.c_void_p)
    base = object.__basicsize__ + 3 * ptr     # PyModuleDef_Base: PyObject_HEAD, m_init, m_index, m_copy
    name_p, size, slots_p = (ctypes.c_void_p.from_address(address + base).value,
                             ctypes.c_ssize_t.from_address(address + base + 2 * ptr).value,
                             ctypes.c_void_p.from_address(address + base + 4 * ptr).value)
    found = {"def": hex(address), "m_name": ctypes.string_at(name_p).decode("utf-8", "replace") if name_p else None,
             "m_size": size, "init": "multi-phase" if slots_p else "single-phase", "slots": {}}
    while slots_p:
        slot = ctypes.c_int.from_address(slots_p).value
        if slot == 0:
            break
        value = ctypes.c_void_p.from_address(slots_p + ptr).value or 0
        if slot == MOD_MULTIPLE_INTERPRETERS:
            found["multiple_interpreters"] = value
        elif slot == MOD_GIL:
            found["gil"] = value
        found["slots"][str(slot)] = found["slots"].get(str(slot), 0) + 1
        slots_p += 2 * ptr
    return found


class Subinterpreters:
    """This Python's way to run code in a new interpreter: legacy (shared GIL, the
    main interpreter's config) or isolated (own GIL, 3.12+)."""

    def __init__(self):
        self.api, self.name = None, None
        for name in ("_interpreters", "_xxsubinterpreters"):
            try:
                self.api = importlib.import_module(name)
                self.name = name
                break
            except ImportError:
                continue
        if self.api is None:
            try:
                self.api = importlib.import_module("_testcapi")
                self.name = "_testcapi"
            except ImportError:
                pass

    def supports(self, kind):
        if self.api is None:
            return False
        if kind == "isolated":
            return sys.version_info >= (3, 12) and self.name != "_testcapi"
        return True

    def create(self, kind):
        if self.name == "_interpreters":
            return self.api.create(kind)
        if sys.version_info >= (3, 12):
            return self.api.create(isolated=(kind == "isolated"))
        return self.api.create()

    def run(self, interp, code):
        if self.name == "_interpreters":
            failed = self.api.run_string(interp, code)
            if failed is not None:
                raise RuntimeError("subinterpreter: %s" % (getattr(failed, "formatted", None) or failed,))
        else:
            self.api.run_string(interp, code)

    def once(self, kind, code, destroy=True, created=None):
        """Runs code in a new interpreter, then destroys it; created(its id) first."""
        if self.name == "_testcapi":
            if self.api.run_in_subinterp(code) != 0:
                raise RuntimeError("_testcapi.run_in_subinterp failed")
            return
        interp = self.create(kind)
        if created is not None:
            created(int(interp))
        try:
            self.run(interp, code)
        finally:
            if destroy:
                self.api.destroy(interp)


class Driver:
    def __init__(self, spec):
        self.spec = spec
        self.name = spec["module"]
        self.progress = Progress(spec["progress"])
        self.module = None
        self.declared = {}
        self.subs = Subinterpreters()
        self.results = itertools.count(1)  # next() is atomic: the threads step takes them at once
        self.skip = tuple(spec.get("skip_types") or ())
        self.step = None

    def instances(self, module, made=None, refused=None):
        """_exercise_instances in the main interpreter, each type announced first (and
        the end: a crash after it is not the last type's)."""
        objects = _exercise_instances(module, made, refused, self.skip,
                                      lambda name: self.progress.write(step=self.step, trying=name))
        self.progress.write(step=self.step, trying=None)
        return objects

    def load(self, step=None):
        self.module = importlib.import_module(self.name)
        self.stale(step, _exercise_workload(self.module, self.spec.get("workload")), "the main interpreter")

    def stale(self, step, classes, where):
        """Tells the parent of the stale classes of the workload's values."""
        for name in classes:
            if step is not None:
                self.progress.write(step=step, stale=name, where=where)

    def sub_code(self, kind_step, keep=False):
        result = "%s.%d" % (self.spec["progress"], next(self.results))
        body = HELPERS + SUB_BODY % {"path": list(sys.path), "result": result, "module": self.name,
                                     "workload": self.spec.get("workload"), "keep": keep, "skip": self.skip}
        code = "exec(compile(%r, %r, 'exec'))" % (body, "<modlife exercise %s>" % kind_step)
        return code, result

    def in_subinterpreter(self, kind, step, keep=False):
        code, result = self.sub_code(step, keep)
        try:
            # Which step made which interpreter: a finding about it may be written
            # long after it ended (module-outlives-interpreter, at exit).
            self.subs.once(kind, code, created=lambda interp: self.progress.write(step=step, interp=interp))
        except Exception as e:
            return self.read_result(result) or "failed: %s: %s" % (type(e).__name__, e)
        finally:
            stale = self.read_result(result + ".stale")
            self.stale(step, stale.split("\n") if stale else [], "a subinterpreter")
        return self.read_result(result) or "failed: the subinterpreter said nothing"

    def back_in_main(self, status):
        """Instances made again in the main interpreter once a subinterpreter imported
        the module: a type or state the module keeps in C globals is now the other
        interpreter's."""
        objects = self.instances(self.module)
        del objects
        gc.collect()
        return status

    @staticmethod
    def read_result(path):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return None
        os.unlink(path)
        return text

    # Each step returns its status: "ran", "opted out: why", "not applicable: why",
    # "not supported: why", "not declared: why" or "failed: why".

    def step_import(self):
        try:
            self.load("import")
        except ImportError as e:
            return "failed: ImportError: %s" % e
        self.declared = declarations(self.module)
        self.progress.write(declares=self.declared, file=getattr(self.module, "__file__", None))
        return "ran"

    def step_instances(self):
        made, refused = [], []
        objects = self.instances(self.module, made, refused)
        self.progress.write(types={"made": made, "refused": refused})
        del objects
        gc.collect()
        return "ran"

    def _forget(self):
        top = self.spec.get("package") or self.name
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".") or n == self.name]:
            del sys.modules[name]
        self.module = None
        for _ in range(3):
            gc.collect()

    def step_reimport(self):
        self._forget()
        try:
            self.load("reimport")
        except ImportError as e:
            return "opted out: %s" % e
        objects = self.instances(self.module)
        del objects
        gc.collect()
        return "ran"

    def step_second_module(self):
        if self.declared.get("init") != "multi-phase":
            return "not applicable: single-phase modules have one module object"
        spec = importlib.util.spec_from_file_location(self.name, self.module.__file__)
        try:
            second = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(second)
        except ImportError as e:
            return "opted out: %s" % e
        objects = self.instances(second)
        del objects, second
        gc.collect()
        return "ran"

    def isolated_ok(self):
        return (self.subs.supports("isolated") and self.declared.get("init") == "multi-phase"
                and self.declared.get("multiple_interpreters") == PER_INTERPRETER_GIL_SUPPORTED)

    def step_subinterp_legacy(self):
        if not self.subs.supports("legacy"):
            return "not supported: no subinterpreter module in this Python"
        return self.back_in_main(self.in_subinterpreter("legacy", "subinterp-legacy"))

    def step_subinterp_isolated(self):
        if not self.subs.supports("isolated"):
            return "not supported: interpreters with their own GIL need Python 3.12"
        if not self.isolated_ok():
            return "not declared: no Py_mod_multiple_interpreters = Py_MOD_PER_INTERPRETER_GIL_SUPPORTED"
        return self.back_in_main(self.in_subinterpreter("isolated", "subinterp-isolated"))

    def step_subinterp_threads(self):
        if not self.subs.supports("legacy") or self.subs.name == "_testcapi":
            return "not supported: no subinterpreter module in this Python"
        kind = "isolated" if self.isolated_ok() else "legacy"
        statuses = []

        def one():
            statuses.append(self.in_subinterpreter(kind, "subinterp-threads"))

        threads = [threading.Thread(target=one) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bad = [s for s in statuses if s != "ran"]
        return self.back_in_main(bad[0] if bad else "ran: %d %s interpreters at once" % (THREADS, kind))

    def step_subinterp_destroy_live(self):
        if not self.subs.supports("legacy") or self.subs.name == "_testcapi":
            return "not supported: no subinterpreter module in this Python"
        kind = "isolated" if self.isolated_ok() else "legacy"
        return self.back_in_main(self.in_subinterpreter(kind, "subinterp-destroy-live", keep=True))

    def step_finalize(self):
        if self.module is None:  # the re-import was refused: one more try
            try:
                self.load("finalize")
            except ImportError as e:
                return "opted out: %s" % e
        objects = self.instances(self.module)
        try:
            self.module._modlife_exercise_instances = objects
        except Exception:
            globals()["_modlife_exercise_instances"] = objects
        return "ran"

    def run(self):
        first = self.spec["steps"][0]
        steps = STEPS[STEPS.index(first):]
        if first != "import":
            self.progress.write(step="import", phase="setup")
            self.load()
            self.declared = declarations(self.module)
        for step in steps:
            self.step = step
            self.progress.write(step=step, phase="start")
            if step not in ("import", "finalize") and self.module is None:
                status = "not run: the module is not imported"
            else:
                try:
                    status = getattr(self, "step_" + step.replace("-", "_"))()
                except Exception as e:
                    status = "failed: %s: %s" % (type(e).__name__, e)
            if step == "finalize":
                # Its end is the process's: the parent reads it from the exit status and the log.
                self.progress.write(step=step, phase="exiting", status=status)
                return 0
            self.progress.write(step=step, phase="end", status=status)
            if step == "import" and status != "ran":
                return 0
        return 0


def main():
    warnings.simplefilter("ignore")
    if sys.argv[1].startswith("@"):  # a file: for running it by hand, under a debugger
        with open(sys.argv[1][1:]) as f:
            spec = json.load(f)
    else:
        spec = json.loads(sys.argv[1])
    sys.path[:0] = spec.get("path") or []
    return Driver(spec).run()


if __name__ == "__main__":
    sys.exit(main())
