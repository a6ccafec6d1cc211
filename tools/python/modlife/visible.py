"""Names from a log, made harmless for where they are shown.  A module or type name
is whatever bytes an extension put in a C string (PyModuleDef.m_name is never
decoded by CPython), and file and function names are hardly tamer: shown raw, an
escape sequence in one clears the screen, plants a hyperlink or rewrites the lines
above it.

terminal(): a C0 control or DEL as \\xNN, a byte the log reader could not decode
(a surrogate of surrogateescape) as \\xNN, an invisible code point (C1 controls,
line and paragraph separators, bidirectional formatting) as \\uNNNN, a backslash as
\\\\, so that every escape reads one way; everything else as it is.  The library's
stderr report escapes the same way (instrument/visible_text.c).

script_json(): JSON for a <script> element of an HTML page: nothing in it can end
the element or open a comment in it."""
import json
import re

_INVISIBLE = "\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_TERMINAL = re.compile("[\\\\\x00-\x1f\x7f-\x9f%s\ud800-\udfff]" % _INVISIBLE)
_SCRIPT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                         "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _escape(match):
    c = ord(match.group())
    if c == 0x5c:
        return "\\\\"
    if c < 0x20 or c == 0x7f:
        return "\\x%02x" % c
    if 0xdc80 <= c <= 0xdcff:
        return "\\x%02x" % (c - 0xdc00)
    return "\\u%04x" % c


def terminal(text):
    """text (or str() of it) for a terminal: see the module's doc."""
    text = text if isinstance(text, str) else str(text)
    # Everything escaped is outside isprintable(): most lines of a long log pass here.
    if text.isprintable() and "\\" not in text:
        return text
    return _TERMINAL.sub(_escape, text)


def script_json(value):
    """value as JSON to embed in <script>: ASCII, with <, >, & and the line
    separators as \\uNNNN (JSON allows them there and only there: inside strings)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).translate(_SCRIPT)
