"""handoff handler in Python: serve your CPU-bound function behind the handoff reactor.

One file, standard library only (Python 3.9+). It speaks the reactor's ipc protocol (docs/architecture.md) on
descriptor 3, and the line protocol and HTTP/1.1 on the client sockets the reactor hands over, so that a Python
function runs on every core (one process per handler: no GIL in the way) behind one port.

    from handoff_handler import Handler, Reply

    handler = Handler()

    @handler.command("square")
    def square(request):
        return Reply.text(str(int(request.arguments[0]) ** 2))

    handler.run()

Start it with `reactor --handler-cmd 'python3 square.py'`; then `square 12` on a line and GET /square/12 both
answer 144. docs/handlers.md has the rules.
"""

import sys

if sys.version_info < (3, 9):  # socket.recv_fds, which takes the client sockets, came in 3.9.
    sys.stderr.write("handoff_handler needs Python 3.9 or newer; this is Python %d.%d (%s)\n"
                     % (sys.version_info[0], sys.version_info[1], sys.executable))
    sys.exit(2)

import ctypes
import http
import mmap
import os
import select
import signal
import socket
import struct
import time
import traceback

__all__ = ["Handler", "Reply", "Request"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STATE = struct.Struct("=II")  # The reactor's shared state page: version, connections waiting for a handler.
_STATE_VERSION = 1
_FD_SIZE = struct.calcsize("i")  # A descriptor in an SCM_RIGHTS message.


def _map_reactor_state(fd):
    """The reactor's state page (ipc/shared_state.hpp), mapped read-only; None when the reactor gives none."""
    if fd is None:
        return None
    with open(int(fd), "rb") as page:  # Closed once mapped: code the handler starts does not inherit it.
        state = mmap.mmap(page.fileno(), mmap.PAGESIZE, prot=mmap.PROT_READ)
    if _STATE.unpack_from(state, 0)[0] != _STATE_VERSION:
        raise SystemExit("handler: the reactor's state page has an unknown version")
    return state



def _follow_the_reactor():
    """Lives and stops as the reactor says; False when the reactor is already gone.

    SIGINT, SIGTERM and SIGHUP sent to the whole process group (Ctrl-C in a terminal, `timeout`, systemd's
    KillMode=control-group) are ignored: the reactor drains, then closes the channel, which ends the handler.
    PR_SET_PDEATHSIG kills the handler when the reactor dies; HANDOFF_REACTOR_PID catches a reactor that died
    before that call.
    """
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            sys.stderr.write("handler[%d]: prctl(PR_SET_PDEATHSIG): %s\n"
                             % (os.getpid(), os.strerror(ctypes.get_errno())))
    except (OSError, AttributeError) as error:
        sys.stderr.write("handler[%d]: cannot ask to die with the reactor: %s\n" % (os.getpid(), error))
    reactor = int(os.environ.get("HANDOFF_REACTOR_PID", "0"))
    return reactor == 0 or os.getppid() == reactor


# The ipc wire format, version 1: a 24-byte header (host byte order) and a payload.
_HEADER = struct.Struct("=IHHQII")  # magic, version, type, connection_id, flags, payload_size
_MAGIC = 0x46444E48
_VERSION = 1
_HELLO, _CONNECTION, _DONE, _ANSWERED = 1, 2, 3, 4
_FLAG_HEAD_TRUNCATED, _FLAG_INPUT_CLOSED, _FLAG_HTTP = 1, 2, 4
_FLAG_KEEP_OPEN = 1
_PROGRESS = struct.Struct("=QHHI")  # bytes written, status of the last answer (0: none), reserved
_MAX_PAYLOAD = 16 << 20
_READ_CHUNK = 64 * 1024


class Request:
    """One request, whichever protocol it came in."""

    def __init__(self, command, arguments, body=b"", protocol="line"):
        self.command = command  # "fib" for the line "fib 30" and for GET /fib/30
        self.arguments = arguments  # ["30"]
        self.body = body  # bytes: an HTTP request's body; empty on the line protocol
        self.protocol = protocol  # "line" or "http"


class Reply:
    """What a command answers: text, bytes with a content type, or an error with a reason."""

    def __init__(self, status=200, body=b"", content_type="text/plain; charset=utf-8"):
        self.status = status
        self.body = body
        self.content_type = content_type

    @staticmethod
    def text(text):
        data = text.encode()
        return Reply(body=data if data.endswith(b"\n") else data + b"\n")

    @staticmethod
    def bytes(data, content_type="application/octet-stream"):
        return Reply(body=bytes(data), content_type=content_type)

    @staticmethod
    def error(reason, status=400):
        return Reply(status=status, body=reason.encode())


class _ChannelError(Exception):
    pass


class _Refusal:
    """A request that cannot be served: its status and reason; the connection closes after it."""

    def __init__(self, status, reason):
        self.status = status
        self.reason = reason


class _ClientGone(Exception):
    pass


class _Stream:
    """The handler's side of one hand-off: bytes received so far, answers written, with deadlines."""

    def __init__(self, sock, received, flags, timeout):
        self.sock = sock
        self.buffer = bytearray(received)
        self.input_closed = bool(flags & _FLAG_INPUT_CLOSED)
        self.head_truncated = bool(flags & _FLAG_HEAD_TRUNCATED)
        # One deadline for all the reading of a hand-off: only its first request is ever read from the socket
        # (the reactor reads the others), and a client that trickles bytes must not restart the clock.
        self.read_deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.written = 0
        self.status = 0  # Of the last answer not yet reported to the reactor.

    def progress(self):
        status, self.status = self.status, 0
        return _PROGRESS.pack(self.written, status, 0, 0)

    def _wait(self, event, deadline):
        """Waits until the socket is ready for event, until deadline; False on timeout. The socket stays
        non-blocking: it shares its open file with the reactor's copy, so waiting is done with poll."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        poller = select.poll()
        poller.register(self.sock, event)
        return bool(poller.poll(left * 1000))

    def read_more(self):
        """Appends what the client sends next; False on timeout."""
        while True:
            try:
                data = self.sock.recv(_READ_CHUNK)
            except BlockingIOError:
                if not self._wait(select.POLLIN, self.read_deadline):
                    return False
                continue
            except OSError:
                raise _ClientGone()
            if not data:
                self.input_closed = True
            self.buffer += data
            return True

    def write(self, data):
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                if not self._wait(select.POLLOUT, time.monotonic() + self.timeout):
                    raise _ClientGone()
                continue
            except OSError:
                raise _ClientGone()
            self.written += sent
            view = view[sent:]


class Handler:
    def __init__(self):
        self._commands = {}
        self._state = None  # The reactor's state page, once run() mapped it.

    def command(self, name):
        """Decorator: registers fn(request) -> Reply as the command `name`, reachable as the line "NAME ARG..."
        and as GET, HEAD or POST /NAME/ARG/... over HTTP."""

        def register(function):
            self._commands[name] = function
            return function

        return register

    def execute(self, request):
        """Answers one request as the handler would; an exception becomes an error reply (status 500)."""
        function = self._commands.get(request.command)
        if function is None:
            return Reply.error("unknown command", 404)
        try:
            reply = function(request)
            return reply if isinstance(reply, Reply) else Reply.text(str(reply))
        except Exception as error:  # User code must not take the handler down.
            traceback.print_exc(file=sys.stderr)
            return Reply.error("internal error: %s" % error, 500)

    # --- The handler loop ---

    def run(self):
        """Serves what the reactor hands over until it closes the channel; exits the process."""
        if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
            print("A handoff handler (commands: %s). The reactor starts it with --handler-cmd." %
                  ", ".join(self._commands))
            sys.exit(0)
        fd = os.environ.get("HANDOFF_IPC_FD")
        if fd is None:
            sys.stderr.write("handler: HANDOFF_IPC_FD is not set; a handler is started by the reactor\n")
            sys.exit(2)
        self._max_request = int(os.environ.get("HANDOFF_MAX_REQUEST_BYTES", 2 << 20))
        self._max_head = int(os.environ.get("HANDOFF_MAX_HEAD_BYTES", 64 << 10))
        self._timeout = int(os.environ.get("HANDOFF_READ_TIMEOUT_MS", 10000)) / 1000
        if not _follow_the_reactor():
            sys.exit(1)  # The reactor is gone already.
        os.set_inheritable(int(fd), False)  # Processes the handler's code starts must not hold the channel.
        self._state = _map_reactor_state(os.environ.get("HANDOFF_STATE_FD"))
        channel = socket.socket(fileno=int(fd))
        self._inbox = b""
        try:
            self._send(channel, _HELLO, 0, 0, b"")
            while True:
                connection_id, flags, payload, client = self._receive(channel)
                with socket.socket(fileno=client) as sock:
                    stream = _Stream(sock, payload, flags, self._timeout)

                    def answered(connection_id=connection_id):
                        self._send(channel, _ANSWERED, connection_id, 0, stream.progress())

                    try:
                        serve = self._serve_http if flags & _FLAG_HTTP else self._serve_lines
                        keep_open, unused = serve(stream, answered)
                    except _ClientGone:
                        keep_open, unused = False, b""
                # The socket is closed before the report: the reactor decides what happens next.
                self._send(channel, _DONE, connection_id, _FLAG_KEEP_OPEN if keep_open else 0,
                           stream.progress() + bytes(unused))
        except _ChannelError as error:
            if str(error) != "closed":
                sys.stderr.write("handler[%d]: %s\n" % (os.getpid(), error))
                sys.exit(1)
        sys.exit(0)

    def _others_waiting(self):
        """Whether other connections wait for a handler (the reactor's shared state page)."""
        return self._state is not None and _STATE.unpack_from(self._state, 0)[1] > 0

    def _send(self, channel, kind, connection_id, flags, payload):
        channel.sendall(_HEADER.pack(_MAGIC, _VERSION, kind, connection_id, flags, len(payload)) + payload)

    def _receive(self, channel):
        """The next kConnection frame: one recvmsg brings the header, the payload and the socket."""
        fds = []
        while len(self._inbox) < _HEADER.size:
            # recvmsg itself, not socket.recv_fds: that ignores its flags argument (CPython up to 3.11), and
            # MSG_CMSG_CLOEXEC is what keeps code the handler starts from inheriting client sockets.
            data, ancillary, msg_flags, _ = channel.recvmsg(_HEADER.size + _READ_CHUNK,
                                                            socket.CMSG_SPACE(4 * _FD_SIZE),
                                                            socket.MSG_CMSG_CLOEXEC)
            for level, kind, fd_bytes in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += struct.unpack("%di" % (len(fd_bytes) // _FD_SIZE),
                                         fd_bytes[:len(fd_bytes) - len(fd_bytes) % _FD_SIZE])
            if msg_flags & socket.MSG_CTRUNC:
                raise _ChannelError("control data truncated: descriptors were lost")
            if not data:
                raise _ChannelError("closed" if not self._inbox else "channel closed in a frame")
            self._inbox += data
        magic, version, kind, connection_id, flags, size = _HEADER.unpack_from(self._inbox)
        if magic != _MAGIC or version != _VERSION:
            raise _ChannelError("bad frame from the reactor (magic %x, version %d)" % (magic, version))
        if kind != _CONNECTION or size > _MAX_PAYLOAD:
            raise _ChannelError("unexpected frame type %d from the reactor" % kind)
        while len(self._inbox) < _HEADER.size + size:
            data = channel.recv(_HEADER.size + size - len(self._inbox))
            if not data:
                raise _ChannelError("channel closed in a frame")
            self._inbox += data
        payload = self._inbox[_HEADER.size:_HEADER.size + size]
        self._inbox = self._inbox[_HEADER.size + size:]
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise _ChannelError("a connection frame came with %d descriptors" % len(fds))
        return connection_id, flags, payload, fds[0]

    # --- The line protocol ---

    def _answer_line(self, line):
        """(answer, close, status) for one line; status as HTTP would say it, 0 for quit."""
        words = line.decode(errors="replace").split()
        if not words:
            return b"ERR empty request\n", False, 400
        if words[0] == "quit":
            return (b"ERR quit takes no argument\n", False, 400) if len(words) > 1 else (b"", True, 0)
        if words[0] not in self._commands:
            name = "".join(c if c.isprintable() else "?" for c in words[0][:40])
            return ("ERR unknown command '%s' (commands: %s, quit)\n" %
                    (name, ", ".join(self._commands))).encode(), False, 404
        reply = self.execute(Request(words[0], words[1:]))
        if reply.status != 200:
            return b"ERR " + reply.body + b"\n", False, reply.status
        return (reply.body if reply.body.endswith(b"\n") else reply.body + b"\n"), False, 200

    def _serve_lines(self, stream, answered):
        must_finish = stream.head_truncated
        while True:
            while b"\n" in stream.buffer:
                end = stream.buffer.index(b"\n")
                line = bytes(stream.buffer[:end]).rstrip(b"\r")
                del stream.buffer[:end + 1]
                must_finish = False
                if len(line) > self._max_request:
                    stream.write(b"ERR request too large\n")
                    stream.status = 413
                    return False, b""
                text, close, status = self._answer_line(line)
                stream.write(text)
                if status:
                    stream.status = status
                if close:
                    return False, b""
                if b"\n" in stream.buffer:
                    if self._others_waiting():  # The rest of the pipeline goes back, behind them.
                        return True, bytes(stream.buffer)
                    answered()
            if len(stream.buffer) > self._max_request:
                stream.write(b"ERR request too large\n")
                stream.status = 413
                return False, b""
            if stream.input_closed:
                if stream.buffer:
                    text, _, status = self._answer_line(bytes(stream.buffer))
                    stream.write(text)
                    stream.status = status or stream.status
                return False, b""
            if not must_finish or not stream.buffer:
                return True, bytes(stream.buffer)
            if not stream.read_more():
                stream.write(b"ERR read timeout\n")
                stream.status = 408
                return False, b""

    # --- HTTP/1.1 ---

    def _serve_http(self, stream, answered):
        first = True
        while True:
            parsed = self._parse_http(stream, first)
            if parsed is None:  # An incomplete later request: back to the reactor.
                return True, bytes(stream.buffer)
            if isinstance(parsed, _Refusal):
                self._respond(stream, parsed.status, parsed.reason.encode() + b"\n", "text/plain; charset=utf-8",
                              True, "1.1", False)
                return False, b""
            method, path, version, keep_alive, body = parsed
            segments = path.split("?")[0].split("#")[0].split("/")[1:] if path.startswith("/") else []
            head_only = method == "HEAD"
            if not segments or segments[0] not in self._commands:
                status, data, kind, extra = 404, b"not found\n", "text/plain; charset=utf-8", ""
            elif method not in ("GET", "HEAD", "POST"):
                status, data, kind = 405, b"method not allowed: use GET, HEAD or POST\n", "text/plain; charset=utf-8"
                extra = "Allow: GET, HEAD, POST\r\n"
            else:
                reply = self.execute(Request(segments[0], segments[1:], body, "http"))
                status, data, kind, extra = reply.status, reply.body, reply.content_type, ""
                if status != 200:
                    data += b"\n"
            self._respond(stream, status, data, kind, not keep_alive, version, head_only, extra)
            if not keep_alive:
                return False, b""
            first = False
            if not stream.buffer:
                return True, b""
            if self._others_waiting():  # The rest of the pipeline goes back, behind them.
                return True, bytes(stream.buffer)
            answered()

    def _parse_http(self, stream, first):
        """The next request as (method, path, version, keep_alive, body); a _Refusal when it cannot be served;
        None when it is incomplete and not the first of the hand-off."""
        while True:
            end = stream.buffer.find(b"\r\n\r\n")
            if end < 0 and len(stream.buffer) > self._max_head or (end < 0 and stream.head_truncated):
                return _Refusal(431, "request header fields too large")
            if end >= 0:
                break
            if not first:
                return None
            if stream.input_closed:
                return _Refusal(400, "incomplete request")
            if not stream.read_more():
                return _Refusal(408, "request timeout")
        head = bytes(stream.buffer[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _Refusal(400, "malformed request line")
        method, path, version = parts[0], parts[1], parts[2][5:]
        if version not in ("1.0", "1.1"):
            return _Refusal(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        headers = {}
        for line in head[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                return _Refusal(400, "malformed header")
            headers[name.lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "1.1" else connection == "keep-alive"
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked_body(stream, start, first)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                return _Refusal(400, "malformed Content-Length")
            if length > self._max_request:
                return _Refusal(413, "request body too large")
            while len(stream.buffer) < start + length:
                if not first:
                    return None
                if stream.input_closed:
                    return _Refusal(400, "incomplete request")
                if not stream.read_more():
                    return _Refusal(408, "request timeout")
            body = bytes(stream.buffer[start:start + length])
            del stream.buffer[:start + length]
        if isinstance(body, _Refusal) or body is None:
            return body
        return method, path, version, keep_alive, body

    def _chunked_body(self, stream, start, first):
        body, at = b"", start
        while True:
            line_end = stream.buffer.find(b"\r\n", at)
            if line_end < 0:
                if not first:
                    return None
                if stream.input_closed or not stream.read_more():
                    return _Refusal(408, "request timeout")
                continue
            try:
                size = int(bytes(stream.buffer[at:line_end]).split(b";")[0], 16)
            except ValueError:
                return _Refusal(400, "malformed chunk")
            if len(body) + size > self._max_request:
                return _Refusal(413, "request body too large")
            while len(stream.buffer) < line_end + 2 + size + 2:
                if not first:
                    return None
                if stream.input_closed or not stream.read_more():
                    return _Refusal(408, "request timeout")
            if size == 0:  # The last chunk; no trailers are supported.
                del stream.buffer[:line_end + 4]
                return body
            body += bytes(stream.buffer[line_end + 2:line_end + 2 + size])
            at = line_end + 2 + size + 2

    def _respond(self, stream, status, body, content_type, close, version, head_only, extra=""):
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        head = "HTTP/1.1 %d %s\r\nServer: handoff\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s" % (
            status, reason, content_type, len(body), extra)
        if close:
            head += "Connection: close\r\n"
        elif version == "1.0":
            head += "Connection: keep-alive\r\n"
        stream.write((head + "\r\n").encode() + (b"" if head_only else body))
        stream.status = status
