import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from modlife_testlib import INTERPRETERS, INTERPRETER_IDS, build_extension  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "interp: runs once per interpreter of DESIGN.md")


@pytest.fixture(params=INTERPRETERS, ids=INTERPRETER_IDS)
def interp(request):
    i = request.param
    if not os.access(i.path, os.X_OK):
        # Present on every machine of this project (image and ./bootstrap); a missing
        # one is a broken set-up, not something to skip over quietly.
        pytest.fail("interpreter %s is missing at %s" % (i.name, i.path))
    return i


@pytest.fixture(scope="session")
def ext_root(tmp_path_factory):
    return tmp_path_factory.mktemp("extensions")


@pytest.fixture
def fixtures_for(interp, ext_root):
    """Builds the named fixture extensions for this interpreter; returns their directory."""
    def build(*names):
        out = os.path.join(str(ext_root), interp.name)
        for n in names:
            build_extension(interp, n, out)
        return out
    return build


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The modlife wheel, built once per session for every test that installs it."""
    from test_install import build_wheel
    return build_wheel(tmp_path_factory)
