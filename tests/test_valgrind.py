"""Self-check under valgrind memcheck: fixture runs through the library (lifecycle,
findings, threads, a subinterpreter) show no memory error and no leak whose
innermost frame is modlife's own code.  Python's own leaks at exit and errors in
CPython are not the library's and are left out; libunwind's address probes are
suppressed (tests/valgrind/modlife.supp says why)."""
import os
import re

import pytest

from modlife_testlib import HERE, INTERPRETERS, SANITIZED, build_extension, run_modlife

INTERP = next(i for i in INTERPRETERS if i.name == "pyenv-3.12.1")
pytestmark = pytest.mark.needs("valgrind", INTERP)
SUPPRESSIONS = os.path.join(HERE, "valgrind", "modlife.supp")
# Frames that only pass the blame on: allocators and libc's memory functions.
PASS_THROUGH = re.compile(r"(malloc|calloc|realloc|free|strdup|strndup|memcpy|memmove|memset|strlen|strcmp|"
                          r"__memcpy\w*|__strlen\w*|syscall|write|__GI_\w+) ")
OURS = re.compile(r"\b(ml_\w+|\w+) \((?:\w+\.c):\d+\)|libmodlife")
OUR_SOURCES = {os.path.splitext(n)[0] for d in ("instrument", "hooks")
               for n in os.listdir(os.path.join(os.path.dirname(HERE), d)) if n.endswith(".c")}

SCRIPTS = {
    "lifecycle-and-finding": """
import gc, sys, threading, state_after_clear as m, xxlimited, isolated
x = xxlimited.Xxo()
m.keep(m.Holder())
del sys.modules["state_after_clear"], m
gc.collect()
ts = [threading.Thread(target=isolated.lookup_state, args=(1000,)) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
""",
    "subinterpreter": """
import _testcapi
assert _testcapi.run_in_subinterp("import isolated; isolated.Thing()") == 0
""",
}


def blocks(text):
    current = []
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if body.strip():
            current.append(body)
        elif current:
            yield current
            current = []
    if current:
        yield current


def frame_is_ours(frame):
    if "libmodlife" in frame:
        return True
    m = re.search(r"\(([\w.]+)\.c:\d+\)", frame)
    return bool(m and m.group(1) in OUR_SOURCES and re.search(r": (ml_\w+|\w+) \(", frame))


def our_problems(text):
    found = []
    for block in blocks(text):
        head = block[0]
        if not (head.startswith(("Invalid", "Syscall", "Conditional", "Use of", "Mismatched", "Source and"))
                or "definitely lost" in head):
            continue
        frames = [line for line in block[1:] if re.match(r"\s+(at|by) 0x", line)]
        innermost = next((f for f in frames if not PASS_THROUGH.search(f.split(": ", 1)[-1])), "")
        if frame_is_ours(innermost):
            found.append("\n".join(block))
    return found


@pytest.mark.skipif(SANITIZED, reason="ASan and valgrind do not run together: two separate self-checks")
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_no_memory_error_from_the_library(name, ext_root, tmp_path):
    out = str(ext_root / INTERP.name)
    for fixture in ("state_after_clear", "isolated"):
        build_extension(INTERP, fixture, out)
    vg_log = tmp_path / "valgrind.%p.txt"
    run = run_modlife(["--", "valgrind", "--tool=memcheck", "--suppressions=" + SUPPRESSIONS,
                       "--leak-check=full", "--show-leak-kinds=definite", "--num-callers=40",
                       "--log-file=" + str(vg_log), INTERP.path, "-c", SCRIPTS[name]],
                      tmp_path / "logs", env={"PYTHONPATH": out, "PYTHONMALLOC": "malloc"}, timeout=600)
    assert run.proc.returncode in (0, 23), run.proc.stderr[-2000:]
    reports = [p for p in os.listdir(tmp_path) if p.startswith("valgrind.")]
    assert reports, "valgrind wrote no report"
    problems = [b for p in reports for b in our_problems(open(tmp_path / p).read())]
    assert not problems, "\n\n".join(problems[:5])
    assert run.logs, "the library did not run under valgrind"


def test_the_check_blames_our_frames_only():
    ours = ("==1== Invalid read of size 8\n==1==    at 0x4C2: memcpy (vg_replace_strmem.c:1)\n"
            "==1==    by 0x485: ml_registry_lookup (registry.c:42)\n==1==    by 0x4A6: PyModule_GetState (x.c:1)\n==1== \n")
    theirs = ("==1== 45 bytes in 1 blocks are definitely lost in loss record 29 of 486\n"
              "==1==    at 0x484: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)\n"
              "==1==    by 0x4AA: PyUnicode_New (unicodeobject.c:1251)\n"
              "==1==    by 0x485: ml_type_created (type_create.c:30)\n==1== \n")
    assert len(our_problems(ours)) == 1 and our_problems(theirs) == []
