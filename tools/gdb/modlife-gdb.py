"""gdb helper: modlife's live registries in a process or a core file.

    (gdb) source PKGDATADIR/gdb/modlife-gdb.py
    (gdb) modlife-registries

prints the module instances modlife knows (name, instance number, interpreter,
phase, state block, state lookups) and the heap types (qualified name, the module
instance they were made for).  It reads the library's own tables through its debug
information (libmodlife.so is built with -g and installed unstripped), so it works
on a core file as well as on a live or stopped process."""
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


def _text(value):
    try:
        return value.string() if int(value) else "?"
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
