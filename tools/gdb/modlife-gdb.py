"""gdb helper: modlife's live registries in a process or a core file.

    (gdb) source PKGDATADIR/gdb/modlife-gdb.py
    (gdb) modlife-registries

prints the module instances modlife knows (name, instance number, interpreter,
phase, state block, state lookups) and the heap types (qualified name, the module
instance they were made for).  It reads the library's own tables through its debug
information (libmodlife.so is built with -g and installed unstripped), so it works
on a core file as well as on a live or stopped process.

Names are shown escaped, by modlife's rule for terminals (see the tools'
modlife/visible.py; this file stands alone in gdb): C0 controls, DEL and bytes that
are not UTF-8 as \\xNN, C1 controls, line separators and bidirectional formatting
as \\uNNNN, a backslash as \\\\."""
import re

import gdb

TOMBSTONE = 1
PHASES = ["created", "executed", "cleared", "freed"]


def _live_values(map_name, record_type):
    try:
        table = gdb.parse_and_eval("'registry.c'::%s" % map_name)
    except gdb.error as e:
        raise gdb.GdbError("modlife: no registry in this process (is libmodlife.so loaded, with its "
                           "debug info?): %s" % e)
    slots, capacity = table["slots"], int(table["capacity"])
    pointer = gdb.lookup_type(record_type).pointer()
    for i in range(capacity):
        key = int(slots[i]["key"])
        if key not in (0, TOMBSTONE):
            yield slots[i]["value"].cast(pointer).dereference()


_TERMINAL = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\udc80-\udcff]")


def _escape(match):
    c = ord(match.group())
    if c == 0x5c:
        return "\\\\"
    if c < 0x20 or c == 0x7f:
        return "\\x%02x" % c
    if c >= 0xdc80:
        return "\\x%02x" % (c - 0xdc00)
    return "\\u%04x" % c


def _text(value):
    """A C string of the process: a module or type name, which may hold anything."""
    try:
        return _TERMINAL.sub(_escape, value.string("utf-8", "surrogateescape")) if int(value) else "?"
    except gdb.MemoryError:
        return "<unreadable>"


def _phase(value):
    n = int(value)
    return PHASES[n] if 0 <= n < len(PHASES) else str(n)


class ModlifeRegistries(gdb.Command):
    """Print modlife's registries: module instances and heap types."""

    def __init__(self):
        super().__init__("modlife-registries", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        modules = sorted(_live_values("modules", "struct ml_module_rec"), key=lambda m: int(m["instance"]))
        print("modlife: %d module instance(s)" % len(modules))
        for m in modules:
            name = _text(m["def"].dereference()["name"]) if int(m["def"]) else "?"
            print("  module %s #%d  interp %d  phase %s  module %s  state %s  state lookups %d" % (
                name, int(m["instance"]), int(m["interp"]), _phase(m["phase"]), hex(int(m["module"])),
                hex(int(m["state"])), int(m["state_lookups"])))
        types = sorted(_live_values("types", "struct ml_type_rec"), key=lambda t: int(t["seq"]))
        print("modlife: %d heap type(s)" % len(types))
        for t in types:
            owner = ("of %s #%d" % (_text(t["module_name"]), int(t["module_instance"]))
                     if int(t["module_name"]) else "of no module")
            print("  type %s  interp %d  %s  %s  type %s" % (
                _text(t["qualname"]), int(t["interp"]), owner, "gc" if int(t["gc"]) else "no-gc",
                hex(int(t["type"]))))


ModlifeRegistries()
