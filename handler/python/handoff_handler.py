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
answer 144. HTTP requests are read with exactly the rules of the C++ library (this file ports its parser,
http/request_parser.cpp), so both answer every request alike. docs/handlers.md has the rules.
"""

import sys

if sys.version_info < (3, 9):  # socket.recv_fds, which takes the client sockets, came in 3.9.
    sys.stderr.write("handoff_handler needs Python 3.9 or newer; this is Python %d.%d (%s)\n"
                     % (sys.version_info[0], sys.version_info[1], sys.executable))
    sys.exit(2)

import ctypes
import email.utils
import mmap
import os
import re
import select
import signal
import socket
import struct
import time
import traceback

__all__ = ["Handler", "Reply", "Request"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# The reactor's shared state page (ipc/shared_state.hpp): version, connections waiting for a handler, draining.
_STATE = struct.Struct("=IIII")
_STATE_VERSION = 2
# This handler's answer record (ipc/answer_record.hpp): version, flags, connection id, answer end, status.
_RECORD = struct.Struct("=IIQQII")
_RECORD_VERSION = 1
_ANSWER_ENDS_CONNECTION, _ANSWER_INPUT_PENDING = 1, 2
_PAGE_BYTES = 4096  # Of the state page and the answer record (ipc/mapped_page.hpp), whatever the MMU's page.
_FD_SIZE = struct.calcsize("i")  # A descriptor in an SCM_RIGHTS message.


def _map_reactor_state(fd):
    """The reactor's state page (ipc/shared_state.hpp), mapped read-only; None when the reactor gives none."""
    if fd is None:
        return None
    with open(int(fd), "rb") as page:  # Closed once mapped: code the handler starts does not inherit it.
        state = mmap.mmap(page.fileno(), _PAGE_BYTES, prot=mmap.PROT_READ)
    if _STATE.unpack_from(state, 0)[0] != _STATE_VERSION:
        raise SystemExit("handler: the reactor's state page has an unknown version")
    return state


def _map_answer_record(fd):
    """This handler's answer record (ipc/answer_record.hpp), mapped writable; None when the reactor gives none."""
    if fd is None:
        return None
    with open(int(fd), "r+b") as page:  # Closed once mapped, as the state page.
        record = mmap.mmap(page.fileno(), _PAGE_BYTES)
    if _RECORD.unpack_from(record, 0)[0] != _RECORD_VERSION:
        raise SystemExit("handler: the reactor's answer record has an unknown version")
    return record


def _follow_the_reactor():
    """Lives and stops as the reactor says; False when the reactor is already gone.

    SIGINT, SIGTERM, SIGHUP and SIGUSR2 sent to the whole process group (Ctrl-C in a terminal, `timeout`,
    systemd's KillMode=control-group, `systemctl kill -s SIGUSR2` for a takeover) are ignored: the reactor drains, then closes the channel, which ends the handler.
    PR_SET_PDEATHSIG kills the handler when the reactor dies; HANDOFF_REACTOR_PID catches a reactor that died
    before that call.
    """
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2):
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
_FLAG_WRITE_TIMED_OUT = 2
_PROGRESS = struct.Struct("=QHHI")  # bytes written, status of the last answer (0: none), reserved
_MAX_PAYLOAD = 16 << 20
_READ_CHUNK = 64 * 1024


class Request:
    """One request, whichever protocol it came in."""

    def __init__(self, command, arguments, body=b"", protocol="line", method="", query="", headers=None):
        self.command = command  # "fib" for the line "fib 30" and for GET /fib/30
        # ["30"]: the words after the command, or the path segments after it, percent-decoded ("/say/a%20b"
        # gives ["a b"]; bytes that are no UTF-8 become U+FFFD)
        self.arguments = arguments
        self.body = body  # bytes: an HTTP request's body; empty on the line protocol
        self.protocol = protocol  # "line" or "http"
        # HTTP only ("" and [] on the line protocol): the method ("GET", "HEAD", "POST"), the query string as
        # sent (after the '?', not decoded) and the header fields as sent, (name, value) with names in any case
        # (values are latin-1 text).
        self.method = method
        self.query = query
        self.headers = headers if headers is not None else []

    def header(self, name):
        """The value of the first header field of that name (compared without regard to case); None if none."""
        wanted = name.translate(_ASCII_LOWER)
        for field, value in self.headers:
            if field.translate(_ASCII_LOWER) == wanted:
                return value
        return None

    def query_parameter(self, name):
        """The first query parameter of that name, percent-decoded ('+' is a space); None if none. A parameter
        without '=' has the value ""."""
        wanted = name.encode()
        for pair in self.query.split("&"):
            key, equals, value = pair.partition("=")
            if _percent_decode(key, True) != wanted:
                continue
            if not equals:
                return ""
            decoded = _percent_decode(value, True)
            if decoded is not None:  # One whose value is not well encoded is passed over.
                return decoded.decode("utf-8", "replace")
        return None


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _percent_decode(text, plus_is_space=False):
    """RFC 3986 section 2.1: "%20" -> b" "; with plus_is_space (a query string, as HTML forms send it) also "+"
    -> b" ". None when a '%' is not followed by two hex digits."""
    data = text.encode("latin-1", "replace")
    if plus_is_space:
        data = data.replace(b"+", b" ")
    if b"%" not in data:
        return data
    parts = data.split(b"%")
    out = bytearray(parts[0])
    for part in parts[1:]:
        if len(part) < 2 or not all(byte in _HEX for byte in part[:2]):
            return None
        out.append(int(part[:2], 16))
        out += part[2:]
    return bytes(out)


class Reply:
    """What a command answers: text, bytes with a content type, or an error with a reason. On the line protocol
    an answer is one line whatever it holds: the line end it may end in goes, and each CR, LF and NUL left in it
    becomes a space. The content type is written into the HTTP head: one holding CR, LF or NUL is refused (the
    client gets a 500, and the handler logs it)."""

    def __init__(self, status=200, body=b"", content_type="text/plain; charset=utf-8"):
        # The HTTP status, sent with its standard reason phrase (201 Created); 400 and above is an error: "ERR
        # <body>" on the line protocol.
        self.status = status
        self.body = body  # bytes
        self.content_type = content_type  # Over HTTP, for every status.

    @staticmethod
    def text(text):
        """A text answer; a newline is added when it has none."""
        data = text.encode()
        return Reply(body=data if data.endswith(b"\n") else data + b"\n")

    @staticmethod
    def bytes(data, content_type="application/octet-stream"):
        """Bytes with a content type of their own (HTTP); on a line, as one line (CR, LF and NUL as spaces)."""
        return Reply(body=bytes(data), content_type=content_type)

    @staticmethod
    def error(reason, status=400):
        """A request that cannot be served: "ERR <reason>" on a line, the status (400 unless said) over HTTP."""
        return Reply(status=status, body=reason.encode())


class _ChannelError(Exception):
    pass


class _ClientGone(Exception):
    pass


class _WriteTimedOut(_ClientGone):
    """The client took none of an answer for the write timeout."""


class _Stream:
    """The handler's side of one hand-off: bytes received so far, answers written, with deadlines."""

    def __init__(self, sock, received, flags, timeout, write_timeout, record):
        self.sock = sock
        self.record = record
        self.buffer = bytearray(received)
        self.input_closed = bool(flags & _FLAG_INPUT_CLOSED)
        self.head_truncated = bool(flags & _FLAG_HEAD_TRUNCATED)
        # One deadline for all the reading of a hand-off: only its first request is ever read from the socket
        # (the reactor reads the others), and a client that trickles bytes must not restart the clock.
        self.read_deadline = time.monotonic() + timeout
        self.write_timeout = write_timeout
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

    def answer(self, data, status, ends_connection=False):
        """Writes one answer, noted first in the answer record: if the handler dies after writing it, the
        reactor can tell from the record that the answer went out whole."""
        if data and self.record is not None:
            flags = (_ANSWER_ENDS_CONNECTION if ends_connection else 0) | \
                (_ANSWER_INPUT_PENDING if self.buffer else 0)
            struct.pack_into("=I", self.record, 24, status)
            struct.pack_into("=I", self.record, 4, flags)
            struct.pack_into("=Q", self.record, 16, self.written + len(data))
        if status:
            self.status = status  # Reported even when the write times out, as the C++ library does.
        self._write(data)

    def _write(self, data):
        """Writes all of data; gives up when the client takes none of it for the write timeout. The clock starts
        over whenever some bytes go out, as nginx's send_timeout does (handler/client_io.hpp: write_all)."""
        deadline = time.monotonic() + self.write_timeout
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                if not self._wait(select.POLLOUT, deadline):
                    raise _WriteTimedOut()
                continue
            except OSError:
                raise _ClientGone()
            if sent:
                deadline = time.monotonic() + self.write_timeout
            self.written += sent
            view = view[sent:]


# --- HTTP/1.1: the request parser ---
#
# The C++ side parses every request with http/request_parser.cpp: llhttp 8.1 (Node's parser, Debian's
# node-llhttp) in its strict mode, plus the rules of RFC 9112 and RFC 9110 that llhttp leaves to its user. A
# request the reactor let through must be read the same way here, and a pipelined one after it must get the
# same verdict, or the two parsers could be played against each other (request smuggling). So this is not a
# parser of its own: _Llhttp is llhttp's request grammar state by state (llhttp's src/llhttp/http.ts and
# url.ts, in strict mode, with its callbacks at the same bytes and its errors), and _RequestParser is
# RequestParser, rule by rule and in the same order.

# llhttp's error numbers (llhttp.h), those that steer a verdict or are reported.
_HPE_OK = 0
_HPE_STRICT = 2
_HPE_LF_EXPECTED = 3
_HPE_UNEXPECTED_CONTENT_LENGTH = 4
_HPE_INVALID_METHOD = 6
_HPE_INVALID_URL = 7
_HPE_INVALID_CONSTANT = 8
_HPE_INVALID_VERSION = 9
_HPE_INVALID_HEADER_TOKEN = 10
_HPE_INVALID_CONTENT_LENGTH = 11
_HPE_INVALID_CHUNK_SIZE = 12
_HPE_INVALID_TRANSFER_ENCODING = 15
_HPE_CB_HEADERS_COMPLETE = 17
_HPE_CB_MESSAGE_COMPLETE = 18
_HPE_CB_CHUNK_HEADER = 19
_HPE_PAUSED = 21
_HPE_PAUSED_H2_UPGRADE = 23
_HPE_USER = 24
_HPE_CB_HEADER_VALUE_COMPLETE = 29
_HPE_UNEXPECTED_SPACE = 30
_HPE_CB_CHUNK_EXTENSION_NAME_COMPLETE = 34

# llhttp's flags and header states (llhttp.h).
_F_CONNECTION_KEEP_ALIVE, _F_CONNECTION_CLOSE, _F_CONNECTION_UPGRADE = 1, 2, 4
_F_CHUNKED, _F_UPGRADE, _F_CONTENT_LENGTH, _F_SKIPBODY, _F_TRAILING = 8, 16, 32, 64, 128
_F_TRANSFER_ENCODING = 512
(_H_GENERAL, _H_CONNECTION, _H_CONTENT_LENGTH, _H_TRANSFER_ENCODING, _H_UPGRADE, _H_CONNECTION_KEEP_ALIVE,
 _H_CONNECTION_CLOSE, _H_CONNECTION_UPGRADE, _H_TRANSFER_ENCODING_CHUNKED) = range(9)
_UINT64_MAX = (1 << 64) - 1

# The methods llhttp knows, with its numbers (all of them, RTSP's too: it takes any of them first and checks
# the protocol after the target), and which it allows with "HTTP/", "RTSP/" and "ICE/".
_METHODS = {name: number for number, name in enumerate((
    "DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH UNLOCK BIND "
    "REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE "
    "MKCALENDAR LINK UNLINK SOURCE PRI DESCRIBE ANNOUNCE SETUP PLAY PAUSE TEARDOWN GET_PARAMETER SET_PARAMETER "
    "REDIRECT RECORD FLUSH").split())}
_M_CONNECT, _M_OPTIONS, _M_SOURCE, _M_PRI = _METHODS["CONNECT"], _METHODS["OPTIONS"], _METHODS["SOURCE"], \
    _METHODS["PRI"]
_HTTP_METHODS = frozenset(range(_METHODS["PRI"] + 1))  # DELETE to PRI, SOURCE among them.
_RTSP_METHODS = frozenset([_M_OPTIONS, _METHODS["GET"], _METHODS["POST"]] +
                          list(range(_METHODS["DESCRIBE"], _METHODS["FLUSH"] + 1)))


def _byte_set(text, *ranges):
    """The set of byte values in text (latin-1) and in the given (first, last) ranges."""
    values = set(text.encode("latin-1"))
    for first, last in ranges:
        values.update(range(first, last + 1))
    return frozenset(values)


_ALPHA = _byte_set("", (0x41, 0x5A), (0x61, 0x7A))
_DIGITS = _byte_set("0123456789")
_HEX = _byte_set("0123456789abcdefABCDEF")
_ALNUM = _ALPHA | _DIGITS
# llhttp's character classes (its src/llhttp/constants.ts), strict mode.
_TOKEN = _ALNUM | _byte_set("!#$%&'*+-.^_`|~")
_URL_CHAR = _ALNUM | _byte_set("!\"$%&'()*+,-./:;<=>@[\\]^_`{|}~")
_USERINFO_CHAR = _ALNUM | _byte_set("-_.!~*'()%;:&=+$,")
_HEADER_CHAR = _byte_set("\t", (0x20, 0x7E), (0x80, 0xFF))
_CONNECTION_TOKEN_CHAR = _HEADER_CHAR - _byte_set(",")
_QUOTED_STRING_CHAR = _byte_set("\t ", (0x21, 0xFF)) - _byte_set("\"\\")


def _run_of(values):
    """A pattern that matches the longest run of bytes from values."""
    return re.compile(b"[" + b"".join(b"\\x%02x" % value for value in sorted(values)) + b"]*")


_TOKEN_RUN, _URL_RUN, _HEADER_RUN = _run_of(_TOKEN), _run_of(_URL_CHAR), _run_of(_HEADER_CHAR)
_LINE_END = re.compile(b"[\r\n]")
_TO_LOWER = bytes(value + 32 if 0x41 <= value <= 0x5A else value for value in range(256))


class _Trie:
    """llparse's match of several byte sequences at once: it follows the bytes as far as they go and never
    goes back, so the bytes of a sequence that then fails stay consumed."""

    __slots__ = ("children", "value")

    def __init__(self, sequences=None):
        self.children = {}
        self.value = None
        for sequence, value in (sequences or {}).items():
            node = self
            for byte in sequence.encode("latin-1"):
                node = node.children.setdefault(byte, _Trie())
            node.value = value


_METHOD_TRIE = _Trie({name: number for name, number in _METHODS.items()})
_PROTOCOL_TRIE = _Trie({"HTTP/": "HTTP", "RTSP/": "RTSP", "ICE/": "ICE"})
_FIELD_TRIE = _Trie({"connection": _H_CONNECTION, "content-length": _H_CONTENT_LENGTH,
                     "proxy-connection": _H_CONNECTION, "transfer-encoding": _H_TRANSFER_ENCODING,
                     "upgrade": _H_UPGRADE})
_CONNECTION_TRIE = _Trie({"close": _H_CONNECTION_CLOSE, "upgrade": _H_CONNECTION_UPGRADE,
                          "keep-alive": _H_CONNECTION_KEEP_ALIVE})
_CHUNKED_TRIE = _Trie({"chunked": True})
_CRLF_TRIE = _Trie({"\r\n": True, "\n": True})
_CRLF_ONLY_TRIE = _Trie({"\r\n": True})
_SLASHES_TRIE = _Trie({"//": True})
_PREFACE_TRIE = _Trie({"\r\n\r\nSM\r\n\r\n": True})

_NEED_INPUT = object()  # _Llhttp._walk: the bytes ran out in the middle of a sequence.
_MISMATCH = object()  # _Llhttp._walk: the byte continues no sequence.


class _Stop(Exception):
    """_Llhttp stops at an error or a pause (llparse's s_error)."""


class _Llhttp:
    """llhttp 8.1 in strict mode, for requests: llhttp_execute, llhttp_resume and the callbacks, state by
    state. `callbacks` is the _RequestParser, which answers each callback as RequestParser's lambdas do (0,
    -1 or _HPE_PAUSED)."""

    def __init__(self, callbacks):
        self.callbacks = callbacks
        self.state = self._start
        self.error = _HPE_OK
        self.reason = ""
        self.error_pos = 0
        self.flags = 0
        self.header_state = _H_GENERAL
        self.content_length = 0
        self.method = -1
        self.http_major = self.http_minor = 0
        self.upgrade = False
        self.span = None  # The callback of the span being read (llparse has one at a time), and its start.
        self.span_start = 0
        self.node = None  # Where a _walk through a _Trie is.
        self.at_sign = False  # The last byte of the target's authority was an '@'.
        self.data = b""
        self.p = self.end = 0

    def execute(self, data, start):
        """Parses data[start:]; the error (0: none), with error_pos where a pause or an error stopped it. A
        span still open at the end is reported up to there, as llparse does."""
        if self.error:
            return self.error
        self.data, self.p, self.end = data, start, len(data)
        if self.span is not None:
            self.span_start = start
        state = self.state
        try:
            while state is not None:
                self.state = state
                state = state()
        except _Stop:
            return self.error
        if self.span is not None:
            error = self._report(self.span, self.span_start, self.end)
            if error:
                self.error, self.error_pos = error, self.end
                return error
        return _HPE_OK

    def resume(self):
        if self.error == _HPE_PAUSED:
            self.error = _HPE_OK

    def should_keep_alive(self):
        """llhttp_should_keep_alive, for a request."""
        if self.http_major > 0 and self.http_minor > 0:
            return not self.flags & _F_CONNECTION_CLOSE
        return bool(self.flags & _F_CONNECTION_KEEP_ALIVE)

    # --- The machinery: errors, pauses, callbacks, spans, sequences ---

    def _fail(self, error, reason):
        self.error, self.reason, self.error_pos = error, reason, self.p
        raise _Stop()

    def _pause(self, following):
        self.error, self.reason, self.error_pos, self.state = _HPE_PAUSED, "paused", self.p, following
        raise _Stop()

    def _invoke(self, result, following, error, name):
        """llhttp's invokePausable: a callback's 0 goes on, _HPE_PAUSED pauses before `following`, anything
        else is an error."""
        if result == 0:
            return following
        if result == _HPE_PAUSED:
            self._pause(following)
        self._fail(error, "`%s` callback error" % name)

    def _begin(self, span):
        self.span, self.span_start = span, self.p

    def _close(self):
        """Ends the open span at p and reports it."""
        span, self.span = self.span, None
        error = self._report(span, self.span_start, self.p)
        if error:
            self.error, self.error_pos = error, self.p
            raise _Stop()

    def _report(self, span, start, end):
        if span(bytes(self.data[start:end])) == 0:
            return 0
        self.reason = "Span callback error in %s" % span.__name__
        return _HPE_USER

    def _walk(self, root, lower=None):
        """Follows a _Trie from self.node (root when None): the value of the sequence matched, _MISMATCH, or
        _NEED_INPUT (self.node remembers where)."""
        node = self.node or root
        data = self.data
        while self.p < self.end:
            byte = data[self.p]
            if lower is not None:
                byte = lower(byte)
            child = node.children.get(byte)
            if child is None:
                self.node = None
                return node.value if node.value is not None else _MISMATCH
            self.p += 1
            node = child
            if not node.children:
                self.node = None
                return node.value
        self.node = node if node is not root else None
        return _NEED_INPUT

    def _peek(self):
        """The next byte, or None when the input ran out (the state then waits for more)."""
        return self.data[self.p] if self.p < self.end else None

    # --- The request line ---

    def _start(self):
        data = self.data
        while self.p < self.end and data[self.p] in (13, 10):  # Empty lines before a request (RFC 9112 2.2).
            self.p += 1
        if self.p == self.end:
            return None
        self._begin(self.callbacks.on_method)
        return self._method

    def _method(self):
        found = self._walk(_METHOD_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_INVALID_METHOD, "Invalid method encountered")
        self.method = found
        self._close()
        return self._space_after_method

    def _space_after_method(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x20:
            self._fail(_HPE_INVALID_METHOD, "Expected space after method")
        self.p += 1
        return self._spaces_before_url

    def _spaces_before_url(self):
        while self.p < self.end and self.data[self.p] == 0x20:
            self.p += 1
        if self.p == self.end:
            return None
        self._begin(self.callbacks.on_url)
        self.at_sign = False
        return self._url_server if self.method == _M_CONNECT else self._url_start

    def _url_strict(self, byte):
        if byte in (0x09, 0x0C):
            self._fail(_HPE_INVALID_URL, "Invalid characters in url (strict mode)")

    def _url_start(self):
        byte = self._peek()
        if byte is None:
            return None
        self._url_strict(byte)
        if byte in (0x2F, 0x2A):  # '/' or '*'
            self.p += 1
            return self._url_path
        if byte in _ALPHA:
            return self._url_schema
        if byte in (0x20, 0x0D, 0x0A):
            self._fail(_HPE_INVALID_URL, "Invalid characters in url")
        self._fail(_HPE_INVALID_URL, "Unexpected start char in url")

    def _url_schema(self):
        data = self.data
        while self.p < self.end and data[self.p] in _ALPHA:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        self._url_strict(byte)
        if byte == 0x3A:  # ':'
            self.p += 1
            return self._url_schema_delimiter
        if byte in (0x20, 0x0D, 0x0A):
            self._fail(_HPE_INVALID_URL, "Invalid characters in url")
        self._fail(_HPE_INVALID_URL, "Unexpected char in url schema")

    def _url_schema_delimiter(self):
        if self.node is None:
            byte = self._peek()
            if byte is None:
                return None
            self._url_strict(byte)
            if byte in (0x20, 0x0D, 0x0A):
                self._fail(_HPE_INVALID_URL, "Invalid characters in url")
        found = self._walk(_SLASHES_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_INVALID_URL, "Unexpected char in url schema")
        self.at_sign = False
        return self._url_server

    def _url_end(self, byte):
        """The edges llhttp's url nodes share for the end of the target: ' ', '\\r' or '\\n'; None for
        another byte."""
        if byte == 0x20:
            self._close()
            self.p += 1
            return self._url_complete
        if byte == 0x0D:
            self._close()
            return self._url_crlf
        if byte == 0x0A:
            self._close()
            self.p += 1
            return self._url_complete_http09
        self._url_strict(byte)
        return None

    def _url_server(self):
        data = self.data
        while self.p < self.end:
            byte = data[self.p]
            if byte in _USERINFO_CHAR or byte in (0x5B, 0x5D):  # '[' ']'
                self.at_sign = False
                self.p += 1
            elif byte == 0x40:  # '@'
                if self.at_sign:  # llhttp refuses "@@" only: "a@b@c" gets through.
                    self._fail(_HPE_INVALID_URL, "Double @ in url")
                self.at_sign = True
                self.p += 1
            elif byte == 0x2F:  # '/'
                self.p += 1
                return self._url_path
            elif byte == 0x3F:  # '?'
                self.p += 1
                return self._url_query
            else:
                following = self._url_end(byte)
                if following is None:
                    self._fail(_HPE_INVALID_URL, "Unexpected char in url server")
                return following
        return None

    def _url_path(self):
        self.p = _URL_RUN.match(self.data, self.p).end()
        byte = self._peek()
        if byte is None:
            return None
        self._url_strict(byte)
        if byte == 0x3F:  # '?'
            self.p += 1
            return self._url_query
        if byte == 0x23:  # '#'
            self.p += 1
            return self._url_fragment
        following = self._url_end(byte)
        if following is None:
            self._fail(_HPE_INVALID_URL, "Invalid char in url path")
        return following

    def _url_query(self):
        data = self.data
        while True:
            self.p = _URL_RUN.match(data, self.p).end()
            byte = self._peek()
            if byte is None:
                return None
            if byte != 0x3F:
                break
            self.p += 1
        self._url_strict(byte)
        if byte == 0x23:  # '#'
            self.p += 1
            return self._url_fragment
        following = self._url_end(byte)
        if following is None:
            self._fail(_HPE_INVALID_URL, "Invalid char in url query")
        return following

    def _url_fragment(self):
        data = self.data
        while True:
            self.p = _URL_RUN.match(data, self.p).end()
            byte = self._peek()
            if byte is None:
                return None
            if byte not in (0x3F, 0x23):
                break
            self.p += 1
        self._url_strict(byte)
        following = self._url_end(byte)
        if following is None:
            self._fail(_HPE_INVALID_URL, "Invalid char in url fragment start")
        return following

    def _url_crlf(self):
        found = self._walk(_CRLF_ONLY_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_INVALID_URL, "Expected CRLF")
        return self._url_complete_http09

    def _url_complete_http09(self):
        self.http_major, self.http_minor = 0, 9
        return self._headers_start

    def _url_complete(self):
        return self._protocol

    def _protocol(self):
        while self.node is None and self.p < self.end and self.data[self.p] == 0x20:
            self.p += 1
        found = self._walk(_PROTOCOL_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_INVALID_CONSTANT, "Expected HTTP/")
        if found == "HTTP" and self.method not in _HTTP_METHODS:
            self._fail(_HPE_INVALID_CONSTANT, "Invalid method for HTTP/x.x request")
        if found == "RTSP" and self.method not in _RTSP_METHODS:
            self._fail(_HPE_INVALID_CONSTANT, "Invalid method for RTSP/x.x request")
        if found == "ICE" and self.method != _M_SOURCE:
            self._fail(_HPE_INVALID_CONSTANT, "Expected SOURCE method for ICE/x.x request")
        return self._major

    def _major(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte not in _DIGITS:
            self._fail(_HPE_INVALID_VERSION, "Invalid major version")
        self.http_major = byte - 0x30
        self.p += 1
        return self._dot

    def _dot(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x2E:
            self._fail(_HPE_INVALID_VERSION, "Expected dot")
        self.p += 1
        return self._minor

    def _minor(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte not in _DIGITS:
            self._fail(_HPE_INVALID_VERSION, "Invalid minor version")
        self.http_minor = byte - 0x30
        self.p += 1
        if (self.http_major, self.http_minor) not in ((0, 9), (1, 0), (1, 1), (2, 0)):
            self._fail(_HPE_INVALID_VERSION, "Invalid HTTP version")
        return self._preface if self.method == _M_PRI else self._request_line_end

    def _request_line_end(self):
        found = self._walk(_CRLF_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_INVALID_VERSION, "Expected CRLF after version")
        return self._headers_start

    def _preface(self):
        found = self._walk(_PREFACE_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_INVALID_VERSION, "Expected HTTP/2 Connection Preface")
        self.error, self.reason, self.error_pos = _HPE_PAUSED_H2_UPGRADE, "Pause on PRI/Upgrade", self.p
        raise _Stop()

    # --- Header fields (and the trailer section) ---

    def _headers_start(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x20:
            self._fail(_HPE_UNEXPECTED_SPACE, "Unexpected space after start line")
        return self._field_start

    def _field_start(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x0D:
            self.p += 1
            return self._headers_almost_done
        if byte == 0x0A:
            return self._headers_almost_done
        self._begin(self.callbacks.on_header_field)
        return self._field

    def _field(self):
        found = self._walk(_FIELD_TRIE, _TO_LOWER.__getitem__)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self.header_state = _H_GENERAL
            return self._field_general
        self.header_state = found
        return self._field_colon

    def _field_colon(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x20:
            self._close()
            self._fail(_HPE_INVALID_HEADER_TOKEN, "Invalid header field char")
        if byte == 0x3A:
            self._close()
            self.p += 1
            return self._value_discard_ws
        self.header_state = _H_GENERAL
        return self._field_general

    def _field_general(self):
        self.p = _TOKEN_RUN.match(self.data, self.p).end()
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x3A:
            self._fail(_HPE_INVALID_HEADER_TOKEN, "Invalid header token")
        self._close()
        self.p += 1
        return self._value_discard_ws

    def _value_discard_ws(self):
        data = self.data
        while self.p < self.end and data[self.p] in (0x20, 0x09):
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x0D:
            self.p += 1
            return self._value_discard_ws_almost_done
        if byte == 0x0A:
            self._fail(_HPE_INVALID_HEADER_TOKEN, "Invalid header value char")
        self._begin(self.callbacks.on_header_value)
        return self._value_start

    def _value_discard_ws_almost_done(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x0A:
            self._fail(_HPE_STRICT, "Expected LF after CR")
        self.p += 1
        return self._value_discard_lws

    def _value_discard_lws(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte in (0x20, 0x09):
            self.p += 1
            return self._value_discard_ws
        if self.header_state == _H_CONTENT_LENGTH:
            self._fail(_HPE_INVALID_CONTENT_LENGTH, "Empty Content-Length")
        self._set_header_flags()
        self._begin(self.callbacks.on_header_value)
        self._close()
        return self._value_complete()

    def _set_header_flags(self):
        state = self.header_state
        if state == _H_CONNECTION_KEEP_ALIVE:
            self.flags |= _F_CONNECTION_KEEP_ALIVE
        elif state == _H_CONNECTION_CLOSE:
            self.flags |= _F_CONNECTION_CLOSE
        elif state == _H_CONNECTION_UPGRADE:
            self.flags |= _F_CONNECTION_UPGRADE
        elif state == _H_TRANSFER_ENCODING_CHUNKED:
            self.flags |= _F_CHUNKED
            return
        else:
            return
        self.header_state = _H_CONNECTION

    def _value_complete(self):
        return self._invoke(self.callbacks.on_header_value_complete(), self._field_start,
                            _HPE_CB_HEADER_VALUE_COMPLETE, "on_header_value_complete")

    def _forbid_after_chunked(self):
        # RFC 9112 section 6.1 (llhttp cites RFC 7230 3.3.1): once chunked is applied, no other coding may
        # follow in a request.
        self._close()
        self._fail(_HPE_INVALID_TRANSFER_ENCODING, "Invalid `Transfer-Encoding` header value")

    def _value_start(self):
        state = self.header_state
        if state == _H_UPGRADE:
            self.flags |= _F_UPGRADE
            self.header_state = _H_GENERAL
            return self._value
        if state == _H_TRANSFER_ENCODING:
            if self.flags & _F_CHUNKED:
                self._forbid_after_chunked()
            self.flags = (self.flags | _F_TRANSFER_ENCODING) & ~_F_CHUNKED
            return self._te_chunked
        if state == _H_CONTENT_LENGTH:
            if self.flags & _F_CONTENT_LENGTH:
                self._fail(_HPE_UNEXPECTED_CONTENT_LENGTH, "Duplicate Content-Length")
            return self._content_length
        if state == _H_CONNECTION:
            return self._connection
        return self._value

    def _te_chunked(self):
        found = self._walk(_CHUNKED_TRIE, lambda byte: byte | 0x20)
        if found is _NEED_INPUT:
            return None
        return self._te_token if found is _MISMATCH else self._te_chunked_last

    def _te_chunked_last(self):
        data = self.data
        while self.p < self.end and data[self.p] == 0x20:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte in (0x0D, 0x0A):
            self.header_state = _H_TRANSFER_ENCODING_CHUNKED
            return self._value_otherwise
        if byte == 0x2C:  # ','
            self._forbid_after_chunked()
        return self._te_token

    def _te_token(self):
        data = self.data
        while self.p < self.end and data[self.p] in _CONNECTION_TOKEN_CHAR:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x2C:
            self.p += 1
            return self._te_token_ows
        self.header_state = _H_GENERAL
        return self._value

    def _te_token_ows(self):
        data = self.data
        while self.p < self.end and data[self.p] in (0x20, 0x09):
            self.p += 1
        if self.p == self.end:
            return None
        return self._te_chunked

    def _content_length(self):
        data = self.data
        while self.p < self.end and data[self.p] in _DIGITS:
            self.content_length = self.content_length * 10 + data[self.p] - 0x30
            if self.content_length > _UINT64_MAX:
                self._close()
                self._fail(_HPE_INVALID_CONTENT_LENGTH, "Content-Length overflow")
            self.p += 1
        if self.p == self.end:
            return None
        return self._content_length_ws

    def _content_length_ws(self):
        data = self.data
        while self.p < self.end and data[self.p] == 0x20:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte in (0x0D, 0x0A):
            self.flags |= _F_CONTENT_LENGTH
            return self._value_otherwise
        self._close()
        self._fail(_HPE_INVALID_CONTENT_LENGTH, "Invalid character in Content-Length")

    def _connection(self):
        data = self.data
        while self.node is None and self.p < self.end and data[self.p] in (0x20, 0x09):
            self.p += 1
        found = self._walk(_CONNECTION_TRIE, _TO_LOWER.__getitem__)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            return self._connection_token
        self.header_state = found
        return self._connection_ws

    def _connection_ws(self):
        data = self.data
        while self.p < self.end and data[self.p] == 0x20:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x2C:
            self.p += 1
            self._set_header_flags()
            return self._connection
        if byte in (0x0D, 0x0A):
            return self._value_otherwise
        self.header_state = _H_GENERAL
        return self._connection_token

    def _connection_token(self):
        data = self.data
        while self.p < self.end and data[self.p] in _CONNECTION_TOKEN_CHAR:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x2C:
            self.p += 1
            return self._connection
        return self._value_otherwise

    def _value(self):
        self.p = _HEADER_RUN.match(self.data, self.p).end()
        if self.p == self.end:
            return None
        return self._value_otherwise

    def _value_otherwise(self):
        byte = self._peek()
        if byte is None:
            return None
        self._close()
        if byte != 0x0D:
            self._fail(_HPE_INVALID_HEADER_TOKEN, "Invalid header value char")
        self.p += 1
        return self._value_almost_done

    def _value_almost_done(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x0A:
            self._fail(_HPE_LF_EXPECTED, "Missing expected LF after header value")
        self.p += 1
        return self._value_lws

    def _value_lws(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte in (0x20, 0x09):  # obs-fold, which llhttp takes; RequestParser refuses it.
            if self.header_state == _H_TRANSFER_ENCODING_CHUNKED:
                self.header_state = _H_GENERAL
            self._begin(self.callbacks.on_header_value)
            return self._value_start
        self._set_header_flags()
        return self._value_complete()

    def _headers_almost_done(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x0A:
            self._fail(_HPE_STRICT, "Expected LF after headers")
        self.p += 1
        if self.flags & _F_TRAILING:
            return self._message_done
        if self.flags & (_F_TRANSFER_ENCODING | _F_CONTENT_LENGTH) == _F_TRANSFER_ENCODING | _F_CONTENT_LENGTH:
            self._fail(_HPE_UNEXPECTED_CONTENT_LENGTH, "Content-Length can't be present with Transfer-Encoding")
        # llhttp__before_headers_complete (llhttp's http.c).
        if self.flags & _F_UPGRADE and self.flags & _F_CONNECTION_UPGRADE:
            self.upgrade = True
        else:
            self.upgrade = self.method == _M_CONNECT
        result = self.callbacks.on_headers_complete()
        if result == _HPE_PAUSED:
            self._pause(self._headers_done)
        if result not in (0, 1, 2):
            self._fail(_HPE_CB_HEADERS_COMPLETE, "User callback error")
        return self._headers_done

    def _headers_done(self):
        # llhttp__after_headers_complete (llhttp's http.c), for a request.
        has_body = self.flags & _F_CHUNKED or self.content_length > 0
        if self.upgrade and (self.method == _M_CONNECT or self.flags & _F_SKIPBODY or not has_body):
            return self._message_done  # CONNECT, or an upgrade without a body: what follows is not HTTP.
        if self.flags & _F_SKIPBODY:
            return self._message_done
        if self.flags & _F_CHUNKED:
            return self._chunk_size_start
        if self.flags & _F_TRANSFER_ENCODING:
            self._fail(_HPE_INVALID_TRANSFER_ENCODING, "Request has invalid `Transfer-Encoding`")
        if not self.flags & _F_CONTENT_LENGTH or self.content_length == 0:
            return self._message_done
        self._begin(self.callbacks.on_body)
        return self._body_identity

    def _body_identity(self):
        return self._take_body(self._message_done)

    def _take_body(self, done):
        """Takes up to content_length bytes of body (a Content-Length body, or one chunk's data); the state
        done follows once they are all taken."""
        if self.p == self.end:
            return None
        taken = min(self.end - self.p, self.content_length)
        self.p += taken
        self.content_length -= taken
        if self.content_length:
            return None
        self._close()
        return done

    def _message_done(self):
        return self._invoke(self.callbacks.on_message_complete(), self._after_message,
                            _HPE_CB_MESSAGE_COMPLETE, "on_message_complete")

    def _after_message(self):
        # RequestParser takes one request at a time and starts a new parser for the next one.
        self.error, self.reason, self.error_pos = _HPE_PAUSED, "one request at a time", self.p
        raise _Stop()

    # --- Chunked bodies ---

    def _chunk_size_start(self):
        self.content_length = 0
        return self._chunk_size_digit

    def _chunk_size_digit(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte not in _HEX:
            self._fail(_HPE_INVALID_CHUNK_SIZE, "Invalid character in chunk size")
        return self._chunk_size

    def _chunk_size(self):
        data = self.data
        while self.p < self.end and data[self.p] in _HEX:
            self.content_length = self.content_length * 16 + int(chr(data[self.p]), 16)
            if self.content_length > _UINT64_MAX:
                self._fail(_HPE_INVALID_CHUNK_SIZE, "Chunk size overflow")
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x0D:
            self.p += 1
            return self._chunk_size_almost_done
        if byte == 0x3B:  # ';'
            self.p += 1
            return self._chunk_extensions
        self._fail(_HPE_INVALID_CHUNK_SIZE, "Invalid character in chunk size")

    def _chunk_extensions(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte in (0x20, 0x0D):
            self._fail(_HPE_STRICT, "Invalid character in chunk extensions")
        self._begin(self.callbacks.on_chunk_extension_name)
        return self._chunk_extension_name

    def _chunk_extension_name(self):
        self.p = _TOKEN_RUN.match(self.data, self.p).end()
        byte = self._peek()
        if byte is None:
            return None
        self._close()
        if byte not in (0x3D, 0x3B, 0x0D):  # '=' ';' '\r'
            self._fail(_HPE_STRICT, "Invalid character in chunk extensions name")
        self.p += 1
        if byte == 0x3D:
            self._begin(self.callbacks.on_chunk_extension_value)
            following = self._chunk_extension_value
        else:
            following = self._chunk_extensions if byte == 0x3B else self._chunk_size_almost_done
        return self._invoke(self.callbacks.on_chunk_extension_name_complete(), following,
                            _HPE_CB_CHUNK_EXTENSION_NAME_COMPLETE, "on_chunk_extension_name")

    def _chunk_extension_value(self):
        self.p = _TOKEN_RUN.match(self.data, self.p).end()
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x22:  # '"'
            self.p += 1
            return self._chunk_extension_quoted_value
        self._close()
        if byte == 0x3B:
            # llhttp 8.1 takes the ';' here and then expects a chunk size character: "5;a=b;c=d" is refused.
            self.p += 1
            return self._chunk_size_after_extension
        if byte == 0x0D:
            self.p += 1
            return self._chunk_size_almost_done
        self._fail(_HPE_STRICT, "Invalid character in chunk extensions value")

    def _chunk_extension_quoted_value(self):
        data = self.data
        while self.p < self.end and data[self.p] in _QUOTED_STRING_CHAR:
            self.p += 1
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x22:
            self._close()
            self._fail(_HPE_STRICT, "Invalid character in chunk extensions quoted value")
        self.p += 1
        self._close()
        return self._chunk_extension_quoted_value_done

    def _chunk_extension_quoted_value_done(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x3B:
            self.p += 1
            return self._chunk_extensions
        if byte == 0x0D:
            self.p += 1
            return self._chunk_size_almost_done
        self._fail(_HPE_STRICT, "Invalid character in chunk extensions quote value")

    def _chunk_size_after_extension(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte == 0x0D:
            self.p += 1
            return self._chunk_size_almost_done
        if byte == 0x3B:
            self.p += 1
            return self._chunk_extensions
        self._fail(_HPE_INVALID_CHUNK_SIZE, "Invalid character in chunk size")

    def _chunk_size_almost_done(self):
        byte = self._peek()
        if byte is None:
            return None
        if byte != 0x0A:
            self._fail(_HPE_STRICT, "Expected LF after chunk size")
        self.p += 1
        return self._invoke(self.callbacks.on_chunk_header(), self._to_chunk, _HPE_CB_CHUNK_HEADER,
                            "on_chunk_header")

    def _to_chunk(self):
        if self.content_length == 0:
            self.flags |= _F_TRAILING
            return self._field_start
        self._begin(self.callbacks.on_body)
        return self._chunk_data

    def _chunk_data(self):
        return self._take_body(self._chunk_data_almost_done)

    def _chunk_data_almost_done(self):
        found = self._walk(_CRLF_ONLY_TRIE)
        if found is _NEED_INPUT:
            return None
        if found is _MISMATCH:
            self._fail(_HPE_STRICT, "Expected CRLF after chunk")
        return self._chunk_size_start


# RequestParser's own rules (http/request_parser.cpp), on the latin-1 text of the bytes.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HOST_NAME_CHAR = frozenset("-._~%!$&'()*+,;=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX_TEXT = frozenset("0123456789abcdefABCDEF")
_DIGIT_TEXT = frozenset("0123456789")
# RFC 9112 section 3.2 and RFC 3986 section 3.3: the characters of an origin-form or absolute-form target
# (pchar, "/", "?"), each '%' followed by two hex digits. No fragment ('#'), no backslash, no other byte.
_VALID_TARGET = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*\Z")


def _valid_host(host):
    """RFC 9112 section 3.2 and RFC 3986 section 3.2.2: host [ ":" port ], with host a reg-name, an IPv4
    address or a bracketed IP literal. Empty is allowed (no authority)."""
    if host.startswith("["):
        close = host.find("]")
        if close < 0 or not all(c in _HEX_TEXT or c in ":." for c in host[1:close]):
            return False
        host = host[close + 1:]
        return not host or (host[0] == ":" and all(c in _DIGIT_TEXT for c in host[1:]))
    name, colon, port = host.partition(":")
    return all(c in _HOST_NAME_CHAR for c in name) and (not colon or all(c in _DIGIT_TEXT for c in port))


def _request_line_status(line, complete):
    """What is wrong with a request line (RFC 9112 section 3): method SP request-target SP HTTP-version, with
    single spaces, a token for the method and "HTTP/" DIGIT "." DIGIT. 0: nothing; 400: malformed; 505: a
    version this server does not speak. A line cut short is judged as far as it goes."""
    method_end = line.find(" ")
    if method_end < 0:
        method_end = len(line)
    method = line[:method_end]
    if (not method and complete) or not all(c in _TCHAR for c in method):
        return 400
    if not complete:
        return 0
    target_end = line.find(" ", method_end + 1)
    if method_end == len(line) or target_end < 0 or target_end == method_end + 1:
        return 400
    version = line[target_end + 1:]
    if (len(version) != 8 or not version.startswith("HTTP/") or version[5] not in _DIGIT_TEXT
            or version[6] != "." or version[7] not in _DIGIT_TEXT):
        return 400
    return 0 if version in ("HTTP/1.1", "HTTP/1.0") else 505


def _valid_absolute_target(target):
    """An absolute-form target names its host, without userinfo (RFC 9110 sections 4.2.1 and 4.2.4)."""
    scheme_end = target.find("://")
    if scheme_end <= 0:
        return False
    rest = target[scheme_end + 3:]
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    return bool(authority) and "@" not in authority


def _body_phase_bytes(max_body_bytes):
    """RequestLimits::body_phase_bytes: the most bytes a body may take on the wire, chunk framing and trailers
    included."""
    return 2 * max_body_bytes + 64 * 1024


class _Head:
    """What a complete request head says (RequestHead)."""

    def __init__(self):
        self.method = ""  # "GET"
        self.target = ""  # "/fib/30?x=1", as sent.
        self.version_minor = 1
        self.headers = []  # (name, value), as sent.
        self.keep_alive = True  # After this request.
        self.expect_continue = False
        self.body_follows = False


class _RequestParser:
    """RequestParser (http/request_parser.cpp): feed() the bytes of one request as they come; it says when
    the request is complete, or refused with a status (400, 413, 414, 431, 501, 505) and a reason."""

    HEAD, BODY, COMPLETE, REFUSED = range(4)

    def __init__(self, max_head_bytes, max_body_bytes, max_target_bytes=8 * 1024):
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes
        self.max_target_bytes = max_target_bytes
        self.reset()

    def reset(self):
        """Starts over, for the next request on the connection."""
        self.parser = _Llhttp(self)
        self.state = self.HEAD
        self.consumed = 0  # Bytes of the current request taken so far.
        self.head = _Head()
        self.body = bytearray()
        self.body_bytes = 0
        self.head_bytes = 0  # Of consumed, the head's.
        self.trailer_bytes = 0  # Of consumed, the trailer section's.
        self.field = bytearray()  # The name of the header field being read, then its value.
        self.value = bytearray()
        self.request_line = bytearray()  # Without its line end; cut at max_target_bytes and a little more.
        self.request_line_complete = False
        self.at_line_start = False  # The last head byte checked ended a line.
        self.after_cr = False  # The last head byte checked was a CR.
        self.chunk_extension_named = False
        self.in_trailers = False  # The last chunk was read.
        self.trailers_begun = False  # feed() checks the bytes from here on, as it does the head's.
        self.hosts = 0
        self.host_valid = True
        self.status = 0
        self.reason = ""

    def head_complete(self):
        return self.state in (self.BODY, self.COMPLETE)

    def refuse(self, status, reason):
        self.state = self.REFUSED
        self.status, self.reason = status, reason
        return -1

    def feed(self, data, start=0):
        """Parses data[start:], the bytes that follow those fed before; returns how many it took: all of them,
        unless the request became complete (what follows is the next request's) or was refused."""
        taken = 0
        # Runs on after the head's pause even with no byte left: a request without a body is complete there.
        while self.state in (self.HEAD, self.BODY):
            at = start + taken
            before = self.state
            error = self.parser.execute(data, at)
            # The parser pauses where the head ends and where the request ends.
            end = self.parser.error_pos if error == _HPE_PAUSED else len(data)
            if before == self.HEAD:
                self._check_line_ends(data, at, end)
                if self.state == self.BODY and self.after_cr:
                    self.refuse(400, "malformed request: a CR not followed by LF")
                if self.state == self.BODY:
                    self._check_head()
            taken += end - at
            self.consumed += end - at
            if before == self.HEAD and self.consumed > self.max_head_bytes and self.state != self.REFUSED:
                self.refuse(431, "request header fields too large")
            if before == self.HEAD and self.state == self.BODY:
                self.head_bytes = self.consumed
            if (before == self.BODY and self.state != self.REFUSED and
                    self.consumed - self.head_bytes > _body_phase_bytes(self.max_body_bytes)):
                self.refuse(413, "request body too large (with its chunk framing)")
            if before == self.BODY and self.trailers_begun:
                self._check_line_ends(data, at, end)
                self.trailer_bytes += end - at
                if self.trailer_bytes > self.max_head_bytes and self.state != self.REFUSED:
                    self.refuse(431, "request trailer fields too large")
            if self.in_trailers and not self.trailers_begun:
                self.trailers_begun = True  # Paused at the last chunk: the trailer section follows.
                self.at_line_start = True
                self.after_cr = False
            if error == _HPE_PAUSED and self.state == self.BODY:
                self.parser.resume()
            elif error not in (_HPE_OK, _HPE_PAUSED) and self.state != self.REFUSED:
                self._refuse_as_llhttp_does(error)
            elif error == _HPE_OK:
                break
        return taken

    def _refuse_as_llhttp_does(self, error):
        """A request llhttp stopped at: its status by what is wrong with the request line, if anything, else by
        what llhttp found (an unknown method with a well-formed token: 501)."""
        status = _request_line_status(self.request_line.decode("latin-1"), self.request_line_complete)
        if status == 505:
            self.refuse(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        elif status:
            self.refuse(400, "malformed request: a malformed request line")
        elif error == _HPE_INVALID_METHOD:
            self.refuse(501, "method not implemented")
        else:
            self.refuse(400, "malformed request: " + self.parser.reason)

    def _check_line_ends(self, data, start, end):
        """The head's bytes, for what llhttp lets through. RFC 9112 section 2.2: a CR must be followed by LF,
        and every line of a head ends in CRLF (the strict choice: a bare LF is refused). Section 5.2: no
        obs-fold (a line that begins with SP or HTAB). It also keeps the request line, after any empty lines
        before it, for _request_line_status."""
        cap = self.max_target_bytes + 32
        at = start
        while at < end:
            if self.state == self.REFUSED:
                return
            byte = data[at]
            if byte not in (0x0D, 0x0A):
                # A run of bytes that are no line end: only its first can break a rule.
                line_end = _LINE_END.search(data, at, end)
                run_end = line_end.start() if line_end else end
                if self.after_cr:
                    self.refuse(400, "malformed request: a CR not followed by LF")
                elif self.at_line_start and self.request_line_complete and byte in (0x20, 0x09):
                    self.refuse(400, "malformed request: obs-fold (a header line that begins with whitespace)")
                if not self.request_line_complete and len(self.request_line) <= cap:
                    self.request_line += data[at:min(run_end, at + cap + 1 - len(self.request_line))]
                if self.state == self.REFUSED:
                    return
                self.at_line_start = self.after_cr = False
                at = run_end
                continue
            if self.after_cr and byte != 0x0A:
                self.refuse(400, "malformed request: a CR not followed by LF")
            elif not self.after_cr and byte == 0x0A:
                self.refuse(400, "malformed request: a line that ends in LF alone (CRLF is required)")
            if not self.request_line_complete and self.request_line:
                self.request_line_complete = True
            self.at_line_start = byte == 0x0A
            self.after_cr = byte == 0x0D
            at += 1

    # --- llhttp's callbacks (RequestParser's settings_) ---

    def on_method(self, data):
        self.head.method += data.decode("latin-1")
        return 0

    def on_url(self, data):
        self.head.target += data.decode("latin-1")
        if len(self.head.target) > self.max_target_bytes:
            return self.refuse(414, "request target too long")
        return 0

    def on_header_field(self, data):
        self.field += data
        return 0

    def on_header_value(self, data):
        self.value += data
        return 0

    def on_header_value_complete(self):
        value = bytes(self.value).rstrip(b" \t").decode("latin-1")
        field = self.field.decode("latin-1")
        if self.in_trailers:
            # A trailer field is checked as a field, and then dropped: RFC 9110 section 6.5.1 forbids merging
            # it into the header fields, which a proxy in front may not have vetted.
            self.field = bytearray()
            self.value = bytearray()
            if not field or "\r" in value or "\n" in value:
                return self.refuse(400, "malformed request: a malformed trailer field")
            return 0
        if not field:
            return self.refuse(400, "malformed request: a header field without a name")
        if "\r" in value or "\n" in value:
            return self.refuse(400, "malformed request: obs-fold (a header value over two lines)")
        name = field.lower()
        if name == "transfer-encoding" and not value:
            return self.refuse(400, "malformed request: an empty Transfer-Encoding")
        if name == "host":
            self.hosts += 1
            self.host_valid = self.host_valid and _valid_host(value)
        elif name == "expect":
            self.head.expect_continue = value.lower() == "100-continue"
        self.head.headers.append((field, value))
        self.field = bytearray()
        self.value = bytearray()
        return 0

    def on_headers_complete(self):
        parser = self.parser
        self.head.version_minor = parser.http_minor
        self.head.keep_alive = parser.should_keep_alive()
        self.head.body_follows = bool(parser.flags & _F_CHUNKED) or parser.content_length > 0
        self.state = self.BODY
        return _HPE_PAUSED  # feed() checks the head, its bytes and its fields (_check_head), then resumes.

    def _check_head(self):
        """The rules llhttp leaves to its user, once the head is complete and its bytes are checked."""
        parser, head = self.parser, self.head
        # The request line as a whole: llhttp lets several spaces, and a missing version (HTTP/0.9), through.
        status = _request_line_status(self.request_line.decode("latin-1"), True)
        if status == 505:
            self.refuse(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        elif status:
            self.refuse(400, "malformed request: a malformed request line")
        elif parser.http_major != 1 or parser.http_minor > 1:
            self.refuse(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        elif (head.method != "OPTIONS" if head.target == "*" else
              not _VALID_TARGET.match(head.target) or
              (not head.target.startswith("/") and not _valid_absolute_target(head.target))):
            self.refuse(400, "malformed request: an invalid request target (or * with another method than "
                             "OPTIONS)")
        elif parser.flags & _F_TRANSFER_ENCODING and parser.http_minor == 0:
            self.refuse(400, "malformed request: Transfer-Encoding in an HTTP/1.0 request")
        elif parser.http_minor == 1 and self.hosts == 0:
            self.refuse(400, "malformed request: no Host header")
        elif self.hosts > 1:
            self.refuse(400, "malformed request: more than one Host header")
        elif not self.host_valid:
            self.refuse(400, "malformed request: invalid Host header")
        elif parser.flags & _F_CONTENT_LENGTH and parser.content_length > self.max_body_bytes:
            self.refuse(413, "request body too large")

    def on_body(self, data):
        self.body_bytes += len(data)
        if self.body_bytes > self.max_body_bytes:
            return self.refuse(413, "request body too large")
        self.body += data
        return 0

    def on_chunk_extension_name(self, data):
        if data:
            self.chunk_extension_named = True  # llhttp reports an empty name too.
        return 0

    def on_chunk_extension_name_complete(self):
        return 0

    def on_chunk_extension_value(self, data):
        # RFC 9112 section 7.1.1: chunk-ext-name [ "=" chunk-ext-val ]; llhttp 8.1 takes ";=b".
        if self.chunk_extension_named:
            return 0
        return self.refuse(400, "malformed request: a chunk extension without a name")

    def on_chunk_header(self):
        self.chunk_extension_named = False
        if self.parser.content_length != 0:
            return 0
        self.in_trailers = True  # The last chunk: the trailer section follows.
        return _HPE_PAUSED

    def on_message_complete(self):
        self.state = self.COMPLETE
        return _HPE_PAUSED  # One request at a time: what follows is the next one's.


class Handler:
    """Your commands, and the loop that serves them to the reactor (run)."""

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
            reply = reply if isinstance(reply, Reply) else Reply.text(str(reply))
            if not 200 <= reply.status <= 599:
                # A 1xx would leave the client waiting for a final answer; anything else is no status at all.
                sys.stderr.write("handler[%d]: command '%s' replied with status %d, which is not a final status\n"
                                 % (os.getpid(), request.command, reply.status))
                return Reply.error("internal error: the handler replied with status %d" % reply.status, 500)
            if _breaks_a_field(reply.content_type):
                # Written into the head, it would write headers or a response of its own (response splitting).
                sys.stderr.write("handler[%d]: command '%s' replied with a content type holding CR, LF or NUL "
                                 "(\"%s\"), refused: it would end the Content-Type header and write headers or a "
                                 "response of its own (RFC 9110 section 5.5); answered 500\n"
                                 % (os.getpid(), request.command, _loggable(reply.content_type)))
                return Reply.error("internal error: the handler replied with a content type holding CR, LF or NUL",
                                   500)
            return reply
        except Exception as error:  # User code must not take the handler down.
            # The handler's own error, not the client's: logged (with the pid, to find the handler) and
            # answered 500; the handler serves on.
            sys.stderr.write("handler[%d]: command '%s' raised: %r\n" % (os.getpid(), request.command, error))
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
        self._write_timeout = int(os.environ.get("HANDOFF_WRITE_TIMEOUT_MS", 5000)) / 1000
        if not _follow_the_reactor():
            sys.exit(1)  # The reactor is gone already.
        os.set_inheritable(int(fd), False)  # Processes the handler's code starts must not hold the channel.
        self._state = _map_reactor_state(os.environ.get("HANDOFF_STATE_FD"))
        record = _map_answer_record(os.environ.get("HANDOFF_RECORD_FD"))
        channel = socket.socket(fileno=int(fd))
        self._inbox = b""
        try:
            self._send(channel, _HELLO, 0, 0, b"")
            while True:
                connection_id, flags, payload, client = self._receive(channel)
                with socket.socket(fileno=client) as sock:
                    stream = _Stream(sock, payload, flags, self._timeout, self._write_timeout, record)

                    def answered(connection_id=connection_id):
                        self._send(channel, _ANSWERED, connection_id, 0, stream.progress())

                    done_flags = 0
                    try:
                        serve = self._serve_http if flags & _FLAG_HTTP else self._serve_lines
                        keep_open, unused = serve(stream, answered)
                        done_flags = _FLAG_KEEP_OPEN if keep_open else 0
                    except _WriteTimedOut:
                        done_flags, unused = _FLAG_WRITE_TIMED_OUT, b""
                    except _ClientGone:
                        unused = b""
                # The socket is closed before the report: the reactor decides what happens next.
                self._send(channel, _DONE, connection_id, done_flags, stream.progress() + bytes(unused))
        except _ChannelError as error:
            if str(error) != "closed":
                sys.stderr.write("handler[%d]: %s\n" % (os.getpid(), error))
                sys.exit(1)
        sys.exit(0)

    def _others_waiting(self):
        """Whether other connections wait for a handler (the reactor's shared state page)."""
        return self._state is not None and _STATE.unpack_from(self._state, 0)[1] > 0

    def _reactor_draining(self):
        """Whether the reactor drains: an HTTP answer then says Connection: close."""
        return self._state is not None and _STATE.unpack_from(self._state, 0)[2] != 0

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
            return _one_line(("ERR unknown command '%s' (commands: %s, quit)" %
                              (name, ", ".join(self._commands))).encode()), False, 404
        reply = self.execute(Request(words[0], words[1:]))
        if reply.status >= 400:
            return _one_line(b"ERR " + reply.body), False, reply.status
        return _one_line(reply.body), False, reply.status

    def _serve_lines(self, stream, answered):
        must_finish = stream.head_truncated
        while True:
            while b"\n" in stream.buffer:
                end = stream.buffer.index(b"\n")
                line = bytes(stream.buffer[:end]).rstrip(b"\r")
                del stream.buffer[:end + 1]
                must_finish = False
                if len(line) > self._max_request:
                    stream.answer(b"ERR request too large\n", 413, True)
                    return False, b""
                text, close, status = self._answer_line(line)
                stream.answer(text, status)
                if close:
                    return False, b""
                if b"\n" in stream.buffer:
                    if self._others_waiting():  # The rest of the pipeline goes back, behind them.
                        return True, bytes(stream.buffer)
                    answered()
            if len(stream.buffer) > self._max_request:
                stream.answer(b"ERR request too large\n", 413, True)
                return False, b""
            if stream.input_closed:
                if stream.buffer:
                    line = bytes(stream.buffer)
                    del stream.buffer[:]
                    text, _, status = self._answer_line(line)
                    stream.answer(text, status, True)
                return False, b""
            if not must_finish or not stream.buffer:
                return True, bytes(stream.buffer)
            if not stream.read_more():
                stream.answer(b"ERR read timeout\n", 408, True)
                return False, b""

    # --- HTTP/1.1 ---

    def _serve_http(self, stream, answered):
        """Answers the requests of one hand-off as the C++ library does (handler/http_session.cpp): each is
        parsed by _RequestParser; only the first is read on from the socket if it is not complete yet, a later
        incomplete one goes back to the reactor, and a refused one is answered and ends the connection."""
        parser = _RequestParser(self._max_head, self._max_request)
        first = True
        while True:
            parser.reset()
            taken = 0  # Of the bytes in the buffer, how many this request has taken.
            while parser.state != parser.COMPLETE:
                taken += parser.feed(stream.buffer, taken)
                if parser.state == parser.COMPLETE:
                    break
                if parser.state == parser.REFUSED:
                    return self._refuse(stream, parser.head, parser.status, parser.reason)
                # Only the first request of a hand-off is read to its end here; a later one goes back to the
                # reactor, which waits for it without holding a handler.
                if not first:
                    return True, bytes(stream.buffer)
                if stream.head_truncated and not parser.head_complete():
                    return self._refuse(stream, parser.head, 431, "request header fields too large")
                if stream.input_closed:
                    if taken == 0:
                        return False, b""
                    return self._refuse(stream, parser.head, 400, "incomplete request")
                if not stream.read_more():
                    return self._refuse(stream, parser.head, 408, "request timeout")
            del stream.buffer[:taken]
            head = parser.head
            status, data, kind, extra = self._route(head, bytes(parser.body))
            keep_alive = head.keep_alive and not self._reactor_draining()
            self._respond(stream, head, status, data, kind, not keep_alive, extra)
            if not keep_alive:
                return False, b""
            first = False
            if not stream.buffer or self._others_waiting():  # The rest of the pipeline goes back, behind them.
                return True, bytes(stream.buffer)
            answered()

    def _route(self, head, body):
        """GET /fib/30?x=1 -> the command fib with the argument 30 and the query x=1, answered as (status, body,
        content type, extra header lines). Path segments are percent-decoded; an empty last segment (a trailing
        slash) is no argument; an absolute-form target (http://host/path) routes by its path."""
        target = head.target
        scheme = target.find("://")
        if scheme >= 0 and not target.startswith("/"):
            # The authority ends at the first "/", "?" or "#" (RFC 3986 section 3.2).
            ends = [at for at in (target.find(c, scheme + 3) for c in "/?#") if at >= 0]
            target = target[min(ends):] if ends else "/"
        question = target.find("?")
        ends = [at for at in (question, target.find("#")) if at >= 0]
        path = target[:min(ends)] if ends else target
        query = target[question + 1:] if question >= 0 else ""
        segments = []
        if path.startswith("/"):
            for raw in path[1:].split("/"):
                segment = _percent_decode(raw)
                if segment is None:
                    return 400, b"malformed request: bad percent-encoding in the path\n", _TEXT_PLAIN, ""
                segments.append(segment.decode("utf-8", "replace"))
        if len(segments) > 1 and not segments[-1]:
            segments.pop()
        if not segments or segments[0] not in self._commands:
            return 404, b"not found\n", _TEXT_PLAIN, ""
        if head.method not in ("GET", "HEAD", "POST"):
            return (405, b"method not allowed: use GET, HEAD or POST\n", _TEXT_PLAIN,
                    "Allow: GET, HEAD, POST\r\n")
        reply = self.execute(Request(segments[0], segments[1:], body, "http", head.method, query,
                                     list(head.headers)))
        data = reply.body
        if reply.status >= 400 and not data.endswith(b"\n"):
            data += b"\n"
        return reply.status, data, reply.content_type, ""

    def _refuse(self, stream, head, status, reason):
        """Answers a request that cannot be served and ends the connection: the next one cannot be found."""
        self._respond(stream, head, status, reason.encode() + b"\n", _TEXT_PLAIN, True)
        return False, b""

    def _respond(self, stream, head, status, body, content_type, close, extra=""):
        """Writes a response as http/response.cpp does: status line, Server, Date, Content-Type,
        Content-Length, the extra lines, Connection; no body in answer to HEAD (RFC 9110 section 9.3.2)."""
        if close:
            connection = "Connection: close\r\n"
        elif head.version_minor == 0:
            connection = "Connection: keep-alive\r\n"  # HTTP/1.0 closes unless told otherwise.
        else:
            connection = ""
        # RFC 9110 sections 6.4.1 and 8.6: 204 and 304 have no content, so neither a body nor a Content-Length.
        no_content = status in (204, 304)
        text = "HTTP/1.1 %d %s\r\nServer: handoff\r\nDate: %s\r\nContent-Type: %s\r\n" % (
            status, _reason_phrase(status), _date_now(), content_type)
        if not no_content:
            text += "Content-Length: %d\r\n" % len(body)
        text += extra + connection + "\r\n"
        with_body = head.method != "HEAD" and not no_content
        stream.answer(text.encode("latin-1", "replace") + (body if with_body else b""), status, close)


_LINE_BREAKS_TO_SPACES = bytes.maketrans(b"\r\n\0", b"   ")


def _one_line(text):
    """An answer as the one line it must be (handler/line_session.cpp: one_line): a client reads one answer per
    line, and a pipelining one would take a second line for the answer to its next request. The line end it may
    end in (b"\n" or b"\r\n") goes, each CR, LF and NUL left becomes a space, and b"\n" ends the line."""
    text = text[:-2] if text.endswith(b"\r\n") else text[:-1] if text.endswith(b"\n") else text
    return text.translate(_LINE_BREAKS_TO_SPACES) + b"\n"


def _breaks_a_field(value):
    """Whether a value for a header field holds CR, LF or NUL (handler/handler.cpp: breaks_a_field): CR and LF
    end the field, and what follows would be read as headers of the value's making, or as a second response
    (response splitting). RFC 9110 section 5.5 calls the three "invalid and dangerous" in a field value."""
    return any(c in str(value) for c in "\r\n\0")


def _loggable(value):
    """A value fit for one log line, as the C++ library writes it: control characters escaped, and at most 200
    characters of it."""
    text = str(value)
    escapes = {"\r": "\\r", "\n": "\\n"}
    out = "".join(escapes.get(c) or ("\\x%02x" % ord(c) if ord(c) < 0x20 or c == "\x7f" else c) for c in text[:200])
    return out + ("..." if len(text) > 200 else "")


_TEXT_PLAIN = "text/plain; charset=utf-8"
_REASON_PHRASES = {  # The same table as http/response.cpp's reason_phrase (RFC 9110 section 15 and its registry).
    100: "Continue",
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    511: "Network Authentication Required",
}
_date = [None, ""]  # The second _date_now() last formatted, and its text.


def _reason_phrase(status):
    """The reason phrase of status ("Not Found"); "Unknown" for a code that has none."""
    return _REASON_PHRASES.get(status, "Unknown")


def _date_now():
    """The current time as the Date header gives it (RFC 9110 sections 5.6.7 and 6.6.1): "Tue, 01 Dec 2026
    18:30:00 GMT"; formatted once a second at most."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return _date[1]
