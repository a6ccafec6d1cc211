"""Makes what the C library and the tools share from its one definition, the .def
tables of instrument/ (kinds.def, options.def, events.def), at build time:

    gen_contracts.py --instrument DIR python          modlife/_contracts.py
    gen_contracts.py --instrument DIR man PAGE.in     the page, @OPTIONS@ and @KINDS@
                                                      replaced by their lists

The C includes the .def files itself.  Standard library only: it runs with the
Python configure found, before anything is installed."""
import argparse
import os
import re
import sys

SEVERITIES = {"ERROR": "error", "WARNING": "warning"}
_STRING = r'"(?:[^"\\\n]|\\.)*"'
_TOKEN = re.compile(r'\s*(%s(?:\s*%s)*|[^,()"]+(?:\([^()]*\)[^,()"]*)*)\s*(,|\))' % (_STRING, _STRING))


class DefError(Exception):
    pass


def _c_string(literals):
    """The value of adjacent C string literals (the .def files use \\" and \\\\ only)."""
    parts = re.findall(_STRING, literals)
    return "".join(re.sub(r"\\(.)", r"\1", p[1:-1]) for p in parts)


def _strip(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def rows(path, macros):
    """(macro, [argument...]) of each invocation of one of macros in path: a string
    argument as its value, any other as its text."""
    text = _strip(open(path).read())
    found = []
    pos = 0
    call = re.compile(r"\b(%s)\s*\(" % "|".join(macros))
    while True:
        m = call.search(text, pos)
        if not m:
            break
        args, pos = [], m.end()
        while True:
            t = _TOKEN.match(text, pos)
            if not t:
                raise DefError("%s: cannot read the arguments of %s near %r"
                               % (path, m.group(1), text[m.start():m.start() + 60]))
            value = t.group(1)
            args.append(_c_string(value) if value.startswith('"') else value.strip())
            pos = t.end()
            if t.group(2) == ")":
                break
        if len(args) != macros[m.group(1)]:
            raise DefError("%s: %s takes %d arguments, not %d: %r"
                           % (path, m.group(1), macros[m.group(1)], len(args), args[:2]))
        found.append((m.group(1), args))
    return found


def _integer(expression, defines):
    """A size or number of a row: digits, the #defines of options.h, + - *."""
    text = re.sub(r"\b[A-Z_][A-Z0-9_]*\b", lambda m: str(defines[m.group(0)]), expression)
    if not re.fullmatch(r"[0-9+\-* ()]+", text):
        raise DefError("not a number: %r" % expression)
    return int(eval(text, {"__builtins__": {}}))  # digits and operators only (checked above)


def _defines(instrument):
    found = {}
    for line in open(os.path.join(instrument, "options.h")):
        m = re.match(r"#define\s+(ML_\w+)\s+([0-9]+)\s*$", line.split("/*")[0].rstrip() + "\n")
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def kinds(instrument):
    out = []
    for _, (ident, name, severity, rule, fix, when) in rows(os.path.join(instrument, "kinds.def"), {"ML_KIND": 6}):
        if severity not in SEVERITIES:
            raise DefError("kinds.def: %s: severity %s is neither ERROR nor WARNING" % (name, severity))
        out.append({"id": ident, "name": name, "severity": SEVERITIES[severity], "rule": rule, "fix": fix,
                    "when": when})
    return out


def options(instrument):
    defines = _defines(instrument)
    out = []
    macros = {"ML_OPTION_STRING": 5, "ML_OPTION_INT": 6, "ML_OPTION_BOOL": 3}
    for macro, args in rows(os.path.join(instrument, "options.def"), macros):
        if macro == "ML_OPTION_STRING":
            name, size, default, metavar, help_ = args
            size = _integer(size, defines)
            out.append({"name": name, "type": "string", "default": default, "min": 0, "max": size - 1,
                        "metavar": metavar, "help": help_})
        elif macro == "ML_OPTION_INT":
            name, default, low, high, metavar, help_ = args
            out.append({"name": name, "type": "int", "default": _integer(default, defines),
                        "min": _integer(low, defines), "max": _integer(high, defines),
                        "metavar": metavar, "help": help_})
        else:
            name, default, help_ = args
            out.append({"name": name, "type": "bool", "default": _integer(default, defines), "min": 0, "max": 1,
                        "metavar": "0|1", "help": help_})
    return out


def events(instrument):
    table = rows(os.path.join(instrument, "events.def"), {"ML_LOG_FORMAT": 1, "ML_EVENT": 2})
    formats = [int(args[0]) for macro, args in table if macro == "ML_LOG_FORMAT"]
    if len(formats) != 1:
        raise DefError("events.def: one ML_LOG_FORMAT, not %d" % len(formats))
    return formats[0], [args[1] for macro, args in table if macro == "ML_EVENT"]


def python_module(instrument):
    log_format, names = events(instrument)
    lines = ['"""Generated by tools/gen_contracts.py from instrument/kinds.def, options.def and',
             'events.def, their one definition: edit those, not this file."""',
             "",
             "LOG_FORMAT = %d" % log_format,
             "",
             "EVENTS = ("] + ["    %r," % n for n in names] + [")", "",
             "# name, severity, rule, fix",
             "KINDS = ("]
    for k in kinds(instrument):
        lines += ["    (%r, %r," % (k["name"], k["severity"]), "     %r," % k["rule"], "     %r)," % k["fix"]]
    lines += [")", "", "# name, type, default, min, max (a string's: its length)", "OPTIONS = ("]
    for o in options(instrument):
        lines.append("    (%r, %r, %r, %d, %d)," % (o["name"], o["type"], o["default"], o["min"], o["max"]))
    lines += [")", ""]
    return "\n".join(lines)


def roff(text, markup=True):
    """Plain text as man page source; with markup, *bold* and %italic% (options.def's
    help; a kind's text is C and may hold '*')."""
    text = text.replace("\\", "\\e").replace("-", "\\-").replace("'", "\\(aq").replace('"', "\\(dq")
    if markup:
        text = re.sub(r"\*([^*]+)\*", r"\\fB\1\\fP", text)
        text = re.sub(r"%([^%]+)%", r"\\fI\1\\fP", text)
    text = re.sub(r"\. +(?=[A-Z])", ".\n", text)  # a sentence ends a line, for roff's spacing
    return "\\&" + text if text.startswith((".", "'")) else text


def man_options(instrument):
    lines = []
    for o in options(instrument):
        help_ = o["help"]
        for key in ("default", "min", "max"):
            help_ = help_.replace("{%s}" % key, str(o[key]))
        help_ = help_.replace("{maxlen}", str(o["max"]))
        if re.search(r"\{\w+\}", help_):
            raise DefError("options.def: %s: unknown placeholder in %r" % (o["name"], help_))
        lines += [".TP", ".BI %s= %s" % (o["name"], roff(o["metavar"])), roff(help_)]
    return lines


def man_kinds(instrument):
    lines = []
    for k in kinds(instrument):
        lines += [".TP", '.BR %s " (%s)"' % (roff(k["name"], False), k["severity"]),
                  "Rule: " + roff(k["rule"], False), ".br", "Fix: " + roff(k["fix"], False)]
        if k["when"]:
            lines += [".br", "When: " + roff(k["when"], False)]
    return lines


def man_page(instrument, template):
    out = []
    lists = {"@OPTIONS@": man_options, "@KINDS@": man_kinds}
    for line in open(template).read().splitlines():
        out += lists[line.strip()](instrument) if line.strip() in lists else [line]
    missing = [key for key in lists if key not in open(template).read()]
    if missing:
        raise DefError("%s: no %s line" % (template, " or ".join(missing)))
    return "\n".join(out) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instrument", required=True, help="the directory of the .def files")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("python")
    man = sub.add_parser("man")
    man.add_argument("template")
    args = parser.parse_args(argv)
    try:
        text = python_module(args.instrument) if args.what == "python" else man_page(args.instrument, args.template)
    except (DefError, KeyError, ValueError) as e:
        sys.exit("gen_contracts.py: %s" % e)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
