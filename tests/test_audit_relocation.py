"""LD_AUDIT mode and extensions that call the C-API through their GOT (GLOB_DAT), as
Rust/PyO3 code and C built with -fno-plt do.  glibc reports a dlopen's namespace
consistent (la_activity) before it relocates the new objects: patching them then
left a RELRO page read-only under the loader, which crashed relocating them.  They
must run as under LD_PRELOAD, with the same hooks and records."""
import hashlib
import os
import subprocess

import pytest

from modlife_testlib import FINDINGS_STATUS, FIXTURES, events, frame_objects, one, run_modlife, run_python

CRYPTOGRAPHY_RUST = "/usr/lib/python3/dist-packages/cryptography/hazmat/bindings/_rust.abi3.so"

RUST_SCRIPT = """
import cryptography.hazmat.bindings._rust
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ObjectIdentifier
h = hashes.Hash(hashes.SHA256())
h.update(b"modlife")
print(h.finalize().hex())
print(ObjectIdentifier("1.2.840.113549").dotted_string)
"""
RUST_OUTPUT = "%s\n1.2.840.113549\n" % hashlib.sha256(b"modlife").hexdigest()


def rust_records(records):
    """What the log says of _rust: its object-load record, the module's records and
    the types its own code made, as (event, name) pairs in log order."""
    load = one(records, "object-load", path=CRYPTOGRAPHY_RUST)
    made = [(r["event"], r.get("type") or r.get("module")) for r in records
            if r.get("module") == "_rust"
            or (r["event"] == "type-create" and frame_objects(r, records)[:1] == ["_rust.abi3.so"])]
    return load, made


def findings(records):
    return sorted((r["kind"], r.get("type") or r.get("module")) for r in events(records, "finding"))


@pytest.mark.skipif(not os.path.exists(CRYPTOGRAPHY_RUST),
                    reason="not covered: python3-cryptography (not installed for /usr/bin/python3.11)")
def test_cryptography_rust_extension_under_audit_as_under_preload(tmp_path):
    results = {}
    for entry in ("preload", "audit"):
        args = (["--audit"] if entry == "audit" else []) + ["--", "/usr/bin/python3.11", "-c", RUST_SCRIPT]
        run = run_modlife(args, tmp_path / entry)
        assert run.proc.stdout == RUST_OUTPUT, run.proc.stderr
        records = run.records()
        load, made = rust_records(records)
        # Its C-API calls are all GOT-indirect: PyModule_Create2 and PyType_FromSpec.
        assert load["hooked_by"] == ("got" if entry == "preload" else "got+audit")
        assert load["patched"] == 2
        assert made[0] == ("module-create", "_rust") and made[-1] == ("module-free", "_rust")
        assert ("type-create", "builtins.ObjectIdentifier") in made
        # PyO3 makes its types in PyInit, with no module of their own: they are _rust's.
        assert one(records, "type-create", type="builtins.ObjectIdentifier")["module"] == "_rust"
        assert one(records, "module-create", module="_rust")["init"] == "single-phase"
        assert frame_objects(one(records, "module-create", module="_rust"), records)[0] == "_rust.abi3.so"
        # The process ended normally, with the status its findings call for.
        assert events(records, "process-exit")
        assert run.proc.returncode == (FINDINGS_STATUS if findings(records) else 0)
        results[entry] = (made, findings(records), run.proc.returncode)
    assert results["audit"] == results["preload"]


def build_without_plt(interp, out_dir):
    """fixtures/isolated.c compiled with -fno-plt: every C-API call through a GLOB_DAT
    slot of its RELRO GOT, none through the PLT."""
    info = interp.query()
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, "isolated" + info["suffix"])
    subprocess.run(["cc", "-shared", "-fPIC", "-fno-plt", "-g", "-O0", "-Wall", "-Werror",
                    "-Wno-unused-parameter", "-I" + info["include"],
                    os.path.join(FIXTURES, "isolated.c"), "-o", target], check=True)
    relocs = subprocess.run(["readelf", "-rW", target], check=True, capture_output=True, text=True).stdout
    assert "PyModule_GetState" in relocs and "R_X86_64_JUMP_SLOT" not in relocs
    return out_dir


NO_PLT_SCRIPT = """
import gc, sys, isolated
isolated.lookup_state(4)
t = isolated.Thing()
del t
del sys.modules["isolated"], isolated
gc.collect()
print("done")
"""


def test_extension_calling_through_its_got_under_audit(interp, tmp_path):
    path = build_without_plt(interp, str(tmp_path / "ext"))
    seen = {}
    for entry in ("preload", "audit"):
        run = run_python(interp, NO_PLT_SCRIPT, tmp_path / entry, pythonpath=path, entry=entry)
        assert run.proc.stdout == "done\n"
        records = run.records()
        load = [r for r in events(records, "object-load") if "isolated.cpython" in r["path"]]
        assert len(load) == 1
        # PyModuleDef_Init, PyModule_GetState, PyType_FromModuleAndSpec,
        # PyModule_AddObject(Ref): all GLOB_DAT.
        assert load[0]["patched"] == 4
        create = one(records, "module-create", module="isolated")
        free = one(records, "module-free", module="isolated")
        assert create["instance"] == free["instance"]
        # lookup_state(4) went through the hook, not around it.
        assert free["state_lookups"] >= 4
        thing = [r for r in events(records, "type-create") if r["type"] == "isolated.Thing"]
        assert len(thing) == 1 and thing[0]["module"] == "isolated"
        assert not events(records, "finding")
        seen[entry] = [(r["event"], r.get("module"), r.get("type")) for r in records
                       if r.get("module") == "isolated" or str(r.get("type", "")).startswith("isolated.")]
    assert seen["audit"] == seen["preload"]
