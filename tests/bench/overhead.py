#!/usr/bin/python3
"""modlife's overhead against the same interpreter without it, and against peers
(valgrind memcheck, Debian's python3.11-dbg, PYTHONMALLOC=debug), measured side by
side in one run (issue "Benchmarks: overhead against the uninstrumented interpreter
and against peers").

    python3 tests/bench/overhead.py [--builddir DIR | --modlife CMD] [--quick]
        [--reps N] [--peer-reps N] [--workloads startup,suites,state,churn,memory,log]
        [--interpreters pyenv-3.13.0,debian-3.11] [--suites test_json,...]
        [--peers memcheck,dbg,pymalloc | --peers none] [--run-args "MODLIFE RUN OPTIONS"]
        [--json FILE]

Every measurement alternates runs without and with modlife (the order flips each
repetition), so drift and the load of a shared machine fall on both alike.  "With
modlife" is the interpreter run in exactly the environment `modlife run` gives its
command (LD_PRELOAD and MODLIFE_OPTIONS, defaults: every detector, native and Python
stacks), taken from `modlife run -- env`, each run logging to a fresh temporary
directory; the `modlife run` launcher's own start-up (one more Python process) is the
separate row "startup -c pass via `modlife run`".  Instrumented runs' logs are read:
a finding in these workloads is flagged in the table and listed under it.

Rows: wall time of CPython's test suites of isolated extension modules and of
interpreter start-up; time measured inside the process (best of a few runs of the
loop) for the fixture tests/fixtures/bench_state.c (built here for each
interpreter, cc -O2 -g) running 10^7 PyModule_GetState / PyType_GetModuleByDef /
PyType_GetModuleState calls in C, and churning 10^5 heap types and 10^6 instances.
Then peak RSS per live type and module record, and log volume.

Columns: plain and modlife medians, ratio of medians, spread of the per-pair ratios
(p25-p75 with 5 pairs or more, min-max below), ratio of CPU time (user+sys, less
sensitive to other load), target, met/MISSED, findings and log bytes of the
instrumented runs, then the peers' ratios to the same plain run (memcheck runs with
PYTHONMALLOC=malloc, as valgrind needs; the -dbg build only on Debian's 3.11 rows).
Standard library only; runs with /usr/bin/python3."""
import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
KNOWN_FINDINGS = "--suppressions " + os.path.join(os.path.dirname(TESTS), "docs", "known-findings.supp")
sys.path.insert(0, TESTS)
from modlife_testlib import INTERPRETERS, Interpreter  # noqa: E402

FIXTURE = os.path.join(TESTS, "fixtures", "bench_state.c")
DBG = Interpreter("debian-3.11-dbg", "/usr/bin/python3.11-dbg", static_libpython=True)
SUITES = ["test_json", "test_csv", "test_decimal", "test_pickle", "test_datetime", "test_struct", "test_array"]
QUICK_SUITES = ["test_json", "test_struct"]
PEERS = ["memcheck", "dbg", "pymalloc"]
LOOKUPS = 10 ** 7
TYPES = 10 ** 5
INSTANCES = 10 ** 6
CLEAN_ENV = ("LD_PRELOAD", "LD_AUDIT", "MODLIFE_OPTIONS", "PYTHONMALLOC", "PYTHONPATH", "PYTHONHOME",
             "PYTHONDEVMODE", "PYTHONSTARTUP")

# Code run by the interpreter for the fixture rows: the loop's best time, as JSON.
LOOP_CODE = """\
import gc, json, sys, time, bench_state
fn, n, inner = getattr(bench_state, sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
best = None
for _ in range(inner):
    gc.collect()
    t = time.perf_counter()
    fn(n)
    gc.collect()
    t = time.perf_counter() - t
    best = t if best is None or t < best else best
print(json.dumps({"s": best}))
"""
# Peak RSS of the process image (VmHWM): ru_maxrss of a child would count the
# parent's pages from before exec.
PRINT_HWM = ("import json; print(json.dumps({'hwm_kib': int([l.split()[1] for l in open('/proc/self/status')"
             " if l.startswith('VmHWM:')][0])}))\n")
KEEP_TYPES_CODE = "import os, bench_state; keep = bench_state.make_types(int(os.environ['BENCH_N']))\n" + PRINT_HWM
KEEP_MODULES_CODE = """\
import importlib.util, os, bench_state
spec, keep = bench_state.__spec__, []
for _ in range(int(os.environ['BENCH_N'])):
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    keep.append(m)
""" + PRINT_HWM
LOOKUP_LOG_CODE = "import os, bench_state; bench_state.get_state_loop(int(os.environ['BENCH_N']))"
CHURN_LOG_CODE = "import os, gc, bench_state; bench_state.churn_types(int(os.environ['BENCH_N'])); gc.collect()"


def say(*args):
    print(*args, file=sys.stderr, flush=True)


class Result:
    def __init__(self, wall, cpu, rc, maxrss_kib, stdout, stderr):
        self.wall, self.cpu, self.rc, self.maxrss_kib = wall, cpu, rc, maxrss_kib
        self.stdout, self.stderr = stdout, stderr
        self.findings, self.log_bytes = [], 0

    def hwm_kib(self):
        try:
            return json.loads(self.stdout.strip().splitlines()[-1])["hwm_kib"]
        except (ValueError, IndexError, KeyError):
            raise RuntimeError("no VmHWM printed (exit %s): %s" % (self.rc, self.stderr[-1500:]))

    def value(self, internal):
        if not internal:
            return self.wall
        try:
            return json.loads(self.stdout.strip().splitlines()[-1])["s"]
        except (ValueError, IndexError, KeyError):
            raise RuntimeError("no timing printed (exit %s): %s" % (self.rc, self.stderr[-1500:]))


def run_once(argv, env, cwd, timeout):
    """Run argv, return wall and CPU time, status and peak RSS of that child alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.0005 if time.perf_counter() - start < 0.5 else 0.01)
        wall = time.perf_counter() - start
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Result(wall, usage.ru_utime + usage.ru_stime, rc, usage.ru_maxrss,
                      out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def read_logs(log_dir):
    """Finding records (kind, module, type) and the total bytes of the logs in log_dir."""
    findings, size = [], 0
    for name in sorted(os.listdir(log_dir)):
        path = os.path.join(log_dir, name)
        size += os.path.getsize(path)
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(b'{"event":"finding"') or (b'"finding"' in line[:40]):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("event") == "finding":
                        findings.append((rec.get("kind"), rec.get("module") or "", rec.get("type") or ""))
    return findings, size


def log_records(log_dir):
    """(event, bytes) of every record in the logs of log_dir."""
    out = []
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), "rb") as f:
            for line in f:
                end = line.find(b'"', 10)
                out.append((line[10:end].decode(), len(line)))
    return out


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="modlife-bench-")
        self.base_env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
        self.modlife = args.modlife
        self.placeholder = os.path.join(self.tmp, "LOGDIR-PLACEHOLDER")
        self.modlife_env = self.capture_modlife_env()
        self.fixtures = {}
        self.rows, self.mem_rows, self.logvol, self.notes = [], [], [], []
        self.all_findings = {}

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def capture_modlife_env(self):
        """The environment `modlife run` gives its command (`env` is not Python: inert)."""
        out = subprocess.run([self.modlife, "run", "--quiet", "--log-dir", self.placeholder] + self.args.run_args + ["--",
                              "/usr/bin/env", "-0"], env=self.base_env, stdout=subprocess.PIPE, check=True).stdout
        env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
        if self.placeholder not in env.get("MODLIFE_OPTIONS", ""):
            raise SystemExit("overhead.py: `modlife run` set no log_path in MODLIFE_OPTIONS: %r" % env.get("MODLIFE_OPTIONS"))
        shutil.rmtree(self.placeholder, ignore_errors=True)
        return env

    # -- building the fixture -------------------------------------------------------------
    def fixture(self, interp):
        if interp.path not in self.fixtures:
            info = interp.query()
            out = os.path.join(self.tmp, "fixture-" + interp.name)
            os.makedirs(out, exist_ok=True)
            subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-g", "-Wall", "-Werror", "-Wno-unused-parameter",
                            "-I" + info["include"], FIXTURE, "-o",
                            os.path.join(out, "bench_state" + info["suffix"])], check=True)
            self.fixtures[interp.path] = out
        return self.fixtures[interp.path]

    # -- one run in one mode ------------------------------------------------------------------
    def env_for(self, mode, pythonpath, extra):
        env = dict(self.modlife_env if mode == "modlife" else self.base_env)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        if mode == "pymalloc":
            env["PYTHONMALLOC"] = "debug"
        if mode == "memcheck":
            env["PYTHONMALLOC"] = "malloc"
        env.update(extra or {})
        return env

    def run(self, mode, interp, wl, cwd, keep_log=None):
        """One run of workload wl in mode: plain, modlife, wrapper, memcheck, dbg, pymalloc."""
        target = DBG if mode == "dbg" else interp
        pythonpath = self.fixture(target) if wl.get("fixture") else None
        argv = [target.path] + wl["args"](target)
        env = self.env_for(mode, pythonpath, wl.get("env"))
        log_dir = None
        if mode in ("modlife", "wrapper"):
            log_dir = keep_log or tempfile.mkdtemp(prefix="logs-", dir=self.tmp)
            if mode == "modlife":
                env["MODLIFE_OPTIONS"] = env["MODLIFE_OPTIONS"].replace(self.placeholder, log_dir)
                if wl.get("options"):
                    env["MODLIFE_OPTIONS"] += ":" + wl["options"]
            else:
                argv = [self.modlife, "run", "--quiet", "--log-dir", log_dir] + self.args.run_args + ["--"] + argv
        if mode == "memcheck":
            argv = ["valgrind", "--tool=memcheck", "-q", "--log-file=/dev/null"] + argv
        timeout = wl.get("timeout", 600) * (30 if mode == "memcheck" else 1)
        res = run_once(argv, env, cwd, timeout)
        if log_dir:
            res.findings, res.log_bytes = read_logs(log_dir)
            if not keep_log:
                shutil.rmtree(log_dir, ignore_errors=True)
        return res

    # -- one row: alternating plain/modlife, peers interleaved ----------------------------------
    def measure(self, name, interp, wl):
        reps = max(1, self.args.reps * wl.get("mult", 1))
        peers = [p for p in wl.get("peers", ()) if p in self.args.peers and self.peer_ok(p, interp)]
        peer_reps = max(1, min(reps, self.args.peer_reps * (wl.get("mult", 1) if wl.get("peer_mult") else 1)))
        mode_ml = "wrapper" if wl.get("wrapper") else "modlife"
        internal = wl.get("internal", False)
        cwd = tempfile.mkdtemp(prefix="cwd-", dir=self.tmp)
        series = {m: [] for m in ["plain", mode_ml] + peers}
        results = {m: [] for m in series}
        say("  %-34s %-14s %s pairs%s" % (name, interp.name, reps if not wl.get("short_reps") else
                                          "%d-%d" % (reps, reps * wl["short_reps"]),
                                          (", peers %s x%d" % ("/".join(peers), peer_reps)) if peers else ""))
        i = 0
        while i < reps:
            order = ["plain", mode_ml] if i % 2 == 0 else [mode_ml, "plain"]
            if i < peer_reps:
                order += peers
            for mode in order:
                res = self.run(mode, interp, wl, cwd)
                results[mode].append(res)
                series[mode].append(res.value(internal))
            if i == 0 and wl.get("short_reps") and series["plain"][0] < 1.0:
                reps *= wl["short_reps"]  # a short suite: more pairs for the same precision
            i += 1
        shutil.rmtree(cwd, ignore_errors=True)
        plain, ml = series["plain"], series[mode_ml]
        pairs = sorted(m / p for m, p in zip(ml, plain))
        if len(pairs) >= 5:
            q = statistics.quantiles(pairs, n=4, method="inclusive")
            spread = (q[0], q[2])
        else:
            spread = (pairs[0], pairs[-1])
        cpu = statistics.median(r.cpu for r in results[mode_ml]) / max(1e-9, statistics.median(r.cpu for r in results["plain"]))
        findings = [f for r in results[mode_ml] for f in r.findings]
        for f in findings:
            self.all_findings.setdefault((name, interp.name), {}).setdefault(f, 0)
            self.all_findings[(name, interp.name)][f] += 1
        if wl.get("count_tests"):
            counts = {m: sorted({tests_run(r.stdout) for r in results[m]}, key=str) for m in ("plain", mode_ml)}
            if counts["plain"] != counts[mode_ml]:
                self.notes.append("%s on %s: tests run differ, plain %s, modlife %s"
                                  % (name, interp.name, counts["plain"], counts[mode_ml]))
        bad_rc = sorted({r.rc for r in results["plain"] if r.rc != 0} |
                        {r.rc for r in results[mode_ml] if r.rc not in (0, 23)})
        if bad_rc:
            tail = next((r.stderr for r in results["plain"] + results[mode_ml] if r.rc not in (0, 23)), "")
            self.notes.append("%s on %s exited %s: %s" % (name, interp.name, bad_rc, tail.strip()[-400:]))
        row = {
            "workload": name, "interp": interp.name, "plain": statistics.median(plain),
            "modlife": statistics.median(ml), "ratio": statistics.median(ml) / statistics.median(plain),
            "spread": spread, "cpu": cpu, "target": wl.get("target"), "pairs": reps,
            "findings": len(findings) / len(results[mode_ml]), "log_bytes": statistics.median(r.log_bytes for r in results[mode_ml]),
            "peers": {p: statistics.median(series[p]) / statistics.median(plain[:len(series[p])] or plain) for p in peers},
            "bad_rc": bad_rc,
        }
        if wl.get("per_call"):
            row["ns_added"] = (row["modlife"] - row["plain"]) / wl["per_call"] * 1e9
            row["ns_plain"] = row["plain"] / wl["per_call"] * 1e9
        self.rows.append(row)
        say("    plain %.4fs modlife %.4fs ratio %.3f%s" % (row["plain"], row["modlife"], row["ratio"],
                                                           "".join(" %s %.2f" % kv for kv in row["peers"].items())))
        return row

    def peer_ok(self, peer, interp):
        if peer == "dbg":
            return interp.name == "debian-3.11" and os.access(DBG.path, os.X_OK)
        if peer == "memcheck":
            return shutil.which("valgrind") is not None
        return True

    # -- workloads ------------------------------------------------------------------------------------
    def suite_available(self, interp, suite):
        code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('test.%s') is None)" % suite
        return subprocess.run([interp.path, "-c", code], env=self.base_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def startup(self, interp):
        mult = 10 if not self.args.quick else 5
        for label, code in (("startup -c pass", "pass"), ("startup -c 'import json,decimal,datetime'",
                                                           "import json, decimal, datetime")):
            self.measure(label, interp, {"args": lambda i, c=code: ["-c", c], "target": 1.10, "mult": mult,
                                         "peers": PEERS, "timeout": 60})
        self.measure("startup -c pass via `modlife run`", interp,
                     {"args": lambda i: ["-c", "pass"], "target": None, "mult": mult, "wrapper": True, "timeout": 60})

    def suites(self, interp):
        for suite in self.args.suites:
            if not self.suite_available(interp, suite):
                self.notes.append("%s: %s not installed (Debian: apt-get install libpython3.11-testsuite)"
                                  % (interp.name, suite))
                continue
            self.measure("suite " + suite, interp, {"args": lambda i, s=suite: ["-m", "test", s], "target": 1.05,
                                                    "peers": ["dbg", "pymalloc"], "timeout": 1800,
                                                    "short_reps": 4, "count_tests": True})

    def state(self, interp):
        inner = 3
        for label, fn in (("10^7 PyModule_GetState", "get_state_loop"),
                          ("10^7 PyType_GetModuleByDef", "module_by_def_loop"),
                          ("10^7 PyType_GetModuleState", "type_state_loop")):
            if fn == "module_by_def_loop" and interp.version < (3, 11):
                continue
            self.measure(label, interp, {"args": lambda i, f=fn: ["-c", LOOP_CODE, f, str(LOOKUPS), str(inner)],
                                         "fixture": True, "internal": True, "target": 1.5, "per_call": LOOKUPS,
                                         "peers": PEERS, "timeout": 300})

    def churn(self, interp):
        self.measure("churn 10^5 heap types", interp,
                     {"args": lambda i: ["-c", LOOP_CODE, "churn_types", str(TYPES), "1"], "fixture": True,
                      "internal": True, "target": 1.3, "per_call": TYPES, "peers": ["dbg", "pymalloc"],
                      "timeout": 600})
        self.measure("churn 10^6 instances", interp,
                     {"args": lambda i: ["-c", LOOP_CODE, "churn_instances", str(INSTANCES), "3"], "fixture": True,
                      "internal": True, "target": 1.3, "per_call": INSTANCES, "peers": ["dbg", "pymalloc"],
                      "timeout": 600})

    def memory_row(self, interp, label, code, n, options=None, target=1024):
        """Peak RSS growth per live record: ((modlife(n) - modlife(0)) - (plain(n) - plain(0))) / n."""
        reps = max(1, min(self.args.reps, 3))
        rss = {}
        for mode in ("plain", "modlife"):
            for count in (0, n):
                wl = {"args": lambda i: ["-c", code], "fixture": True, "env": {"BENCH_N": str(count)},
                      "options": options}
                rss[mode, count] = statistics.median(self.run(mode, interp, wl, self.tmp).hwm_kib()
                                                     for _ in range(reps))
        added = ((rss["modlife", n] - rss["modlife", 0]) - (rss["plain", n] - rss["plain", 0])) * 1024 / n
        self.mem_rows.append({"what": label, "interp": interp.name, "n": n,
                            "plain_mib": (rss["plain", n] - rss["plain", 0]) / 1024,
                            "modlife_mib": (rss["modlife", n] - rss["modlife", 0]) / 1024,
                            "bytes_per_record": added, "target": target})
        say("  %-34s %-14s %.0f bytes per record" % (label, interp.name, added))

    def memory(self, interp):
        n_types = 20000 if self.args.quick else 50000
        self.memory_row(interp, "live heap type (make_types)", KEEP_TYPES_CODE, n_types)
        self.memory_row(interp, "live module instance (+ its type)", KEEP_MODULES_CODE, n_types // 10)
        # The state-use-after-free detector keeps each state block on pages of its own
        # (made inaccessible when CPython frees it): the same without it is the record.
        self.memory_row(interp, "  the same, state in place", KEEP_MODULES_CODE, n_types // 10,
                        options="report_kinds=-state-use-after-free")

    def log_volume(self, interp):
        def one_log(code, n):
            log_dir = tempfile.mkdtemp(prefix="vol-", dir=self.tmp)
            wl = {"args": lambda i: ["-c", code], "fixture": True, "env": {"BENCH_N": str(n)}}
            res = self.run("modlife", interp, wl, self.tmp, keep_log=log_dir)
            recs = log_records(log_dir)
            shutil.rmtree(log_dir, ignore_errors=True)
            return res, recs
        n = 10000
        res, recs = one_log(CHURN_LOG_CODE, n)
        by_event = {}
        for event, size in recs:
            by_event.setdefault(event, []).append(size)
        life = [s for e, ss in by_event.items() if e.startswith(("module-", "type-", "interp-")) for s in ss]
        lookups = {}
        for count in (10 ** 3, 10 ** 7):
            r, rr = one_log(LOOKUP_LOG_CODE, count)
            lookups[count] = (sum(s for _, s in rr), len(rr), r.findings)
        self.logvol.append({
            "interp": interp.name, "types": n, "records": len(recs), "bytes": sum(s for _, s in recs),
            "per_lifetime_event": sum(life) / max(1, len(life)),
            "per_event": {e: sum(ss) / len(ss) for e, ss in sorted(by_event.items())},
            "lookups": {str(k): v[:2] for k, v in lookups.items()},
            "findings": len(res.findings) + sum(len(v[2]) for v in lookups.values()),
        })
        say("  log volume %-14s %.0f bytes per lifetime event; lookups 10^3: %d bytes, 10^7: %d bytes"
            % (interp.name, self.logvol[-1]["per_lifetime_event"], lookups[10 ** 3][0], lookups[10 ** 7][0]))

    # -- output ---------------------------------------------------------------------------------
    def print_tables(self, out):
        peers = [p for p in PEERS if any(p in r["peers"] for r in self.rows)]
        names = {"memcheck": "memcheck", "dbg": "3.11-dbg", "pymalloc": "PYMALLOC=dbg"}
        head = ("%-40s %-14s %9s %9s %6s %13s %5s %6s %-7s %5s %7s" %
                ("workload", "interpreter", "plain", "modlife", "ratio", "spread", "cpu", "target",
                 "status", "find", "log") + "".join(" %12s" % names[p] for p in peers))
        print(head, file=out)
        print("-" * len(head), file=out)
        for r in self.rows:
            target = r["target"]
            status = ("met" if r["ratio"] <= target else "MISSED") if target else "info"
            if r["bad_rc"]:
                status += "!rc"
            if r["findings"]:
                status += "!F"
            line = ("%-40s %-14s %8.4fs %8.4fs %6.3f %13s %5.2f %6s %-7s %5s %7s" % (
                r["workload"][:40], r["interp"], r["plain"], r["modlife"], r["ratio"],
                "%.3f-%.3f" % r["spread"], r["cpu"], ("%.2fx" % target) if target else "-", status,
                ("%g" % r["findings"]) if r["findings"] else "0", human(r["log_bytes"])))
            line += "".join(" %12s" % (("%.2fx" % r["peers"][p]) if p in r["peers"] else "-") for p in peers)
            print(line, file=out)
            if "ns_added" in r:
                print("%-40s   %.2f ns per call plain, %+.2f ns per call added by modlife" % (
                    "", r["ns_plain"], r["ns_added"]), file=out)
        print("\nplain/modlife: medians (wall seconds, or seconds inside the process for the 10^N rows);"
              " ratio = modlife/plain;\nspread: p25-p75 of per-pair ratios (min-max under 5 pairs); cpu: ratio"
              " of user+sys; find: findings per instrumented run;\nlog: log bytes per instrumented run;"
              " !F: findings were made; !rc: unexpected exit status (see notes).", file=out)
        if self.mem_rows:
            print("\n%-36s %-14s %7s %12s %12s %14s %8s" % ("memory: peak RSS growth", "interpreter", "live",
                                                             "plain MiB", "modlife MiB", "B per record", "target"),
                  file=out)
            for m in self.mem_rows:
                print("%-36s %-14s %7d %12.1f %12.1f %14.0f %8s" % (
                    m["what"], m["interp"], m["n"], m["plain_mib"], m["modlife_mib"], m["bytes_per_record"],
                    "met" if m["bytes_per_record"] <= m["target"] else "MISSED"), file=out)
            print("a module instance's state sits on a page of its own (4096 B) so that state-use-after-free "
                  "faults\nat the bad access; \"state in place\" is the same run with that detector off "
                  "(report_kinds=-state-use-after-free).", file=out)
        for v in self.logvol:
            print("\nlog volume, %s: %d heap types churned -> %d records, %s; %.0f bytes per lifetime event" % (
                v["interp"], v["types"], v["records"], human(v["bytes"]), v["per_lifetime_event"]), file=out)
            print("  bytes per record: " + ", ".join("%s %.0f" % kv for kv in v["per_event"].items()), file=out)
            (b3, n3), (b7, n7) = v["lookups"]["1000"], v["lookups"]["10000000"]
            print("  10^3 vs 10^7 PyModule_GetState: %d vs %d bytes, %d vs %d records: %s" % (
                b3, b7, n3, n7, "same (only the lookup count's digits and times differ)"
                if n3 == n7 and abs(b7 - b3) <= 64 else "GROWS"), file=out)
            if v["findings"]:
                print("  findings: %d" % v["findings"], file=out)
        if self.all_findings:
            print("\nfindings in instrumented runs (a correct workload should have none):", file=out)
            for (name, interp), found in self.all_findings.items():
                for (kind, module, tp), count in sorted(found.items()):
                    print("  %s, %s: %s module=%s type=%s (x%d)" % (name, interp, kind, module, tp, count),
                          file=out)
        if self.notes:
            print("\nnotes:", file=out)
            for n in self.notes:
                print("  " + n, file=out)


def tests_run(stdout):
    """regrtest's "Total tests: run=N" (3.12+), or its "N tests OK" line."""
    for pattern in (r"Total tests: run=(\d+)", r"(\d+) tests? OK", r"All (\d+) tests? OK"):
        m = re.search(pattern, stdout)
        if m:
            return int(m.group(1))
    return None


def human(n):
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return ("%.0f%s" if unit == "B" or n >= 100 else "%.1f%s") % (n, unit)
        n /= 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--builddir", default=os.environ.get("MODLIFE_BUILDDIR", "."),
                   help="build tree whose tools/modlife to use (default: . or MODLIFE_BUILDDIR)")
    p.add_argument("--modlife", default=os.environ.get("MODLIFE"), help="the modlife command (or env MODLIFE)")
    p.add_argument("--reps", type=int, default=None, help="pairs per row (default 5; start-up rows x10)")
    p.add_argument("--peer-reps", type=int, default=None, help="runs of each peer per row (default 2)")
    p.add_argument("--quick", action="store_true", help="2 pairs, suites test_json and test_struct, 1 peer run")
    p.add_argument("--workloads", default="startup,suites,state,churn,memory,log")
    p.add_argument("--interpreters", default="pyenv-3.13.0,debian-3.11",
                   help="names from tests/modlife_testlib.py: debian-3.11, pyenv-3.9.18 ... pyenv-3.13.0")
    p.add_argument("--suites", default=None, help="comma list (default: %s)" % ",".join(SUITES))
    p.add_argument("--peers", default=",".join(PEERS), help="comma list of %s, or none" % ",".join(PEERS))
    p.add_argument("--run-args", default=KNOWN_FINDINGS,
                   help="options for `modlife run` (default: \"%(default)s\": the findings modlife makes in "
                        "CPython's own code, e.g. 3.9's xxlimited, are measured but not reported; \"\" for "
                        "none)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    args.reps = args.reps or (2 if args.quick else 5)
    args.peer_reps = args.peer_reps or (1 if args.quick else 2)
    args.suites = args.suites.split(",") if args.suites else (QUICK_SUITES if args.quick else SUITES)
    args.peers = [] if args.peers == "none" else args.peers.split(",")
    # Files named in them (--suppressions) hold from any working directory.
    args.run_args = [os.path.abspath(a) if os.path.exists(a) else a for a in shlex.split(args.run_args)]
    if not args.modlife:
        args.modlife = os.path.join(args.builddir, "tools", "modlife")
    if not os.access(args.modlife, os.X_OK):
        p.error("no modlife command at %s (give --builddir or --modlife, or set MODLIFE)" % args.modlife)
    args.modlife = os.path.abspath(args.modlife)
    known = {i.name: i for i in INTERPRETERS}
    interps = []
    for name in args.interpreters.split(","):
        if name not in known:
            p.error("unknown interpreter %s (one of %s)" % (name, ", ".join(known)))
        if not os.access(known[name].path, os.X_OK):
            say("overhead.py: %s (%s) is missing: left out" % (name, known[name].path))
            continue
        interps.append(known[name])
    workloads = args.workloads.split(",")
    for w in workloads:
        if w not in ("startup", "suites", "state", "churn", "memory", "log"):
            p.error("unknown workload %s" % w)

    bench = Bench(args)
    start = time.monotonic()
    try:
        for w in workloads:
            say("== %s" % w)
            for interp in interps:
                {"startup": bench.startup, "suites": bench.suites, "state": bench.state, "churn": bench.churn,
                 "memory": bench.memory, "log": bench.log_volume}[w](interp)
        print("\nmodlife overhead (%s; %d pairs per row, start-up rows x%d; peers x%d; load %.2f; %.0f s)\n" % (
            args.modlife, args.reps, 5 if args.quick else 10, args.peer_reps, os.getloadavg()[0],
            time.monotonic() - start))
        bench.print_tables(sys.stdout)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rows": bench.rows, "memory": bench.mem_rows, "log": bench.logvol,
                           "findings": [[k[0], k[1], list(f), c] for k, v in bench.all_findings.items()
                                        for f, c in v.items()], "notes": bench.notes}, f, indent=1)
    finally:
        bench.close()
    missed = any(r["target"] and r["ratio"] > r["target"] for r in bench.rows) or \
        any(m["bytes_per_record"] > m["target"] for m in bench.mem_rows)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
