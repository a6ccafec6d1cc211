"""Where the modlife library is: MODLIFE_LIBDIR (set by the `modlife` script, or by
the user), else where `make install` put it relative to this package."""
import os


class NotFound(Exception):
    pass


def _install_paths():
    """What make install wrote (install_paths.py), or None in a build tree."""
    try:
        from modlife import install_paths
    except ImportError:
        return None
    return install_paths


def _installed_libdir():
    install_paths = _install_paths()
    if install_paths is None:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         install_paths.LIBDIR_FROM_PACKAGE))


def _sanitizer_preload():
    """The sanitizer runtime a library built with --enable-sanitizers needs first: from
    the environment (build tree, the modlife command), else as make install wrote it."""
    if os.environ.get("MODLIFE_SANITIZER_PRELOAD"):
        return os.environ["MODLIFE_SANITIZER_PRELOAD"]
    return getattr(_install_paths(), "SANITIZER_PRELOAD", None) or None


def libdir():
    d = os.environ.get("MODLIFE_LIBDIR") or _installed_libdir()
    if not d or not os.path.exists(os.path.join(d, "libmodlife.so")):
        raise NotFound("cannot find libmodlife.so (MODLIFE_LIBDIR=%r); run modlife from its "
                       "installed bin/ or from the build tree, or set MODLIFE_LIBDIR" % d)
    return d


def preload_library():
    return os.path.join(libdir(), "libmodlife.so")


def audit_library():
    return os.path.join(libdir(), "libmodlife_audit.so")


# A library built with --enable-sanitizers: the ASan runtime goes first in LD_PRELOAD,
# and the sanitizers leave fatal signals to modlife's handler (and the program's).
SANITIZER_OPTIONS = {
    "ASAN_OPTIONS": "detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigfpe=0:"
                    "handle_sigill=0:allow_user_segv_handler=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=86",
}


def preload_environment(env, library):
    """env with library (and a sanitizer runtime it needs) in front of LD_PRELOAD."""
    env = dict(env)
    first = _sanitizer_preload()
    env["LD_PRELOAD"] = ":".join(filter(None, [first, library, env.get("LD_PRELOAD")]))
    if first:
        for key, value in SANITIZER_OPTIONS.items():
            env.setdefault(key, value)
    return env
