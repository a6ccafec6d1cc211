"""Findings as SARIF 2.1.0, the format GitHub code scanning takes: one rule per
finding kind (help text quoting the HOWTO rule), one result per group, located at
the innermost frame inside the extension that has file:line; the stacks go into
the result's "stacks"."""
import hashlib
import os
import re
import urllib.parse

from modlife import findings, kinds

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule(kind):
    name = "".join(part.capitalize() for part in kind.name.split("-"))
    return {
        "id": kind.name,
        "name": name,
        "shortDescription": {"text": kind.rule.split(": ")[0].split(". ")[0].rstrip(".") + "."},
        "fullDescription": {"text": kind.rule},
        "help": {
            "text": "%s\n\nHow to fix: %s\n\nSee %s" % (kind.rule, kind.fix, kinds.HOWTO),
            "markdown": "%s\n\n**How to fix:** %s\n\nSee [Isolating Extension Modules](%s)." % (
                kind.rule, kind.fix, kinds.HOWTO),
        },
        "helpUri": kinds.HOWTO,
        "defaultConfiguration": {"level": kind.severity},
        "properties": {"tags": ["reliability", "correctness", "cpython-extension"],
                       "problem.severity": kind.severity,
                       "security-severity": "7.0" if kind.severity == "error" else "4.0"},
    }


def _outside(relative):
    return relative == os.pardir or relative.startswith(os.pardir + os.sep)


def _uri(path, source_root):
    """A path under the source root relative to it, as GitHub wants it.  Any other is
    left as the debug info has it: an absolute one as a file URI, a relative one that
    is not a file under the root (CPython's "../Objects/call.c" or "Objects/call.c",
    relative to a build directory nobody knows) as it is, never joined to the root
    into a path that does not exist."""
    if os.path.isabs(path):
        relative = os.path.relpath(os.path.normpath(path), source_root)
        if _outside(relative):
            return {"uri": "file://" + urllib.parse.quote(os.path.normpath(path))}
    else:
        relative = os.path.normpath(path)
        if _outside(relative) or not os.path.isfile(os.path.join(source_root, relative)):
            return {"uri": urllib.parse.quote(path)}
    return {"uri": urllib.parse.quote(relative.replace(os.sep, "/")), "uriBaseId": "%SRCROOT%"}


def _location(frame, source_root, message=None):
    loc = {}
    if frame.get("file") and frame.get("line"):
        loc["physicalLocation"] = {"artifactLocation": _uri(frame["file"], source_root),
                                   "region": {"startLine": int(frame["line"])}}
    elif frame.get("object"):
        loc["physicalLocation"] = {"artifactLocation": {"uri": "file://" + urllib.parse.quote(frame["object"])},
                                   "address": {"relativeAddress": frame.get("off") or 0}}
    if frame.get("fn"):
        loc["logicalLocations"] = [{"name": frame["fn"], "kind": "function"}]
    if message:
        loc["message"] = {"text": message}
    return loc


def _primary_frame(group, extension_objects):
    """Innermost frame in an extension with file:line, else the SUMMARY's frame."""
    for f in group.record["stack"]:
        if f.get("obj_id") in extension_objects and f.get("file") and f.get("line"):
            return f
    return group.guilty


def _stack(title, frames, source_root):
    return {"message": {"text": title},
            "frames": [{"location": _location(f, source_root)} for f in frames if _location(f, source_root)]}


def _fingerprint(r, frame, taken):
    """Stable across runs and edits elsewhere, and distinct within one document: two
    groups at one function (the same bug reached from two Python places) get the
    same base, told apart by their order."""
    python = (r.get("python_stack") or [{}])[0]
    base = repr((r["kind"], r.get("module"), r.get("type"), frame.get("fn"),
                 os.path.basename(frame.get("file") or ""),
                 os.path.basename(python.get("file") or ""), python.get("function")))
    n = taken.get(base, 0)
    taken[base] = n + 1
    return hashlib.sha256((base + ("#%d" % n if n else "")).encode()).hexdigest()[:32]


def _result(group, index, source_root, extension_objects, taken):
    r = group.record
    frame = _primary_frame(group, extension_objects)
    where = " (module %s)" % r["module"] if r.get("module") else ""
    where += " (type %s)" % r["type"] if r.get("type") else ""
    stacks = [_stack("access", r["stack"], source_root)]
    stacks += [_stack("%s was %s here" % (c.get("of", "it"), c.get("what", "?")), c["stack"], source_root)
               for c in r.get("context", [])]
    location = _location(frame, source_root)
    fingerprint = _fingerprint(r, frame, taken)
    result = {
        "ruleId": r["kind"],
        "level": group.severity,
        "message": {"text": "%s%s" % (re.sub(r"\s+", " ", r.get("message", r["kind"])), where)},
        "locations": [location] if location else [],
        "stacks": [s for s in stacks if s["frames"]],
        "partialFingerprints": {"modlifeFinding/v1": fingerprint},
        "occurrenceCount": group.count,
        "properties": {"pids": group.pids, "interp": r.get("interp")},
    }
    if index >= 0:
        result["ruleIndex"] = index
    return result


def document(groups, processes, source_root, version):
    rules = [_rule(k) for k in kinds.KINDS]
    index = {k.name: i for i, k in enumerate(kinds.KINDS)}
    results = []
    taken = {}
    for g in groups:
        extension_objects = {i for i, o in g.process.objects.items() if findings.is_extension(o)}
        results.append(_result(g, index.get(g.kind, -1), source_root, extension_objects, taken))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "modlife", "version": version or "0",
                                "informationUri": kinds.HOWTO, "rules": rules}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": "file://" + source_root.rstrip("/") + "/"}},
            "invocations": [{"executionSuccessful": True,
                             "commandLine": " ".join(p.start.get("argv") or []),
                             "processId": p.pid} for p in processes],
            "results": results,
        }],
    }
