"""MODLIFE_OPTIONS as the tools write it: key=value pairs joined by ':', every string
value quoted so that ':', '=' and quotes in it (a log directory named "a:b") reach
the library unchanged.  The keys, their types, defaults and ranges are the library's
(instrument/options.def, generated into _contracts.py at build time)."""
from collections import namedtuple

from modlife import _contracts

# min and max: a number's range, a string's length.
Option = namedtuple("Option", "name type default min max")

OPTIONS = [Option(*o) for o in _contracts.OPTIONS]
BY_NAME = {o.name: o for o in OPTIONS}


class Unquotable(ValueError):
    pass


def quote(value):
    """value in the quotes of instrument/options.c: a quote it does not hold, which
    then ends it.  There is no escape: a value holding both quotes cannot be passed."""
    for mark in ('"', "'"):
        if mark not in value:
            return mark + value + mark
    raise Unquotable("%r holds both ' and \", which MODLIFE_OPTIONS cannot carry" % value)


def pair(key, value):
    return "%s=%s" % (key, quote(value) if isinstance(value, str) else "%d" % value)


def join(existing, pairs):
    """The options already in the environment first: the library lets later keys win."""
    return ":".join(([existing] if existing else []) + [pair(k, v) for k, v in pairs])


def split(text):
    """(key, value) pairs of MODLIFE_OPTIONS as instrument/options.c splits them: ':'
    between pairs except inside a quoted value.  Only for reading keys the tools act
    on; whether the options are valid is the library's to say (run.check_options)."""
    pairs, start, quote = [], 0, None
    text = text or ""
    for i, c in enumerate(text + ":"):
        if quote is None and c in "\"'" and i > start and text[i - 1] == "=":
            quote = c
        elif quote is not None and c == quote:
            quote = None
        elif quote is None and c == ":":
            item = text[start:i]
            start = i + 1
            if not item or "=" not in item:
                continue
            key, value = item.split("=", 1)
            if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
                value = value[1:-1]
            pairs.append((key, value))
    return pairs


def value(text, key, default=None):
    """The last value of key in MODLIFE_OPTIONS text: the library lets later keys win."""
    found = [v for k, v in split(text) if k == key]
    return found[-1] if found else default
