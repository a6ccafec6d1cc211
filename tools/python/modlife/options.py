"""MODLIFE_OPTIONS as the tools write it: key=value pairs joined by ':', every string
value quoted so that ':', '=' and quotes in it (a log directory named "a:b") reach
the library unchanged."""


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
