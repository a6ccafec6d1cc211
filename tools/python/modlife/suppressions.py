"""The suppressions file checked before the command starts, by the rules and with
the messages of the library's loader (instrument/suppressions.c): a regular file
(never opened so that a FIFO blocks), at most 1 MiB, of text (no NUL or control
byte but tab and CR)."""
import os
import re
import stat
import sys

MAX_SIZE = 1 << 20
WANTED = "give a text file of kind:pattern lines"
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadFile(Exception):
    pass


def _read(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise BadFile("cannot read the suppressions file '%s': %s" % (path, e.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise BadFile("the suppressions file '%s' is %s: %s" % (path, kind, WANTED))
        if st.st_size > MAX_SIZE:
            raise BadFile("the suppressions file '%s' is larger than 1 MiB: %s of at most 1 MiB" % (path, WANTED))
        data = b""
        while len(data) < st.st_size:
            chunk = os.read(fd, st.st_size - len(data))
            if not chunk:
                break
            data += chunk
        return data
    except OSError as e:
        raise BadFile("cannot read the suppressions file '%s': %s" % (path, e.strerror)) from None
    finally:
        os.close(fd)


def check(path):
    """Raises BadFile with the library's one-line message if path is no suppressions file."""
    data = _read(path)
    bad = _NOT_TEXT.search(data)
    if bad:
        line, c = data.count(b"\n", 0, bad.start()) + 1, data[bad.start()]
        if c == 0:
            raise BadFile("%s:%d: a NUL byte: %s" % (path, line, WANTED))
        raise BadFile("%s:%d: byte 0x%02x is not text: %s" % (path, line, c, WANTED))


def refused(path, command):
    """For a subcommand's --suppressions: the library would refuse a bad file in the
    first Python process, so say so before anything runs.  Writes "modlife COMMAND:
    reason" to stderr and returns True when path is no suppressions file."""
    try:
        check(os.path.abspath(path))
    except BadFile as e:
        sys.stderr.write("modlife %s: %s\n" % (command, e))
        return True
    return False
