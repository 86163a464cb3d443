"""The template of the reactor's --preload: the handler's code is loaded once, in this process, and every
handler is forked from it (ipc/wire.hpp, kForkChannel to kHandlerExited; docs/protocol.md, "Templates").

A forked handler starts serving within milliseconds, whatever the app costs to import (Flask, numpy), and
shares the template's memory copy-on-write. The template is the parent of its handlers: it reaps each one and
reports how it exited. When the reactor ends the channel, the template forks nothing more and exits once the
last handler it forked is gone.
"""

import array
import collections
import os
import select
import socket
import struct
import sys

from . import _FD_SIZE, _HEADER, _HELLO, _MAGIC, _VERSION, _Channel, _ChannelError

_FORK_CHANNEL, _FORK_RECORD, _HANDLER_FORKED, _HANDLER_EXITED, _FORK_OUTPUT = 12, 13, 14, 15, 16
_IS_TEMPLATE = 8  # A kHello flag.
_FORKED = struct.Struct("=I")  # The handler's pid (0: the fork failed, and why follows as text).
_EXIT = struct.Struct("=ii")  # Its exit status, or 0 when a signal ended it; that signal, or 0.
_CHANNEL_FD, _RECORD_FD = 3, 5  # Where a handler finds its channel and its answer record (ipc/wire.hpp).
_MAX_FDS_PER_READ = 16


def serve(channel_fd):
    """Forks handlers as the reactor asks until it ends the channel and the last handler is gone (then the
    process exits). Returns only in a forked handler, with its channel and answer record in place."""
    template = _Template(channel_fd)
    template.loop()  # Returns in a forked handler only.


class _Template:
    def __init__(self, channel_fd):
        self._sender = _Channel(channel_fd)  # Frames go out as the library sends them; they come in below.
        self._channel = self._sender._socket
        self._inbox = b""
        self._descriptors = collections.deque()  # Received, each for the next frame that carries one.
        self._channel_of = {}  # Handler id -> its channel, from kForkChannel until its kForkRecord.
        self._output_of = {}  # Handler id -> its output pipe, from kForkOutput (if one comes) to its kForkRecord.
        self._children = {}  # pidfd -> (handler id, pid)
        self._poller = select.poll()
        self._ending = False

    def loop(self):
        self._send(_HELLO, 0, _IS_TEMPLATE)
        self._poller.register(self._channel.fileno(), select.POLLIN)
        while not self._ending or self._children:
            for fd, _ in self._poller.poll():
                if fd == self._channel.fileno():
                    if self._receive():
                        return  # In a forked handler.
                elif fd in self._children:
                    self._reap(fd)
        sys.exit(0)

    def _receive(self):
        """Reads what the reactor sent and forks the handlers it asks for: True in a forked handler."""
        try:
            data, ancillary, _, _ = self._channel.recvmsg(64 * 1024, socket.CMSG_SPACE(_MAX_FDS_PER_READ * _FD_SIZE))
        except InterruptedError:
            return False
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % _FD_SIZE])
                self._descriptors.extend(fds)
        if not data:  # The reactor ended the channel: fork nothing more, and go once the handlers are gone.
            self._ending = True
            self._poller.unregister(self._channel.fileno())
            return False
        self._inbox += data
        while len(self._inbox) >= _HEADER.size:
            magic, version, kind, handler_id, _, size = _HEADER.unpack_from(self._inbox)
            if magic != _MAGIC or version != _VERSION or kind not in (_FORK_CHANNEL, _FORK_OUTPUT, _FORK_RECORD):
                sys.stderr.write("template[%d]: an unexpected frame from the reactor (type %d, version %d)\n"
                                 % (os.getpid(), kind, version))
                sys.exit(1)
            if len(self._inbox) < _HEADER.size + size:
                break
            self._inbox = self._inbox[_HEADER.size + size:]
            if not self._descriptors:
                sys.stderr.write("template[%d]: a fork frame came without its descriptor\n" % os.getpid())
                sys.exit(1)
            descriptor = self._descriptors.popleft()
            if kind == _FORK_CHANNEL:
                self._channel_of[handler_id] = descriptor
            elif kind == _FORK_OUTPUT:
                self._output_of[handler_id] = descriptor
            elif self._fork(handler_id, self._channel_of.pop(handler_id), descriptor,
                            self._output_of.pop(handler_id, None)):
                return True
        return False

    def _fork(self, handler_id, channel, record, output):
        """Forks one handler: True in the handler, False in the template (which reported the fork). output, the
        handler's output pipe (kForkOutput) or None, becomes its stdout and stderr."""
        # What the template's own streams hold is written before the fork, or both processes would write it.
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        try:
            pid = os.fork()
        except OSError as error:
            self._send(_HANDLER_FORKED, handler_id, 0, _FORKED.pack(0) + str(error).encode())
            for fd in (channel, record, output):
                if fd is not None:
                    os.close(fd)
            return False
        if pid == 0:
            self._become_handler(channel, record, output)
            return True
        for fd in (channel, record, output):
            if fd is not None:
                os.close(fd)
        # Reaped only once the reactor heard of it, so that the pid it is told is still this handler's.
        pidfd = os.pidfd_open(pid)
        self._children[pidfd] = (handler_id, pid)
        self._send(_HANDLER_FORKED, handler_id, 0, _FORKED.pack(pid))
        self._poller.register(pidfd, select.POLLIN)
        return False

    def _become_handler(self, channel, record, output):
        """In the forked handler: the template's descriptors go, and the handler's take their places."""
        self._channel.detach()  # Descriptor 3 is replaced below, not closed.
        for fd in (list(self._children) + list(self._descriptors) + list(self._channel_of.values())
                   + list(self._output_of.values())):
            os.close(fd)
        if output is not None:
            # First: it may be numbered 5, which the record takes below (3 is the template's channel still).
            os.dup2(output, 1)
            os.dup2(output, 2)
            os.close(output)
        # The descriptors received may be numbered 5 or 6 already: none is closed that one of them became.
        os.dup2(channel, _CHANNEL_FD)
        if channel != _RECORD_FD:
            os.close(channel)
        if record != _RECORD_FD:
            os.dup2(record, _RECORD_FD)
            os.close(record)
        os.environ.pop("HANDOFF_TEMPLATE", None)

    def _reap(self, pidfd):
        handler_id, pid = self._children.pop(pidfd)
        self._poller.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        exit_status = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
        self._send(_HANDLER_EXITED, handler_id, 0, _EXIT.pack(exit_status, signal_number))

    def _send(self, kind, handler_id, flags, payload=b""):
        try:
            self._sender.send(kind, handler_id, flags, payload)
        except _ChannelError as error:
            if self._ending:
                return  # The reactor is gone or stopped reading: the handlers' pidfds tell it their exits.
            sys.stderr.write("template[%d]: %s\n" % (os.getpid(), error))
            sys.exit(1)
