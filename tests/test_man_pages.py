"""The man pages render without warnings and document what exists: every subcommand
and option of the command line, every MODLIFE_OPTIONS key and every finding kind."""
import os
import re
import subprocess
import sys

import pytest

from modlife_testlib import HERE, require_tool

TOP = os.path.dirname(HERE)


def rendered(page):
    proc = subprocess.run([require_tool("groff"), "-man", "-Tascii", "-ww", "-P-c", "-P-b", "-P-u",
                           os.path.join(TOP, "docs", page)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return re.sub(r"-\n\s+", "-", proc.stdout)  # words hyphenated across lines


@pytest.mark.parametrize("page", ["modlife.1", "libmodlife.7"])
def test_renders_without_warnings(page):
    assert rendered(page)


def test_command_line_page_has_every_subcommand_and_option():
    sys.path.insert(0, os.path.join(TOP, "tools", "python"))
    from modlife import cli
    text = rendered("modlife.1")
    parser = cli.build_parser("x")
    subparsers = next(a for a in parser._actions if a.dest == "subcommand").choices
    assert {"run", "report", "events", "lifetimes", "timeline"} <= set(subparsers), sorted(subparsers)
    checked = 0
    for name, sub in subparsers.items():
        assert "modlife " + name in text, name
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, (name, option)
                    checked += 1
    assert checked >= 20, checked
    for option in ("--modlife-fail-on", "--modlife-log-dir", "--modlife-suppressions"):
        assert option in text


def rows(table, macro):
    """The rows of an instrument/*.def table: one a line that starts with its macro."""
    with open(os.path.join(TOP, "instrument", table)) as f:
        return len(re.findall(r"^%s\(" % macro, f.read(), re.M))


def _section(text, title, end):
    return text[text.index("\n" + title + "\n"):text.index("\n" + end + "\n")]


def test_library_page_has_every_option_and_kind():
    """Exactly the keys and kinds of the library (options.def, kinds.def), in order,
    each with its rule and fix."""
    sys.path.insert(0, os.path.join(TOP, "tools", "python"))
    from modlife import kinds, options
    text = rendered("libmodlife.7")
    listed = re.findall(r"^       (\w+)=(\S+)$", _section(text, "OPTIONS", "FINDING KINDS"), re.M)
    assert [name for name, _ in listed] == [o.name for o in options.OPTIONS]
    assert len(listed) == rows("options.def", r"ML_OPTION_(?:STRING|INT|BOOL)")
    for (name, metavar), o in zip(listed, options.OPTIONS):
        assert metavar == "0|1" if o.type == "bool" else metavar != "0|1", name
    section = _section(text, "FINDING KINDS", "REPORTS")
    listed = re.findall(r"^       ([a-z-]+) \((error|warning)\)$", section, re.M)
    assert listed == [(k.name, k.severity) for k in kinds.KINDS]
    assert len(listed) == rows("kinds.def", "ML_KIND")
    def flat(t):  # roff fills and hyphenates lines
        return re.sub(r"[\s-]+", "", t)
    for k in kinds.KINDS:
        assert flat("Rule: " + k.rule) in flat(section) and flat("Fix: " + k.fix) in flat(section), k.name


def test_library_page_names_every_event():
    """THE LOG names each event of events.def."""
    sys.path.insert(0, os.path.join(TOP, "tools", "python"))
    from modlife import _contracts
    section = _section(rendered("libmodlife.7"), "THE LOG", "SECURITY")
    assert _contracts.EVENTS
    flat = re.sub(r"[\s-]+", "", section)  # roff hyphenates "interp-create" as "interp-cre-ate"
    missing = [e for e in _contracts.EVENTS if e.replace("-", "") not in flat]
    assert not missing, missing
