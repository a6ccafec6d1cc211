"""`modlife exercise` as pytest tests: --modlife-exercise=PKG (repeatable) adds one
test per extension module of PKG, named modlife-exercise::MODULE, which fails with
the module's table and modlife's reports when a step crashed or the module had a
finding that fails `modlife exercise` (errors; warnings too with
MODLIFE_OPTIONS=exit_on_warnings=1).  The modules run with the session's Python,
under modlife in processes of their own; the session itself needs no --modlife."""
import os
import sys
import types

import pytest

from modlife import exercise, pytest_plugin, rundir


class Failed(Exception):
    def __init__(self, result):
        super().__init__(result.target.module)
        self.result = result


class ExerciseItem(pytest.Item):
    def __init__(self, *, target, exerciser, **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.exerciser = exerciser

    def runtest(self):
        result = self.exerciser.exercise(self.target)
        if result.fails(exercise._on_warnings()):
            raise Failed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, Failed):
            r = excinfo.value.result
            return exercise.table(r) + ("\n" + r.stderr if r.stderr.strip() else "")
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.target.file, None, "modlife-exercise::" + self.target.module


class Plugin:
    def __init__(self, config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items):
        option = config.option
        suppressions_file = pytest_plugin.suppressions_file(option)
        try:
            targets, errors = exercise.discover(sys.executable, option.modlife_exercise)
        except exercise.Failed as e:
            raise pytest.UsageError("modlife: %s" % e)
        if errors:
            raise pytest.UsageError("modlife: " + "; ".join(errors))
        args = types.SimpleNamespace(python=sys.executable, exitcode=None, suppressions=suppressions_file,
                                     workload=None, timeout=120, jobs=1)
        exerciser = exercise.Exerciser(args, os.path.abspath(rundir.create(option.modlife_log_dir)))
        for t in targets:
            items.append(ExerciseItem.from_parent(session, name="modlife-exercise::" + t.module,
                                                  nodeid="modlife-exercise::" + t.module,
                                                  target=t, exerciser=exerciser))
