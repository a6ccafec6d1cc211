"""PEP 517 build backend for `pip install .`: modlife's build stays autotools.

Why in-tree and standard library only (pyproject.toml: requires = [], backend-path):
pip then needs nothing from an index, even with build isolation, so the install
works offline.  The backend drives the autotools build (autoreconf -fi only when
./configure is missing, configure in a temporary directory, make, make install
DESTDIR=...) and repacks the staged tree as a wheel (PEP 427):

    modlife/               the Python package, with install_paths.py rewritten so
                           that it finds its library in modlife/lib, and the
                           _contracts.py that make generates from instrument/*.def
    modlife/lib/           libmodlife.so, libmodlife_audit.so
    modlife-V.data/data/   share/: man pages, known-findings.supp, gdb helper
    modlife-V.dist-info/   entry points: the `modlife` command, the pytest plugin

One libmodlife serves every interpreter (it finds the C-API at run time) and the
package is pure Python, so the wheel is tagged py3-none-<platform>.

config_settings (pip install --config-settings KEY=VALUE .):
    configure-args   more ./configure arguments, e.g. --enable-sanitizers (the
                     wheel then preloads the sanitizer runtime of the build
                     machine: SANITIZER_PRELOAD of install_paths.py)
    jobs             make -jN (default: the number of CPUs)

build_sdist packs `make distdir` (what `make dist` ships) with a PKG-INFO."""
import base64
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

NAME = "modlife"
STAGE_PREFIX = "/modlife"                 # --prefix of the staged install (under DESTDIR)
STAGE_SITEDIR = STAGE_PREFIX + "/site"    # where make install puts the package
WHEEL_LIBDIR = "lib"                      # the libraries, relative to the package


def _source():
    """pip runs the hooks in the project's directory."""
    return os.path.abspath(os.getcwd())


def _version(source):
    with open(os.path.join(source, "configure.ac")) as f:
        found = re.search(r"AC_INIT\(\[modlife\],\s*\[([^\]]+)\]", f.read())
    if not found:
        raise RuntimeError("modlife_build: no AC_INIT([modlife], [VERSION]) in configure.ac")
    return found.group(1)


def _env():
    """Our own make, not a sub-make of whatever ran pip (make check's jobserver)."""
    env = dict(os.environ)
    for key in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR"):
        env.pop(key, None)
    return env


def _run(argv, cwd):
    sys.stderr.write("modlife_build: %s\n" % " ".join(shlex.quote(a) for a in argv))
    sys.stderr.flush()
    # The build's output goes to stderr: pip shows it with -v or when the build fails.
    subprocess.run(argv, cwd=cwd, env=_env(), check=True, stdout=sys.stderr.fileno())


def _setting(config_settings, key, default=None):
    value = (config_settings or {}).get(key, default)
    if isinstance(value, list):  # pip passes a repeated -C KEY=... as a list
        value = " ".join(value)
    return value


def _clean_source(source, work):
    """A source tree to configure out of tree: the project itself, after autoreconf
    when ./configure is missing (a git checkout); a copy of its distribution files
    when it is configured in place (automake refuses a second build directory then)."""
    if os.path.exists(os.path.join(source, "config.status")):
        copy = os.path.join(work, "src")
        _run(["make", "distdir", "distdir=" + copy], source)
        return copy
    if not os.path.exists(os.path.join(source, "configure")):
        os.makedirs(os.path.join(source, "m4"), exist_ok=True)
        _run(["autoreconf", "-fi"], source)
    return source


def _configure(source, work, config_settings):
    build = os.path.join(work, "build")
    os.makedirs(build)
    extra = shlex.split(_setting(config_settings, "configure-args", "") or "")
    _run([os.path.join(_clean_source(source, work), "configure"), "--prefix=" + STAGE_PREFIX,
          "--with-python-sitedir=" + STAGE_SITEDIR, "--disable-dependency-tracking",
          "PYTHON=" + sys.executable] + extra, build)
    return build


def _stage(source, work, config_settings):
    build = _configure(source, work, config_settings)
    jobs = str(_setting(config_settings, "jobs", None) or os.cpu_count() or 1)
    _run(["make", "-j" + jobs, "all"], build)
    stage = os.path.join(work, "stage")
    _run(["make", "install", "DESTDIR=" + stage], build)
    return stage + STAGE_PREFIX


def _platform_tag():
    return re.sub(r"[^A-Za-z0-9]", "_", sysconfig.get_platform())


def _metadata(version):
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Lifetime recorder and checker for CPython extension modules\n"
            "Requires-Python: >=3.9\n" % (NAME, version))


ENTRY_POINTS = ("[console_scripts]\nmodlife = modlife.__main__:main\n\n"
                "[pytest11]\nmodlife = modlife.pytest_plugin\n")


def _wheel_file(tag):
    return ("Wheel-Version: 1.0\nGenerator: modlife_build\nRoot-Is-Purelib: false\nTag: %s\n" % tag)


def _wheel_tag():
    return "py3-none-" + _platform_tag()


def _dist_info_files(version):
    """What the wheel's .dist-info holds but RECORD: one list for the wheel and for
    prepare_metadata_for_build_wheel, which pip may compare."""
    return (("METADATA", _metadata(version)), ("WHEEL", _wheel_file(_wheel_tag())),
            ("entry_points.txt", ENTRY_POINTS))


def _write_dist_info(directory, version):
    os.makedirs(directory, exist_ok=True)
    for name, text in _dist_info_files(version):
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    version = _version(_source())
    dist_info = "%s-%s.dist-info" % (NAME, version)
    _write_dist_info(os.path.join(metadata_directory, dist_info), version)
    return dist_info


class _Wheel:
    """A zip written member by member, its RECORD (sha256, size) kept as it goes."""

    def __init__(self, path, dist_info):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.dist_info = dist_info
        self.record = []

    def add(self, arcname, data, mode=0o644):
        info = zipfile.ZipInfo(arcname, date_time=(2000, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.record.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))

    def add_file(self, arcname, path):
        with open(path, "rb") as f:
            data = f.read()
        self.add(arcname, data, 0o755 if os.access(path, os.X_OK) else 0o644)

    def close(self):
        record = self.dist_info + "/RECORD"
        text = "\n".join(self.record + [record + ",,"]) + "\n"
        info = zipfile.ZipInfo(record, date_time=(2000, 1, 1, 0, 0, 0))
        info.external_attr = (0o100644) << 16
        self.zip.writestr(info, text.encode())
        self.zip.close()


def _install_paths(package_dir):
    values = {}
    with open(os.path.join(package_dir, "install_paths.py")) as f:
        exec(f.read(), values)
    return values


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    source = _source()
    version = _version(source)
    tag = _wheel_tag()
    dist_info = "%s-%s.dist-info" % (NAME, version)
    name = "%s-%s-%s.whl" % (NAME, version, tag)
    work = tempfile.mkdtemp(prefix="modlife-wheel-")
    try:
        staged = _stage(source, work, config_settings)
        package = os.path.join(staged + STAGE_SITEDIR[len(STAGE_PREFIX):], "modlife")
        paths = _install_paths(package)
        if not os.path.exists(os.path.join(package, "_contracts.py")):
            raise RuntimeError("modlife_build: make install left out modlife/_contracts.py (made from "
                               "instrument/*.def by tools/gen_contracts.py)")
        if paths.get("VERSION") != version:
            raise RuntimeError("modlife_build: make install wrote version %r, configure.ac says %r"
                               % (paths.get("VERSION"), version))
        wheel = _Wheel(os.path.join(wheel_directory, name), dist_info)
        for entry in sorted(os.listdir(package)):
            if entry.endswith((".py", ".html")) and entry != "install_paths.py":
                wheel.add_file("modlife/" + entry, os.path.join(package, entry))
        wheel.add("modlife/install_paths.py", (
            "# Written by tools/build_backend/modlife_build.py: the library is inside the package.\n"
            "LIBDIR_FROM_PACKAGE = %r\nSANITIZER_PRELOAD = %r\nVERSION = %r\n"
            % (WHEEL_LIBDIR, paths.get("SANITIZER_PRELOAD", ""), version)).encode())
        libdir = os.path.join(staged, "lib", "modlife")
        for lib in ("libmodlife.so", "libmodlife_audit.so"):
            wheel.add_file("modlife/%s/%s" % (WHEEL_LIBDIR, lib), os.path.join(libdir, lib))
        share = os.path.join(staged, "share")
        for root, _, files in sorted(os.walk(share)):
            for f in sorted(files):
                path = os.path.join(root, f)
                wheel.add_file("%s-%s.data/data/share/%s" % (NAME, version, os.path.relpath(path, share)), path)
        for member, text in _dist_info_files(version):
            wheel.add("%s/%s" % (dist_info, member), text.encode())
        wheel.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return name


def build_sdist(sdist_directory, config_settings=None):
    source = _source()
    version = _version(source)
    base = "%s-%s" % (NAME, version)
    work = tempfile.mkdtemp(prefix="modlife-sdist-")
    try:
        tree = os.path.join(work, base)
        if os.path.exists(os.path.join(source, "config.status")):
            _run(["make", "distdir", "distdir=" + tree], source)
        else:
            build = _configure(source, work, config_settings)
            _run(["make", "distdir", "distdir=" + tree], build)
        with open(os.path.join(tree, "PKG-INFO"), "w") as f:
            f.write(_metadata(version))
        with tarfile.open(os.path.join(sdist_directory, base + ".tar.gz"), "w:gz", format=tarfile.PAX_FORMAT) as tar:
            tar.add(tree, arcname=base)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return base + ".tar.gz"
