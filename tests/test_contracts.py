"""The contracts between the library and the tools (finding kinds, MODLIFE_OPTIONS
keys, event names, the log format number) have one definition, instrument/*.def:
what the C compiler reads from them is what the generated tools module and man page
say, and what the built library does."""
import json
import os
import re
import subprocess
import sys

import pytest

from modlife_testlib import HERE, INTERPRETERS, preload_env, read_log, run_python

TOP = os.path.dirname(HERE)
INSTRUMENT = os.path.join(TOP, "instrument")
sys.path.insert(0, os.path.join(TOP, "tools", "python"))
from modlife import _contracts, kinds, logfile, options  # noqa: E402

# Prints the .def tables as the C preprocessor reads them, as JSON.
DUMP_C = r"""
#include <stdio.h>
#include "options.h"

static void str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

#define ML_SEVERITY_ERROR "error"
#define ML_SEVERITY_WARNING "warning"

int main(void)
{
    const char *sep = "";
    printf("{\"kinds\": [");
#define ML_KIND(id, name, severity, rule, fix, when) \
    printf("%s[", sep), str(name), printf(", "), str(ML_SEVERITY_##severity), printf(", "), str(rule), \
    printf(", "), str(fix), printf("]"), sep = ", ";
#include "kinds.def"
    printf("], \"options\": [");
    sep = "";
#define ML_OPTION_STRING(name, size, default, metavar, help) \
    printf("%s[", sep), str(#name), printf(", \"string\", "), str(default), printf(", 0, %d]", (size) - 1), sep = ", ";
#define ML_OPTION_INT(name, default, min, max, metavar, help) \
    printf("%s[", sep), str(#name), printf(", \"int\", %d, %d, %d]", default, min, max), sep = ", ";
#define ML_OPTION_BOOL(name, default, help) \
    printf("%s[", sep), str(#name), printf(", \"bool\", %d, 0, 1]", default), sep = ", ";
#include "options.def"
    printf("], \"events\": [");
    sep = "";
#define ML_EVENT(id, name) printf("%s", sep), str(name), sep = ", ";
#define ML_LOG_FORMAT(number) int log_format = number;
#include "events.def"
    printf("], \"log_format\": %d}\n", log_format);
    return 0;
}
"""


@pytest.fixture(scope="module")
def from_c(tmp_path_factory):
    work = tmp_path_factory.mktemp("contracts")
    (work / "dump.c").write_text(DUMP_C)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-I", INSTRUMENT, "-o", str(work / "dump"),
                    str(work / "dump.c")], check=True)
    return json.loads(subprocess.run([str(work / "dump")], check=True, capture_output=True, text=True).stdout)


def test_the_tools_module_is_what_the_c_reads(from_c):
    assert len(from_c["kinds"]) >= 11 and len(from_c["options"]) >= 14 and len(from_c["events"]) >= 16
    assert [list(k) for k in _contracts.KINDS] == from_c["kinds"]
    assert [list(o) for o in _contracts.OPTIONS] == from_c["options"]
    assert list(_contracts.EVENTS) == from_c["events"]
    assert _contracts.LOG_FORMAT == from_c["log_format"]


def test_the_tools_use_the_generated_module(from_c):
    assert [[k.name, k.severity, k.rule, k.fix] for k in kinds.KINDS] == from_c["kinds"]
    assert [list(o) for o in options.OPTIONS] == from_c["options"]
    assert logfile.LOG_FORMAT == from_c["log_format"]


def test_generated_files_are_up_to_date():
    """make regenerates them when a .def changes: what is in the tree is what the
    generator makes of the .def files now."""
    gen = [sys.executable, os.path.join(TOP, "tools", "gen_contracts.py"), "--instrument", INSTRUMENT]
    made = subprocess.run(gen + ["python"], check=True, capture_output=True, text=True).stdout
    with open(os.path.join(TOP, "tools", "python", "modlife", "_contracts.py")) as f:
        assert f.read() == made
    made = subprocess.run(gen + ["man", os.path.join(TOP, "docs", "libmodlife.7.in")], check=True,
                          capture_output=True, text=True).stdout
    with open(os.path.join(TOP, "docs", "libmodlife.7")) as f:
        assert f.read() == made


@pytest.mark.parametrize("bad, text", [
    ("x.def", "ML_KIND(A, \"a\", FATAL, \"r\", \"f\", \"\")\n"),
    ("x.def", "ML_KIND(A, \"a\", ERROR, \"r\", \"f\")\n"),
])
def test_generator_refuses_a_malformed_row(tmp_path, bad, text):
    for name in ("options.def", "events.def", "options.h"):
        with open(os.path.join(INSTRUMENT, name)) as f:
            (tmp_path / name).write_text(f.read())
    (tmp_path / "kinds.def").write_text(text)
    proc = subprocess.run([sys.executable, os.path.join(TOP, "tools", "gen_contracts.py"), "--instrument",
                           str(tmp_path), "python"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("gen_contracts.py: ") and "kinds.def" in proc.stderr, proc.stderr


def _library_error(tmp_path, option_text):
    proc = subprocess.run(["/usr/bin/python3.11", "-c", "pass"], env=preload_env(MODLIFE_OPTIONS=option_text),
                          capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    known = re.fullmatch(r"modlife: MODLIFE_OPTIONS: .*\(known: (.*); see libmodlife\(7\)\)\n", proc.stderr)
    assert known, proc.stderr
    return known.group(1).split(", ")


def test_the_library_knows_the_kinds_and_options_of_the_tools(tmp_path):
    """What the built library accepts, from its own error messages."""
    assert _library_error(tmp_path, "report_kinds=nope") == ["all"] + [k.name for k in kinds.KINDS]
    assert _library_error(tmp_path, "colour=blue") == [o.name for o in options.OPTIONS]


INTERPS = [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")]


@pytest.mark.parametrize("interp", INTERPS, ids=[i.name for i in INTERPS])
def test_a_log_is_of_the_defined_format_events_and_defaults(interp, tmp_path):
    code = "import gc, sys, xxlimited; del sys.modules['xxlimited'], xxlimited; gc.collect()"
    run = run_python(interp, code, tmp_path, status=0)
    with open(run.logs[0]) as f:
        written = [json.loads(line) for line in f]
    start = written[0]
    assert start["event"] == "process-start" and start["log_format"] == _contracts.LOG_FORMAT
    seen = {r["event"] for r in written}
    assert {"process-start", "object-load", "module-create", "module-exec", "process-exit"} <= seen
    assert seen <= set(_contracts.EVENTS), seen - set(_contracts.EVENTS)
    # The options modlife run leaves alone are the defaults of options.def.
    for key in ("stack_depth", "python_stack", "symbolize", "stack_ids"):
        assert start["options"][key] == options.BY_NAME[key].default, key
    assert read_log(run.logs[0])[0]["event"] == "process-start"


def test_the_tools_name_only_defined_events():
    """The tools' sets of events (which to print, which to read whole, what each must
    hold) name events of events.def: a misspelt one would match no record."""
    from modlife import events, model
    defined = set(_contracts.EVENTS)
    for name, names in (("events.LIFETIME", events.LIFETIME), ("model.FINDINGS_ONLY", model.FINDINGS_ONLY),
                        ("logfile._WHOLE", logfile._WHOLE), ("logfile._REQUIRED", set(logfile._REQUIRED))):
        assert names and set(names) <= defined, (name, set(names) - defined)
