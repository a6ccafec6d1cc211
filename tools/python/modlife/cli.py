"""The modlife command line: one subcommand per module of this package."""
import argparse
import importlib
import os
import sys

from modlife import locate, logfile, options, visible

DESCRIPTION = """\
modlife records the lifetime of every module object, module state block and heap
type that CPython extension modules create, with native and Python stacks, in one
JSONL log per process."""


LOG_HELP = "log files, directories of logs, or a directory of runs (its latest run is read)"


class _Subcommand(argparse.ArgumentParser):
    """A subcommand's parser.  Its description is its module's docstring (the module
    its func default names), read when help is printed, so that `modlife run` does not
    import what the other subcommands need."""

    def format_help(self):
        if self.description is None:
            self.description = _subcommand(self.get_default("func")).__doc__
        return super().format_help()


def _subcommand(name):
    return importlib.import_module("modlife." + name)


def build_parser(version):
    parser = argparse.ArgumentParser(prog="modlife", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="modlife " + (version or "?"))
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Subcommand)
    sub.required = True

    p = sub.add_parser("run", help="run a command with modlife in its Python processes")
    p.add_argument("--log-dir", metavar="DIR",
                   help="directory for the logs, one per process (default: a new directory "
                        "./modlife-logs/<time>-<pid> for each run)")
    p.add_argument("--audit", action="store_true",
                   help="get control through LD_AUDIT instead of LD_PRELOAD")
    p.add_argument("--stack-depth", type=int, metavar="N", help="frames kept per stack (%d-%d)" % _range("stack_depth"))
    p.add_argument("--no-python-stack", action="store_true", help="do not record Python frames")
    p.add_argument("--halt-on-error", action="store_true", help="stop the program at the first finding")
    p.add_argument("--exitcode", type=int, metavar="N",
                   help="exit status when any process reported an error and the command succeeded "
                        "(default %d; warnings too with MODLIFE_OPTIONS=exit_on_warnings=1)" % options.BY_NAME["exitcode"].default)
    p.add_argument("--suppressions", metavar="FILE", help="file of kind:pattern lines to ignore")
    p.add_argument("--report-kinds", metavar="LIST",
                   help="finding kinds to report: a comma list, or -kind entries to leave some out "
                        "(write --report-kinds=-kind)")
    p.add_argument("--quiet", action="store_true",
                   help="do not print where the logs are, even when a process reported findings")
    p.add_argument("--verbose", action="store_true", help="print where the logs are, always")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    p.set_defaults(func="run")

    p = sub.add_parser("events", help="print the lifetime events of logs, one line each")
    p.add_argument("logs", nargs="+", metavar="LOG", help=LOG_HELP)
    p.set_defaults(func="events")

    p = sub.add_parser("report", help="print the findings of logs, grouped, with symbolized stacks")
    p.add_argument("logs", nargs="+", metavar="LOG", help=LOG_HELP)
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                   help="text (default): the library's report format and a summary table; "
                        "json: one JSON document; sarif: SARIF 2.1.0 for GitHub code scanning")
    p.add_argument("--kind", action="append", metavar="KIND", help="only findings of this kind (repeatable)")
    p.add_argument("--fail-on", metavar="KINDS",
                   help="exit 1 when the report has findings of these kinds: errors, all, or a comma list "
                        "(default: exit 0 whatever was found)")
    p.add_argument("--source-root", default=".", metavar="DIR",
                   help="SARIF: file paths are made relative to DIR (default: the current directory)")
    p.add_argument("--all-python-frames", action="store_true",
                   help="text: keep the Python frames of importlib, pytest and pluggy (left out by default)")
    p.set_defaults(func="report", version=version)

    p = sub.add_parser("lifetimes", help="list module instances and heap types with their lifetimes")
    p.add_argument("logs", nargs="+", metavar="LOG", help=LOG_HELP)
    p.add_argument("--module", action="append", metavar="NAME",
                   help="only this module and its types (a glob; repeatable)")
    p.add_argument("--interp", type=int, metavar="ID", help="only this interpreter (0 is the main one)")
    p.add_argument("--alive", action="store_true", help="only what was still alive at exit")
    p.set_defaults(func="lifetimes")

    p = sub.add_parser("timeline", help="write a self-contained HTML timeline of logs")
    p.add_argument("logs", nargs="+", metavar="LOG", help=LOG_HELP)
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the page to write")
    p.add_argument("--module", action="append", metavar="NAME",
                   help="only this module and its types (a glob; repeatable)")
    p.add_argument("--interp", type=int, metavar="ID", help="only this interpreter")
    p.set_defaults(func="timeline")

    p = sub.add_parser("exercise", help="put extension modules through their lifecycle under modlife, "
                                        "without a test suite",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="+", metavar="MODULE_OR_PACKAGE",
                   help="an extension module, a package (its extension modules) or a directory "
                        "(its extension files, as top-level modules)")
    p.add_argument("--python", default=sys.executable, metavar="PY",
                   help="the interpreter to exercise them with (default: the one running modlife)")
    p.add_argument("--log-dir", metavar="DIR",
                   help="directory for the logs, one subdirectory per module (default: a new directory "
                        "./modlife-logs/<time>-<pid>)")
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="modules exercised at once (default: the number of CPUs)")
    p.add_argument("--timeout", type=int, default=120, metavar="SECONDS",
                   help="a module's process is killed after this long (default 120)")
    p.add_argument("--workload", metavar="CODE",
                   help="Python code run after each import of the module, in every interpreter, with the "
                        "module as m (what the module is for; by default no function of it is called)")
    p.add_argument("--exitcode", type=int, metavar="N",
                   help="exit status when a module had an error finding or a step crashed (default 23; "
                        "warnings too with MODLIFE_OPTIONS=exit_on_warnings=1)")
    p.add_argument("--suppressions", metavar="FILE", help="file of kind:pattern lines to ignore")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default): a table per module; json: one JSON document")
    p.set_defaults(func="exercise")
    return parser


def _range(option):
    return options.BY_NAME[option].min, options.BY_NAME[option].max


def main(argv, version=None):
    args = build_parser(version).parse_args(argv)
    for option in ("stack_depth", "exitcode"):
        given = getattr(args, option, None)
        low, high = _range(option)
        if given is not None and not low <= given <= high:
            sys.stderr.write("modlife run: --%s must be from %d to %d\n" % (option.replace("_", "-"), low, high))
            return 2
    try:
        return _subcommand(args.func).main(args, sys.stdout)
    except (logfile.LogError, locate.NotFound) as e:
        sys.stderr.write("modlife: %s\n" % visible.terminal(e))
        return 2
    except BrokenPipeError:
        return 0
