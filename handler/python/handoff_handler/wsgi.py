"""Serve a WSGI app (PEP 3333) behind the handoff reactor.

    handoff --handler-cmd 'python3 -m handoff_handler.wsgi myapp:app'

MODULE:APP names the app as gunicorn does: MODULE importable from the current folder or PYTHONPATH, APP a
name in it (`application` when left out), a dotted path to one, or a call of a factory with literal arguments
(`myapp:create_app()`). Each handler process imports the app once and serves one request at a time, so
wsgi.multithread is False and wsgi.multiprocess True; the reactor has read and parsed each request whole
before the app sees it, so wsgi.input holds the whole body. The response goes out as the app gives it: the
head with the first piece of the body, each further piece as it comes (chunked to HTTP/1.1 clients when the
app gives no Content-Length, until the connection closes to HTTP/1.0 ones). docs/handlers.md, "Serving a WSGI
app", is the guide. environ["handoff.cancelled"] is a function that says whether the client has left, for an app
that would stop a long computation early.

From a script of your own: `from handoff_handler.wsgi import serve; serve(app)`.
"""

import argparse
import ast
import importlib
import io
import os
import re
import stat
import sys
import traceback
import urllib.parse

from handoff_handler import (Handler, _REASON_PHRASES, _TEXT_PLAIN, _WITHOUT_TOKEN_CHARACTERS, _ClientGone,
                             _Unsendable, _date_now, _described, _http_response, _internal_error, _latin1,
                             _loggable)

__all__ = ["FileWrapper", "WsgiServer", "main", "serve"]

_PROGRAM = "handoff_handler.wsgi"
# PEP 3333, "Other HTTP Features": an app must not set these; they describe one connection, which the server
# owns (wsgiref.util.is_hop_by_hop's list). A Content-Length is the app's to give.
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "trailers", "transfer-encoding", "upgrade"))
# RFC 9110 section 5.5: a field value holds visible characters, spaces and tabs; any other control character
# (CR and LF above all, which would end the field) is refused.
_CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_BODILESS_STATUSES = (204, 304)  # RFC 9110 sections 15.3.5 and 15.4.5: never a body.
_LINE_REFUSAL = "this port serves a WSGI app, over HTTP only"
# What was found fit to send once needs no second look: statuses as the app gives them -> (status line's text,
# code); header names -> lowered. Bounded, for an app that makes up names as it goes.
_CHECKED_STATUSES = {}
_CHECKED_NAMES = {}
_MAX_CACHED = 1024


class FileWrapper:
    """wsgi.file_wrapper (PEP 3333, "Optional Platform-Specific File Handling"): the file's blocks from its
    current position, as an iterable; close() closes the file. Returned by an app as is, a regular file goes
    out with sendfile(2), never read into Python."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class _Refused(_Unsendable):
    """What the app gave cannot be sent (a bad status or header, a body that is not bytes): the text says
    why, fit for a log line. No traceback: the problem is in the value, not in where it was made."""


class _Response:
    """The response to one request: what the app gave start_response, and how much of it went out.

    Nothing goes out before the first non-empty piece of the body, or the end of the body, or a call of
    write() (PEP 3333, "Buffering and Streaming"); then the head goes out with that piece, in one write. The
    framing is chosen then: the app's Content-Length; one computed when the whole body is known by then (the
    app's iterable has one item, or ended); chunked to HTTP/1.1; to HTTP/1.0, the body until the connection
    closes. An answer to HEAD, and a 204 or 304, ends at its head.
    """

    def __init__(self, server, request, hand_off, keep_alive, input_pending):
        self._server = server
        self._request = request
        self._hand_off = hand_off
        self._keep_alive = keep_alive  # The request record's; the reactor's draining is read at the head.
        self._input_pending = input_pending
        self.status = None  # The status as the app gave it ("200 OK"), checked.
        self._code = 0
        self._headers = None  # The app's header fields, checked.
        self._names = None  # Their names, lowered.
        self._length = None  # The app's Content-Length.
        self._wrote = False  # The app called write(): its body's length cannot be known ahead.
        self.head_sent = False
        self.ended = False  # The answer went out whole: nothing more is sent.
        self.closes = False  # The connection ends after this answer.
        self._framing = None  # "length", "chunked", "close" or "none", once the head is out.
        self._left = 0  # With "length": bytes of body still to send.
        self._overflow_logged = False
        self.gone = None  # The _ClientGone the socket raised: every later write raises it again.

    # --- What the app calls ---

    def start_response(self, status, headers, exc_info=None):
        """PEP 3333's start_response: checks and keeps the status and headers; returns write. With exc_info,
        after an error: replaces what was given before, or, once the head is out, raises the error again."""
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # No cycle through the traceback's frames (PEP 3333 says so).
        elif self.status is not None:
            raise AssertionError("start_response was called a second time without exc_info (PEP 3333)")
        status, code = _checked_status(status)
        self._headers, self._length, self._names = _checked_headers(headers)
        self.status, self._code = status, code
        return self.write

    def write(self, data):
        """PEP 3333's write(): sends data at once, the head first if it is not out yet."""
        if self.status is None:
            raise AssertionError("write() was called before start_response (PEP 3333)")
        self._wrote = True
        self._send(_checked_piece(data), False)

    # --- What the server calls ---

    def send_iterable(self, result):
        """Sends the body the app returned, then ends the answer."""
        single = not self._wrote and _has_one_item(result)
        for piece in result:
            piece = _checked_piece(piece)
            if piece:
                self._require_start()
                self._send(piece, single)
                if self.ended:
                    break  # PEP 3333: stop iterating once the Content-Length is sent (or the answer has no body).
        self._finish()

    def send_file(self, wrapper):
        """Sends the body of a FileWrapper: a regular file from its current position with sendfile(2), any
        other file as an iterable. The head is sent with a Content-Length: the app's, or the file's size left."""
        file_fd = _regular_file(wrapper.filelike)
        if file_fd is None or self.head_sent or self._bodiless():
            self.send_iterable(wrapper)
            return
        self._require_start()
        offset = os.lseek(file_fd, 0, os.SEEK_CUR)
        size = os.fstat(file_fd).st_size - offset
        count = size if self._length is None else min(self._length, size)
        if not count:
            self._finish()
            return
        self._send_head(b"", False, count)
        try:
            self._left -= self._hand_off.send_file(file_fd, offset, count)
        except _ClientGone as gone:
            self.gone = gone
            raise
        self._finish()

    def _finish(self):
        """Ends the answer once the body is all given: the head alone, the last chunk, or nothing more."""
        if self.ended:
            return
        self._require_start()
        if not self.head_sent and self._length and not self._bodiless():
            raise _Refused("the app's Content-Length is %d, and it gave no body" % self._length)
        self._send(b"", True)

    def keeps_open(self):
        """Whether the connection goes on after this answer."""
        return self.ended and not self.closes

    # --- Writing ---

    def _send(self, data, last):
        """Sends data, a piece of the body (b"" for none), and with last the end of the answer."""
        if self.gone is not None:
            raise self.gone
        if self.ended:
            if data and self._framing == "length":
                self._log_overflow()
            return
        try:
            if not self.head_sent:
                self._send_head(data, last, len(data) if last else None)
                return
            body, ends = self._framed(data, last)
            if ends:
                self._hand_off.end_answer(body, self.closes, self._input_pending)
                self.ended = True
            else:
                self._hand_off.write_body(body)
                self._end_short(last)
        except _ClientGone as gone:
            self.gone = gone
            raise

    def _send_head(self, data, last, known_length):
        """Sends the head with data, the first piece of the body (and with last, the end of the body).
        known_length: the body's whole length, when it is known without the app's Content-Length."""
        head = self._head(known_length)
        body, ends = self._framed(data, last)
        self.head_sent = True
        if ends:  # The whole answer at once, as the library writes any other.
            self._hand_off.answer(head, body, self._code, self.closes, self._input_pending)
            self.ended = True
        else:
            self._hand_off.begin_answer(head, body, self._code, self._input_pending)
            self._end_short(last)

    def _end_short(self, last):
        """With last, the body ended before its Content-Length did: a client would wait for the rest, and take
        the next answer for it. Only closing the connection ends the answer now."""
        if last:
            _log(self._request, "the app's body ended %d bytes short of its Content-Length; the connection is "
                 "closed" % self._left)
            self.closes = True
            self.ended = True

    def _head(self, known_length):
        """The response head, with the framing chosen for the body."""
        request = self._request
        extra = []
        if self._bodiless():
            self._framing = "none"
        elif self._length is not None:
            self._framing, self._left = "length", self._length
        elif known_length is not None:
            self._framing, self._left = "length", known_length
            extra.append("Content-Length: %d\r\n" % known_length)
        elif request.version == "HTTP/1.1":
            self._framing = "chunked"
            extra.append("Transfer-Encoding: chunked\r\n")
        else:
            self._framing = "close"  # HTTP/1.0 has no chunks (RFC 9112 section 7.1 needs 1.1).
        # Read now, once the app is done choosing its answer: the reactor may have begun to drain meanwhile.
        self.closes = not self._keep_alive or self._framing == "close" or self._server.draining()
        if self.closes:
            extra.append("Connection: close\r\n")
        elif request.version == "HTTP/1.0":
            extra.append("Connection: keep-alive\r\n")  # HTTP/1.0 closes unless told otherwise.
        names = self._names
        lines = ["HTTP/1.1 %s\r\n" % self.status]
        if "server" not in names:
            lines.append("Server: handoff\r\n")
        if "date" not in names:
            lines.append("Date: %s\r\n" % _date_now())
        lines.extend("%s: %s\r\n" % field for field in self._headers)
        lines.extend(extra)
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _framed(self, data, last):
        """(bytes to write, whether they end the answer) for data, a piece of the body, and with last the end
        of the body, in the framing of the head sent. With a Content-Length, the answer ends with the length
        sent, whatever last says."""
        framing = self._framing
        if framing == "none":
            return b"", True  # Whatever else the app gives is not sent.
        if framing == "length":
            if len(data) > self._left:
                self._log_overflow()
                data = data[:self._left]
            self._left -= len(data)
            return data, not self._left
        if framing == "chunked":
            chunk = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
            return (chunk + b"0\r\n\r\n", True) if last else (chunk, False)
        return data, last

    def _log_overflow(self):
        if not self._overflow_logged:
            _log(self._request, "the app gave more body than its Content-Length; the rest is not sent")
            self._overflow_logged = True

    def _bodiless(self):
        """Whether the answer has no body whatever the app gives: HEAD, 204, 304."""
        return self._request.method == "HEAD" or self._code in _BODILESS_STATUSES

    def _require_start(self):
        if self.status is None:
            raise AssertionError("the app returned its body without calling start_response (PEP 3333)")


class WsgiServer:
    """A WSGI app served by a Handler: each HTTP request is given to the app, and its response written as it
    comes. script_name: where the app is mounted (SCRIPT_NAME), "" for the root."""

    def __init__(self, app, script_name=""):
        self.app = app
        self.script_name = _script_name(script_name)
        self._handler = None
        # What every request's environ holds alike, copied for each.
        self._base = {
            "SCRIPT_NAME": self.script_name,
            "SERVER_SOFTWARE": "handoff",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,  # The reactor collects the handlers' stderr into its log.
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }

    def attach(self, handler):
        """Makes handler answer every HTTP request with the app, and every line with an error."""
        self._handler = handler
        handler._responder = self.respond
        handler._line_refusal = _LINE_REFUSAL

    def draining(self):
        """Whether the reactor drains: the answer then ends the connection."""
        return self._handler is not None and self._handler._reactor_draining()

    def respond(self, request, hand_off, keep_alive, input_pending):
        """Answers one HTTP request with the app; whether the connection stays open."""
        environ = self.environ(request, hand_off)
        if environ is None:
            return self._answer_whole(request, hand_off, keep_alive, input_pending,
                                      (404, b"not found", _TEXT_PLAIN, []))
        response = _Response(self, request, hand_off, keep_alive, input_pending)
        try:
            self._run_app(environ, response)
        except _ClientGone:
            raise  # The library ends the hand-off.
        except Exception as error:
            if response.gone is not None:
                # The client left, then the app failed too (in close(), or catching the error of write()):
                # logged, and the hand-off ends as the client's leaving says (a write timeout is counted).
                _log(request, "after the client left, the app raised %r\n%s"
                     % (error, traceback.format_exc().rstrip("\n")))
                raise response.gone from None
            return self._failed(request, hand_off, keep_alive, input_pending, response, error)
        return response.keeps_open()

    def _run_app(self, environ, response):
        """Calls the app and sends what it gives; the iterable it returned is closed whatever happens (PEP
        3333: close() is called at the end of every request, an error or a client gone included)."""
        result = None
        try:
            result = self.app(environ, response.start_response)
            if type(result) is FileWrapper:
                response.send_file(result)
            else:
                response.send_iterable(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _failed(self, request, hand_off, keep_alive, input_pending, response, error):
        """The app raised, or gave what cannot be sent: a 500 if nothing went out yet, else the connection is
        cut (a second response after part of one would be read as the rest of the first)."""
        if response.ended:
            outcome = "after its answer went out whole"  # close() raised: the answer stands.
        elif response.head_sent:
            outcome = "the response had begun: the connection is cut"
        else:
            outcome = "answered 500"
        if isinstance(error, _Unsendable):
            _log(request, "%s; %s" % (error, outcome))
        else:
            _log(request, "the app raised %r; %s\n%s" % (error, outcome, traceback.format_exc().rstrip("\n")))
        if response.ended:
            return response.keeps_open()
        if response.head_sent:
            return False
        return self._answer_whole(request, hand_off, keep_alive, input_pending,
                                  _internal_error(str(error) or type(error).__name__))

    def _answer_whole(self, request, hand_off, keep_alive, input_pending, answer):
        """Writes one of the server's own answers (a 404 outside SCRIPT_NAME, a 500), as the library writes
        any; whether the connection stays open."""
        keep_alive = keep_alive and not self.draining()
        status, head, body = _http_response(request, answer, not keep_alive)
        hand_off.answer(head, body, status, not keep_alive, input_pending)
        return keep_alive

    def environ(self, request, hand_off):
        """The WSGI environ of an HTTP request (PEP 3333, "environ Variables"); None when its path lies
        outside SCRIPT_NAME."""
        # PATH_INFO is the path percent-decoded, its bytes as latin-1 characters (PEP 3333, "Unicode
        # Issues"): the app decodes them as it sees fit (UTF-8, as a rule).
        path_info = request.path
        if "%" in path_info:
            path_info = urllib.parse.unquote_to_bytes(path_info.encode("latin-1")).decode("latin-1")
        script_name = self.script_name
        if script_name:
            if path_info != script_name and not path_info.startswith(script_name + "/"):
                return None
            path_info = path_info[len(script_name):]
        environ = self._base.copy()
        environ["REQUEST_METHOD"] = request.method
        environ["PATH_INFO"] = path_info
        environ["QUERY_STRING"] = request.query
        environ["SERVER_PROTOCOL"] = request.version
        environ["RAW_URI"] = environ["REQUEST_URI"] = request.target  # As gunicorn and uWSGI give it.
        environ["wsgi.input"] = io.BytesIO(request.body)
        # Whether the client has left (Request.cancelled): an app may stop a long computation early.
        environ["handoff.cancelled"] = lambda: request.cancelled
        if request.client_address:
            environ["REMOTE_ADDR"] = request.client_address
            environ["REMOTE_PORT"] = str(request.client_port)
        framed = False  # Whether the request said how its body is framed.
        host = None
        for name, value in request.headers:
            key = name.upper()
            if "_" in key:
                # HTTP_X_USER would be the same key for X-User and X_User, and a proxy in front may vet only
                # the first: a client could pass one off for the other (nginx, Apache and gunicorn 22 drop them).
                continue
            key = key.replace("-", "_")
            if key == "CONTENT_TYPE":
                environ.setdefault("CONTENT_TYPE", value)
                continue
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                # The reactor removed the chunked framing: the app gets a body of known length (below).
                framed = True
                continue
            if key == "HOST" and host is None:
                host = value
            key = "HTTP_" + key
            joined = environ.get(key)
            if joined is None:
                environ[key] = value
            else:  # RFC 9110 section 5.3; cookies have a separator of their own (RFC 6265 section 5.4).
                environ[key] = joined + ("; " if key == "HTTP_COOKIE" else ",") + value
        if framed or request.body:
            environ["CONTENT_LENGTH"] = str(len(request.body))
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_name_and_port(host, hand_off)
        return environ


def _server_name_and_port(host, hand_off):
    """SERVER_NAME and SERVER_PORT: from the Host header ("example.com:8000", "[::1]:8000", "example.com" on
    port 80), as gunicorn does; without one (HTTP/1.0), the socket's own address."""
    if host:
        name, colon, port = host.rpartition(":")
        if colon and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
            return name, port
        return host, "80"
    try:
        address = hand_off.local_address()
    except OSError:
        return "", ""
    return address[0], str(address[1])


# --- What an app may give ---

def _checked_status(status):
    """(status line's text, code) of a status as start_response takes it ("200 OK"; "200" gets its standard
    reason phrase, since the status line needs a space after the code); _Refused otherwise."""
    checked = _CHECKED_STATUSES.get(status) if type(status) is str else None
    if checked is None:
        checked = _check_status(status)
        if len(_CHECKED_STATUSES) < _MAX_CACHED:
            _CHECKED_STATUSES[status] = checked
    return checked


def _check_status(status):
    if not isinstance(status, str):
        raise _Refused("the app's status is %s, not str" % type(status).__name__)
    code = status[:3]
    if len(status) > 3 and status[3] != " " or not code.isdigit() or not code.isascii() or \
            _CONTROL_BUT_TAB.search(status) or not _latin1(status):
        raise _Refused("the app's status %s is not a code and a reason phrase (\"200 OK\")"
                       % _quoted(status))
    number = int(code)
    if not 200 <= number <= 599:
        # A 1xx would leave the client waiting for a final answer; anything else is no status at all.
        raise _Refused("the app's status %s is not a final status (200 to 599)" % _quoted(status))
    if len(status.rstrip(" ")) == 3:
        return "%s %s" % (code, _REASON_PHRASES.get(number, "Unknown")), number
    return status, number


def _checked_headers(headers):
    """The app's header fields, as a list of (name, value) with the values stripped of blanks, its
    Content-Length (None without one), and the names it gave, lowered; _Refused for a field that cannot be
    sent. Each name is checked once per process, and a value of visible ASCII characters and spaces at once:
    this runs for every response."""
    if not isinstance(headers, (list, tuple)):
        raise _Refused("the app's headers are a %s, not a list of (name, value)" % type(headers).__name__)
    checked = []
    names = set()
    length = None
    for field in headers:
        if not isinstance(field, (tuple, list)) or len(field) != 2:
            raise _Refused("the app gave a header that is not a (name, value) pair: %s" % _loggable(repr(field)))
        name, value = field
        lowered = _CHECKED_NAMES.get(name) if type(name) is str else None
        if lowered is None:
            lowered = _check_name(name)
        if type(value) is not str or not (value.isascii() and value.isprintable()):
            _check_value(name, value)
        value = value.strip(" \t")
        if lowered == "content-length":
            if length is not None or not value.isdigit() or not value.isascii():
                # Two lengths, or one that is no number, are request smuggling's tools (RFC 9112 section 6.3).
                raise _Refused("the app gave a Content-Length of %s%s" % (
                    _quoted(value), ", and another before it" if length is not None else ""))
            length = int(value)
        names.add(lowered)
        checked.append((name, value))
    return checked, length, names


def _check_name(name):
    """The name lowered, once it is found fit for a header the app may give (and remembered as such)."""
    if not isinstance(name, str) or not name or name.translate(_WITHOUT_TOKEN_CHARACTERS):
        raise _Refused("the app gave a header name that is not a token: %s" % _quoted(name))
    lowered = name.lower()
    if lowered in _HOP_BY_HOP:
        raise _Refused("the app gave a %s header, which belongs to the connection and so to the server "
                       "(PEP 3333: no hop-by-hop headers)" % name)
    if len(_CHECKED_NAMES) < _MAX_CACHED:
        _CHECKED_NAMES[name] = lowered
    return lowered


def _check_value(name, value):
    """Refuses a header value that cannot be sent: no str, a control character but a tab, beyond latin-1."""
    if not isinstance(value, str):
        raise _Refused("the app gave a %s header of type %s, not str" % (name, type(value).__name__))
    if _CONTROL_BUT_TAB.search(value):
        raise _Refused("the app gave a %s header holding a control character (%s): CR or LF would write "
                       "headers or a response of its own (RFC 9110 section 5.5)" % (name, _quoted(value)))
    if not _latin1(value):
        raise _Refused("the app gave a %s header holding characters latin-1 has not (%s; PEP 3333 wants "
                       "latin-1 strings)" % (name, _quoted(value)))


def _checked_piece(piece):
    """A piece of the body as bytes; _Refused for anything else (PEP 3333: bytestrings only)."""
    if isinstance(piece, bytes):
        return piece
    if isinstance(piece, (bytearray, memoryview)):
        return bytes(piece)
    raise _Refused("the app gave a piece of its body of type %s, not bytes" % type(piece).__name__)


def _has_one_item(result):
    """Whether the iterable is known to hold one item: its whole body then sets the Content-Length (PEP 3333,
    "Handling the Content-Length Header")."""
    try:
        return len(result) == 1
    except Exception:  # No len(), or one that fails: not known.
        return False


def _regular_file(filelike):
    """The descriptor of filelike when it is a regular file (which sendfile can send); else None."""
    try:
        fd = filelike.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _quoted(value):
    return '"%s"' % _loggable(value) if isinstance(value, str) else _loggable(repr(value))


def _log(request, text):
    sys.stderr.write("handler[%d]: %s: %s\n" % (os.getpid(), _described(request), text))


def _script_name(script_name):
    """SCRIPT_NAME as the environ gives it: "" or a path beginning with "/" and without a trailing one, its
    UTF-8 bytes as latin-1 characters (as PATH_INFO's). ValueError for one that is no path."""
    if script_name and not script_name.startswith("/"):
        raise ValueError("a script name is a path beginning with '/' (%r)" % script_name)
    return script_name.rstrip("/").encode("utf-8").decode("latin-1")


# --- Loading the app, and the command ---

class _LoadError(Exception):
    """The app cannot be loaded; the text says why, in one line."""


def load_app(spec):
    """The app named by MODULE[:APP]: APP a name, a dotted path, or a call of a factory with literal
    arguments (`create_app()`, `create_app("prod")`); `application` when left out, as gunicorn has it."""
    module_name, _, expression = spec.partition(":")
    expression = expression.strip() or "application"
    if not module_name:
        raise _LoadError("%r names no module (MODULE:APP, such as myapp:app)" % spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise _LoadError("cannot import %s: there is no module %r (looked in the current folder %s and "
                             "PYTHONPATH; see --chdir)" % (module_name, error.name, os.getcwd())) from None
        raise  # A module the app imports is missing: its traceback says where.
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise _LoadError("%r is not a name in %s, nor a call of one" % (expression, module_name)) from None
    call = None
    if isinstance(tree, ast.Call):
        call, tree = tree, tree.func
    app = _attribute(module, module_name, tree, expression)
    if call is not None:
        try:
            arguments = [ast.literal_eval(argument) for argument in call.args]
            keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
        except (ValueError, TypeError, SyntaxError):
            raise _LoadError("%r: a factory takes literal arguments only" % expression) from None
        if not callable(app):
            raise _LoadError("%s:%s is not callable" % (module_name, ast.unparse(tree)))
        app = app(*arguments, **keywords)
    if not callable(app):
        raise _LoadError("%s:%s is a %s, not a WSGI app (a callable of environ and start_response)"
                         % (module_name, expression, type(app).__name__))
    return app


def _attribute(module, module_name, tree, expression):
    """The object a name or dotted path (an ast) names in module."""
    names = []
    while isinstance(tree, ast.Attribute):
        names.append(tree.attr)
        tree = tree.value
    if not isinstance(tree, ast.Name):
        raise _LoadError("%r is not a name in %s, nor a call of one" % (expression, module_name))
    names.append(tree.id)
    found = module
    for at, name in enumerate(reversed(names)):
        try:
            found = getattr(found, name)
        except AttributeError:
            path = ".".join(list(reversed(names))[:at + 1])
            raise _LoadError("module %s has no attribute %r (MODULE:APP names the app in the module)"
                             % (module_name, path)) from None
    return found


def serve(app, script_name=""):
    """Serves app to the reactor until it closes the channel; exits the process."""
    handler = Handler()
    WsgiServer(app, script_name).attach(handler)
    handler.run()


def _arguments(argv):
    parser = argparse.ArgumentParser(
        prog="python3 -m " + _PROGRAM,
        description="Serve a WSGI app (PEP 3333) as a handoff handler: handoff --handler-cmd 'python3 -m %s "
                    "myapp:app'. Each handler process loads the app and answers one request at a time." % _PROGRAM)
    parser.add_argument("app", metavar="MODULE[:APP]",
                        help="the app: a name in MODULE (application when left out), a dotted path to one, or a "
                             "call of a factory, e.g. myapp:create_app()")
    parser.add_argument("--script-name", metavar="PATH", default=os.environ.get("SCRIPT_NAME", ""),
                        help="where the app is mounted, e.g. /api: SCRIPT_NAME, and taken off PATH_INFO; "
                             "requests outside it get 404 (default: the SCRIPT_NAME environment variable, or the root)")
    parser.add_argument("--chdir", metavar="FOLDER",
                        help="change to FOLDER before loading the app; it is searched for MODULE first")
    parser.add_argument("--pythonpath", metavar="FOLDERS",
                        help="comma-separated folders searched for MODULE before the rest of sys.path")
    return parser.parse_args(argv)


def main(argv=None):
    """The command: loads the app, then serves it. A mistake in the command, or an app that cannot be loaded,
    is one line on stderr and exit status 2 or 1."""
    options = _arguments(sys.argv[1:] if argv is None else argv)
    try:
        script_name = _script_name(options.script_name)
    except ValueError as error:
        sys.stderr.write("%s: --script-name: %s\n" % (_PROGRAM, error))
        sys.exit(2)
    if options.chdir:
        try:
            os.chdir(options.chdir)
        except OSError as error:
            sys.stderr.write("%s: --chdir %s: %s\n" % (_PROGRAM, options.chdir, error.strerror))
            sys.exit(2)
    # As gunicorn: the folder the app is served from comes first, whichever way Python was started.
    folders = [os.getcwd()] + [os.path.abspath(folder) for folder in (options.pythonpath or "").split(",") if folder]
    for folder in reversed(folders):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    try:
        app = load_app(options.app)
    except _LoadError as error:
        sys.stderr.write("%s: %s\n" % (_PROGRAM, error))
        sys.exit(1)
    except Exception as error:
        sys.stderr.write("%s%s: loading %s raised %r\n"
                         % (traceback.format_exc(), _PROGRAM, options.app, error))
        sys.exit(1)
    serve(app, script_name)


if __name__ == "__main__":
    # Run as `python3 -m handoff_handler.wsgi`: serve from the module imported under its own name, so that an
    # app that imports handoff_handler.wsgi (its FileWrapper) shares its classes with the server.
    import handoff_handler.wsgi

    handoff_handler.wsgi.main()
