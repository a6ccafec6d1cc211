"""instrument/pyabi.h mirrors CPython layouts: check it against every interpreter's headers."""
import os
import subprocess

from modlife_testlib import HERE


def test_mirrored_layouts_match(interp, tmp_path):
    proc = subprocess.run(["cc", "-std=c11", "-fsyntax-only", "-I" + interp.query()["include"],
                           os.path.join(HERE, "abi_check.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
