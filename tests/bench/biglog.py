"""A long log made from a real one: its lifetime records repeated with fresh instance
numbers and times (each naming its stack, as the library writes them), then its
findings and process-exit.  Used by the tools' tests and benchmarks."""
import json
import sys

LIFETIME = ("module-create", "module-exec", "module-clear", "module-free", "type-create", "type-dealloc")


def write(source, target, records):
    with open(source) as f:
        recs = [json.loads(line) for line in f]
    head = [r for r in recs if r["event"] in ("process-start", "object-load", "interp-create", "stack")]
    life = [r for r in recs if r["event"] in LIFETIME]
    tail = [r for r in recs if r["event"] in ("finding", "interp-finalize", "process-exit")]
    count, rounds, t = len(head) + len(tail), 0, 0
    with open(target, "w") as out:
        def put(r):
            out.write(json.dumps(r, separators=(",", ":")) + "\n")
        for r in head:
            put(r)
        while count < records:
            rounds += 1
            for r in life:
                t += 1000
                r = dict(r, t=t)
                if "instance" in r:
                    r["instance"] += 100000 * rounds
                if "type_id" in r:
                    r["type_id"] += 100000 * rounds
                put(r)
                count += 1
                if count >= records:
                    break
        for r in tail:
            put(dict(r, t=t + 1000))
    return rounds


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2], int(sys.argv[3]))
