"""Naming native frames after the run: function and file:line from the object-load
records (path, build id, offset) and the debug info of each object, through
binutils' addr2line, one call per object for all its frames.

The run names the frames of findings itself (function from ELF symbol tables,
file:line from DWARF) and writes those of lifetime records unnamed, so that a
process without findings loads no symbol tables; this names the rest.  An object rebuilt since the run (its
build id no longer matches) is not used: its lines would be wrong."""
import bisect
import mmap
import os
import shutil
import struct
import subprocess
import sys


# What one file says, kept for the whole tool run and across processes (every fork
# child of a run names the same libpython and extensions), keyed by the file's
# identity and age so that a file rebuilt meanwhile is read again.
_FILE_FACTS = {}


def _per_file(kind, path, compute):
    try:
        st = os.stat(path)
        key = (kind, path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        return compute(path)
    if key not in _FILE_FACTS:
        _FILE_FACTS[key] = compute(path)
    return _FILE_FACTS[key]


def build_id(path):
    """The GNU build id of an ELF file as hex, or None."""
    return _per_file("build_id", path, _read_build_id)


def _read_build_id(path):
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return None
            e = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(e + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(e + "HH", head, 54)
            f.seek(phoff)
            phdrs = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(e + "IIQQQQ", phdrs, i * phentsize)
                if p_type != 4:  # PT_NOTE
                    continue
                f.seek(p_offset)
                found = _gnu_build_id(f.read(p_filesz), e)
                if found:
                    return found
    except (OSError, struct.error):
        return None
    return None


def _gnu_build_id(notes, e):
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from(e + "III", notes, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        if ntype == 3 and notes[name_at:name_at + namesz].rstrip(b"\0") == b"GNU":
            return notes[desc_at:desc_at + descsz].hex()
        pos = desc_at + ((descsz + 3) & ~3)
    return None


class FunctionSymbols:
    """The function symbols of an ELF file (.symtab, else .dynsym), read as the
    library reads them (instrument/symbolize.c) and looked up by the same rule, so
    a frame gets the same name from the run and from the tools."""

    def __init__(self, path):
        self.addrs, self.syms = [], []  # sorted by address; syms: (addr, size, name)
        try:
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                found = self._read(m)
        except (OSError, ValueError, struct.error):
            return
        found.sort(key=lambda s: s[0])
        self.syms = found
        self.addrs = [s[0] for s in found]

    @staticmethod
    def _read(m):
        if m[:4] != b"\x7fELF" or m[4] != 2:
            return []
        e = "<" if m[5] == 1 else ">"
        shoff, = struct.unpack_from(e + "Q", m, 0x28)
        shentsize, shnum = struct.unpack_from(e + "HH", m, 0x3A)
        sections = [struct.unpack_from(e + "IIQQQQIIQQ", m, shoff + i * shentsize) for i in range(shnum)]
        chosen = next((sh for sh in sections if sh[1] == 2), None) or \
            next((sh for sh in sections if sh[1] == 11), None)  # SHT_SYMTAB, else SHT_DYNSYM
        if chosen is None or chosen[6] >= shnum:
            return []
        strtab = sections[chosen[6]]
        strings = m[strtab[4]:strtab[4] + strtab[5]]
        found = []
        for name, info, _, shndx, value, size in struct.iter_unpack(
                e + "IBBHQQ", m[chosen[4]:chosen[4] + chosen[5] - chosen[5] % 24]):
            # STT_FUNC or STT_GNU_IFUNC, defined, at an address.
            if (info & 15) not in (2, 10) or shndx == 0 or value == 0 or name >= len(strings):
                continue
            end = strings.find(b"\0", name)
            found.append((value, size, strings[name:end if end >= 0 else len(strings)].decode("utf-8", "replace")))
        return found

    def lookup(self, vaddr):
        """The function containing vaddr: a sized symbol only within its size, one of
        unknown size (0) only when it is the nearest below and no sized one holds it."""
        lo = bisect.bisect_right(self.addrs, vaddr) - 1
        if lo < 0:
            return None
        for i in range(lo, max(lo - 16, -1), -1):
            addr, size, name = self.syms[i]
            if size and addr <= vaddr < addr + size:
                return name
        addr, size, name = self.syms[lo]
        return name if not size else None


def function_name(load, off):
    """The function of the frame at offset off (a return address) of the object of
    the object-load record load, by the library's rule; None if unknown or if the
    file is no longer the one the run loaded (build id)."""
    path = (load or {}).get("path")
    if not path or off is None or not os.path.isfile(path):
        return None
    if load.get("build_id") and build_id(path) not in (None, load["build_id"]):
        return None
    return _per_file("symbols", path, FunctionSymbols).lookup(max(off - 1, 0))


_warned_missing = False  # once per run, not per log


class Symbolizer:
    """Frames of one process's log, named.  Call want() for every stack first, then
    frame() for each frame; addr2line runs once per object in between."""

    def __init__(self, objects, warn=None):
        self.objects = objects            # id -> object-load record
        self.pending = {}                 # object id -> set of offsets
        self.lines = {}                   # (object id, offset) -> (function, file, line)
        self.warn = warn or (lambda text: sys.stderr.write("modlife: %s\n" % text))
        self.addr2line = shutil.which("addr2line")
        self.mangled = set()              # C++ names to demangle
        self.demangled = {}               # mangled -> demangled

    def want(self, stack):
        for f in stack or ():
            if "file" not in f and "obj" in f and "off" in f:
                self.pending.setdefault(f["obj"], set()).add(int(f["off"], 16))
            if (f.get("fn") or "").startswith("_Z"):
                self.mangled.add(f["fn"])

    def resolve(self):
        global _warned_missing
        if self.pending and not self.addr2line:
            if not _warned_missing:
                self.warn("addr2line not found (Debian package binutils): frames are shown without file:line")
                _warned_missing = True
            self.pending.clear()
        for obj, offsets in self.pending.items():
            self._resolve_object(obj, sorted(offsets))
        self.pending.clear()
        self._demangle()

    def _demangle(self):
        """C++ names as people read them, through binutils' c++filt (addr2line -C does
        its own); mangled where it is missing."""
        names = sorted(n for n in self.mangled if n not in self.demangled)
        self.mangled.clear()
        cxxfilt = shutil.which("c++filt")
        if not names or not cxxfilt:
            return
        try:
            out = subprocess.run([cxxfilt], input="\n".join(names) + "\n", capture_output=True, text=True,
                                 timeout=120).stdout.splitlines()
        except (OSError, subprocess.TimeoutExpired):
            return
        if len(out) == len(names):
            self.demangled.update(zip(names, out))

    def _resolve_object(self, obj, offsets):
        load = self.objects.get(obj)
        path = load and load.get("path")
        if not path or not os.path.isfile(path):
            return
        if load.get("build_id") and build_id(path) not in (None, load["build_id"]):
            self.warn("%s changed since the run (build id differs): its frames are not symbolized" % path)
            return
        # Return addresses point after the call: look up the byte before, as the run does.
        args = [self.addr2line, "-f", "-C", "-a", "-e", path] + ["0x%x" % max(o - 1, 0) for o in offsets]
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout.splitlines()
        except (OSError, subprocess.TimeoutExpired):
            return
        for i, offset in enumerate(offsets):
            if 3 * i + 2 >= len(out):
                break
            function, where = out[3 * i + 1], out[3 * i + 2]
            file, _, line = where.rpartition(":")
            line = line.split(" ")[0]
            file = None if file in ("??", "") else file
            if not file:
                # No debug info: addr2line then names the nearest symbol below, however
                # far (a 12-byte PyInit for the static function after it); the
                # library's rule instead.
                function = self._symbols(path).lookup(max(offset - 1, 0))
                if (function or "").startswith("_Z"):
                    self.mangled.add(function)
            self.lines[(obj, offset)] = (None if function == "??" else function, file,
                                         int(line) if line.isdigit() and line != "0" else None)

    def _symbols(self, path):
        return _per_file("symbols", path, FunctionSymbols)

    def frame(self, f):
        """A frame as a dict: ip, fn, file, line, object (path), off (int)."""
        obj = self.objects.get(f.get("obj"), {})
        off = int(f["off"], 16) if "off" in f else None
        out = {"ip": f.get("ip"), "fn": f.get("fn"), "file": f.get("file"), "line": f.get("line"),
               "object": obj.get("path"), "off": off}
        found = self.lines.get((f.get("obj"), off))
        if found:
            function, file, line = found
            out["fn"] = out["fn"] or function
            if file and line:
                out["file"], out["line"] = file, line
        out["fn"] = self.demangled.get(out["fn"], out["fn"])
        return out
