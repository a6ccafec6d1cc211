"""Names made to break what shows them (fixtures/hostile_names.c: a module and a heap
type whose names hold <!--, <script>, quotes, %DATA%, clear-screen and OSC 8
escape sequences, a byte next to NUL, C1 CSI, U+2028 and bytes that are not UTF-8),
run for real: the library's stderr report, its JSON log, `modlife events`,
`lifetimes`, `report` (text, json, sarif), the timeline page, loaded in headless
chromium, and the gdb helper each show the names escaped for their medium and
nothing else."""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from cdp_client import Browser
from modlife_testlib import FINDINGS_STATUS, HERE, INTERPRETERS, build_extension, modlife_command

# The part both names share, raw (as Python sees the type's name) and as a terminal
# shows it (visible.terminal, instrument/visible_text.c).
HOSTILE = "<!--<script>\"'%DATA%\x1b[2J\x1b[H\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\\x01"
HOSTILE_SHOWN = r"""<!--<script>"'%DATA%\x1b[2J\x1b[H\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\\x01"""
TYPE = "hostile_names.Evil" + HOSTILE + "\x9b\u2028"
TYPE_SHOWN = "hostile_names.Evil" + HOSTILE_SHOWN + r"\u009b\u2028"
# m_name ends in the bytes ff fe: the library's report shows them, the log holds
# U+FFFD for each (JSON is UTF-8), so the tools show that.
MODULE_SHOWN_BY_LIBRARY = "hostile_names" + HOSTILE_SHOWN + r"\xff\xfe"
MODULE = "hostile_names" + HOSTILE + "\ufffd\ufffd"
MODULE_SHOWN = "hostile_names" + HOSTILE_SHOWN + "\ufffd\ufffd"
# A Python file name of the same kind, on the Python stacks of the finding and of
# the type's creation (kept as text by the library: a tab or newline must not
# shift its fields).
PYFILE = "evil\x1b]0;title\x07\t<script>\n.py"
PYFILE_SHOWN = r"evil\x1b]0;title\x07\x09<script>\x0a.py"
GDB_HELPER = os.path.join(os.path.dirname(HERE), "tools", "gdb", "modlife-gdb.py")
# The comment leads the process name (argv) in the page's data: a page that let
# data out of its <script> element would run it.
SCRIPT = """#<img src=x onerror=window.pwned=1>
exec(compile("import hostile_names", %r, "exec"))
o = hostile_names.Evil()
exec(compile("del o", %r, "exec"))
""" % (PYFILE, PYFILE)
# Whatever a terminal acts on: C0 but newline, DEL, C1, U+2028/9 (raw C1 bytes are
# not UTF-8: the strict decoding catches them).
ACTIVE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")

# Debian's static 3.11 and pyenv's shared 3.13: the names do not depend on more.
pytestmark = pytest.mark.parametrize("interp", [i for i in INTERPRETERS if i.name in ("debian-3.11", "pyenv-3.13.0")],
                                     ids=str)


def modlife_run(interp, ext_root, log_dir, code, **popen):
    out = build_extension(interp, "hostile_names", str(ext_root / interp.name))
    env = dict(os.environ, PYTHONPATH=out)
    env.pop("MODLIFE_OPTIONS", None)
    return subprocess.Popen([modlife_command(), "run", "--quiet", "--log-dir", str(log_dir), "--",
                             interp.path, "-c", code], env=env, **popen)


@pytest.fixture
def hostile(interp, ext_root, tmp_path):
    """One run of the fixture under `modlife run`: (stderr bytes, log path)."""
    log_dir = tmp_path / "logs"
    proc = modlife_run(interp, ext_root, log_dir, SCRIPT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == FINDINGS_STATUS, stderr.decode("utf-8", "replace")
    logs = glob.glob(str(log_dir / "*.jsonl"))
    assert len(logs) == 1, logs
    return stderr, logs[0]


def tool(*args):
    """A tool's stdout as bytes; stdout strict UTF-8, as on any UTF-8 locale but C."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    proc = subprocess.run([modlife_command(), *args], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode("utf-8", "replace")
    return proc.stdout


def assert_inert(data):
    text = data.decode("utf-8")  # strict
    found = ACTIVE.search(text)
    assert found is None, "raw %r at %d: %r" % (found.group(), found.start(), text[found.start() - 60:found.end()])


def test_library_report_escapes_names(hostile):
    stderr, _ = hostile
    assert_inert(stderr)
    text = stderr.decode("utf-8")
    assert ("==ERROR: modlife: dealloc-missing-type-decref: tp_dealloc evil_dealloc of type '%s' does not Py_DECREF"
            % TYPE_SHOWN) in text
    summary = [line for line in text.splitlines() if line.startswith("SUMMARY: ")]
    assert len(summary) == 1 and summary[0].endswith(
        " in evil_dealloc (module %s) (type %s)" % (MODULE_SHOWN_BY_LIBRARY, TYPE_SHOWN)), summary
    assert "\ntype '%s' was created here:\n" % TYPE_SHOWN in text
    access, created = text.split("\ntype '%s' was created here:\n" % TYPE_SHOWN)
    for stack in (access, created):
        assert "\n      %s:1 in <module>\n      <string>:" % PYFILE_SHOWN in stack


def test_log_is_json_and_utf8(hostile):
    _, log = hostile
    data = open(log, "rb").read()
    assert_inert(data.replace(b"\n", b""))
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert [r["module"] for r in records if r["event"] == "module-create"] == [MODULE]
    assert [r["type"] for r in records if r["event"] == "type-create"] == [TYPE]
    finding, = [r for r in records if r["event"] == "finding"]
    assert (finding["kind"], finding["module"], finding["type"]) == ("dealloc-missing-type-decref", MODULE, TYPE)
    for stack in (finding["python_stack"], finding["context"][0]["python_stack"]):
        assert [f for f in stack if f["file"] == PYFILE] == [{"file": PYFILE, "line": 1, "function": "<module>"}]


def test_tools_escape_names(hostile):
    _, log = hostile
    events = tool("events", log)
    assert_inert(events)
    events = events.decode()
    assert re.search(r"\n  +[0-9.]+s  module-create +%s #1 interp 0" % re.escape(MODULE_SHOWN), events), events
    assert re.search(r"\n  +[0-9.]+s  type-create +%s of %s #1 interp 0" % (
        re.escape(TYPE_SHOWN), re.escape(MODULE_SHOWN)), events), events
    lifetimes = tool("lifetimes", log)
    assert_inert(lifetimes)
    lifetimes = lifetimes.decode()
    assert re.search(r"\n  module +%s #1 +0 " % re.escape(MODULE_SHOWN), lifetimes), lifetimes
    assert re.search(r"\n  type +%s +0 .*  of %s #1, 1 finding" % (re.escape(TYPE_SHOWN), re.escape(MODULE_SHOWN)),
                     lifetimes), lifetimes
    report = tool("report", log)
    assert_inert(report)
    report = report.decode()
    assert " in evil_dealloc (module %s) (type %s)\n" % (MODULE_SHOWN, TYPE_SHOWN) in report
    assert report.count("\n      %s:1 in <module>\n      <string>:" % PYFILE_SHOWN) == 2
    for form in ("json", "sarif"):
        doc = json.loads(tool("report", "--format", form, log).decode("utf-8"))
        text = json.dumps(doc, ensure_ascii=False)
        assert json.dumps(TYPE, ensure_ascii=False)[1:-1] in text
    sarif = json.loads(tool("report", "--format", "sarif", log))
    result, = sarif["runs"][0]["results"]
    assert result["message"]["text"].endswith("(module %s) (type %s)" % (MODULE, TYPE))


def test_tools_read_bytes_that_are_not_utf8(hostile, tmp_path):
    """A log from an older library holds m_name's bytes as they were: every tool
    reads them as U+FFFD (and the pytest plugin too), nothing dies on them."""
    _, log = hostile
    old = tmp_path / "old.jsonl"
    old.write_bytes(open(log, "rb").read().replace(b"\\ufffd\\ufffd", b"\xff\xfe"))
    assert b"\xff\xfe" in old.read_bytes()
    for args in (["events"], ["lifetimes"], ["report"], ["report", "--format", "sarif"]):
        out = tool(*args, str(old))
        assert_inert(out.replace(b"\n", b""))
        if args[-1] != "sarif":
            assert MODULE_SHOWN.encode() in out
    tool("timeline", str(old), "-o", str(tmp_path / "old.html"))
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "python"))
    from modlife.pytest_plugin import LogTail
    found = LogTail(str(tmp_path)).read_new()
    assert [(r["module"], r["type"]) for _, r in found] == [(MODULE, TYPE)]


@pytest.mark.needs("chromium")
def test_timeline_page(hostile, tmp_path):
    """The page from a log whose directory and file names hold %DATA% and markup:
    no script of the data runs, every row is drawn, names are shown as they are."""
    _, log = hostile
    where = tmp_path / "%DATA%<img src=x onerror=window.pwned=2>"
    where.mkdir()
    name = "x%DATA%<img src=x onerror=window.pwned=3>.jsonl"
    shutil.copy(log, where / name)
    page = tmp_path / "page.html"
    tool("timeline", str(where / name), "-o", str(page))
    html = page.read_bytes()
    assert_inert(html.replace(b"\n", b""))
    data = re.search(rb'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1)
    assert not re.search(rb"[<>&]", data)
    assert html.count(b"<script") == 2 and html.count(b"<!--") == 0 and b"<img" not in html
    with Browser() as browser:
        browser.open("file://%s" % page)
        assert browser.js("typeof window.pwned") == "undefined"
        title = "modlife timeline: " + name
        assert browser.js("document.title") == title
        assert browser.js("document.querySelector('h1').textContent") == title
        bars = browser.js("[...document.querySelectorAll('.bar')].map(e => [e.dataset.kind, e.dataset.name])")
        assert ["module", MODULE + " #1"] in bars and ["type", TYPE] in bars
        labels = browser.js("[...document.querySelectorAll('.row .label')].map(e => e.textContent)")
        assert len(labels) == len(bars) and MODULE + " #1" in labels and TYPE in labels
        assert browser.js("document.querySelector('.note').textContent").startswith(str(where / name))
        browser.js("document.querySelector('.finding-marker').click()")
        report = browser.js("document.getElementById('report').textContent")
        assert " in evil_dealloc (module %s) (type %s)\n" % (MODULE_SHOWN, TYPE_SHOWN) in report


@pytest.mark.needs("gdb", "pgrep")
def test_gdb_helper(interp, ext_root, tmp_path):
    """modlife-registries reads the names out of the process: shown as the library's
    report shows them, where it died on the bytes that are not UTF-8."""
    proc = modlife_run(interp, ext_root, tmp_path / "logs", "import hostile_names, time\n"
                       "print('ready', flush=True)\ntime.sleep(120)", stdout=subprocess.PIPE)
    child = None
    try:
        assert proc.stdout.readline() == b"ready\n"
        child = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)], text=True).split()[0])
        gdb = subprocess.run(["gdb", "-batch", "-nx", "-p", str(child), "-x", GDB_HELPER, "-ex", "modlife-registries"],
                             capture_output=True, timeout=120)
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        proc.kill()
        proc.wait()
    # gdb's own chatter (thread lists, auto-load advice) is not ours: the helper's lines.
    lines = [line for line in gdb.stdout.split(b"\n") if line.startswith((b"modlife: ", b"  module", b"  type"))]
    assert_inert(b"".join(lines))
    lines = [line.decode() for line in lines]
    assert lines[0] == "modlife: 1 module instance(s)" and lines[2] == "modlife: 1 heap type(s)", lines
    assert lines[1].startswith("  module %s #1  interp 0  phase executed  " % MODULE_SHOWN_BY_LIBRARY), lines
    assert lines[3].startswith("  type %s  interp 0  of %s #1  no-gc  " % (TYPE_SHOWN, MODULE_SHOWN_BY_LIBRARY)), lines
