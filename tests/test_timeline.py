"""`modlife timeline` pages, checked in a real headless browser (Debian's chromium,
driven over the DevTools pipe by cdp_client.py): the bars of every module instance
and heap type with their interpreter, the finding markers, and the report a marker
opens; a truncated log still renders; filters; nothing is fetched from the network."""
import os
import re
import subprocess

import pytest

from cdp_client import Browser
from modlife_testlib import FINDINGS_STATUS, INTERPRETERS, build_extension, modlife_command, run_modlife

INTERP = next(i for i in INTERPRETERS if i.name == "pyenv-3.12.1")
pytestmark = pytest.mark.needs("chromium", INTERP)
SCRIPT = """
import gc, sys, state_after_clear as m, _testcapi
m.keep(m.Holder())
del sys.modules["state_after_clear"], m
gc.collect()
import state_after_clear
assert _testcapi.run_in_subinterp("import state_after_clear") == 0
"""
BARS = "[...document.querySelectorAll('.bar')].map(e => [e.dataset.kind, e.dataset.name, Number(e.dataset.interp)])"


@pytest.fixture(scope="module")
def run(ext_root, tmp_path_factory):
    out = str(ext_root / INTERP.name)
    build_extension(INTERP, "state_after_clear", out)
    result = run_modlife(["--", INTERP.path, "-c", SCRIPT], tmp_path_factory.mktemp("logs"),
                         env={"PYTHONPATH": out})
    assert result.proc.returncode == FINDINGS_STATUS, result.proc.stderr
    return result


def timeline(logs, page, *args):
    proc = subprocess.run([modlife_command(), "timeline", *logs, "-o", str(page), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return page


def test_bars_markers_and_report(run, tmp_path):
    page = timeline([run.log_dir], tmp_path / "t.html")
    with Browser() as browser:
        browser.open("file://%s" % page)
        bars = browser.js(BARS)
        ours = [b for b in bars if "state_after_clear" in b[1]]
        modules = [b for b in ours if b[0] == "module"]
        assert [(b[1].split(" #")[0], b[2]) for b in modules] == [
            ("state_after_clear", 0), ("state_after_clear", 0), ("state_after_clear", 1)]
        assert sorted((b[1], b[2]) for b in ours if b[0] == "type") == sorted(
            [("state_after_clear.Holder", 0), ("state_after_clear.Keeper", 0)] * 2 +
            [("state_after_clear.Holder", 1), ("state_after_clear.Keeper", 1)])
        assert browser.js("document.querySelectorAll('.mark.exec').length") >= 3
        assert browser.js("document.querySelectorAll('.mark.clear').length") >= 3
        kinds = browser.js("[...document.querySelectorAll('.finding-marker')].map(e => e.dataset.kind)")
        assert kinds == ["state-use-after-clear"]
        # The marker sits on the bar of the first module instance, whose m_clear found it.
        row = browser.js("document.querySelector('.finding-marker').closest('.row').querySelector('.label').textContent")
        assert row == modules[0][1]
        assert browser.js("getComputedStyle(document.getElementById('panel')).display") == "none"
        browser.js("document.querySelector('.finding-marker').click()")
        assert browser.js("getComputedStyle(document.getElementById('panel')).display") == "flex"
        report = browser.js("document.getElementById('report').textContent")
        assert "SUMMARY: modlife: state-use-after-clear" in report
        assert re.search(r"in Holder_dealloc \S*state_after_clear\.c:\d+", report), report
        assert "was cleared (m_clear) here:" in report


def test_truncated_log_and_filters(run, tmp_path):
    data = open(run.logs[0], "rb").read()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[:data.index(b'{"event":"module-free"') + 30])
    page = timeline([str(cut)], tmp_path / "cut.html")
    with Browser() as browser:
        browser.open("file://%s" % page)
        assert "crashed or killed" in browser.js("document.body.textContent")
        alive = browser.js("[...document.querySelectorAll('.bar.alive')].map(e => e.dataset.name)")
        assert any(name.startswith("state_after_clear #") for name in alive)
    page = timeline([run.log_dir], tmp_path / "sub.html", "--interp", "1", "--module", "state_after_*")
    with Browser() as browser:
        browser.open("file://%s" % page)
        bars = browser.js(BARS)
        assert bars and all(b[2] == 1 and "state_after_clear" in b[1] for b in bars)


def test_page_is_self_contained(run, tmp_path):
    text = open(timeline([run.log_dir], tmp_path / "t.html")).read()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text
