"""python3-msgpack: the Cython Packer and Unpacker of msgpack._cmsgpack."""
import msgpack

data = {"a": [1, 2, 3], "b": b"bytes", "c": {"d": 1.5, "e": None}, "f": -(2 ** 40)}
packed = msgpack.packb(data, use_bin_type=True)
print(len(packed), msgpack.unpackb(packed, raw=False) == data)
ext = msgpack.ExtType(5, b"payload")
print(msgpack.unpackb(msgpack.packb(ext)))
unpacker = msgpack.Unpacker(raw=False)
unpacker.feed(msgpack.packb([1, "two"]) + msgpack.packb({"three": 3}))
print(list(unpacker))
packer = msgpack.Packer(use_bin_type=True)
print(packer.pack(["x", 1]).hex(), msgpack.Unpacker.__module__)
try:
    msgpack.unpackb(b"\xc1")
except Exception as e:
    print("error", type(e).__name__)

# Cython's opt-out of isolation: one module object per process, so a second import
# gets the same object and another interpreter gets an ImportError.
import importlib, sys, _testcapi
first = sys.modules.pop("msgpack._cmsgpack")
print(importlib.import_module("msgpack._cmsgpack") is first, _testcapi.run_in_subinterp("import msgpack._cmsgpack"))
