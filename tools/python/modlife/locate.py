"""Where the modlife library is: set by the `modlife` script, or given by the user."""
import os


class NotFound(Exception):
    pass


def libdir():
    d = os.environ.get("MODLIFE_LIBDIR")
    if not d or not os.path.exists(os.path.join(d, "libmodlife.so")):
        raise NotFound("modlife: cannot find libmodlife.so (MODLIFE_LIBDIR=%r); run modlife from its "
                       "installed bin/ or from the build tree" % d)
    return d


def preload_library():
    return os.path.join(libdir(), "libmodlife.so")


def audit_library():
    return os.path.join(libdir(), "libmodlife_audit.so")
