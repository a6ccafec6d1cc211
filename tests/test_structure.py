"""The library's layers, read from the build: which source file calls which, from the
symbols each object defines and leaves undefined (nm).  No cycle between files: a
file can be understood, tested and changed with only the files below it.  The core
(instrument/) calls the hooks (hooks/) only from the top, where the engine installs
them: hooks call the core, never the other way round."""
import collections
import functools
import os
import re
import subprocess

import pytest

from modlife_testlib import HERE, require_tool

TOP = os.path.dirname(HERE)
# The LD_AUDIT entry is a library of its own, which reaches the core by dlsym only.
OWN_LIBRARY = {"instrument/audit.c"}
# Where the hooks are installed: the engine hands the hook table to GOT patching, and
# the LD_AUDIT bridge answers symbol bindings from it.
HOOK_INSTALLERS = {"instrument/engine.c", "instrument/audit_bridge.c"}


def library_objects():
    """{source file: its object} for every C file of libmodlife, from the build tree."""
    builddir = os.environ.get("MODLIFE_BUILDDIR")
    if not builddir:
        pytest.fail("MODLIFE_BUILDDIR must name the build tree (run the tests with `make check`)")
    objects, missing = {}, []
    for layer in ("instrument", "hooks"):
        for name in sorted(os.listdir(os.path.join(TOP, layer))):
            source = layer + "/" + name
            if not name.endswith(".c") or source in OWN_LIBRARY:
                continue
            lo = os.path.join(builddir, layer, "libmodlife_la-%s.lo" % name[:-2])
            if not os.path.exists(lo):
                missing.append(source)
                continue
            with open(lo) as f:
                fields = dict(re.findall(r"^(\w+)='(.*)'$", f.read(), re.M))
            obj = fields["pic_object"] if fields.get("pic_object", "none") != "none" else fields["non_pic_object"]
            objects[source] = os.path.join(os.path.dirname(lo), obj)
    assert not missing, "not built (run make): %s" % missing
    return objects


def symbols(obj):
    """(defined, undefined) global symbols of an object."""
    out = subprocess.run([require_tool("nm"), "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        if kind in ("U", "w", "v"):
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


@functools.lru_cache(maxsize=None)
def call_graph():
    """{file: {file it uses: [symbols]}} over the library's source files."""
    objects = library_objects()
    table = {source: symbols(obj) for source, obj in objects.items()}
    owner = {}
    for source, (defined, _) in table.items():
        for name in defined:
            owner[name] = source
    graph = {source: collections.defaultdict(list) for source in table}
    for source, (_, undefined) in table.items():
        for name in sorted(undefined):
            if owner.get(name, source) != source:
                graph[source][owner[name]].append(name)
    return graph


def shortest_cycle(graph, start):
    """The shortest path start -> ... -> start, or None."""
    paths = {start: [start]}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return None


def describe(graph, cycle):
    steps = [cycle[0]]
    for a, b in zip(cycle, cycle[1:]):
        steps.append("-> %s (%s)" % (b, ", ".join(graph[a][b][:3])))
    return " ".join(steps)


def test_the_graph_is_read():
    """The check below would pass on an empty graph: the graph has the files and the
    calls every build has."""
    graph = call_graph()
    assert len(graph) >= 40 and "hooks/hook_table.c" in graph
    assert "ml_record_begin" in graph["instrument/events.c"]["instrument/log_writer.c"]
    assert "ml_hook_patch_target" in graph["instrument/engine.c"]["hooks/hook_table.c"]


def test_no_cycle_between_source_files():
    graph = call_graph()
    cycles = {}
    for source in graph:
        cycle = shortest_cycle(graph, source)
        if cycle:
            key = frozenset(cycle)
            if key not in cycles or len(cycle) < len(cycles[key]):
                cycles[key] = cycle
    assert not cycles, "source files that call each other:\n" + "\n".join(
        describe(graph, c) for c in sorted(cycles.values(), key=len))


def test_the_core_calls_the_hooks_only_to_install_them():
    graph = call_graph()
    upward = ["%s -> %s (%s)" % (source, target, ", ".join(names[:3]))
              for source, targets in sorted(graph.items()) if source.startswith("instrument/")
              and source not in HOOK_INSTALLERS
              for target, names in sorted(targets.items()) if target.startswith("hooks/")]
    assert not upward, "the core calls up into the hooks:\n" + "\n".join(upward)


# What the hooks may not call: the registry's lock and its raw lookups, which expect
# that lock held.  Hooks read and change records only through the registry's verbs
# (instrument/registry.h), which take the lock themselves and keep the records'
# invariants; a hook that keeps a table of its own guards it with a lock of its own.
RAW_REGISTRY = {"ml_registry_lock", "ml_registry_unlock", "ml_registry_trylock",
                "ml_module_find", "ml_type_find", "ml_def_find"}


def test_hooks_change_records_only_through_the_registry_verbs():
    objects = library_objects()
    raw = {source: sorted(symbols(obj)[1] & RAW_REGISTRY) for source, obj in objects.items()
           if source.startswith("hooks/") and symbols(obj)[1] & RAW_REGISTRY}
    assert "ml_module_phase_change" in symbols(objects["hooks/module_slots.c"])[1]  # the symbols are read
    assert not raw, "hooks that take the registry lock or look records up without it " \
        "(not through a verb of instrument/registry.h): %s" % raw
