"""Processes that ran without a log.  A library that cannot create its log (a child
that dropped its privileges, a full or missing directory) runs on without modlife
and says so in one datagram, "pid<TAB>path<TAB>reason", to the abstract unix socket
named by its notify option: this Listener, bound by `modlife run` and the pytest
plugin for the time the command runs.  Abstract names need no file nor permission,
and nothing of it is inherited by the command (the socket is close-on-exec)."""
import os
import socket
import struct
import threading

_END = b"\0end"
_UCRED = struct.Struct("3i")  # pid, uid, gid


class Listener:
    def __init__(self):
        self.name = "modlife-%d-%s" % (os.getpid(), os.urandom(16).hex())
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.name)
        # Abstract names are listed in /proc/net/unix: the pid is the kernel's, not the text's.
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._received = []
        # The kernel queues few datagrams (net.unix.max_dgram_qlen): read as they come.
        self._thread = threading.Thread(target=self._receive, name="modlife-nolog", daemon=True)

    def start(self):
        self._thread.start()

    def _receive(self):
        while True:
            data, ancillary, _, _ = self._sock.recvmsg(8192, socket.CMSG_SPACE(_UCRED.size))
            sender = next((_UCRED.unpack(value[:_UCRED.size])[0] for level, kind, value in ancillary
                           if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)), None)
            if data == _END and sender == os.getpid():
                return
            if sender is not None:
                self._received.append((sender, data))

    def stop(self):
        """The notices sent until now: (pid, path, reason) each."""
        if self._thread.is_alive():
            # Ours is queued behind every notice already sent.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(_END, "\0" + self.name)
            self._thread.join()
        self._sock.close()
        notices = []
        for sender, data in self._received:
            fields = data.decode("utf-8", "replace").split("\t", 2)
            # The pid the kernel saw, as this process names it (another in a pid namespace).
            if len(fields) == 3 and fields[0].isdigit():
                notices.append((sender, fields[1], fields[2]))
        return notices


def _visible(text):
    return "".join(c if c.isprintable() else "\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c)
                   for c in text)


def summary(notices):
    """The lines that say which processes had no log; "" if none."""
    if not notices:
        return ""
    if len(notices) == 1:
        pid, _, reason = notices[0]
        return "modlife: 1 process had no log: pid %d: %s\n" % (pid, _visible(reason))
    return "modlife: %d processes had no log:\n" % len(notices) + "".join(
        "modlife:   pid %d: %s\n" % (pid, _visible(reason)) for pid, _, reason in notices)
