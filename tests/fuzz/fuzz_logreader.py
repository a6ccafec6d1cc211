"""Fuzzer of the tools' log reading: mutated logs (cut, bytes flipped, lines dropped
or repeated, values of the wrong type) through the reader, the model, grouping and
every output format.  Anything but a clean LogError is a crash: the input is saved
to the artifacts directory and the run fails.

    python3 tests/fuzz/fuzz_logreader.py --runs N --tools tools/python \
        --seeds tests/fuzz/corpus/logs --artifacts DIR [--seed S]"""
import argparse
import io
import json
import os
import random
import sys
import tempfile
import traceback

WRONG_VALUES = [None, True, -1, 2 ** 70, 1.5, "", "x", "0xzz", [], {}, [1, "a"], {"event": 3}]


def mutate_value(rng, line):
    try:
        record = json.loads(line)
    except ValueError:
        return line
    targets = [record]
    for key in ("stack", "context", "python_stack"):
        if isinstance(record.get(key), list) and record[key]:
            item = rng.choice(record[key])
            if isinstance(item, dict):
                targets.append(item)
                if isinstance(item.get("stack"), list) and item["stack"] and isinstance(item["stack"][0], dict):
                    targets.append(item["stack"][0])
    target = rng.choice(targets)
    if target:
        key = rng.choice(sorted(target))
        target[key] = rng.choice(WRONG_VALUES)
    return json.dumps(record, separators=(",", ":")).encode()


def mutate(rng, data):
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        i = rng.randrange(len(lines))
        if choice < 0.35:
            lines[i] = mutate_value(rng, lines[i])
        elif choice < 0.5:
            del lines[i]
        elif choice < 0.6:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif choice < 0.8 and lines[i]:
            b = bytearray(lines[i])
            b[rng.randrange(len(b))] = rng.randrange(256)
            lines[i] = bytes(b)
        elif lines[i]:
            lines[i] = lines[i][:rng.randrange(len(lines[i]))]
    out = b"\n".join(lines)
    if rng.random() < 0.3:
        out = out[:rng.randrange(len(out) + 1)]
    return out


def exercise(path, modules):
    logfile, model, findings, report_text, sarif, lifetimes, report, symbolize = modules
    try:
        processes = [model.load(path)]
        groups = findings.group(processes)
        for g in groups:
            report_text.render(g)
        report_text.summary_table(findings.summary(groups), processes)
        json.dumps(report.json_document(groups, processes))
        json.dumps(sarif.document(groups, processes, "/", "0"))
        args = argparse.Namespace(interp=None, module=None, alive=False)
        for p in processes:
            lifetimes.print_process(p, [life for life in p.lives if lifetimes.selected(life, args)], io.StringIO())
    except logfile.LogError as e:
        message = str(e)
        if "\n" in message or not message.startswith(path):
            raise AssertionError("LogError is not one line naming the file: %r" % message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tools", required=True)
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--artifacts", default=".")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    sys.path.insert(0, args.tools)
    from modlife import findings, lifetimes, logfile, model, report, report_text, sarif, symbolize
    symbolize.shutil.which = lambda name: None  # addr2line on random paths would only be slow
    symbolize._warned_missing = True
    modules = (logfile, model, findings, report_text, sarif, lifetimes, report, symbolize)
    seeds = [open(os.path.join(args.seeds, n), "rb").read() for n in sorted(os.listdir(args.seeds))]
    seed = args.seed if args.seed is not None else random.randrange(2 ** 32)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz.jsonl")
        for run in range(args.runs):
            data = mutate(rng, rng.choice(seeds))
            with open(path, "wb") as f:
                f.write(data)
            try:
                exercise(path, modules)
            except Exception:
                crash = os.path.join(args.artifacts, "crash-logreader-%d.jsonl" % run)
                with open(crash, "wb") as f:
                    f.write(data)
                traceback.print_exc()
                sys.stderr.write("fuzz_logreader: crash on input %s (seed %d, run %d)\n" % (crash, seed, run))
                return 1
    print("fuzz_logreader: %d executions, no crash (seed %d)" % (args.runs, seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
