"""How long the log tools take on a log of 10^6 records (issue: "report and timeline
handle a log of 10^6 records in seconds").

    python3 tests/bench/log_tools.py MODLIFE SOURCE_LOG [RECORDS]

MODLIFE is the built or installed `modlife`; SOURCE_LOG a real log whose records are
repeated (see biglog.py).  Prints seconds and peak memory per command."""
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import biglog  # noqa: E402


def measure(argv):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else before.ru_maxrss


def main():
    modlife, source = sys.argv[1], sys.argv[2]
    records = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "big.jsonl")
        biglog.write(source, log, records)
        size = os.path.getsize(log)
        print("log: %d records, %.0f MB" % (records, size / 1e6))
        print("%-28s %10s %12s" % ("command", "seconds", "peak RSS MB"))
        for name, argv in (("report", [modlife, "report", log]),
                           ("report --format sarif", [modlife, "report", "--format", "sarif", log]),
                           ("lifetimes", [modlife, "lifetimes", log]),
                           ("timeline", [modlife, "timeline", log, "-o", os.path.join(tmp, "t.html")])):
            seconds, rss = measure(argv)
            print("%-28s %10.2f %12.0f" % (name, seconds, rss / 1024))


if __name__ == "__main__":
    main()
