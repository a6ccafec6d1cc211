"""The modlife command line: one subcommand per module of this package."""
import argparse
import sys

from modlife import events, locate, logfile, run

DESCRIPTION = """\
modlife records the lifetime of every module object, module state block and heap
type that CPython extension modules create, with native and Python stacks, in one
JSONL log per process."""


def build_parser(version):
    parser = argparse.ArgumentParser(prog="modlife", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="modlife " + (version or "?"))
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run a command with modlife in its Python processes",
                       description=run.__doc__)
    p.add_argument("--log-dir", default="modlife-logs",
                   help="directory for the logs, one per process (default: ./modlife-logs)")
    p.add_argument("--audit", action="store_true",
                   help="get control through LD_AUDIT instead of LD_PRELOAD")
    p.add_argument("--stack-depth", type=int, metavar="N", help="frames kept per stack (1-256)")
    p.add_argument("--no-python-stack", action="store_true", help="do not record Python frames")
    p.add_argument("--halt-on-error", action="store_true", help="stop the program at the first finding")
    p.add_argument("--exitcode", type=int, metavar="N",
                   help="exit status when findings were reported and the program succeeded (default 23)")
    p.add_argument("--suppressions", metavar="FILE", help="file of kind:pattern lines to ignore")
    p.add_argument("--report-kinds", metavar="LIST",
                   help="finding kinds to report: a comma list, or -kind entries to leave some out "
                        "(write --report-kinds=-kind)")
    p.add_argument("--quiet", action="store_true", help="do not print where the logs are")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    p.set_defaults(func=run.main)

    p = sub.add_parser("events", help="print the lifetime events of logs, one line each",
                       description=events.__doc__)
    p.add_argument("logs", nargs="+", metavar="LOG", help="log files or directories of logs")
    p.set_defaults(func=events.main)
    return parser


def main(argv, version=None):
    args = build_parser(version).parse_args(argv)
    if getattr(args, "stack_depth", None) is not None and not 1 <= args.stack_depth <= 256:
        sys.stderr.write("modlife run: --stack-depth must be from 1 to 256\n")
        return 2
    if getattr(args, "exitcode", None) is not None and not 0 <= args.exitcode <= 255:
        sys.stderr.write("modlife run: --exitcode must be from 0 to 255\n")
        return 2
    try:
        return args.func(args, sys.stdout)
    except (logfile.LogError, locate.NotFound) as e:
        sys.stderr.write("modlife: %s\n" % e)
        return 2
    except BrokenPipeError:
        return 0
