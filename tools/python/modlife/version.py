"""modlife's version: what the installation wrote beside the package (install_paths.py,
by `make install` or the wheel's build backend), else, in a source tree, the version
configure.ac gives AC_INIT; None when neither says."""
import os
import re


def _installed():
    try:
        from modlife import install_paths
    except ImportError:
        return None
    return getattr(install_paths, "VERSION", None)


def _source_tree():
    configure_ac = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "configure.ac")
    try:
        with open(configure_ac) as f:
            found = re.search(r"AC_INIT\(\[modlife\],\s*\[([^\]]+)\]", f.read())
    except OSError:
        return None
    return found.group(1) if found else None


VERSION = _installed() or _source_tree()
