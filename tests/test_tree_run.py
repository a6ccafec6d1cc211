"""`modlife run` treats the whole process tree as one run (issue 15): it ends with one
line counting the findings of every process and leaves with the exitcode option's
status when any process had an error while the command succeeded; warnings change no
status unless asked; each run has a directory of its own, and the tools given the
parent directory read the latest run; CI options (--fail-on, kinds checked, options
checked before the command starts)."""
import json
import os
import re
import subprocess

import pytest

from modlife_testlib import INTERPRETERS, modlife_command

PAIR = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]

# Fork children hit state-use-after-clear (a Holder kept in the module state asks for
# the state in m_clear) and leave through os._exit, with status 0: the parent cannot
# know.  The parent's own status is argv[1].
MULTIPROCESSING = r"""
import gc, multiprocessing, sys

def bug():
    import state_after_clear as m
    m.keep(m.Holder())
    del sys.modules["state_after_clear"], m
    gc.collect()

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=bug) for _ in range(3)]
    for c in children:
        c.start()
    for c in children:
        c.join()
    print("children", [c.exitcode for c in children])
    sys.exit(int(sys.argv[1]))
"""

# state-from-non-module, a warning: PyModule_GetState on an instance of a type.
WARNING_ONLY = r"""
import state_non_module as m
m.Thing().bad_state()
"""


@pytest.fixture(params=PAIR, ids=[i.name for i in PAIR])
def interp(request):
    return request.param


def modlife(cwd, *args, env=None, timeout=120):
    full_env = dict(os.environ)
    full_env.pop("MODLIFE_OPTIONS", None)
    full_env.update(env or {})
    return subprocess.run([modlife_command(), *args], cwd=str(cwd), env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def last_line(text):
    return text.splitlines()[-1] if text else ""


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- the process tree is one run --------------------------------------------------------

def test_fork_children_findings_fail_the_run(interp, tmp_path, fixtures_for):
    """The parent exits 0; its three fork children each reported an error."""
    env = {"PYTHONPATH": fixtures_for("state_after_clear")}
    prog = script(tmp_path, "mp.py", MULTIPROCESSING)
    got = modlife(tmp_path, "run", "--log-dir", "logs", "--", interp.path, prog, "0", env=env)
    assert got.returncode == 23, got.stderr
    assert got.stdout == "children [0, 0, 0]\n"
    assert last_line(got.stderr) == ("modlife: 3 findings (3 errors: state-use-after-clear) in 3 of 4 processes"
                                     " - modlife report logs")
    assert got.stderr.count("ERROR: modlife: state-use-after-clear") == 3


def test_failing_command_keeps_its_status(interp, tmp_path, fixtures_for):
    env = {"PYTHONPATH": fixtures_for("state_after_clear")}
    prog = script(tmp_path, "mp.py", MULTIPROCESSING)
    got = modlife(tmp_path, "run", "--log-dir", "logs", "--exitcode", "40", "--", interp.path, prog, "5", env=env)
    assert got.returncode == 5, got.stderr
    assert last_line(got.stderr).startswith("modlife: 3 findings (3 errors: state-use-after-clear)")


def test_exitcode_option_sets_the_run_status(interp, tmp_path, fixtures_for):
    env = {"PYTHONPATH": fixtures_for("state_after_clear"), "MODLIFE_OPTIONS": "exitcode=41"}
    prog = script(tmp_path, "mp.py", MULTIPROCESSING)
    got = modlife(tmp_path, "run", "--log-dir", "logs", "--", interp.path, prog, "0", env=env)
    assert got.returncode == 41, got.stderr
    got = modlife(tmp_path, "run", "--log-dir", "logs2", "--exitcode", "42", "--", interp.path, prog, "0", env=env)
    assert got.returncode == 42, got.stderr


def test_quiet_run_has_no_summary_but_the_status(interp, tmp_path, fixtures_for):
    env = {"PYTHONPATH": fixtures_for("state_after_clear")}
    prog = script(tmp_path, "mp.py", MULTIPROCESSING)
    got = modlife(tmp_path, "run", "--quiet", "--log-dir", "logs", "--", interp.path, prog, "0", env=env)
    assert got.returncode == 23 and "findings (" not in got.stderr


# -- each run has its own directory -------------------------------------------------------

RUN_NAME = r"modlife-logs/\d{8}T\d{6}\.\d{6}Z-\d+"


def test_separate_runs_are_separate_directories(interp, tmp_path, fixtures_for):
    """Two invocations used to write into one directory, which report read as one run
    ("Seen 2 times in 2 processes")."""
    env = {"PYTHONPATH": fixtures_for("state_after_clear")}
    code = ("import gc, sys, state_after_clear as m\n"
            "m.keep(m.Holder()); del sys.modules['state_after_clear'], m; gc.collect()\n")
    dirs = []
    for _ in range(2):
        got = modlife(tmp_path, "run", "--", interp.path, "-c", code, env=env)
        assert got.returncode == 23, got.stderr
        m = re.fullmatch(r"modlife: 1 finding \(1 error: state-use-after-clear\) in 1 of 1 process"
                         r" - modlife report (%s)" % RUN_NAME, last_line(got.stderr))
        assert m, got.stderr
        dirs.append(m.group(1))
    assert dirs[0] != dirs[1] and sorted(dirs) == dirs
    assert sorted(os.listdir(tmp_path / "modlife-logs")) == [d.split("/")[1] for d in dirs]
    for d in dirs:
        assert len([n for n in os.listdir(tmp_path / d) if n.endswith(".jsonl")]) == 1
    reading = "modlife: reading the latest run, %s (2 runs in modlife-logs)\n" % dirs[1]
    report = modlife(tmp_path, "report", "modlife-logs")
    assert report.returncode == 0 and report.stderr == reading
    assert "Seen 2 times" not in report.stdout
    assert "modlife: 1 finding (1 error, 0 warnings) in 1 process" in report.stdout
    as_json = json.loads(modlife(tmp_path, "report", "--format", "json", "modlife-logs").stdout)
    assert [os.path.dirname(p["log"]) for p in as_json["processes"]] == [dirs[1]]
    for args in (["events"], ["lifetimes"], ["report", "--format", "sarif"],
                 ["timeline", "-o", str(tmp_path / "t.html")]):
        got = modlife(tmp_path, *args, "modlife-logs")
        assert (got.returncode, got.stderr) == (0, reading), (args, got.stderr)
    # A directory named with --log-dir is read as it is, as before.
    got = modlife(tmp_path, "run", "--log-dir", "mine", "--", interp.path, "-c", code, env=env)
    assert last_line(got.stderr).endswith(" - modlife report mine")
    assert modlife(tmp_path, "report", "mine").stderr == ""


# -- warnings change no status unless asked ------------------------------------------------

def test_warnings_change_no_status(interp, tmp_path, fixtures_for):
    """A warning (state-from-non-module) in the command's process and in a fork child
    used to make the process exit 23, which failed 3.13's test_datetime."""
    env = {"PYTHONPATH": fixtures_for("state_non_module")}
    code = WARNING_ONLY + "import os\npid = os.fork()\nif pid == 0:\n    m.state_of(m.Thing)\n    os._exit(0)\n" \
        "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    got = modlife(tmp_path, "run", "--log-dir", "logs", "--", interp.path, "-c", code, env=env)
    assert (got.returncode, got.stdout) == (0, "0\n"), got.stderr
    assert last_line(got.stderr) == "modlife: 2 findings (0 errors) in 2 of 2 processes - modlife report logs"
    plain = modlife(tmp_path, "run", "--log-dir", "logs1", "--", interp.path, "-c", WARNING_ONLY, env=env)
    assert plain.returncode == 0, plain.stderr
    asked = dict(env, MODLIFE_OPTIONS="exit_on_warnings=1")
    got = modlife(tmp_path, "run", "--log-dir", "logs2", "--", interp.path, "-c", code, env=asked)
    assert (got.returncode, got.stdout) == (23, "0\n"), got.stderr
    got = modlife(tmp_path, "run", "--log-dir", "logs3", "--", interp.path, "-c", WARNING_ONLY, env=asked)
    assert got.returncode == 23, got.stderr


# -- CI ergonomics ---------------------------------------------------------------------------

KIND_LIST = ("state-use-after-clear, state-use-after-free, type-outlives-module, dealloc-missing-type-decref, "
             "traverse-missing-type-visit, pyobject-new-on-gc-type, tp-free-override, "
             "static-type-in-multiphase-module, state-from-non-module, finalize-crash, "
             "state-from-other-interpreter, dangling-global, type-from-other-interpreter, "
             "module-outlives-interpreter")

# One error (pyobject-new-on-gc-type) and one warning (state-from-non-module).
ERROR_AND_WARNING = r"""
import state_non_module as m, heap_type_slots as h
m.Thing().bad_state()
h.new_gc_with_pyobject_new(h.make_types(["Tidy"])["Tidy"])
"""


@pytest.fixture
def mixed_logs(interp, tmp_path, fixtures_for):
    env = {"PYTHONPATH": fixtures_for("state_non_module", "heap_type_slots")}
    got = modlife(tmp_path, "run", "--log-dir", "mixed", "--", interp.path, "-c", ERROR_AND_WARNING, env=env)
    assert got.returncode == 23, got.stderr
    assert last_line(got.stderr) == ("modlife: 2 findings (1 error: pyobject-new-on-gc-type) in 1 of 1 process"
                                     " - modlife report mixed")
    env = {"PYTHONPATH": fixtures_for("state_non_module")}
    got = modlife(tmp_path, "run", "--log-dir", "warned", "--", interp.path, "-c", WARNING_ONLY, env=env)
    assert got.returncode == 0, got.stderr
    return tmp_path


@pytest.mark.parametrize("fail_on, mixed, warned", [
    (None, 0, 0),
    ("errors", 1, 0),
    ("all", 1, 1),
    ("state-from-non-module", 1, 1),
    ("tp-free-override,finalize-crash", 0, 0),
    ("pyobject-new-on-gc-type,finalize-crash", 1, 0),
])
def test_report_fail_on(mixed_logs, fail_on, mixed, warned):
    option = ["--fail-on=" + fail_on] if fail_on else []
    for logs, status in (("mixed", mixed), ("warned", warned)):
        for fmt in ("text", "json", "sarif"):
            got = modlife(mixed_logs, "report", "--format", fmt, *option, logs)
            assert (got.returncode, got.stderr) == (status, ""), (logs, fmt, got.stderr)
    # --kind leaves findings out, and then they fail nothing.
    got = modlife(mixed_logs, "report", "--kind", "state-from-non-module", *option, "mixed")
    assert got.returncode == (1 if fail_on in ("all", "state-from-non-module") else 0)


@pytest.mark.parametrize("args, message", [
    (["--kind", "state-use-after-lunch"],
     "modlife report: --kind: unknown kind 'state-use-after-lunch' (kinds: %s)\n" % KIND_LIST),
    (["--kind", "tp-free-override", "--kind", "nope"],
     "modlife report: --kind: unknown kind 'nope' (kinds: %s)\n" % KIND_LIST),
    (["--fail-on=error"], "modlife report: --fail-on: unknown kind 'error' (kinds: all, errors, %s)\n" % KIND_LIST),
    (["--fail-on=a,tp-free-override,b"],
     "modlife report: --fail-on: unknown kinds 'a', 'b' (kinds: all, errors, %s)\n" % KIND_LIST),
])
def test_unknown_kinds_are_errors(mixed_logs, args, message):
    """They used to select nothing: "0 findings", status 0."""
    got = modlife(mixed_logs, "report", *args, "mixed")
    assert (got.returncode, got.stdout, got.stderr) == (2, "", message)


LIBRARY_KINDS = "all, " + KIND_LIST


@pytest.mark.parametrize("options, env_options, message", [
    (["--report-kinds=state-use-after-lunch"], None,
     "MODLIFE_OPTIONS: report_kinds: unknown finding kind 'state-use-after-lunch' (known: %s; see libmodlife(7))"
     % LIBRARY_KINDS),
    (["--report-kinds=-nope"], None,
     "MODLIFE_OPTIONS: report_kinds: unknown finding kind 'nope' (known: %s; see libmodlife(7))" % LIBRARY_KINDS),
    ([], "colour=blue",
     "MODLIFE_OPTIONS: unknown option 'colour' (known: log_path, stack_depth, python_stack, symbolize, "
     "halt_on_error, exitcode, exit_on_warnings, suppressions, report_kinds, verbosity, dedup_python_frames, "
     "stack_ids, notify, python_frames; see libmodlife(7))"),
    ([], "stack_depth=0", "MODLIFE_OPTIONS: stack_depth=0: expected an integer from 1 to 256"),
    ([], "exit_on_warnings=maybe", "MODLIFE_OPTIONS: exit_on_warnings=maybe: expected 0 or 1"),
    (["--suppressions", "bad.supp"], None,
     "MODLIFE_OPTIONS: {dir}/bad.supp:2: unknown finding kind 'state-use-after-lunch' (see libmodlife(7) "
     "for the kinds, or use *)"),
])
def test_bad_options_stop_the_run_before_the_command(interp, tmp_path, options, env_options, message):
    """The command must not run: it would leave a marker file.  (It used to run, and
    every Python process in it died with status 1.)"""
    (tmp_path / "bad.supp").write_text("*:ok\nstate-use-after-lunch:x\n")
    env = {"MODLIFE_OPTIONS": env_options} if env_options else {}
    code = "open('marker', 'w').close()"
    got = modlife(tmp_path, "run", *options, "--", interp.path, "-c", code, env=env)
    assert (got.returncode, got.stdout) == (2, ""), got.stderr
    assert got.stderr == "modlife run: %s\nmodlife run: %s was not started\n" % (
        message.format(dir=tmp_path), interp.path)
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "modlife-logs").exists() or os.listdir(tmp_path / "modlife-logs") == []
    # The same options, well formed, run the command.
    got = modlife(tmp_path, "run", "--report-kinds=-tp-free-override", "--", interp.path, "-c", code,
                  env={"MODLIFE_OPTIONS": "exit_on_warnings=1:stack_depth=8"})
    assert (got.returncode, got.stderr) == (0, "") and (tmp_path / "marker").exists()


TWICE = r"""
import state_non_module as m
m.Thing().bad_state()
m.Thing().bad_state()
"""


def sarif_uris(doc):
    found = []

    def walk(value):
        if isinstance(value, dict):
            if "artifactLocation" in value:
                found.append(value["artifactLocation"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
    walk(doc["runs"][0]["results"])
    return found


def test_sarif_paths_and_fingerprints(interp, tmp_path, fixtures_for):
    """Paths outside --source-root stay as the debug info has them (a relative one such
    as Debian's "../Objects/call.c" used to be joined to the root, into a file that does
    not exist); the same bug reached from two lines is two results with two
    fingerprints (they used to share one, and code scanning kept one)."""
    from modlife_testlib import FIXTURES
    env = {"PYTHONPATH": fixtures_for("state_non_module")}
    root = tmp_path / "root"
    root.mkdir()
    got = modlife(tmp_path, "run", "--log-dir", "logs", "--", interp.path, "-c", TWICE, env=env)
    assert got.returncode == 0, got.stderr
    doc = json.loads(modlife(tmp_path, "report", "--format", "sarif", "--source-root", str(root), "logs").stdout)
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["state-from-non-module"] * 2
    prints = [r["partialFingerprints"]["modlifeFinding/v1"] for r in results]
    assert len(set(prints)) == 2
    fixture = os.path.join(FIXTURES, "state_non_module.c")
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "file://" + fixture}
    for loc in sarif_uris(doc):
        assert "uriBaseId" not in loc and not loc["uri"].startswith("file://" + str(root)), loc
        assert loc["uri"].startswith("file:///") or not os.path.exists(root / loc["uri"]), loc
    # Under the root: relative to it.
    doc = json.loads(modlife(tmp_path, "report", "--format", "sarif", "--source-root", FIXTURES, "logs").stdout)
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "state_non_module.c", "uriBaseId": "%SRCROOT%"}
    # The same run reported again: the same fingerprints.
    again = json.loads(modlife(tmp_path, "report", "--format", "sarif", "--source-root", str(root), "logs").stdout)
    assert [r["partialFingerprints"]["modlifeFinding/v1"] for r in again["runs"][0]["results"]] == prints


def test_github_actions_workflow(tmp_path):
    """docs/github-actions-modlife.yml is YAML a workflow runner takes, and the modlife
    commands in it are ones this modlife accepts."""
    yaml = pytest.importorskip("yaml", reason="python3-yaml (./bootstrap installs it) reads the workflow")
    from modlife_testlib import HERE
    path = os.path.join(os.path.dirname(HERE), "docs", "github-actions-modlife.yml")
    with open(path) as f:
        doc = yaml.safe_load(f)
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}
    assert doc["permissions"]["security-events"] == "write"
    (job,) = doc["jobs"].values()
    steps = job["steps"]
    assert all(("uses" in s) != ("run" in s) for s in steps), steps
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python", "github/codeql-action/upload-sarif",
                    "actions/upload-artifact"]
    script = "\n".join(s["run"] for s in steps if "run" in s)
    assert "make install" in script
    commands = [line.strip() for line in script.splitlines() if line.strip().startswith("modlife ")]
    assert [c.split()[1] for c in commands] == ["run", "report", "report"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert commands[-1].endswith("> " + upload["with"]["sarif_file"])
    assert upload.get("if") == "always()"
    # Each command line parses with modlife's own parser.
    import shlex
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "python"))
    from modlife import cli
    for command in commands:
        argv = shlex.split(command.split(">")[0])[1:]
        args = cli.build_parser("test").parse_args(argv)
        assert args.subcommand == argv[0]


def test_summary_counts_findings_per_suppression(interp, tmp_path, fixtures_for):
    """Each rule's matches, over every process (the fork children leave through
    os._exit, without a process-exit record)."""
    env = {"PYTHONPATH": fixtures_for("state_after_clear", "state_non_module")}
    (tmp_path / "s.supp").write_text("state-use-after-clear:state_after_clear\n*:no_such_module\n"
                                     "state-from-non-module:Thing_bad_state\n")
    prog = script(tmp_path, "mp.py", "import state_non_module as w\nw.Thing().bad_state()\n" + MULTIPROCESSING)
    got = modlife(tmp_path, "run", "--log-dir", "logs", "--suppressions", "s.supp", "--",
                  interp.path, prog, "0", env=env)
    assert (got.returncode, got.stdout) == (0, "children [0, 0, 0]\n"), got.stderr
    assert got.stderr == ("modlife: 4 findings suppressed: 3 by state-use-after-clear:state_after_clear, "
                          "1 by state-from-non-module:Thing_bad_state\n")
    report = modlife(tmp_path, "report", "logs")
    assert ("\n  4 findings suppressed: 3 by state-use-after-clear:state_after_clear, "
            "1 by state-from-non-module:Thing_bad_state\n") in report.stdout
    doc = json.loads(modlife(tmp_path, "report", "--format", "json", "logs").stdout)
    assert doc["suppressed"] == [{"suppression": "state-use-after-clear:state_after_clear", "count": 3},
                                 {"suppression": "state-from-non-module:Thing_bad_state", "count": 1}]
    # Findings and suppressed ones: both lines, the findings' first.
    (tmp_path / "s2.supp").write_text("state-from-non-module:*\n")
    got = modlife(tmp_path, "run", "--log-dir", "logs2", "--suppressions", "s2.supp", "--",
                  interp.path, prog, "0", env=env)
    assert got.returncode == 23
    assert got.stderr.endswith("modlife: 3 findings (3 errors: state-use-after-clear) in 3 of 4 processes"
                               " - modlife report logs2\nmodlife: 1 finding suppressed: 1 by state-from-non-module:*\n")


PYTEST_SUITE = r"""
import gc, subprocess, sys

BUG = ("import gc, sys, state_after_clear as m\n"
       "m.keep(m.Holder()); del sys.modules['state_after_clear'], m; gc.collect()\n")

def test_bug_in_a_subprocess():
    subprocess.run([sys.executable, "-c", BUG], capture_output=True)  # its status: not this test's concern
"""


def test_pytest_under_modlife_run_says_why(interp, tmp_path, fixtures_for):
    """The test's subprocess has the report on its stderr, which the test keeps to
    itself, and the test passes: the user used to see status 0 and no reason."""
    if interp.name != "debian-3.11":
        pytest.skip("Debian's python3.11 is the interpreter with pytest")
    (tmp_path / "test_suite.py").write_text(PYTEST_SUITE)
    env = {"PYTHONPATH": fixtures_for("state_after_clear")}
    got = modlife(tmp_path, "run", "--", interp.path, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "test_suite.py", env=env)
    assert got.returncode == 23, got.stdout + got.stderr
    assert "1 passed" in got.stdout and "ERROR: modlife" not in got.stderr + got.stdout
    assert re.fullmatch(r"modlife: 1 finding \(1 error: state-use-after-clear\) in 1 of 2 processes"
                        r" - modlife report %s\n" % RUN_NAME, got.stderr), got.stderr


def test_options_read_as_the_library_splits_them():
    """modlife run reads exitcode and exit_on_warnings from MODLIFE_OPTIONS itself (the
    library judged the whole string first): ':' inside a quoted value splits nothing,
    and the last key wins, as in instrument/options.c (tests/unit/test_options.c)."""
    import sys
    from modlife_testlib import HERE
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "python"))
    from modlife import options
    text = "exitcode=5:log_path='/tmp/a:exitcode=9':stack_depth=3::exitcode=7"
    assert options.split(text) == [("exitcode", "5"), ("log_path", "/tmp/a:exitcode=9"), ("stack_depth", "3"),
                                   ("exitcode", "7")]
    assert options.value(text, "exitcode") == "7"
    assert options.value("log_path=\"x:exit_on_warnings=1\"", "exit_on_warnings") is None
    assert options.value("log_path=\"it's:x='y\":exit_on_warnings=1", "exit_on_warnings") == "1"
    assert options.value("", "exitcode", "23") == "23"
    # What modlife run writes reads back.
    pairs = [("log_path", "/tmp/a=\"b:c/m"), ("exitcode", 4)]
    assert options.split(options.join("exit_on_warnings=1", pairs)) == [
        ("exit_on_warnings", "1"), ("log_path", "/tmp/a=\"b:c/m"), ("exitcode", "4")]
