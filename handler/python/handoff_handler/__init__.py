"""handoff handler in Python: serve your CPU-bound functions behind the handoff reactor.

One file, standard library only (Python 3.9+). The reactor reads every request whole and parses it (it is
handoff's only HTTP parser: this module has none), then hands the client socket over with the request already
parsed. This module runs your function, writes the answer on the socket and gives the connection back. It
speaks the reactor's ipc protocol, version 2 (docs/protocol.md, "The handler channel"), on descriptor 3. One
process per handler, so Python functions run on every core at once (no GIL in the way) behind one port.

    from handoff_handler import Handler, Reply

    handler = Handler()

    @handler.route("/items/{id}", methods=("GET", "DELETE"))
    def item(request):
        return {"id": request.path_parameter("id"), "method": request.method}

    @handler.command("square")
    def square(request):
        return Reply.text(str(int(request.arguments[0]) ** 2))

    handler.run()

Start it with `handoff --handler-cmd 'python3 app.py'`: GET /items/7 answers {"id": "7", "method": "GET"}, and
both the line `square 12` and GET /square/12 answer 144. Whatever your code raises or returns, the handler
serves on: an error is a 500, logged on stderr. docs/handlers.md has the rules.
"""

import sys

if sys.version_info < (3, 9):  # The oldest it is tested with: Debian 11's.
    sys.stderr.write("handoff_handler needs Python 3.9 or newer; this is Python %d.%d (%s)\n"
                     % (sys.version_info[0], sys.version_info[1], sys.executable))
    sys.exit(2)

import collections
import ctypes
import email.utils
import json
import mmap
import os
import select
import signal
import socket
import struct
import time
import traceback
import urllib.parse

__all__ = ["Handler", "Reply", "Request"]

# --- The ipc wire format, version 2 (ipc/wire.hpp): a 24-byte header (host byte order), then the payload ---
_HEADER = struct.Struct("=IHHQII")  # magic, version, type, connection_id, flags, payload_size
_MAGIC = 0x46444E48
_VERSION = 2
_HELLO, _CONNECTION, _DONE, _ANSWERED, _RECLAIM, _FORGET = 1, 2, 3, 4, 5, 10
_MAX_PAYLOAD_OF_TYPE = {_CONNECTION: 3 << 30}  # A kConnection frame carries a whole request, body and all.
_MAX_OTHER_PAYLOAD = 16 << 20
# Flags are numbered per frame type. A kConnection frame's:
_FLAG_HTTP, _FLAG_INPUT_CLOSED, _FLAG_AHEAD, _FLAG_KEEP, _FLAG_KEPT = 1, 2, 4, 8, 16
# A kDone frame's:
_DONE_KEEP_OPEN, _DONE_WRITE_TIMED_OUT, _DONE_KEPT = 1, 2, 4
# A kHello frame's flags are the handler's capabilities. This one keeps the socket of a keep-alive connection
# when asked (kCanKeep, 2): the connection's next request to it comes without a descriptor, so neither side
# passes, installs or closes one. It takes no connection sent ahead (so it is sent work only when idle), and
# one frame per write.
_CAN_KEEP = 2
_CAPABILITIES = _CAN_KEEP
# bytes written in the hand-off, status of the last answer (0: none), the route that made it (0: none), 0
_PROGRESS = struct.Struct("=QHHI")
# A kHello's payload is the route table: for each route and command registered, in order, this head (name
# bytes, flags, 0), then the name ("GET /items/{id}", "square"). Entry i (from 1) is route number i.
_ROUTE_ENTRY = struct.Struct("=HBB")
_ROUTE_RETRYABLE = 1
_MAX_ROUTES, _MAX_ROUTE_NAME_BYTES = 1024, 200  # The reactor reads no more entries, nor more of a name.
_READ_CHUNK = 64 * 1024
_FD_SIZE = struct.calcsize("i")  # A descriptor in an SCM_RIGHTS message.
_ANCILLARY_BYTES = socket.CMSG_SPACE(8 * _FD_SIZE)  # The most descriptors one write of the reactor carries.
# Plain ints: the socket module's are enums, whose operators cost microseconds a frame.
_SOL_SOCKET, _SCM_RIGHTS = int(socket.SOL_SOCKET), int(socket.SCM_RIGHTS)
_MSG_CMSG_CLOEXEC, _MSG_CTRUNC = int(socket.MSG_CMSG_CLOEXEC), int(socket.MSG_CTRUNC)

# The request record, a kConnection frame's payload (ipc/request_record.hpp): this head, then the client
# address, method, target, path, query, header fields, body and rest, each as many bytes as the head says.
_RECORD_HEAD = struct.Struct("=QHBBI8I")  # request id, client port, HTTP minor, flags, field count, 8 sizes
_RECORD_KEEP_ALIVE = 1
_FIELD_SIZES = struct.Struct("=II")  # Before each header field: its name's size, its value's size.

# The reactor's state page (ipc/shared_state.hpp): version, connections waiting for a handler, draining, idle.
_STATE_VERSION = 2
_STATE_WORD = struct.Struct("=I")
_STATE_WAITING_AT, _STATE_DRAINING_AT = 4, 8
# This handler's answer record (ipc/answer_record.hpp): version, flags, connection id, answer end, status, ...
_ANSWER_RECORD_VERSION = 3
_NOTED_FLAGS = struct.Struct("=I")  # At offset 4.
_NOTED_END_AND_STATUS = struct.Struct("=QI")  # At offset 16.
_CLIENT_LEFT = struct.Struct("=Q")  # At offset 96: the connection whose client the reactor saw leave.
_CLIENT_LEFT_AT = 96
_ANSWER_ENDS_CONNECTION, _ANSWER_INPUT_PENDING = 1, 2
_PAGE_BYTES = 4096  # Of the state page and the answer record (ipc/mapped_page.hpp), whatever the MMU's page.

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_TEXT_PLAIN = "text/plain; charset=utf-8"
_COMMAND_METHODS = ("GET", "HEAD", "POST")
_ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_SERVER_OWNED_FIELDS = frozenset(("content-length", "transfer-encoding", "connection", "date"))
# RFC 9110 section 5.6.2: the characters of a token, such as a field name or a method.
_TOKEN_CHARACTERS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WITHOUT_TOKEN_CHARACTERS = str.maketrans("", "", _TOKEN_CHARACTERS)
# RFC 3986 section 3.3: what a path segment may hold as sent, besides percent-encodings.
_SEGMENT_CHARACTERS = frozenset("-._~!$&'()*+,;=:@0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LINE_BREAKS_TO_SPACES = bytes.maketrans(b"\r\n\0", b"   ")


class Request:
    """One request, whichever protocol it came in, read whole and parsed by the reactor.

    command, arguments: a command's name and the words after it on a line ("fib 30"), or the path segments
    after it over HTTP (GET /fib/30), percent-decoded; "" and [] for a route or the fallback.
    protocol: "line" or "http". method: "GET", "PUT"...; "" on a line. target: HTTP, the request-target as sent
    ("/a%2Fb/?x=1"); a line, the line without its line end. path: the target's path, not decoded ("/a%2Fb/").
    query: after the '?', not decoded. headers: the header fields as sent, in order, (name, value) latin-1
    text. body: bytes, any chunked framing removed. client_address ("203.0.113.7"), client_port. version:
    "HTTP/1.1" or "HTTP/1.0"; "" on a line. id: the reactor's number for the request (0 for the lines after the
    first of a packet). path_parameters: a route's {name} segments, percent-decoded. cancelled: whether the
    client has left (below).
    """

    def __init__(self, command="", arguments=None, body=b"", protocol="line", method="", query="", headers=None,
                 *, target="", path="", client_address="", client_port=0, version="", id=0, path_parameters=None):
        self.command = command
        self.arguments = [] if arguments is None else arguments
        self.body = body
        self.protocol = protocol
        self.method = method
        self.query = query
        self._headers = [] if headers is None else headers
        self._fields = None  # The header fields still in the request record, until headers is first read.
        self.target = target
        self.path = path
        self.client_address = client_address
        self.client_port = client_port
        self.version = version
        self.id = id
        self.path_parameters = {} if path_parameters is None else path_parameters
        self._cancel_source = None  # (answer record, connection id), set by the library: what cancelled reads.
        if protocol == "http" and target and not path:  # A request made by hand, for a test: as the reactor would.
            self.path, _, self.query = target.partition("?")

    @property
    def cancelled(self):
        """Whether the client of this request has left: over HTTP it closed its connection, on either protocol it
        reset it. Nobody will read the answer, so a long computation may look now and then and stop early,
        returning anything (it goes nowhere). The reactor sets a word in the handler's answer record the moment
        it sees the client go; this reads it, cheap enough for every turn of a loop. Code that does not stop is
        killed once --cancel-grace has passed, and its handler replaced (unless --cancel off). Always False for
        a request made by hand."""
        source = self._cancel_source
        return source is not None and _CLIENT_LEFT.unpack_from(source[0], _CLIENT_LEFT_AT)[0] == source[1]

    @property
    def headers(self):
        """The header fields as sent, in order: (name, value), latin-1 text."""
        if self._fields is not None:
            self._headers = _read_fields(*self._fields)
            self._fields = None
        return self._headers

    @headers.setter
    def headers(self, headers):
        self._headers, self._fields = headers, None

    def header(self, name):
        """The value of the first header field of that name (compared without regard to case); None if none."""
        wanted = name.translate(_ASCII_LOWER)
        for field, value in self.headers:
            if field.translate(_ASCII_LOWER) == wanted:
                return value
        return None

    def header_values(self, name):
        """The values of every header field of that name, in order."""
        wanted = name.translate(_ASCII_LOWER)
        return [value for field, value in self.headers if field.translate(_ASCII_LOWER) == wanted]

    def query_parameter(self, name):
        """The first query parameter of that name, percent-decoded ('+' is a space); None if none. A parameter
        without '=' has the value ""."""
        for value in self._query_values(name):
            return value
        return None

    def query_parameters(self, name):
        """Every value of the query parameter of that name, in order."""
        return list(self._query_values(name))

    def path_parameter(self, name):
        """The route's parameter of that name ("/items/{id}" and /items/7 give id = "7"); None if it has none."""
        return self.path_parameters.get(name)

    def _query_values(self, name):
        """The values of the query parameters of that name, decoded, in order; one whose name or value is not
        well encoded is passed over."""
        if not self.query:
            return
        for pair in self.query.split("&"):
            key, equals, value = pair.partition("=")
            if _percent_decoded(key, True) != name:
                continue
            if not equals:
                yield ""
                continue
            value = _percent_decoded(value, True)
            if value is not None:
                yield value


def _percent_decoded(text, plus_is_space=False):
    """RFC 3986 section 2.1: "a%20b" -> "a b", the bytes read as UTF-8 (any that are not become U+FFFD); with
    plus_is_space (a query string, as HTML forms send it) "+" is a space too. None when a '%' is not followed by
    two hex digits."""
    if plus_is_space and "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    parts = text.split("%")
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX_DIGITS or part[1] not in _HEX_DIGITS:
            return None
    return urllib.parse.unquote(text, errors="replace")


class Reply:
    """What a command, route or fallback answers: a status, a body (bytes, or str sent as UTF-8), a content
    type and more header fields.

    On the line protocol a reply is one line whatever it holds: its body ("ERR <body>" for a status of 400 or
    more) without the line end it may end in, each CR, LF and NUL left in it made a space; its headers are not
    sent. Over HTTP it is the response: the status with its standard reason phrase (201 Created), the content
    type, the headers and the body; a status of 400 or more gets a trailing newline if its body has none.

    A Content-Type among the headers replaces content_type, a Server replaces "Server: handoff". The server owns
    Content-Length, Transfer-Encoding, Connection and Date. A reply that sets one of those, a header whose name
    is not a token (RFC 9110 section 5.1), a name, value or content type holding CR, LF or NUL (which would
    write headers or a response of its own, RFC 9110 section 5.5) or characters latin-1 does not have, or a
    status outside 200-599, is never sent: the client gets a 500, and the handler logs what was refused.
    """

    def __init__(self, status=200, body=b"", content_type=_TEXT_PLAIN, headers=None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type
        if headers is None:
            self.headers = []
        else:
            self.headers = list(headers.items() if isinstance(headers, dict) else headers)

    def header(self, name, value):
        """Adds a header field (several of one name are fine: Set-Cookie); returns the reply, for chaining."""
        self.headers.append((name, value))
        return self

    @staticmethod
    def text(text, status=200):
        """A text answer; a newline is added when it has none."""
        data = text if isinstance(text, bytes) else str(text).encode()
        return Reply(status, data if data.endswith(b"\n") else data + b"\n")

    @staticmethod
    def bytes(data, content_type="application/octet-stream"):
        """Bytes with a content type of their own (HTTP); on a line, as one line (CR, LF and NUL as spaces)."""
        return Reply(body=bytes(data), content_type=content_type)

    @staticmethod
    def json(value, status=200):
        """value as JSON (json.dumps), application/json."""
        return Reply(status, json.dumps(value).encode(), "application/json")

    @staticmethod
    def redirect(location, status=302):
        """A redirect to location (302 Found unless said: 301, 303, 307, 308), with a short text body."""
        return Reply(status, "redirected to %s\n" % location).header("Location", location)

    @staticmethod
    def error(reason, status=400):
        """A request that cannot be served: "ERR <reason>" on a line, the status (400 unless said) over HTTP."""
        return Reply(status, reason if isinstance(reason, bytes) else str(reason))


class _Unsendable(Exception):
    """What a function answered cannot be sent; the text says why, fit for a log line."""


class _Route:
    """One method and path pattern, and the function registered for them."""

    def __init__(self, method, pattern, function, number):
        self.method = method
        self.pattern = pattern
        self.function = function
        self.number = number  # In the route table.
        # The pattern's segments as Handler._find_route splits a path: "/" gives ["", ""].
        segments = pattern.split("/")
        self.length = len(segments)
        self.literals = []  # (index, segment) that must be there as sent.
        self.parameters = []  # (index, name) of the {name} segments.
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("}") and len(segment) > 2:
                self.parameters.append((index, segment[1:-1]))
            else:
                self.literals.append((index, segment))

    def match(self, segments):
        """The path parameters, decoded, when the path's segments (as sent) match the pattern; None otherwise."""
        for index, literal in self.literals:
            if segments[index] != literal:
                return None
        parameters = {}
        for index, name in self.parameters:
            segment = segments[index]
            value = _percent_decoded(segment) if segment else None
            if value is None:
                return None
            parameters[name] = value
        return parameters


def _checked_pattern(pattern):
    """pattern, or ValueError when no request's path can ever match it."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ValueError("route pattern %r: a pattern is a path, starting with '/'" % (pattern,))
    names = set()
    for segment in pattern.split("/")[1:]:
        if segment.startswith("{") and segment.endswith("}") and len(segment) > 2:
            name = segment[1:-1]
            if name in names:
                raise ValueError("route pattern %r: {%s} appears twice" % (pattern, name))
            names.add(name)
            continue
        at = 0
        while at < len(segment):
            character = segment[at]
            if character == "%":
                if segment[at + 1:at + 2] not in _HEX_DIGITS or segment[at + 2:at + 3] not in _HEX_DIGITS:
                    raise ValueError("route pattern %r: a '%%' not followed by two hex digits" % (pattern,))
                at += 3
                continue
            if character not in _SEGMENT_CHARACTERS:
                raise ValueError("route pattern %r: %r cannot appear in a path as a client sends it (a {name} is a "
                                 "whole segment; write other characters percent-encoded)" % (pattern, character))
            at += 1
    return pattern


class Handler:
    """Your commands, routes and fallback, and the loop that serves them to the reactor (run)."""

    def __init__(self):
        self._commands = {}
        self._command_routes = {}  # Command name -> its number in the route table.
        self._routes = []  # _Route, in the order registered.
        self._table = []  # (name, flags) of each route and command, in the order registered: the route table.
        self._routes_by_length = {}  # Segment count -> the routes of that many segments, in the order registered.
        self._fallback = None
        self._state = None  # The reactor's state page, once run() mapped it.
        self._kept = {}  # Connection id -> the descriptor of its socket, kept for its next request (kFlagKeep).
        self._max_line_bytes = 2 << 20
        self._write_timeout = 5.0
        # A server that writes its own HTTP responses, in pieces (handoff_handler.wsgi), in place of the routes,
        # commands and fallback: responder(request, hand_off, keep_alive, input_pending) answers the request on
        # the hand-off and returns whether the connection stays open. The library keeps the rest: the reactor
        # protocol, keep-alive and kept sockets, the line protocol.
        self._responder = None
        # When set, the reason every line but quit is refused with ("ERR <reason>"): a handler with no
        # commands, whose routes only HTTP can reach.
        self._line_refusal = None

    # --- What the handler answers ---

    def command(self, name, retryable=False):
        """Decorator: registers fn(request) as the command `name`, reachable as the line "NAME ARG..." and as
        GET, HEAD or POST /NAME/ARG/... over HTTP. The reactor counts its requests under NAME. retryable: a
        request of it may run again on another handler when the one running it died before it began to answer
        (the reactor decides whether it does); say it only of a function whose only effect is its answer."""

        def register(function):
            self._commands[name] = function
            self._command_routes[name] = self._number(name, retryable)
            return function

        return register

    def route(self, pattern, methods=("GET",), retryable=False):
        """Decorator: registers fn(request) for HTTP requests whose path matches pattern ("/", "/items/{id}",
        "/files/{name}/meta") with one of methods (any method tokens; a GET route answers HEAD too). Each {name}
        takes one whole, non-empty segment of the path as sent, percent-decoded into request.path_parameters;
        segments are compared as sent, so a trailing slash counts. The first route registered that matches the
        path and takes the method is called; a path some route matches, requested with a method none of them
        takes, gets 405 with Allow. Routes are tried before commands. The reactor counts the requests of each
        method under "METHOD PATTERN" ("GET /items/{id}"), never under the path requested. retryable: as for
        command."""
        _checked_pattern(pattern)
        if isinstance(methods, str):
            methods = (methods,)
        for method in methods:
            if not isinstance(method, str) or not method or method.translate(_WITHOUT_TOKEN_CHARACTERS):
                raise ValueError("route %r: %r is not a method (a token: GET, PUT, ...)" % (pattern, method))

        def register(function):
            for method in methods:
                route = _Route(method, pattern, function, self._number(method + " " + pattern, retryable))
                self._routes.append(route)
                self._routes_by_length.setdefault(route.length, []).append(route)
            return function

        return register

    def fallback(self, function):
        """Decorator: fn(request) receives every HTTP request that no route and no command took (a framework's
        adapter). Without one, such a request gets 404."""
        self._fallback = function
        return function

    def _number(self, name, retryable):
        """Adds a route or command to the route table; its number there (0 past the most a report can name)."""
        self._table.append((name, _ROUTE_RETRYABLE if retryable else 0))
        return len(self._table) if len(self._table) <= 0xFFFF else 0

    def _route_table(self):
        """The hello's payload: the route table, bounded as the reactor reads it (docs/protocol.md)."""
        entries = []
        for name, flags in self._table[:_MAX_ROUTES]:
            encoded = name.encode("utf-8", "replace")[:_MAX_ROUTE_NAME_BYTES]
            entries.append(_ROUTE_ENTRY.pack(len(encoded), flags, 0) + encoded)
        return b"".join(entries)

    def execute(self, request):
        """Answers one request as the handler would, as a Reply (for tests of your code): over HTTP through the
        routes, the commands (filling in request.command and arguments from the path) and the fallback; on a
        line, its command. An exception, or a reply that cannot be sent, gives the 500 here too."""
        return Reply(*self._answer(request))

    def _answer(self, request):
        """(status, body bytes, content type, headers) of the answer to request, checked: it can be sent."""
        return self._routed_answer(request)[0]

    def _routed_answer(self, request):
        """(answer, route): the answer as _answer gives it, and the number of the route or command that made it
        in the route table (0 for none: a 404, a 405, the fallback), by which the reactor counts it."""
        if request.protocol == "http":
            function, route = self._find_http_function(request)
        else:
            function, route = self._commands.get(request.command), self._command_routes.get(request.command, 0)
        if isinstance(function, Reply):  # The library's own answer: 404, 405, 400.
            return (function.status, function.body, function.content_type, function.headers), 0
        if function is None:
            return (404, b"unknown command", _TEXT_PLAIN, []), 0
        try:
            return _sendable(_as_reply(function(request), function), request.protocol == "http"), route
        except _Unsendable as problem:
            # The handler's own error, not the client's: logged (with the pid, to find the handler) and
            # answered 500; the handler serves on.
            sys.stderr.write("handler[%d]: %s: %s; answered 500\n" % (os.getpid(), _described(request), problem))
            return _internal_error(str(problem)), route
        except Exception as error:  # User code must not take the handler down.
            sys.stderr.write("handler[%d]: %s: raised %r\n%s" % (os.getpid(), _described(request), error,
                                                                   traceback.format_exc()))
            return _internal_error(str(error) or type(error).__name__), route

    def _find_http_function(self, request):
        """(function, route number) of the function an HTTP request goes to, with request.path_parameters, or
        command and arguments, filled in; or (the library's own Reply: 404, 405, 400; 0). Routes first, then
        commands, then the fallback (route 0)."""
        path = request.path
        segments = path.split("/") if path.startswith("/") else None
        if segments is not None and self._routes:
            found = self._find_route(request, segments)
            if found is not None:
                return found
        if segments is not None and self._commands:
            found = self._find_command(request, segments)
            if found is not None:
                return found
        if self._fallback is not None:
            return self._fallback, 0
        return Reply.error("not found", 404), 0

    def _find_route(self, request, segments):
        """(function, its route number) of the first route that matches the path and takes the method (or, for
        HEAD, of the first GET route that matches), or (a 405, 0) when routes match the path but none takes the
        method; None when no route matches the path."""
        allowed = []
        get_route = None
        for route in self._routes_by_length.get(len(segments), ()):
            parameters = route.match(segments)
            if parameters is None:
                continue
            if route.method == request.method:
                request.path_parameters = parameters
                return route.function, route.number
            allowed.append(route.method)
            if get_route is None and route.method == "GET" and request.method == "HEAD":
                get_route = route, parameters
        if get_route is not None:
            request.path_parameters = get_route[1]
            return get_route[0].function, get_route[0].number
        if not allowed:
            return None
        return Reply.error("method not allowed", 405).header("Allow", _allow_value(allowed)), 0

    def _find_command(self, request, segments):
        """(function, its route number) of the command GET /fib/30 names (fib, with the argument 30), or (a 405,
        0) for a method commands do not take; None when the path names no command. Segments are percent-decoded;
        an empty last one (a trailing slash) is no argument."""
        words = []
        for segment in segments[1:]:
            word = _percent_decoded(segment)
            if word is None:
                return Reply.error("malformed request: bad percent-encoding in the path", 400), 0
            words.append(word)
        if len(words) > 1 and not words[-1]:
            words.pop()
        function = self._commands.get(words[0])
        if function is None:
            return None
        if request.method not in _COMMAND_METHODS:
            return Reply.error("method not allowed: use GET, HEAD or POST", 405).header("Allow", "GET, HEAD, POST"), 0
        request.command = words[0]
        request.arguments = words[1:]
        return function, self._command_routes[words[0]]

    # --- The handler loop ---

    def run(self):
        """Serves what the reactor hands over until it closes the channel; exits the process."""
        if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
            print("A handoff handler (%s). The reactor starts it with --handler-cmd." % self._summary())
            sys.exit(0)
        fd = os.environ.get("HANDOFF_IPC_FD")
        if fd is None:
            sys.stderr.write("handler: HANDOFF_IPC_FD is not set; a handler is started by the reactor\n")
            sys.exit(2)
        self._max_line_bytes = int(os.environ.get("HANDOFF_MAX_REQUEST_BYTES", 2 << 20))
        self._write_timeout = int(os.environ.get("HANDOFF_WRITE_TIMEOUT_MS", 5000)) / 1000
        if not _follow_the_reactor():
            sys.exit(1)  # The reactor is gone already.
        if os.environ.get("HANDOFF_TEMPLATE") == "1":  # --preload: the code is loaded; fork the handlers.
            from . import _template
            _template.serve(int(fd))  # Returns in a forked handler, which serves from here on.
        os.set_inheritable(int(fd), False)  # Processes the handler's code starts must not hold the channel.
        self._state = _map_reactor_state(os.environ.get("HANDOFF_STATE_FD"))
        record = _map_answer_record(os.environ.get("HANDOFF_RECORD_FD"))
        channel = _Channel(int(fd))
        try:
            channel.send(_HELLO, 0, _CAPABILITIES, self._route_table())
            while True:
                frame = channel.receive()
                if frame is None:
                    break  # The reactor closed the channel: it is done with this handler.
                kind, connection_id, flags, payload, client = frame
                # kReclaim asks a handler that lingers on its connection to give it back: this one never
                # lingers (it is done with each connection before it reads the next frame), and skips it.
                if kind == _CONNECTION:
                    self._serve_connection(channel, connection_id, flags, payload, client, record)
                elif kind == _FORGET:  # Another handler serves the connection now: its copy here goes.
                    kept = self._kept.pop(connection_id, None)
                    if kept is not None:
                        os.close(kept)
        except _ChannelError as error:
            sys.stderr.write("handler[%d]: %s\n" % (os.getpid(), error))
            sys.exit(1)
        sys.exit(0)

    def _summary(self):
        parts = []
        if self._routes:
            parts.append("routes: " + ", ".join("%s %s" % (route.method, route.pattern) for route in self._routes))
        if self._commands:
            parts.append("commands: " + ", ".join(self._commands))
        if self._fallback is not None:
            parts.append("a fallback")
        return "; ".join(parts) or "nothing registered"

    def _serve_connection(self, channel, connection_id, flags, payload, client, record):
        """Answers the request of one kConnection frame on its socket, closes the socket (or keeps it, when
        asked and the connection stays open) and reports kDone."""
        if flags & _FLAG_AHEAD:
            # Only sent to a handler whose hello says it takes them; this one's says it does not.
            if client is not None:
                os.close(client)
            raise _ChannelError("a connection frame with flags %#x, which this handler never asked for" % flags)
        if flags & _FLAG_KEPT:  # Its socket is the copy kept here.
            client = self._kept.pop(connection_id, None)
            if client is None:
                raise _ChannelError("the reactor sent connection %d as kept, and it was not" % connection_id)
        else:  # A frame with a descriptor brings a newer copy than one kept, if any.
            kept = self._kept.pop(connection_id, None)
            if kept is not None:
                os.close(kept)
        keep_open = False
        hand_off = _HandOff(client, record, self._write_timeout)
        try:
            request, keep_alive, rest = _request_of_record(payload, flags & _FLAG_HTTP)
            if record is not None:
                request._cancel_source = record, connection_id
            if flags & _FLAG_HTTP:
                keep_open, unused = self._serve_http(hand_off, request, keep_alive, rest)
            else:
                def answered():
                    channel.send(_ANSWERED, connection_id, 0, hand_off.progress())

                keep_open, unused = self._serve_lines(hand_off, request, rest, flags & _FLAG_INPUT_CLOSED,
                                                      answered)
            done_flags = _DONE_KEEP_OPEN if keep_open else 0
        except _WriteTimedOut:
            keep_open, done_flags, unused = False, _DONE_WRITE_TIMED_OUT, b""
        except _ClientGone:
            keep_open, done_flags, unused = False, 0, b""
        finally:
            # Before the report: the reactor decides what happens next.
            kept = keep_open and flags & _FLAG_KEEP
            if kept:
                self._kept[connection_id] = client
            else:
                os.close(client)
        channel.send(_DONE, connection_id, done_flags | (_DONE_KEPT if kept else 0), hand_off.progress() + unused)

    def _others_waiting(self):
        """Whether other connections wait for a handler (the reactor's state page)."""
        return self._state is not None and _STATE_WORD.unpack_from(self._state, _STATE_WAITING_AT)[0] > 0

    def _reactor_draining(self):
        """Whether the reactor drains: an HTTP answer then says Connection: close."""
        return self._state is not None and _STATE_WORD.unpack_from(self._state, _STATE_DRAINING_AT)[0] != 0

    # --- HTTP ---

    def _serve_http(self, hand_off, request, keep_alive, rest):
        """Answers the record's request, then gives the connection back with what the reactor read past it
        (the reactor parses that as the next request). (keep open, unused bytes)."""
        if self._responder is not None:
            return self._serve_with_responder(hand_off, request, keep_alive, rest)
        answer, route = self._routed_answer(request)
        # Read once the function is done: the reactor may have begun to drain while it ran.
        keep_alive = keep_alive and not self._reactor_draining()
        try:
            status, head, body = _http_response(request, answer, not keep_alive)
        except Exception:  # A fault of the library's own: the client still gets an answer.
            sys.stderr.write("handler[%d]: %s: writing the response failed\n%s"
                             % (os.getpid(), _described(request), traceback.format_exc()))
            status, head, body, keep_alive = 500, _failed_response_head(), b"", False
        hand_off.answer(head, body, status, not keep_alive, bool(rest), route)
        return (True, rest) if keep_alive else (False, b"")

    def _serve_with_responder(self, hand_off, request, keep_alive, rest):
        """_serve_http through the responder, which writes the response itself. (keep open, unused bytes)."""
        try:
            keep_open = self._responder(request, hand_off, keep_alive, bool(rest))
        except _ClientGone:
            raise
        except Exception:  # A fault of the library's own: the client gets an answer if none began, else a cut.
            sys.stderr.write("handler[%d]: %s: writing the response failed\n%s"
                             % (os.getpid(), _described(request), traceback.format_exc()))
            if not hand_off.written:
                hand_off.answer(_failed_response_head(), b"", 500, True, bool(rest))
            keep_open = False
        return (True, rest) if keep_open else (False, b"")

    # --- The line protocol ---

    def _serve_lines(self, hand_off, first, rest, input_closed, answered):
        """Answers the record's line, then each complete line the reactor read past it, while no other
        connection waits for a handler; a last line without its line end too, when the client will send
        nothing more. (keep open, unused bytes): the rest goes back to the reactor."""
        line, request_id = first.target, first.id
        at = 0  # In rest, where the next line begins.
        while True:
            held = at < len(rest)
            ends = input_closed and not held  # Nothing will follow this answer.
            text, close, status, route = self._line_answer(line, first, request_id)
            hand_off.answer(text, b"", status, close or ends, held, route)
            if close or ends:
                return False, b""
            end = rest.find(b"\n", at)
            if end < 0 and not input_closed:
                return True, rest[at:]  # The start of the next line goes back to the reactor.
            if end >= 0 and self._others_waiting():
                return True, rest[at:]  # The rest of the pipeline goes back, behind them.
            answered()
            if end < 0:
                end = len(rest)  # The client sent EOF: a last line without its line end is still a request.
            raw = rest[at:end - 1] if end > at and rest[end - 1] == 13 else rest[at:end]
            at = end + 1
            request_id = 0  # Only the record's line has the reactor's number.
            if len(raw) > self._max_line_bytes:
                hand_off.answer(b"ERR request too large\n", b"", 413, True, False)
                return False, b""
            line = raw.decode("utf-8", "replace")

    def _line_answer(self, line, first, request_id):
        """(answer line, close, status, route) for one line; status as HTTP would say it, 0 for quit; route, the
        command's number in the route table (0: none)."""
        words = [word for word in line.replace("\t", " ").split(" ") if word]
        if not words:
            return _error_line("empty request"), False, 400, 0
        if words[0] == "quit":
            if len(words) > 1:
                return _error_line("quit takes no argument"), False, 400, 0
            return b"", True, 0, 0
        if words[0] not in self._commands and self._line_refusal is not None:
            return _error_line(self._line_refusal), False, 400, 0
        if words[0] not in self._commands:
            return _error_line("unknown command '%s' (commands: %s)" % (
                _printable(words[0]), ", ".join(list(self._commands) + ["quit"]))), False, 404, 0
        request = Request(words[0], words[1:], target=line, client_address=first.client_address,
                          client_port=first.client_port, id=request_id)
        request._cancel_source = first._cancel_source
        answer, route = self._routed_answer(request)
        status, body = answer[:2]
        if status >= 400:
            return _one_line(b"ERR " + body), False, status, route
        return _one_line(body), False, status, route


def _http_response(request, answer, close):
    """(status, head bytes, body bytes) of the response that gives answer to request, as http/response.cpp
    writes one: status line, Server, Date, Content-Type, Content-Length, the reply's headers, Connection; no
    body in answer to HEAD (RFC 9110 section 9.3.2), no body and no Content-Length with 204 and 304 (sections
    6.4.1 and 8.6)."""
    status, body, content_type, headers = answer
    server = "handoff"
    extra = ""
    if headers:
        lines = []
        for name, value in headers:
            lowered = name.translate(_ASCII_LOWER)
            if lowered == "content-type":
                content_type = value
            elif lowered == "server":
                server = value
            else:
                lines.append("%s: %s\r\n" % (name, value))
        extra = "".join(lines)
    if status >= 400 and not body.endswith(b"\n"):
        body += b"\n"
    if close:
        extra += "Connection: close\r\n"
    elif request.version == "HTTP/1.0":
        extra += "Connection: keep-alive\r\n"  # HTTP/1.0 closes unless told otherwise.
    if status == 204 or status == 304:
        length = ""
        body = b""
    else:
        length = "Content-Length: %d\r\n" % len(body)
    # An empty Server (the reply's own) leaves the field out, as the C++ library does.
    head = "%s%sDate: %s\r\nContent-Type: %s\r\n%s%s\r\n" % (
        _status_line(status), "Server: %s\r\n" % server if server else "", _date_now(), content_type, length,
        extra)
    return status, head.encode("latin-1"), b"" if request.method == "HEAD" else body


def _allow_value(methods):
    """"GET, HEAD, PUT": the methods, each once, in the order of _ALLOW_ORDER and then as registered; HEAD with
    GET, which answers it."""
    if "GET" in methods:
        methods = methods + ["HEAD"]
    ordered = [method for method in _ALLOW_ORDER if method in methods]
    for method in methods:
        if method not in ordered:
            ordered.append(method)
    return ", ".join(ordered)


def _as_reply(result, function):
    """What a function returned, as a Reply: a Reply; str as text; bytes as application/octet-stream; a dict or a
    list as JSON. Anything else is the function's mistake."""
    if isinstance(result, Reply):
        return result
    if isinstance(result, str):
        return Reply.text(result)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Reply.bytes(result)
    if isinstance(result, (dict, list)):
        return Reply.json(result)
    raise _Unsendable("%s returned %s, which is not a Reply, str, bytes, dict or list"
                      % (getattr(function, "__qualname__", repr(function)), type(result).__name__))


def _sendable(reply, http):
    """(status, body bytes, content type, headers) of reply; _Unsendable when it cannot be sent. On a line only
    the status and the body matter: the headers are not sent there."""
    status = reply.status
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        # A 1xx would leave the client waiting for a final answer; anything else is no status at all.
        raise _Unsendable("the reply has status %r, which is not a final status" % (status,))
    body = reply.body
    if not isinstance(body, bytes):
        if isinstance(body, str):
            body = body.encode()
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        else:
            raise _Unsendable("the reply has a body of type %s, not bytes or str" % type(body).__name__)
    content_type = reply.content_type
    headers = reply.headers
    if http and content_type is not _TEXT_PLAIN:
        if not isinstance(content_type, str):
            raise _Unsendable("the reply has a content type of type %s, not str" % type(content_type).__name__)
        if _breaks_a_field(content_type):
            raise _Unsendable("the reply has a content type holding CR, LF or NUL (\"%s\"): it would end the "
                              "Content-Type header and write headers or a response of its own (RFC 9110 section "
                              "5.5)" % _loggable(content_type))
        if not _latin1(content_type):
            raise _Unsendable("the reply has a content type holding characters latin-1 has not (\"%s\")"
                              % _loggable(content_type))
    if http:
        for field in headers:
            _check_field(field)
    return status, body, content_type, headers


def _check_field(field):
    """_Unsendable when a reply's header field cannot be sent."""
    if not isinstance(field, (tuple, list)) or len(field) != 2:
        raise _Unsendable("the reply has a header that is not a (name, value) pair: %s" % _loggable(repr(field)))
    name, value = field
    if not isinstance(name, str) or not name or name.translate(_WITHOUT_TOKEN_CHARACTERS):
        raise _Unsendable("the reply has a header name that is not a token (\"%s\")" % _loggable(str(name)))
    if not isinstance(value, str):
        raise _Unsendable("the reply has a %s header of type %s, not str" % (name, type(value).__name__))
    if _breaks_a_field(value):
        raise _Unsendable("the reply has a %s header holding CR, LF or NUL (\"%s\"): it would write headers or a "
                          "response of its own (RFC 9110 section 5.5)" % (name, _loggable(value)))
    if not _latin1(value):
        raise _Unsendable("the reply has a %s header holding characters latin-1 has not (\"%s\")"
                          % (name, _loggable(value)))
    if name.translate(_ASCII_LOWER) in _SERVER_OWNED_FIELDS:
        # A second Content-Length would contradict the server's: a smuggling vector (RFC 9112 section 6.3).
        raise _Unsendable("the reply has a %s header, which the server sets itself" % name)


def _internal_error(detail):
    """The answer to a request whose function failed: the detail goes to the client only with
    HANDOFF_EXPOSE_ERRORS=1 (the reactor's --expose-errors, for development), as it may hold paths, SQL or
    keys."""
    if os.environ.get("HANDOFF_EXPOSE_ERRORS") == "1" and detail:
        return 500, ("internal error: " + detail).encode("utf-8", "replace"), _TEXT_PLAIN, []
    return 500, b"internal error", _TEXT_PLAIN, []


def _breaks_a_field(value):
    """Whether a value for a header field holds CR, LF or NUL: CR and LF end the field, and what follows would
    be read as headers of the value's making, or as a second response (response splitting). RFC 9110 section
    5.5 calls the three "invalid and dangerous" in a field value."""
    return "\r" in value or "\n" in value or "\0" in value


def _latin1(value):
    """Whether value can be written into a response head (which is latin-1 here, as in WSGI)."""
    if value.isascii():
        return True
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _described(request):
    """The request as a log line names it: "GET /fib/x", or "line 'fib x'"."""
    if request.protocol == "http":
        return _loggable("%s %s" % (request.method, request.target or request.path))
    return "line '%s'" % _loggable(request.target or " ".join([request.command] + list(request.arguments)))


def _loggable(value):
    """A value fit for one log line: control characters escaped, and at most 200 characters of it."""
    text = str(value)
    escapes = {"\r": "\\r", "\n": "\\n"}
    out = "".join(escapes.get(c) or ("\\x%02x" % ord(c) if ord(c) < 0x20 or c == "\x7f" else c) for c in text[:200])
    return out + ("..." if len(text) > 200 else "")


def _printable(word):
    """A command name as the client sent it, cut short and with control characters replaced, fit to echo."""
    out = "".join(c if c.isprintable() else "?" for c in word[:40])
    return out + ("..." if len(word) > 40 else "")


def _one_line(text):
    """An answer as the one line it must be: a client reads one answer per line, and a pipelining one would
    take a second line for the answer to its next request. The line end it may end in (b"\\n" or b"\\r\\n")
    goes, each CR, LF and NUL left becomes a space, and b"\\n" ends the line."""
    text = text[:-2] if text.endswith(b"\r\n") else text[:-1] if text.endswith(b"\n") else text
    return text.translate(_LINE_BREAKS_TO_SPACES) + b"\n"


def _error_line(reason):
    return _one_line(("ERR " + reason).encode("utf-8", "replace"))


# --- The request record ---

def _request_of_record(payload, http):
    """(request, keep-alive, rest) of a kConnection frame's record (ipc/request_record.hpp): the Request, whether
    the connection may stay open after it, and the bytes the reactor read past it, not judged yet."""
    if len(payload) < _RECORD_HEAD.size:
        raise _ChannelError("a connection frame of %d bytes, too short for a request record" % len(payload))
    (request_id, client_port, http_minor, record_flags, field_count, address_size, method_size, target_size,
     path_size, query_size, fields_size, body_size, rest_size) = _RECORD_HEAD.unpack_from(payload)
    if _RECORD_HEAD.size + address_size + method_size + target_size + path_size + query_size + fields_size + \
            body_size + rest_size != len(payload):
        raise _ChannelError("a request record whose sizes do not add up to its frame's %d bytes" % len(payload))
    view = payload if isinstance(payload, memoryview) else memoryview(payload)
    # Where the address, method, target, path and query begin in the bytes after the record's head (HTTP
    # decodes them at once), then where the fields, body and rest begin in the payload.
    method_at = address_size
    target_at = method_at + method_size
    path_at = target_at + target_size
    query_at = path_at + path_size
    fields_at = _RECORD_HEAD.size + query_at + query_size
    body_at = fields_at + fields_size
    rest_at = body_at + body_size
    keep_alive = bool(record_flags & _RECORD_KEEP_ALIVE)
    rest = bytes(view[rest_at:]) if rest_size else b""
    if not http:
        address = str(view[_RECORD_HEAD.size:_RECORD_HEAD.size + address_size], "latin-1")
        line = str(view[_RECORD_HEAD.size + target_at:_RECORD_HEAD.size + path_at], "utf-8", "replace")
        return Request(target=line, client_address=address, client_port=client_port, id=request_id), \
            keep_alive, rest
    text = str(view[_RECORD_HEAD.size:fields_at], "latin-1")
    request = Request(body=bytes(view[body_at:rest_at]) if body_size else b"", protocol="http",
                      method=text[method_at:target_at],
                      query=text[query_at:], target=text[target_at:path_at], path=text[path_at:query_at],
                      client_address=text[:method_at], client_port=client_port,
                      version="HTTP/1.0" if http_minor == 0 else "HTTP/1.1", id=request_id)
    if field_count:
        request._fields = view, fields_at, body_at, field_count  # Read on first use: many a function needs none.
    return request, keep_alive, rest


def _read_fields(view, at, end, count):
    """The header fields of a request record: count times a name's size, a value's size, the name, the value."""
    headers = []
    for _ in range(count):
        if at + _FIELD_SIZES.size > end:
            raise ValueError("the reactor's request record has header fields that overrun their bytes")
        name_size, value_size = _FIELD_SIZES.unpack_from(view, at)
        name_at = at + _FIELD_SIZES.size
        value_at = name_at + name_size
        at = value_at + value_size
        if at > end:
            raise ValueError("the reactor's request record has header fields that overrun their bytes")
        headers.append((str(view[name_at:value_at], "latin-1"), str(view[value_at:at], "latin-1")))
    if at != end:
        raise ValueError("the reactor's request record has header fields that do not fill their bytes")
    return headers


# --- The channel to the reactor, and the client socket ---

class _ChannelError(Exception):
    """The channel to the reactor broke, or the reactor sent what it never sends: the handler ends."""


class _ClientGone(Exception):
    """The client socket refused an answer (the client reset the connection or shut it): the hand-off ends."""


class _WriteTimedOut(_ClientGone):
    """The client took none of an answer for the write timeout."""


class _Channel:
    """Frames to and from the reactor on the channel's descriptor. Descriptors come attached to the first
    byte of a write; one recvmsg may bring a frame's descriptor with the bytes of an earlier frame, so they
    wait in a queue, each for the next frame that carries one."""

    def __init__(self, fd):
        self._socket = socket.socket(fileno=fd)
        # Bytes received and not yet taken: _inbox from _taken on. A frame that came whole in one recvmsg (the
        # rule) is handed on as a view into it, uncopied.
        self._inbox = b""
        self._taken = 0
        self._chunk = memoryview(bytearray(_READ_CHUNK))  # What recvmsg reads into: allocated once.
        self._descriptors = collections.deque()

    def send(self, kind, connection_id, flags, payload=b""):
        try:
            self._socket.sendall(_HEADER.pack(_MAGIC, _VERSION, kind, connection_id, flags, len(payload)) + payload)
        except OSError as error:
            raise _ChannelError("sending to the reactor: %s" % error.strerror) from None

    def receive(self):
        """The next frame: (type, connection id, flags, payload, descriptor or None); None when the reactor
        closed the channel between two frames."""
        while len(self._inbox) < self._taken + _HEADER.size:
            if not self._receive_more():
                if len(self._inbox) > self._taken:
                    raise _ChannelError("the reactor closed the channel in the middle of a frame")
                return None
        magic, version, kind, connection_id, flags, size = _HEADER.unpack_from(self._inbox, self._taken)
        if magic != _MAGIC:
            raise _ChannelError("a frame from the reactor without the handoff magic (%#x)" % magic)
        if version != _VERSION:
            raise _ChannelError("the reactor speaks ipc protocol version %d, this library version %d: start "
                                "the handler with a reactor of its release" % (version, _VERSION))
        if kind not in (_CONNECTION, _RECLAIM, _FORGET):
            raise _ChannelError("unexpected frame type %d from the reactor (a handler is sent only types %d, %d "
                                "and %d)" % (kind, _CONNECTION, _RECLAIM, _FORGET))
        if size > _MAX_PAYLOAD_OF_TYPE.get(kind, _MAX_OTHER_PAYLOAD):
            raise _ChannelError("a frame of type %d from the reactor with a payload of %d bytes, over the limit"
                                % (kind, size))
        self._taken += _HEADER.size
        payload = self._take(size)
        descriptor = None
        if kind == _CONNECTION and not flags & _FLAG_KEPT:
            if not self._descriptors:
                raise _ChannelError("a connection frame came without its descriptor")
            descriptor = self._descriptors.popleft()
        return kind, connection_id, flags, payload, descriptor

    def _take(self, size):
        """The next size bytes of the channel, as a bytes-like object. A large payload (a request with a body
        of megabytes) is read straight into a buffer of its own."""
        have = len(self._inbox) - self._taken
        if have >= size:
            payload = memoryview(self._inbox)[self._taken:self._taken + size]
            self._taken += size
            if self._taken == len(self._inbox):
                self._inbox, self._taken = b"", 0
            return payload
        payload = bytearray(size)
        with memoryview(payload) as view:
            view[:have] = memoryview(self._inbox)[self._taken:]
            self._inbox, self._taken = b"", 0
            while have < size:
                received = self._receive_into(view[have:])
                if received == 0:
                    raise _ChannelError("the reactor closed the channel in the middle of a frame")
                have += received
        return payload

    def _receive_more(self):
        """Adds what the channel has to the inbox; False when the reactor closed it."""
        received = self._receive_into(self._chunk)
        if not received:
            return False
        data = bytes(self._chunk[:received])  # A frame as a rule: a few hundred bytes.
        if self._taken == len(self._inbox):
            self._inbox = data
        else:
            self._inbox = self._inbox[self._taken:] + data
        self._taken = 0
        return True

    def _receive_into(self, view):
        """recvmsg into view: the bytes received (0 at EOF)."""
        try:
            received, ancillary, msg_flags, _ = self._socket.recvmsg_into([view], _ANCILLARY_BYTES,
                                                                          _MSG_CMSG_CLOEXEC)
        except OSError as error:
            raise _ChannelError("receiving from the reactor: %s" % error.strerror) from None
        self._keep_descriptors(ancillary, msg_flags)
        return received

    def _keep_descriptors(self, ancillary, msg_flags):
        """Queues the descriptors a recvmsg brought. They came close-on-exec (MSG_CMSG_CLOEXEC): code the
        handler starts inherits no client socket."""
        for level, kind, data in ancillary:
            if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
                self._descriptors.extend(memoryview(data)[:len(data) - len(data) % _FD_SIZE].cast("i"))
        if msg_flags & _MSG_CTRUNC:
            raise _ChannelError("control data truncated (MSG_CTRUNC): descriptors were lost")


class _HandOff:
    """The handler's side of one hand-off: the client socket (non-blocking: it shares its open file with the
    reactor's copy, so waiting is done with poll), the answers written to it, and the answer record."""

    def __init__(self, fd, record, write_timeout):
        self._fd = fd
        self._record = record
        self._write_timeout = write_timeout
        self.written = 0
        self.status = 0  # Of the last answer not yet reported to the reactor.
        self.route = 0  # The number of the route or command that made it (0: none).
        self._streamed_status = 0  # Of the answer begun with begin_answer.

    def progress(self):
        """A Progress for kAnswered or kDone: the bytes written so far, and the status of the answer written
        since the last report, with the number of the route that made it."""
        status, self.status, route, self.route = self.status, 0, self.route, 0
        return _PROGRESS.pack(self.written, status, route, 0)

    def answer(self, head, body, status, ends_connection, input_pending, route=0):
        """Writes one answer, noted first in the answer record: if the handler dies after writing it, the
        reactor can tell from the record that the answer went out whole. input_pending: the handler holds
        input it has not answered (the reactor then answers it with the error). route: the number of the route
        or command that made it."""
        if status:
            self.status, self.route = status, route  # Reported even when the write times out.
        size = len(head) + len(body)
        if not size:
            return
        self._note(size, status, ends_connection, input_pending)
        self._write([head, body] if body else [head], size)

    # An answer written in pieces (a streamed WSGI response): begin_answer, any number of write_body and
    # send_file, then end_answer. Until end_answer, the answer is noted as one that ends the connection where
    # its head ends: a handler that dies in the middle leaves a cut answer, which only closing the connection
    # can tell the client about, and a reactor that sees the socket went further than the head takes it for
    # part of an answer and closes all the same.

    def begin_answer(self, head, body, status, input_pending):
        """Writes the head of an answer (and body, the first of its body, in the same write) whose end is
        not known yet."""
        self.status, self.route, self._streamed_status = status, 0, status
        self._note(len(head), status, True, input_pending)
        self._write([head, body] if body else [head], len(head) + len(body))

    def write_body(self, data):
        """Writes more of the answer begun."""
        if data:
            self._write([data], len(data))

    def end_answer(self, last, ends_connection, input_pending):
        """Writes last, the end of the answer begun (b"" when it is all out), noted first with where the
        whole answer ends: from then on, a handler that dies leaves an answer the reactor knows is whole."""
        self._note(len(last), self._streamed_status, ends_connection, input_pending)
        if last:
            self._write([last], len(last))

    def send_file(self, file_fd, offset, count):
        """Writes up to count bytes of the regular file file_fd from offset, with sendfile(2), as more of the
        answer begun; the bytes written, fewer when the file ends first. An error of the file's is raised as
        OSError; the client's, as _ClientGone."""
        sent_in_all = 0
        deadline = None
        while sent_in_all < count:
            try:
                sent = os.sendfile(self._fd, file_fd, offset + sent_in_all, count - sent_in_all)
            except BlockingIOError:
                sent = None
            except (ConnectionError, TimeoutError):
                raise _ClientGone() from None
            if sent == 0:
                return sent_in_all  # The file ended.
            if sent:
                self.written += sent
                sent_in_all += sent
                deadline = None
                continue
            deadline = self._stalled(deadline)
        return sent_in_all

    def local_address(self):
        """The socket's own address, (host, port, ...) as getsockname gives it."""
        view = socket.socket(fileno=self._fd)
        try:
            return view.getsockname()
        finally:
            view.detach()  # The descriptor stays the hand-off's.

    def _note(self, size, status, ends_connection, input_pending):
        """Notes in the answer record that the answer being written ends size bytes from here, with its
        status: if the handler dies after writing it, the reactor can tell from the record that the answer
        went out whole."""
        if self._record is not None:
            flags = (_ANSWER_ENDS_CONNECTION if ends_connection else 0) | \
                (_ANSWER_INPUT_PENDING if input_pending else 0)
            _NOTED_FLAGS.pack_into(self._record, 4, flags)
            _NOTED_END_AND_STATUS.pack_into(self._record, 16, self.written + size, status)

    def _write(self, buffers, size):
        """Writes the size bytes of buffers, in one writev as a rule; gives up when the client takes none of
        them for the write timeout. The clock starts over whenever some bytes go out, as nginx's send_timeout
        does."""
        deadline = None
        while True:
            try:
                sent = os.writev(self._fd, buffers)
            except BlockingIOError:
                sent = 0
            except OSError:
                raise _ClientGone() from None
            self.written += sent
            size -= sent
            if not size:
                return
            if sent:
                buffers = _after(buffers, sent)
                deadline = None
                continue
            deadline = self._stalled(deadline)

    def _stalled(self, deadline):
        """The socket took nothing: waits until it takes more, within the write timeout counted from the
        first write that sent nothing (deadline, None when this is that write). The deadline to go on with;
        raises _WriteTimedOut once it passed."""
        if deadline is None:
            deadline = time.monotonic() + self._write_timeout
        if not self._wait_writable(deadline):
            raise _WriteTimedOut()
        return deadline

    def _wait_writable(self, deadline):
        """Waits until the socket takes more, until deadline; False on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        return bool(poller.poll(left * 1000))


def _after(buffers, sent):
    """What of buffers is left once sent bytes of them went out."""
    left = []
    for buffer in buffers:
        if sent >= len(buffer):
            sent -= len(buffer)
        else:
            left.append(memoryview(buffer)[sent:] if sent else buffer)
            sent = 0
    return left


# --- Living with the reactor ---

def _map_reactor_state(fd):
    """The reactor's state page (ipc/shared_state.hpp), mapped read-only; None when the reactor gives none."""
    if fd is None:
        return None
    with open(int(fd), "rb") as page:  # Closed once mapped: code the handler starts does not inherit it.
        state = mmap.mmap(page.fileno(), _PAGE_BYTES, prot=mmap.PROT_READ)
    if _STATE_WORD.unpack_from(state, 0)[0] != _STATE_VERSION:
        raise SystemExit("handler: the reactor's state page has an unknown version")
    return state


def _map_answer_record(fd):
    """This handler's answer record (ipc/answer_record.hpp), mapped writable; None when the reactor gives none."""
    if fd is None:
        return None
    with open(int(fd), "r+b") as page:  # Closed once mapped, as the state page.
        record = mmap.mmap(page.fileno(), _PAGE_BYTES)
    if _STATE_WORD.unpack_from(record, 0)[0] != _ANSWER_RECORD_VERSION:
        raise SystemExit("handler: the reactor's answer record has an unknown version")
    return record


def _follow_the_reactor():
    """Lives and stops as the reactor says; False when the reactor is already gone.

    SIGINT, SIGTERM, SIGHUP and SIGUSR2 sent to the whole process group (Ctrl-C in a terminal, `timeout`,
    systemd's KillMode=control-group, `systemctl kill -s SIGUSR2` for a takeover) are ignored: the reactor
    drains, then closes the channel, which ends the handler. SIGPIPE is ignored too (Python does already, unless
    code set it back): a client that left is an error from write, not the handler's death. PR_SET_PDEATHSIG
    kills the handler when the reactor dies; HANDOFF_REACTOR_PID catches a reactor that died before that call.
    """
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2, signal.SIGPIPE):
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


# --- Status lines and dates ---

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
_STATUS_LINES = {status: "HTTP/1.1 %d %s\r\n" % (status, phrase) for status, phrase in _REASON_PHRASES.items()}
_date = [None, ""]  # The second _date_now() last formatted, and its text.


def _status_line(status):
    """"HTTP/1.1 404 Not Found\\r\\n"; the reason phrase "Unknown" for a code that has none."""
    line = _STATUS_LINES.get(status)
    return line if line is not None else "HTTP/1.1 %d Unknown\r\n" % status


def _failed_response_head():
    """What the client gets when the library fails to write a response (it never should): a 500, whole."""
    return ("HTTP/1.1 500 Internal Server Error\r\nServer: handoff\r\nDate: %s\r\nContent-Type: %s\r\n"
            "Content-Length: 15\r\nConnection: close\r\n\r\ninternal error\n" % (_date_now(), _TEXT_PLAIN)).encode()


def _date_now():
    """The current time as the Date header gives it (RFC 9110 sections 5.6.7 and 6.6.1): "Tue, 01 Dec 2026
    18:30:00 GMT"; formatted once a second at most."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return _date[1]
