"""Bad environments: a full disk, a log directory removed while the process runs, an
interpreter version modlife does not know.  Each gets one clear line on stderr and a
documented degraded mode; the program itself runs on unchanged."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from modlife_testlib import HERE, INTERPRETERS, SANITIZED, library_path, modlife_command, preload_env

INTERP = next(i for i in INTERPRETERS if i.name == "debian-3.11")
pytestmark = pytest.mark.needs(INTERP)
WORK = """
import sys, xxlimited
for i in range(200):
    sys.modules.pop("xxlimited"); import xxlimited
    xxlimited.Xxo()
print("program output ok")
"""


def test_full_disk(tmp_path):
    """ENOSPC: said once; the log keeps its whole records, the program goes on."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    kept = tmp_path / "kept"
    kept.mkdir()
    # The log is copied out of the small file system before the mount goes with the namespace.
    script = ('mount -t tmpfs -o size=16k tmpfs "$1" && "$2" run --quiet --log-dir "$1" -- "$3" -c "$4"; '
              'rc=$?; cp "$1"/modlife.*.jsonl "$5"/; exit $rc')
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(mount), modlife_command(),
                           INTERP.path, WORK, str(kept)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "program output ok\n", proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and re.fullmatch(
        r"modlife: cannot write the log \S+\.jsonl: no space left on the device; it ends at its last whole "
        r"record, and the program goes on", lines[0]), proc.stderr
    # The log ends at a whole record; where the block of the last one had room, a
    # record saying why (the file system's pages decide).
    (log,) = os.listdir(kept)
    data = (kept / log).read_bytes()
    assert data.endswith(b"}\n") and b"\0" not in data
    records = [json.loads(line) for line in data.splitlines()]
    assert all(r["event"] != "log-incomplete" for r in records[:-1])
    if records[-1]["event"] == "log-incomplete":
        assert records[-1]["reason"] == "no space left on the device"


def test_log_directory_removed_while_running(tmp_path):
    log_dir = tmp_path / "logs"
    code = "import shutil; shutil.rmtree(%r); print('program output ok')" % str(log_dir)
    proc = subprocess.run([modlife_command(), "run", "--quiet", "--log-dir", str(log_dir), "--", INTERP.path,
                           "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "program output ok\n"
    assert re.fullmatch(r"modlife: the log %s/modlife\.\d+\.jsonl was removed while the process ran; its "
                        r"records are lost\n" % re.escape(str(log_dir)), proc.stderr), proc.stderr


def fake_api_names():
    """The C-API functions modlife resolves (pyapi.h) and the one it tells a Python
    process by (ml_pyapi_present), but Py_GetVersion, which a fake defines itself."""
    header = open(os.path.join(os.path.dirname(HERE), "instrument", "pyapi.h")).read()
    return set(re.findall(r"X\([^,]+,\s*(\w+),", header)) - {"Py_GetVersion"} | {"Py_IsInitialized"}


def fake_python(tmp_path, version, leave_out=()):
    """An executable that exports every C-API name modlife looks for (but leave_out),
    and says it is Python `version`."""
    names = sorted(fake_api_names() - set(leave_out))
    source = tmp_path / "fake.c"
    source.write_text("#include <stdio.h>\n"
                      + "".join("void %s(void) {}\n" % n for n in names)
                      + "int PyModule_Type, _Py_NoneStruct;\n"
                      + 'const char *Py_GetVersion(void) { return "%s (main) [GCC]"; }\n' % version
                      + 'int main(void) { puts("fake python ran"); return 0; }\n')
    exe = tmp_path / "fake-python"
    subprocess.run(["cc", "-rdynamic", "-w", str(source), "-o", str(exe)], check=True)
    return exe


@pytest.mark.parametrize("version, message", [
    ("3.99.0", "Python 3.99 is not supported (supported: 3.9 to 3.13)"),
    ("3.8.18", "Python 3.8 is not supported (supported: 3.9 to 3.13)"),
    ("banana", 'cannot read the Python version from "banana (main) [GCC]"'),
])
def test_unknown_interpreter_version(tmp_path, version, message):
    exe = fake_python(tmp_path, version)
    env = preload_env(MODLIFE_OPTIONS="log_path=%s/m" % tmp_path)
    proc = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "fake python ran\n"
    assert proc.stderr == "modlife: %s; this process runs without modlife\n" % message
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".jsonl")]


def test_functions_modlife_never_calls_are_not_required(tmp_path):
    """An interpreter is refused for lacking a C-API function only if modlife calls it:
    these were once resolved as required and never called."""
    exe = fake_python(tmp_path, "3.99.0", leave_out={"Py_AtExit", "PyModule_GetName", "PyInterpreterState_GetDict"})
    env = preload_env(MODLIFE_OPTIONS="log_path=%s/m" % tmp_path)
    proc = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "fake python ran\n"
    # Resolution went past them, to the version check.
    assert proc.stderr == "modlife: Python 3.99 is not supported (supported: 3.9 to 3.13); this process runs " \
                          "without modlife\n"


def setuid_program(tmp_path, library, version):
    """A fake Python (see fake_python) that loads the library itself: ld.so ignores
    LD_PRELOAD in setuid programs, but a library can still get in another way."""
    names = sorted(fake_api_names())
    where = tempfile.mkdtemp(prefix="modlife-suid-")
    os.chmod(where, 0o755)
    lib = os.path.join(where, "libmodlife.so")
    shutil.copy(library, lib)
    source = os.path.join(where, "prog.c")
    with open(source, "w") as f:
        f.write("#include <dlfcn.h>\n#include <stdio.h>\n"
                + "".join("void %s(void) {}\n" % n for n in names)
                + "int PyModule_Type, _Py_NoneStruct;\n"
                + 'const char *Py_GetVersion(void) { return "%s (main) [GCC]"; }\n' % version
                + 'int main(void) { if (!dlopen("%s", RTLD_NOW)) { puts(dlerror()); return 3; }\n' % lib
                + '  puts("program ran"); return 0; }\n')
    exe = os.path.join(where, "prog")
    subprocess.run(["cc", "-rdynamic", "-w", source, "-o", exe, "-ldl"], check=True)
    return where, exe


@pytest.mark.skipif(SANITIZED, reason="a setuid program cannot preload the sanitizer runtime the library needs")
@pytest.mark.needs("setpriv")
def test_setuid_processes_get_no_instrumentation(tmp_path):
    where, exe = setuid_program(tmp_path, library_path(), "3.99.0")
    try:
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe]
        env = dict(os.environ, MODLIFE_OPTIONS="log_path=%s/m" % where)
        # Not setuid: the library starts and says why it stops (it does not know 3.99).
        plain = subprocess.run(as_nobody, env=env, capture_output=True, text=True, timeout=60)
        assert plain.stdout == "program ran\n"
        assert "modlife: Python 3.99 is not supported" in plain.stderr
        # Setuid root, run by nobody (AT_SECURE): nothing at all, not even reading the options.
        os.chmod(exe, 0o4755)
        env["MODLIFE_OPTIONS"] = "no_such_option=1"
        secure = subprocess.run(as_nobody, env=env, capture_output=True, text=True, timeout=60)
        assert secure.returncode == 0 and secure.stdout == "program ran\n" and secure.stderr == ""
        assert not [n for n in os.listdir(where) if n.endswith(".jsonl")]
    finally:
        shutil.rmtree(where)


def test_environment_is_read_with_secure_getenv_only():
    """setuid programs must not take paths or options from the environment."""
    top = os.path.dirname(HERE)
    offenders = []
    for folder in ("instrument", "hooks"):
        for name in sorted(os.listdir(os.path.join(top, folder))):
            if name.endswith(".c"):
                text = open(os.path.join(top, folder, name)).read()
                offenders += ["%s/%s" % (folder, name) for _ in re.findall(r"(?<!secure_)\bgetenv\s*\(", text)]
    assert offenders == []
