import collections
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from modlife_testlib import (INTERPRETERS, INTERPRETER_IDS, NOT_COVERED, Interpreter, build_extension,  # noqa: E402
                             require_interpreter, require_tool)


def pytest_configure(config):
    config.addinivalue_line("markers", "interp: runs once per interpreter of modlife_testlib.interpreters()")
    config.addinivalue_line("markers", "needs(*what): tools by name (gdb, valgrind, chromium, setpriv) "
                            "and Interpreters the test needs; skipped, saying so, without one")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture: interpreters given as parameters (the interp fixture's, or a
    module's own parametrize of "interp") and what needs markers name."""
    for value in getattr(getattr(item, "callspec", None), "params", {}).values():
        if isinstance(value, Interpreter):
            require_interpreter(value)
    for mark in item.iter_markers("needs"):
        for what in mark.args:
            if isinstance(what, Interpreter):
                require_interpreter(what)
            else:
                require_tool(what)


@pytest.fixture(params=INTERPRETERS, ids=INTERPRETER_IDS)
def interp(request):
    # Every machine of this project has them all (image and ./bootstrap), where .ci/run
    # checks that nothing was skipped; elsewhere a missing one is skipped, saying so.
    return require_interpreter(request.param)


def not_covered(stats):
    """What this run did not cover, each reason once with the number of tests skipped."""
    missing = collections.Counter()
    for report in stats.get("skipped", []):
        text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if NOT_COVERED in text:
            missing[text[text.index(NOT_COVERED) + len(NOT_COVERED):].strip()] += 1
    lines = ["not covered: %s: %d test(s) skipped" % (what, n) for what, n in sorted(missing.items())]
    if os.environ.get("MODLIFE_HAVE_FUZZ") == "no":
        lines.append("not covered: libFuzzer targets fuzz_options, fuzz_suppressions "
                     "(clang with libFuzzer not found by configure)")
    return lines


def pytest_sessionfinish(session):
    # .ci/run sets MODLIFE_REQUIRE_ALL=1: its machine has everything (./bootstrap),
    # so a skip for something missing there is a failure of the set-up.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("MODLIFE_REQUIRE_ALL") == "1" and reporter and not_covered(reporter.stats) \
            and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    lines = not_covered(terminalreporter.stats)
    if lines:
        terminalreporter.section("not covered")
        for line in lines:
            terminalreporter.write_line(line)
        if os.environ.get("MODLIFE_REQUIRE_ALL") == "1":
            terminalreporter.write_line("MODLIFE_REQUIRE_ALL=1: everything must be covered here; failing the run")


@pytest.fixture(scope="session")
def ext_root(tmp_path_factory):
    return tmp_path_factory.mktemp("extensions")


@pytest.fixture
def fixtures_for(interp, ext_root):
    """Builds the named fixture extensions for this interpreter; returns their directory."""
    def build(*names):
        out = os.path.join(str(ext_root), interp.name)
        for n in names:
            build_extension(interp, n, out)
        return out
    return build


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The modlife wheel, built once per session for every test that installs it."""
    from test_install import build_wheel
    return build_wheel(tmp_path_factory)
