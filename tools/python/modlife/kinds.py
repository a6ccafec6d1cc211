"""The finding kinds: names, severities, rules and how to fix each are the library's
(instrument/kinds.def, generated into _contracts.py at build time), and go into
reports, SARIF rules and the man page."""
from collections import namedtuple

from modlife import _contracts

Kind = namedtuple("Kind", "name severity rule fix")

HOWTO = "https://docs.python.org/3/howto/isolating-extensions.html"

KINDS = [Kind(*k) for k in _contracts.KINDS]

BY_NAME = {k.name: k for k in KINDS}


def rule(name):
    k = BY_NAME.get(name)
    return k.rule if k else "(unknown kind: a newer modlife wrote this log)"


class UnknownKind(ValueError):
    pass


def severity(record):
    """A finding record's severity: its own, else its kind's (an unknown kind is an error)."""
    known = BY_NAME.get(record.get("kind"))
    return record.get("severity") or (known.severity if known else "error")


def select(spec, option):
    """The kind names of a list as the tools take it: "all", "errors", or kind names
    joined by ','.  A name that is no kind is an error naming the valid ones: a typo
    must not quietly select nothing."""
    if spec == "all":
        return {k.name for k in KINDS}
    if spec == "errors":
        return {k.name for k in KINDS if k.severity == "error"}
    return names([n for n in spec.split(",") if n], option, ["all", "errors"])


def names(given, option, words=()):
    unknown = [n for n in given if n not in BY_NAME]
    if unknown:
        raise UnknownKind("%s: unknown kind%s %s (kinds: %s)" % (
            option, "s" if len(unknown) > 1 else "", ", ".join("'%s'" % n for n in unknown),
            ", ".join(list(words) + [k.name for k in KINDS])))
    return set(given)
