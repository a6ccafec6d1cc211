"""Installing modlife the way Python tools install, and with make install.

The wheel is built once per session from this source tree by the in-tree PEP 517
backend (pip wheel --no-build-isolation, offline) and installed into a fresh venv of
every interpreter but Debian's -dbg one: `modlife --version` and `python -m modlife
--version` everywhere; on Debian's 3.11 (a --system-site-packages venv, for Debian's
pytest), pyenv 3.9 and pyenv 3.13 also `modlife run` and `pytest --modlife` on a test
that hits a planted bug (the others only install and print the version, to keep the
run short).  pytest for the pyenv venvs is a pinned release fetched from the index
once; without the index those pytest runs are skipped, saying so.  `pip install .` is
run once (pyenv 3.13, build isolation, --no-index, configure-args=--enable-sanitizers)
on a copy of the source without build products and without ./configure.  Last, `make install prefix=DIR` with DIR's
site directory on PYTHONPATH must leave every pytest run working."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from modlife_testlib import (HERE, INTERPRETERS, build_extension, path_without, read_log, require_interpreter,
                             require_module)

SOURCE_ROOT = os.path.dirname(HERE)
PYTEST_PIN = "pytest==8.3.3"
FULL = {"debian-3.11", "pyenv-3.9.18", "pyenv-3.13.0"}
CASES = [i for i in INTERPRETERS if i.name != "debian-3.11-dbg"]
FULL_CASES = [i for i in CASES if i.name in FULL]

PLANTED = '''
import gc, sys

def test_clean():
    pass

def test_planted():
    """state-use-after-clear: a Holder kept in the state dies in m_clear and asks for the state."""
    import state_after_clear as m
    m.keep(m.Holder())
    del sys.modules["state_after_clear"], m
    gc.collect()
'''


def version():
    with open(os.path.join(SOURCE_ROOT, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[modlife\],\s*\[([^\]]+)\]", f.read()).group(1)


def clean_env(**extra):
    """No build tree (make check's MODLIFE_*), no outer make, no PYTHONPATH: what a user has."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MODLIFE") and k not in ("PYTHONPATH", "LD_PRELOAD", "MAKEFLAGS", "MFLAGS",
                                                         "MAKELEVEL", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run(argv, timeout=300, **kwargs):
    kwargs.setdefault("env", clean_env())
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs)
    return proc


def ok(argv, **kwargs):
    proc = run(argv, **kwargs)
    assert proc.returncode == 0, "%s: exit %d\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, argv)), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def build_wheel(tmp_path_factory):
    """The modlife wheel of this source tree (conftest's session fixture `wheel`)."""
    require_module(next(i for i in INTERPRETERS if i.name == "debian-3.11"), "pip", "python3-pip")
    out = tmp_path_factory.mktemp("wheel")
    # Without clang on PATH: the backend's configure must not need it (no fuzzing then).
    no_clang = path_without(str(tmp_path_factory.mktemp("no-clang") / "bin"), ("clang",))
    ok(["/usr/bin/python3", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--no-cache-dir", "-w", out, SOURCE_ROOT], env=clean_env(PYTHONDONTWRITEBYTECODE="1", PATH=no_clang))
    wheels = glob.glob(str(out / "*.whl"))
    assert [os.path.basename(w) for w in wheels] == ["modlife-%s-py3-none-linux_x86_64.whl" % version()]
    return wheels[0]


@pytest.fixture(scope="session")
def pytest_wheels(tmp_path_factory):
    """A pinned pytest and its dependencies for the pyenv venvs (3.9's pip fetches the
    widest set: tomli and exceptiongroup too; the oldest one present does), or None when
    the index is out of reach."""
    out = tmp_path_factory.mktemp("pytest-wheels")
    pythons = [i.path for i in INTERPRETERS if i.name.startswith("pyenv-") and os.access(i.path, os.X_OK)]
    if not pythons:
        return None
    proc = run([pythons[0], "-m", "pip", "download", "--no-cache-dir", "-d", out, PYTEST_PIN], timeout=240)
    return str(out) if proc.returncode == 0 else None


@pytest.fixture(scope="session")
def venvs(tmp_path_factory, wheel):
    """interpreter name -> a venv of it with the wheel installed (made on first use)."""
    made = {}

    def venv(interp):
        if interp.name not in made:
            require_module(interp, "ensurepip", "python3-venv")
            d = tmp_path_factory.mktemp("venv-" + interp.name)
            system = ["--system-site-packages"] if interp.name == "debian-3.11" else []
            ok([interp.path, "-m", "venv"] + system + [d])
            ok([d / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel])
            made[interp.name] = d
        return made[interp.name]
    return venv


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """interpreter -> a directory with test_planted.py and the state_after_clear extension."""
    root = tmp_path_factory.mktemp("planted")

    def project(interp):
        d = root / interp.name
        if not d.exists():
            build_extension(interp, "state_after_clear", str(d))
            (d / "test_planted.py").write_text(PLANTED)
        return d
    return project


def check_version(bindir):
    expected = "modlife %s\n" % version()
    assert ok([bindir / "modlife", "--version"]).stdout == expected
    assert ok([bindir / "python", "-m", "modlife", "--version"]).stdout == expected


def check_pytest_modlife(python, project, env=None):
    """The planted bug fails test_planted, and only it; no -p, no PYTHONPATH but env's."""
    proc = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--modlife",
                "--modlife-log-dir", project / "logs", "test_planted.py"], cwd=project, env=env or clean_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "PASSED test_planted.py::test_clean" in out
    assert "FAILED test_planted.py::test_planted" in out
    assert "SUMMARY: modlife: state-use-after-clear" in out
    assert "ModuleNotFoundError" not in out


@pytest.mark.parametrize("interp", CASES, ids=[i.name for i in CASES])
def test_wheel_installs_command_and_library(interp, venvs):
    d = venvs(interp)
    check_version(d / "bin")
    libdir = ok([d / "bin" / "python", "-c", "from modlife import locate; print(locate.libdir())"]).stdout.strip()
    assert libdir.startswith(str(d) + os.sep)
    assert sorted(f for f in os.listdir(libdir) if f.endswith(".so")) == ["libmodlife.so", "libmodlife_audit.so"]
    plugins = ok([d / "bin" / "python", "-c", "import importlib.metadata as m; "
                  "print([e.value for e in m.distribution('modlife').entry_points if e.group == 'pytest11'])"])
    assert plugins.stdout.strip() == "['modlife.pytest_plugin']"


@pytest.mark.parametrize("interp", FULL_CASES, ids=[i.name for i in FULL_CASES])
def test_wheel_run_and_pytest_plugin(interp, venvs, planted, pytest_wheels, tmp_path):
    d = venvs(interp)
    logs = tmp_path / "logs"
    # --exitcode 0: 3.9's xxlimited has a real finding (see xxlimited_status).
    ok([d / "bin" / "modlife", "run", "--quiet", "--exitcode", "0", "--log-dir", logs, "--",
        d / "bin" / "python", "-c", "import xxlimited"])
    [log] = glob.glob(str(logs / "*.jsonl"))
    assert any(r["event"] == "module-exec" and r.get("module") == "xxlimited" for r in read_log(log))
    if interp.name != "debian-3.11":
        if pytest_wheels is None:
            pytest.skip("pip could not fetch %s from the index: pytest --modlife not run in the %s venv"
                        % (PYTEST_PIN, interp.name))
        ok([d / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", "--find-links", pytest_wheels,
            PYTEST_PIN])
    check_pytest_modlife(d / "bin" / "python", planted(interp))


def source_copy(dest):
    """The source as a checkout has it: tracked and new files, no build products, and
    so no ./configure (the backend runs autoreconf); a copy of the tree when it is not
    a git checkout (make distcheck's, which has ./configure and nothing built in it)."""
    listed = run(["git", "-C", SOURCE_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    if listed.returncode != 0 or not os.path.isdir(os.path.join(SOURCE_ROOT, ".git")) and \
            not os.path.isfile(os.path.join(SOURCE_ROOT, ".git")):
        shutil.copytree(SOURCE_ROOT, dest)
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        src = os.path.join(SOURCE_ROOT, name)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, name))
    assert not os.path.exists(os.path.join(dest, "configure"))
    return dest


def test_pip_install_dot_offline_with_sanitizers(tmp_path):
    """Built with --enable-sanitizers through config settings: the installed package
    preloads the ASan runtime the library needs (else the library cannot load)."""
    interp = require_interpreter(next(i for i in INTERPRETERS if i.name == "pyenv-3.13.0"))
    src = source_copy(str(tmp_path / "src"))
    d = tmp_path / "venv"
    ok([interp.path, "-m", "venv", d])
    ok([d / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", "--no-cache-dir",
        "--config-settings", "configure-args=--enable-sanitizers", src], timeout=600)
    check_version(d / "bin")
    preload = ok([d / "bin" / "python", "-c", "from modlife import locate; print(locate._sanitizer_preload())"])
    assert os.path.basename(preload.stdout.strip()).startswith("libasan.so"), preload.stdout
    for entry in ([], ["--audit"]):
        logs = tmp_path / ("logs" + "".join(entry))
        proc = ok([d / "bin" / "modlife", "run", "--quiet", "--log-dir", logs] + entry +
                  ["--", d / "bin" / "python", "-c", "import xxlimited; print('imported')"])
        assert proc.stdout == "imported\n", proc.stderr
        [log] = glob.glob(str(logs / "*.jsonl"))
        assert any(r["event"] == "module-exec" and r.get("module") == "xxlimited" for r in read_log(log))


def test_make_install_prefix_leaves_pytest_working(tmp_path, planted):
    builddir = os.environ.get("MODLIFE_BUILDDIR")
    if not builddir:
        pytest.fail("MODLIFE_BUILDDIR must name the build tree (run the tests with `make check`)")
    with open(os.path.join(builddir, "Makefile")) as f:
        sitedir = re.search(r"^modlife_sitedir = (.*)$", f.read(), re.M).group(1)
    # Else make install would write into a site directory outside the prefix (a system one).
    assert sitedir.startswith(("${prefix}/", "$(prefix)/")), "site directory not under the prefix: " + sitedir
    prefix = tmp_path / "prefix"
    ok(["make", "-C", builddir, "install", "prefix=%s" % prefix])
    [distinfo] = glob.glob(str(prefix / "lib" / "python3*" / "*-packages" / "modlife_pytest-*.dist-info"))
    env = clean_env(PYTHONPATH=os.path.dirname(distinfo))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "test_plain.py").write_text("def test_nothing():\n    pass\n")
    proc = run(["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_plain.py"],
               cwd=plain, env=env)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "ModuleNotFoundError" not in proc.stdout + proc.stderr
    assert ok([prefix / "bin" / "modlife", "--version"]).stdout == "modlife %s\n" % version()
    debian = next(i for i in INTERPRETERS if i.name == "debian-3.11")
    check_pytest_modlife("/usr/bin/python3", planted(debian), env=env)
    ok(["make", "-C", builddir, "uninstall", "prefix=%s" % prefix])
    left = [os.path.join(r, f) for r, _, fs in os.walk(prefix) for f in fs]
    assert left == []
