"""Findings of a run, grouped: the same finding at the same place, in any process
of the run, is one group with a count.  Frames are symbolized here (symbolize.py)
so every output format shows function and file:line."""
import os
import re
from dataclasses import dataclass, field

from modlife import kinds, symbolize

_EXTENSION_NAME = re.compile(r"\.(cpython-[^/]*|abi3)\.so$|/lib-dynload/[^/]*\.so$")


def is_extension(load):
    """Is this object-load record an extension module (what a finding blames)?"""
    return bool(load.get("patched")) or bool(_EXTENSION_NAME.search(load.get("path", "")))


@dataclass
class Group:
    record: dict                  # the first finding of the group, stacks symbolized
    process: object               # its Process
    guilty: dict                  # the frame the SUMMARY names
    count: int = 1
    pids: list = field(default_factory=list)
    members: list = field(default_factory=list)  # (process, record as logged) of each finding in it

    @property
    def kind(self):
        return self.record["kind"]

    @property
    def severity(self):
        return kinds.severity(self.record)


def guilty_frame(stack, process):
    """The innermost frame in an extension, else the innermost frame."""
    for f in stack:
        if is_extension(process.objects.get(f.get("obj_id"), {})):
            return f
    return stack[0] if stack else {}


def _symbolize(record, process, symbolizer):
    def frames(stack):
        out = []
        for f in stack or ():
            named = symbolizer.frame(f)
            named["obj_id"] = f.get("obj")
            out.append(named)
        return out
    record = dict(record)
    record["stack"] = frames(record.get("stack"))
    record["context"] = [dict(c, stack=frames(c.get("stack"))) for c in record.get("context", [])]
    if isinstance(record.get("null_lookup"), dict):
        record["null_lookup"] = dict(record["null_lookup"], stack=frames(record["null_lookup"].get("stack")))
    return record


def _key(record, guilty):
    if record.get("slot_function"):
        # A bug of a type's slot is the slot function's, wherever it was called from.
        return (record["kind"], record.get("module"), record.get("type"), record["slot"], record["slot_function"])
    python = record.get("python_stack") or [{}]
    where = (guilty.get("fn"), guilty.get("file"), guilty.get("line")) if guilty.get("file") else \
        (guilty.get("fn"), os.path.basename(guilty.get("object") or ""), guilty.get("off"))
    return (record["kind"], record.get("module"), record.get("type"), where,
            python[0].get("file"), python[0].get("line"))


def group(processes):
    """Groups of findings of all processes, in the order they were first seen."""
    groups = {}
    for process in processes:
        symbolizer = symbolize.Symbolizer(process.objects)
        for r in process.findings:
            symbolizer.want(r.get("stack"))
            for c in r.get("context", []):
                symbolizer.want(c.get("stack"))
            if isinstance(r.get("null_lookup"), dict):
                symbolizer.want(r["null_lookup"].get("stack"))
        symbolizer.resolve()
        for r in process.findings:
            record = _symbolize(r, process, symbolizer)
            guilty = guilty_frame(record["stack"], process)
            key = _key(record, guilty)
            if key in groups:
                groups[key].count += 1
                if process.pid not in groups[key].pids:
                    groups[key].pids.append(process.pid)
            else:
                groups[key] = Group(record, process, guilty, pids=[process.pid])
            groups[key].members.append((process, r))
    return list(groups.values())


def summary(groups):
    """Rows of (kind, severity, count, modules), errors first.  A kind whose findings
    differ in severity (tp-free-override) has a row for each."""
    rows = {}
    for g in groups:
        row = rows.setdefault((g.kind, g.severity), [g.kind, g.severity, 0, []])
        row[2] += g.count
        module = g.record.get("module") or (g.record.get("type") or "").split(".")[0] or "-"
        if module not in row[3]:
            row[3].append(module)
    return sorted(rows.values(), key=lambda r: (r[1] != "error", r[0]))
