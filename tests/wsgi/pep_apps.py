"""Small WSGI apps, each written to check one rule of PEP 3333 in handoff's server
(tests/integration/wsgi_test.py). `application` routes by the first segment of PATH_INFO:

  /write/...        the write() callable, then an iterable
  /exc-before-head  start_response again with exc_info before any body: the second status wins
  /exc-after-head   start_response with exc_info once the head is out: raises, and the connection is cut
  /closing/WHAT/... an iterable whose close() is logged with its path (HANDOFF_WSGI_CLOSE_LOG): ok,
                    raise-before, raise-during, gone (endless pieces, for a client that leaves)
  /file/OFFSET      wsgi.file_wrapper over this file, from OFFSET
  /bad/WHAT         a status, header or body the server must refuse; or a raise
  /input            wsgi.input read in pieces: read(n), readline, readlines, iteration, read()
  /environ          the environ's text values, as JSON
  /stream/N         N pieces, no Content-Length
  /pid              the process's pid
  /gate/NAME        says it started (NAME.started, holding its pid, in HANDOFF_WSGI_GATE_DIR), waits for
                    NAME.open there, then
                    streams two pieces: a request held in the middle while the test does something
"""

import json
import os
import sys
import time


def _log_close(path, pieces):
    log_path = os.environ.get("HANDOFF_WSGI_CLOSE_LOG")
    if log_path:
        with open(log_path, "a") as log:  # Appends of one line: the two handlers' lines do not mix.
            log.write("closed %s after %d pieces\n" % (path, pieces))


class _Closing:
    """An iterable of pieces whose close() is logged; raises where told."""

    def __init__(self, path, pieces, raise_at=None):
        self.path = path
        self.pieces = pieces
        self.raise_at = raise_at
        self.given = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.given == self.raise_at:
            raise RuntimeError("the app fails at piece %d on purpose" % self.given)
        if self.given == self.pieces:
            raise StopIteration
        self.given += 1
        return b"%06d" % self.given + b"." * (65536 - 6)

    def close(self):
        _log_close(self.path, self.given)


def closing(environ, start_response, what):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    path = environ["PATH_INFO"]  # What the close log names: /closing/ok/TAG keeps the tests' lines apart.
    if what == "ok":
        return _Closing(path, 3)
    if what == "raise-before":
        return _Closing(path, 3, raise_at=0)
    if what == "raise-during":
        return _Closing(path, 3, raise_at=2)
    if what == "gone":
        return _Closing(path, 4000)  # 250 MiB: far more than the socket buffers hold, and yet bounded.
    raise ValueError(what)


def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written one, ")
    write(b"written two, ")
    return [b"returned three\n"]


def exc_before_head(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
    try:
        raise ValueError("changed its mind")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced\n"]


def exc_after_head(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first piece\n"
    try:
        raise ValueError("fails after the head")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    yield b"never sent\n"


def file_wrapper(environ, start_response, offset):
    source = open(__file__, "rb")
    source.seek(int(offset))  # PEP 3333: the file goes out from its current position.
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](source, 4096)


_BAD = {
    "status": ("700 Weird", [("Content-Type", "text/plain")]),
    "status-1xx": ("103 Early Hints", [("Content-Type", "text/plain")]),
    "status-type": (200, [("Content-Type", "text/plain")]),
    "connection": ("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")]),
    "transfer-encoding": ("200 OK", [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]),
    "latin1": ("200 OK", [("Content-Type", "text/plain"), ("X-Name", "caf\u00e9 \u20ac")]),
    "crlf": ("200 OK", [("Content-Type", "text/plain"), ("X-Split", "a\r\nSet-Cookie: evil=1")]),
    "name": ("200 OK", [("Content-Type", "text/plain"), ("Bad Name", "x")]),
    "value-type": ("200 OK", [("Content-Type", "text/plain"), ("X-Number", 7)]),
    "two-lengths": ("200 OK", [("Content-Length", "2"), ("Content-Length", "3")]),
}


def bad(environ, start_response, what):
    if what == "raise":
        raise RuntimeError("the app raises on purpose")
    if what == "str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text, not bytes"]
    if what == "short":  # Promises 10 bytes, gives 3: the connection must close.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"abc"]
    if what == "long":  # Promises 3 bytes, gives 6: only 3 go out.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"abc", b"def"]
    status, headers = _BAD[what]
    start_response(status, headers)
    return [b"must not be sent\n"]


def read_input(environ, start_response):
    stream = environ["wsgi.input"]
    parts = {"read3": stream.read(3).decode(), "readline": stream.readline().decode(),
             "readline2": stream.readline(2).decode(), "readlines": [line.decode() for line in stream.readlines(1)]}
    parts["iterated"] = [line.decode() for line in stream]
    parts["rest"] = stream.read().decode()
    parts["content_length"] = environ.get("CONTENT_LENGTH")
    body = json.dumps(parts).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def show_environ(environ, start_response):
    shown = {key: value for key, value in environ.items() if isinstance(value, str)}
    shown["wsgi"] = {key: repr(value) for key, value in environ.items() if key.startswith("wsgi.")}
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def stream(environ, start_response, count):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (b"piece %d\n" % number for number in range(int(count)))


def gate(environ, start_response, name):
    folder = os.environ["HANDOFF_WSGI_GATE_DIR"]
    with open(os.path.join(folder, name + ".started.tmp"), "w") as started:
        started.write(str(os.getpid()))
    os.rename(os.path.join(folder, name + ".started.tmp"), os.path.join(folder, name + ".started"))
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(folder, name + ".open")):  # The test's state, polled.
        if time.monotonic() > deadline:
            raise TimeoutError("the gate %s was never opened" % name)
        time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter([b"through ", b"the gate\n"])


def pid(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d\n" % os.getpid()]


def application(environ, start_response):
    first, second = (environ["PATH_INFO"].split("/") + ["", ""])[1:3]
    if first == "write":
        return write_callable(environ, start_response)
    if first == "exc-before-head":
        return exc_before_head(environ, start_response)
    if first == "exc-after-head":
        return exc_after_head(environ, start_response)
    if first == "closing":
        return closing(environ, start_response, second)
    if first == "file":
        return file_wrapper(environ, start_response, second or 0)
    if first == "bad":
        return bad(environ, start_response, second)
    if first == "input":
        return read_input(environ, start_response)
    if first == "environ":
        return show_environ(environ, start_response)
    if first == "stream":
        return stream(environ, start_response, second)
    if first == "pid":
        return pid(environ, start_response)
    if first == "gate":
        return gate(environ, start_response, second)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such test app\n"]


def create_app(greeting):
    """A factory, for MODULE:create_app('...')."""

    def greet(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [greeting.encode() + b"\n"]

    return greet
