"""Where the modlife library is: MODLIFE_LIBDIR (set by the `modlife` script, or by
the user), else where `make install` put it relative to this package."""
import os


class NotFound(Exception):
    pass


def _installed_libdir():
    try:
        from modlife import install_paths  # written by make install
    except ImportError:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         install_paths.LIBDIR_FROM_PACKAGE))


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
