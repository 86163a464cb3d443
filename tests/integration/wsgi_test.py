"""handoff's WSGI server (handler/python/handoff_handler/wsgi.py) against gunicorn, and against PEP 3333.

    /usr/bin/python3 tests/integration/wsgi_test.py REACTOR      (or HANDOFF_REACTOR=... without the argument)

Real processes over loopback: each app of tests/wsgi/ is served by a reactor with two handlers of
`python3 -m handoff_handler.wsgi`, and by gunicorn with two sync workers, both behind wsgiref.validate
(HANDOFF_WSGI_VALIDATE=1), so that a breach of PEP 3333 by either server raises in the app and shows as a 500.
The same requests go to both, and the answers must be the same but for what the two servers legitimately do
differently (EXCLUDED, and the notes in Answer.comparable). Then handoff alone, with small apps written for
one rule each (tests/wsgi/pep_apps.py): write(), exc_info, close(), wsgi.file_wrapper, streaming, HEAD,
keep-alive, errors, wsgi.input, SCRIPT_NAME, and the errors of a command that names no app.

Every wait has a deadline (a state is polled for, never a time slept); the servers are stopped by their pids
at the end, whatever happened.
"""

import hashlib
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(ROOT, "tests", "wsgi")
PYTHON = sys.executable  # Debian's python3: the one with Flask, Bottle and gunicorn.
REACTOR = None  # Set in main.
START_DEADLINE = 60.0  # For a server to listen: a Flask import on a loaded machine takes seconds.
IO_DEADLINE = 30.0  # For one answer.

# Headers the comparison leaves out, and why.
EXCLUDED = {
    "date": "the time of the answer",
    "server": "each server names itself",
    # Connection framing: gunicorn's sync workers close every connection and say so ("Connection: close"), and
    # say "keep-alive" otherwise; handoff keeps HTTP/1.1 connections open without a word. Checked on its own
    # for handoff (keep-alive tests below).
    "connection": "whether the connection stays open is each server's (gunicorn's sync workers never keep one)",
    # Body framing: an answer without the app's Content-Length goes chunked under gunicorn; handoff may compute
    # the length when it knows the whole body (PEP 3333 allows it). The bodies are compared de-framed, and
    # Content-Length where gunicorn has one (the app's) is compared apart, in assert_same.
    "transfer-encoding": "the body's framing is the server's",
    "content-length": "compared apart: the app's must be in both; handoff may add one it computed",
}


# --- Processes ---

def child_environment(**extra):
    environment = dict(os.environ)
    python_path = os.path.join(ROOT, "handler", "python")
    if environment.get("PYTHONPATH"):
        python_path += os.pathsep + environment["PYTHONPATH"]
    environment.update(PYTHONPATH=python_path, HANDOFF_WSGI_VALIDATE="1", PYTHONDONTWRITEBYTECODE="1")
    environment.pop("SCRIPT_NAME", None)
    environment.update(extra)
    return environment


class Server:
    """A server process on a loopback port, its stderr in a file."""

    name = "server"

    def __init__(self):
        self.log_file = tempfile.NamedTemporaryFile(prefix="handoff-wsgi-", suffix=".log", delete=False)
        self.process = None
        self.port = None

    def log(self):
        with open(self.log_file.name, "r", errors="replace") as log:
            return log.read()

    def wait_for_log(self, text, deadline=IO_DEADLINE):
        """The log once it holds text; fails when it does not by the deadline."""
        end = time.monotonic() + deadline
        while True:
            log = self.log()
            if text in log:
                return log
            if time.monotonic() > end:
                raise AssertionError("%s's log never said %r:\n%s" % (self.name, text, log))
            time.sleep(0.02)

    def stop(self):
        """SIGTERM, and SIGKILL if it does not exit in time; by pid, ours only."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.log_file.close()
        os.unlink(self.log_file.name)

    def children(self):
        """The pids of the server's child processes (its workers or handlers)."""
        pids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # Gone meanwhile.
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                pids.add(int(entry))
        return pids


class Handoff(Server):
    """The reactor with two handlers of `python3 -m handoff_handler.wsgi ARGUMENTS...`, started in APPS."""

    name = "handoff"

    def __init__(self, *arguments, environment=None, reactor_options=(), short_form=False):
        super().__init__()
        command = [REACTOR, "--listen", "127.0.0.1:0", "--admin", "off", "--handlers", "2"]
        if short_form:  # --wsgi MODULE:APP, with the python3 found on PATH.
            command += ["--wsgi"] + list(arguments)
        else:
            command += ["--handler-cmd", shlex.join([PYTHON, "-m", "handoff_handler.wsgi"] + list(arguments))]
        command.extend(reactor_options)
        if os.geteuid() == 0:
            command.append("--allow-root-handlers")  # As root (CI), the handlers run as root too.
        self.process = subprocess.Popen(command, cwd=APPS, env=environment or child_environment(),
                                        stdout=subprocess.PIPE, stderr=self.log_file)

    def wait_ready(self):
        """Reads the port from "listening on 127.0.0.1:PORT", the reactor's first line once its handlers are
        ready."""
        self.port = int(self._first_line().rsplit(":", 1)[1])
        return self

    def wait_exit(self):
        """The exit status of a reactor that is to give up."""
        try:
            return self.process.wait(timeout=START_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError("the reactor did not exit:\n" + self.log()) from None

    def _first_line(self):
        out = b""
        end = time.monotonic() + START_DEADLINE
        fd = self.process.stdout.fileno()
        while b"\n" not in out:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError("the reactor did not listen in %d s:\n%s" % (START_DEADLINE, self.log()))
            data = os.read(fd, 4096)
            if not data:
                raise AssertionError("the reactor exited (%s):\n%s" % (self.process.wait(), self.log()))
            out += data
        line = out.split(b"\n", 1)[0].decode()
        if not line.startswith("listening on "):
            raise AssertionError("the reactor's first line is %r" % line)
        return line


class Gunicorn(Server):
    """gunicorn with two sync workers, on a listening socket made here and passed as fd:// (no race for a
    free port). Connections wait in its backlog until a worker is up, so it is ready at once."""

    name = "gunicorn"

    def __init__(self, app):
        super().__init__()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-w", "2", "--bind", "fd://%d" % listener.fileno(), app],
            cwd=APPS, env=child_environment(), pass_fds=[listener.fileno()], stdout=self.log_file,
            stderr=self.log_file)
        listener.close()

    def wait_ready(self):
        return self


# --- HTTP, read by hand: the framing is what some tests look at ---

class Answer:
    """One response as read off the socket: status, reason, headers (in order, as sent), the body without its
    framing, the framing ("length", "chunked", "close" or "none"), the chunks, and whether it came whole."""

    def __init__(self, status, reason, headers):
        self.status, self.reason, self.headers = status, reason, headers
        self.body = b""
        self.framing = "none"
        self.chunks = []
        self.complete = True

    def header(self, name):
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name):
        return [value for field, value in self.headers if field.lower() == name.lower()]

    def comparable(self, port):
        """What must be the same under both servers: status, reason, the headers but EXCLUDED, the body.

        Host and port: each server's own (127.0.0.1:PORT) reads alike, as the apps echo the Host header
        (Bottle's absolute Location, Flask's request.host). The value of Flask's session cookie: it is signed
        with the time (itsdangerous), so two servers a second apart sign it differently; its attributes are
        compared, and the value is checked by sending it back (test_session). Werkzeug's Allow: it lists the
        methods of a set, in the order of the process's string hashes (PYTHONHASHSEED), so each worker's may
        differ; compared as a set."""
        own = "127.0.0.1:%d" % port
        headers = []
        for name, value in self.headers:
            if name.lower() in EXCLUDED:
                continue
            value = value.replace(own, "127.0.0.1:PORT")
            if name.lower() == "set-cookie" and value.startswith("session="):
                value = "session=(signed)" + value[value.index(";"):]
            if name.lower() == "allow":
                value = ", ".join(sorted(value.split(", ")))
            headers.append((name, value))
        return self.status, self.reason, headers, self.body.replace(own.encode(), b"127.0.0.1:PORT")


class Client:
    """One connection to a server; requests written as given, answers read one by one."""

    def __init__(self, port):
        self.port = port
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=IO_DEADLINE)
        self.buffer = b""

    def close(self):
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def send(self, method, target, headers=(), body=b"", version="HTTP/1.1", host=True):
        lines = ["%s %s %s" % (method, target, version)]
        if host:
            lines.append("Host: 127.0.0.1:%d" % self.port)
        lines.extend("%s: %s" % field for field in headers)
        if body and not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers):
            lines.append("Content-Length: %d" % len(body))
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def request(self, method, target, headers=(), body=b"", version="HTTP/1.1", host=True):
        self.send(method, target, headers, body, version, host)
        return self.answer(method)

    def answer(self, method="GET"):
        """The next response; AssertionError when the connection ends before its head."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise AssertionError("the connection closed before a response (%r)" % self.buffer[:200])
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        _, status, reason = (lines[0] + " ").split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        answer = Answer(int(status), reason.rstrip(" "), headers)
        if method == "HEAD" or answer.status in (204, 304):
            return answer
        if (answer.header("Transfer-Encoding") or "").lower() == "chunked":
            answer.framing = "chunked"
            self._read_chunks(answer)
        elif answer.header("Content-Length") is not None:
            answer.framing = "length"
            answer.body = self._read(int(answer.header("Content-Length")))
            answer.complete = len(answer.body) == int(answer.header("Content-Length"))
        else:
            answer.framing = "close"
            while self._fill():
                pass
            answer.body, self.buffer = self.buffer, b""
        return answer

    def closed(self):
        """Whether the server closed the connection (EOF before any more bytes)."""
        if self.buffer:
            return False
        return not self._fill()

    def _read_chunks(self, answer):
        while True:
            line = self._line()
            if line is None:
                answer.complete = False
                return
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while self._line() not in (b"", None):  # Trailer fields, then the empty line.
                    pass
                return
            data = self._read(size + 2)
            if len(data) < size + 2:
                answer.body += data[:size]
                answer.complete = False
                return
            answer.chunks.append(data[:size])
            answer.body += data[:size]

    def _line(self):
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _read(self, size):
        while len(self.buffer) < size and self._fill():
            pass
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _fill(self):
        try:
            data = self.socket.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)


def one_request(port, *arguments, **keywords):
    with Client(port) as client:
        return client.request(*arguments, **keywords)


def closes(path):
    """The close log's lines for the request of path (tests/wsgi/pep_apps.py), once the app logged one."""
    end = time.monotonic() + IO_DEADLINE
    while True:
        with open(servers["close_log"]) as log:
            lines = [line for line in log.read().splitlines() if line.startswith("closed %s " % path)]
        if lines:
            return lines
        if time.monotonic() > end:
            raise AssertionError("close() of %s was never called" % path)
        time.sleep(0.02)


def read(path):
    with open(path, "rb") as file:
        return file.read()


def curl(*arguments):
    """curl's stdout, as text; a failure of curl fails the test."""
    done = subprocess.run(["curl", "--silent", "--show-error", "--max-time", str(int(IO_DEADLINE))]
                          + list(arguments), capture_output=True, timeout=IO_DEADLINE + 5)
    if done.returncode != 0:
        raise AssertionError("curl %s: %s" % (" ".join(arguments), done.stderr.decode(errors="replace")))
    return done.stdout.decode(errors="replace")


# --- The servers, started together (their start-ups overlap) and stopped at the end ---

servers = {}


def reactor_has_option(option):
    done = subprocess.run([REACTOR, "--help"], capture_output=True, text=True, timeout=IO_DEADLINE)
    return option in done.stdout


def setUpModule():
    close_log = tempfile.NamedTemporaryFile(prefix="handoff-wsgi-close-", delete=False)
    close_log.close()
    servers["close_log"] = close_log.name
    servers["gate_dir"] = tempfile.mkdtemp(prefix="handoff-wsgi-gates-")
    pep_environment = child_environment(HANDOFF_WSGI_CLOSE_LOG=close_log.name, HANDOFF_WSGI_VALIDATE="0",
                                        HANDOFF_WSGI_GATE_DIR=servers["gate_dir"])
    started = {
        "flask": Handoff("flask_app"),
        "flask-gunicorn": Gunicorn("flask_app"),
        "bottle": Handoff("bottle_app:application"),
        "bottle-gunicorn": Gunicorn("bottle_app:application"),
        "pep": Handoff("pep_apps:application", environment=pep_environment),
        "stopped": Handoff("pep_apps", environment=pep_environment),  # test_a_stop_closes_the_connection stops it.
        "impatient": Handoff("pep_apps", environment=pep_environment, reactor_options=["--write-timeout", "300ms"]),
        "mounted": Handoff("--script-name", "/mount/", "pep_apps"),
        "mounted-by-env": Handoff("pep_apps:application", environment=child_environment(SCRIPT_NAME="/env")),
        "factory": Handoff("pep_apps:create_app('made by a factory')"),
        # The reactor's --wsgi, with this test's Python first on PATH as python3.
        "short-form": Handoff("pep_apps", short_form=True, environment=child_environment(
            PATH=os.path.dirname(PYTHON) + os.pathsep + os.environ.get("PATH", ""))),
    }
    if reactor_has_option("--preload"):
        started["preloaded"] = Handoff("pep_apps", environment=pep_environment, reactor_options=["--preload"])
    servers.update(started)
    try:
        for server in started.values():
            server.wait_ready()
    except BaseException:
        tearDownModule()  # unittest calls it only after a setUpModule that succeeded.
        raise


def tearDownModule():
    """Stops every server; then fails if a handler's log shows what no test asked for: a warning of
    wsgiref.validate, an iterable never closed, a fault of the library's own."""
    faults = []
    for key, server in list(servers.items()):
        if isinstance(server, Handoff):
            for fault in ("WSGIWarning", "Exception ignored", "without being closed", "writing the response failed",
                          "AssertionError"):
                if fault in server.log():
                    faults.append("%s: %s\n%s" % (key, fault, server.log()))
        if isinstance(server, Server):
            server.stop()
    if "close_log" in servers:
        os.unlink(servers.pop("close_log"))
    if "gate_dir" in servers:
        shutil.rmtree(servers.pop("gate_dir"))
    if faults:
        raise AssertionError("\n".join(faults))


# --- handoff against gunicorn ---

class Comparison(unittest.TestCase):
    ours = theirs = None  # Server keys, set by each subclass.

    def both(self, method, target, headers=(), body=b"", version="HTTP/1.1"):
        """(handoff's answer, gunicorn's) to the same request, each on a connection of its own."""
        return (one_request(servers[self.ours].port, method, target, headers, body, version),
                one_request(servers[self.theirs].port, method, target, headers, body, version))

    def assert_same(self, ours, theirs, method="GET", version="HTTP/1.1"):
        self.assertTrue(ours.complete, "handoff's answer was cut")
        self.assertTrue(theirs.complete, "gunicorn's answer was cut")
        self.assertEqual(ours.comparable(servers[self.ours].port), theirs.comparable(servers[self.theirs].port))
        # The app's Content-Length, which gunicorn passes on, is handoff's too; one handoff computed, where
        # gunicorn chunks, must be the body's length.
        if theirs.header("Content-Length") is not None:
            self.assertEqual(ours.header_values("Content-Length"), theirs.header_values("Content-Length"))
        elif ours.header("Content-Length") is not None and method != "HEAD":
            self.assertEqual(int(ours.header("Content-Length")), len(ours.body))
        # handoff's own framing: chunked to HTTP/1.1 without a length, until the close to HTTP/1.0.
        if method != "HEAD" and ours.status not in (204, 304) and ours.header("Content-Length") is None:
            self.assertEqual(ours.framing, "chunked" if version == "HTTP/1.1" else "close")
        if ours.framing == "close" or version == "HTTP/1.0" and ours.header("Content-Length") is None:
            self.assertEqual(ours.header("Connection"), "close")

    def compare(self, cases):
        """cases: (method, target, headers, body, version, expected status)."""
        for method, target, headers, body, version, status in cases:
            with self.subTest(request="%s %s %s" % (method, target, version)):
                ours, theirs = self.both(method, target, headers, body, version)
                self.assertEqual(ours.status, status, ours.body[:300])
                self.assert_same(ours, theirs, method, version)


class FlaskTest(Comparison):
    ours, theirs = "flask", "flask-gunicorn"

    def test_requests(self):
        upload = self.multipart()
        self.compare([
            ("GET", "/", (), b"", "HTTP/1.1", 200),
            ("GET", "/", (), b"", "HTTP/1.0", 200),
            ("HEAD", "/", (), b"", "HTTP/1.1", 200),
            ("POST", "/", (), b"x=1", "HTTP/1.1", 405),  # Flask's own 405, with Allow.
            ("GET", "/items/7", (), b"", "HTTP/1.1", 200),
            ("GET", "/items/%37", (), b"", "HTTP/1.1", 200),  # PATH_INFO is decoded: /items/7.
            ("PUT", "/items/7", [("Content-Type", "application/json")], b'{"name": "seven", "n": [1, 2]}',
             "HTTP/1.1", 201),
            ("DELETE", "/items/7", (), b"", "HTTP/1.1", 204),
            ("GET", "/items/seven", (), b"", "HTTP/1.1", 404),  # Its own 404 page, as JSON.
            ("GET", "/nothing/here", (), b"", "HTTP/1.1", 404),
            ("GET", "/redirect", (), b"", "HTTP/1.1", 302),
            ("POST", "/json", [("Content-Type", "application/json; charset=utf-8")],
             json.dumps({"b": "\u00e9t\u00e9", "a": None}).encode(), "HTTP/1.1", 200),
            ("POST", "/upload", [("Content-Type", upload[0])], upload[1], "HTTP/1.1", 200),
            ("GET", "/query?b=2&a=1&a=%C3%A9+x&empty", (), b"", "HTTP/1.1", 200),
            ("GET", "/file", (), b"", "HTTP/1.1", 200),
            ("GET", "/file", [("Range", "bytes=10-29")], b"", "HTTP/1.1", 206),
            ("GET", "/stream/5?prefix=p", (), b"", "HTTP/1.1", 200),
            ("GET", "/stream/5", (), b"", "HTTP/1.0", 200),
            ("HEAD", "/stream/5", (), b"", "HTTP/1.1", 200),
            ("GET", "/stream/0", (), b"", "HTTP/1.1", 200),
            ("GET", "/plain-stream", (), b"", "HTTP/1.1", 200),
            ("GET", "/whoami", (), b"", "HTTP/1.1", 200),
            ("GET", "/boom", (), b"", "HTTP/1.1", 500),  # Its own 500 page.
        ])

    def multipart(self):
        """(content type, body) of a form with a file and a field, as a browser sends it."""
        data = read(os.path.join(APPS, "flask_app.py"))
        boundary = "----handoffboundary7MA4YWxk"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--%s\r\nContent-Disposition: "
                "form-data; name=\"file\"; filename=\"flask_app.py\"\r\nContent-Type: text/x-python\r\n\r\n"
                % (boundary, boundary)).encode() + data + ("\r\n--%s--\r\n" % boundary).encode()
        return "multipart/form-data; boundary=" + boundary, body

    def test_answers_mean_what_they_should(self):
        """The comparison holds when both servers fail alike: these say what right is."""
        port = servers[self.ours].port
        self.assertEqual(one_request(port, "GET", "/").body, b"hello from flask\n")
        whoami = json.loads(one_request(port, "GET", "/whoami").body)
        self.assertEqual(whoami, {"remote_addr": "127.0.0.1", "scheme": "http", "host": "127.0.0.1:%d" % port})
        stream = one_request(port, "GET", "/stream/3?prefix=p")
        self.assertEqual(stream.body, b"p 0 p\np 1 p\np 2 p\n")
        self.assertEqual(stream.framing, "chunked")
        self.assertGreaterEqual(len(stream.chunks), 3)  # Each piece goes out as it comes.
        self.assertEqual(one_request(port, "GET", "/boom").body, b"custom 500: RuntimeError\n")
        upload_type, upload = self.multipart()
        received = json.loads(one_request(port, "POST", "/upload", [("Content-Type", upload_type)], upload).body)
        data = read(os.path.join(APPS, "flask_app.py"))
        self.assertEqual(received, {"name": "flask_app.py", "size": len(data), "field": "hi",
                                    "sha256": hashlib.sha256(data).hexdigest()})
        self.assertEqual(one_request(port, "GET", "/file").body, data)
        self.assertEqual(one_request(port, "GET", "/redirect").header("Location"), "/")

    def test_session(self):
        """The session cookie of one request, sent back, gives the value stored (each server its own)."""
        for key in (self.ours, self.theirs):
            with self.subTest(server=key):
                port = servers[key].port
                cookie = one_request(port, "GET", "/session/set?value=ada").header("Set-Cookie")
                self.assertTrue(cookie.startswith("session="), cookie)
                answer = one_request(port, "GET", "/session/get", [("Cookie", cookie.split(";")[0])])
                self.assertEqual(answer.body, b"value=ada\n")

    def test_keep_alive(self):
        """Several requests over one handoff connection, a streamed one and a HEAD among them, answer as
        gunicorn answers each on its own connection; and a pipelined pair."""
        cases = [("GET", "/", (), b""), ("GET", "/stream/3", (), b""), ("HEAD", "/stream/2", (), b""),
                 ("PUT", "/items/3", [("Content-Type", "application/json")], b"[1]"),
                 ("DELETE", "/items/3", (), b""), ("GET", "/plain-stream", (), b""), ("GET", "/whoami", (), b""),
                 ("GET", "/boom", (), b""), ("GET", "/file", (), b"")]
        with Client(servers[self.ours].port) as client:
            for method, target, headers, body in cases:
                with self.subTest(request="%s %s" % (method, target)):
                    ours = client.request(method, target, headers, body)
                    theirs = one_request(servers[self.theirs].port, method, target, headers, body)
                    self.assert_same(ours, theirs, method)
                    self.assertIsNone(ours.header("Connection"))
            # Two requests in one write: the second waits in the reactor while the first streams.
            client.socket.sendall(("GET /stream/2 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n"
                                   "Connection: close\r\n\r\n").encode())
            self.assertEqual(client.answer().body, b"line 0 -\nline 1 -\n")
            last = client.answer()
            self.assertEqual((last.body, last.header("Connection")), (b"hello from flask\n", "close"))
            self.assertTrue(client.closed())

    def test_curl(self):
        """A real client: an upload with -F, a session in a cookie jar, streams in HTTP/1.1 and 1.0, and curl's
        transfers sharing one connection."""
        path = os.path.join(APPS, "flask_app.py")
        with tempfile.TemporaryDirectory() as folder:
            answers = {}
            for key in (self.ours, self.theirs):
                url = "http://127.0.0.1:%d" % servers[key].port
                jar = os.path.join(folder, key + ".jar")
                answers[key] = [
                    curl("-F", "file=@" + path, "-F", "note=from curl", url + "/upload"),
                    curl("-c", jar, "-b", jar, url + "/session/set?value=curl", url + "/session/get"),
                    curl(url + "/stream/40?prefix=x"),
                    curl("--http1.0", url + "/stream/40"),
                    curl("-X", "PUT", "-H", "Content-Type: application/json", "--data", '{"k": "v"}',
                         url + "/items/9"),
                ]
            self.assertEqual(answers[self.ours], answers[self.theirs])
            self.assertEqual(answers[self.ours][1], "stored\nvalue=curl\n")
            self.assertEqual(json.loads(answers[self.ours][0])["sha256"],
                             hashlib.sha256(read(path)).hexdigest())
        url = "http://127.0.0.1:%d" % servers[self.ours].port
        connects = curl("--write-out", "%{num_connects} ", "-o", "/dev/null", url + "/", "-o", "/dev/null",
                        url + "/stream/3", "-o", "/dev/null", url + "/items/1", "-o", "/dev/null", url + "/boom")
        self.assertEqual(connects, "1 0 0 0 ")


class BottleTest(Comparison):
    ours, theirs = "bottle", "bottle-gunicorn"

    def test_requests(self):
        self.compare([
            ("GET", "/", (), b"", "HTTP/1.1", 200),
            ("HEAD", "/", (), b"", "HTTP/1.1", 200),
            ("GET", "/hello/ada%20lovelace", (), b"", "HTTP/1.1", 200),
            ("POST", "/echo", [("Content-Type", "text/plain")], b"echo \x00\xff me", "HTTP/1.1", 200),
            ("GET", "/json?x=1&y=two", (), b"", "HTTP/1.1", 200),
            ("GET", "/stream/4", (), b"", "HTTP/1.1", 200),
            ("GET", "/stream/4", (), b"", "HTTP/1.0", 200),
            ("GET", "/moved", (), b"", "HTTP/1.1", 303),  # Bottle's redirect to HTTP/1.1.
            ("GET", "/nowhere", (), b"", "HTTP/1.1", 404),
        ])
        self.assertEqual(one_request(servers[self.ours].port, "GET", "/stream/2").body,
                         b"bottle line 0\nbottle line 1\n")


# --- PEP 3333, through handoff alone ---

class PepTest(unittest.TestCase):
    def setUp(self):
        self.server = servers["pep"]
        self.port = self.server.port

    def request(self, *arguments, **keywords):
        return one_request(self.port, *arguments, **keywords)

    def test_write_callable(self):
        answer = self.request("GET", "/write")
        self.assertEqual(answer.body, b"written one, written two, returned three\n")
        self.assertEqual(answer.framing, "chunked")
        self.assertEqual(answer.chunks, [b"written one, ", b"written two, ", b"returned three\n"])
        self.assertEqual(self.request("GET", "/write", version="HTTP/1.0").body, answer.body)

    def test_exc_info_before_the_head_replaces_the_status(self):
        answer = self.request("GET", "/exc-before-head")
        self.assertEqual((answer.status, answer.body, answer.header("X-First")), (503, b"replaced\n", None))

    def test_exc_info_after_the_head_cuts_the_connection(self):
        with Client(self.port) as client:
            answer = client.request("GET", "/exc-after-head")
            self.assertEqual((answer.status, answer.body, answer.complete), (200, b"first piece\n", False))
            self.assertTrue(client.closed())
        self.server.wait_for_log("GET /exc-after-head: the app raised ValueError('fails after the head'); the "
                                 "response had begun: the connection is cut")

    def test_close_is_always_called(self):
        ok = self.request("GET", "/closing/ok/whole")
        self.assertEqual((ok.status, len(ok.body), ok.complete), (200, 3 * 65536, True))
        self.assertEqual(closes("/closing/ok/whole"), ["closed /closing/ok/whole after 3 pieces"])
        failed = self.request("GET", "/closing/raise-before")
        self.assertEqual((failed.status, failed.body), (500, b"internal error\n"))
        self.assertEqual(closes("/closing/raise-before"), ["closed /closing/raise-before after 0 pieces"])
        with Client(self.port) as client:
            cut = client.request("GET", "/closing/raise-during")
            self.assertEqual((cut.status, len(cut.body), cut.complete), (200, 2 * 65536, False))
            self.assertTrue(client.closed())
        self.assertEqual(closes("/closing/raise-during"), ["closed /closing/raise-during after 2 pieces"])
        head = self.request("HEAD", "/closing/ok/head")  # The answer ends at its head: the rest is not read.
        self.assertEqual((head.status, head.body), (200, b""))
        self.assertEqual(closes("/closing/ok/head"), ["closed /closing/ok/head after 1 pieces"])
        # A client that leaves in the middle of an answer.
        with Client(self.port) as client:
            client.send("GET", "/closing/gone")
            while len(client.buffer) < 200000:
                self.assertTrue(client._fill())
        (gone,) = closes("/closing/gone")
        self.assertLess(int(gone.split()[3]), 4000, gone)
        self.assertEqual(self.request("GET", "/pid").status, 200)

    def test_file_wrapper(self):
        data = read(os.path.join(APPS, "pep_apps.py"))
        for version in ("HTTP/1.1", "HTTP/1.0"):
            with self.subTest(version=version):
                with Client(self.port) as client:
                    answer = client.request("GET", "/file/10", version=version,
                                            headers=[("Connection", "keep-alive")])
                    self.assertEqual(answer.body, data[10:])  # From the file's position, not its start.
                    self.assertEqual(answer.header("Content-Length"), str(len(data) - 10))
                    self.assertEqual(client.request("GET", "/pid", version=version).status, 200)
        head = self.request("HEAD", "/file/0")
        self.assertEqual((head.status, head.body), (200, b""))

    def test_streams_chunked_to_http_1_1_and_until_the_close_to_http_1_0(self):
        with Client(self.port) as client:
            answer = client.request("GET", "/stream/3")
            self.assertEqual((answer.framing, answer.chunks), ("chunked", [b"piece 0\n", b"piece 1\n", b"piece 2\n"]))
            self.assertIsNone(answer.header("Connection"))
            self.assertEqual(client.request("GET", "/stream/1").body, b"piece 0\n")  # Still open.
        with Client(self.port) as client:
            answer = client.request("GET", "/stream/3", headers=[("Connection", "keep-alive")], version="HTTP/1.0")
            self.assertEqual((answer.framing, answer.body, answer.header("Connection")),
                             ("close", b"piece 0\npiece 1\npiece 2\n", "close"))
            self.assertIsNone(answer.header("Transfer-Encoding"))
            self.assertTrue(client.closed())

    def test_head_has_no_body_and_keeps_the_connection(self):
        with Client(self.port) as client:
            for target in ("/stream/3", "/write", "/pid", "/closing/ok"):
                with self.subTest(target=target):
                    answer = client.request("HEAD", target)
                    self.assertEqual(answer.status, 200)
                    self.assertIsNone(answer.header("Transfer-Encoding"))
            # Nothing of a body came after the heads: the next answer reads cleanly.
            self.assertEqual(client.request("GET", "/stream/2").body, b"piece 0\npiece 1\n")

    def test_keep_alive_over_many_answers(self):
        with Client(self.port) as client:
            for target in ("/pid", "/stream/4", "/write", "/file/0", "/bad/raise", "/exc-before-head", "/bad/long",
                           "/closing/ok", "/pid"):
                with self.subTest(target=target):
                    answer = client.request("GET", target)
                    self.assertTrue(answer.complete)
                    self.assertIsNone(answer.header("Connection"))
            self.assertEqual(client.request("POST", "/input", body=b"abc").status, 200)

    def test_errors_give_a_500_and_the_handlers_serve_on(self):
        handlers = self.server.children()
        self.assertEqual(len(handlers), 2)
        logged = {
            "raise": "the app raised RuntimeError('the app raises on purpose'); answered 500",
            "status": "the app's status \"700 Weird\" is not a final status (200 to 599); answered 500",
            "status-1xx": "the app's status \"103 Early Hints\" is not a final status",
            "status-type": "the app's status is int, not str",
            "connection": "the app gave a Connection header, which belongs to the connection",
            "transfer-encoding": "the app gave a Transfer-Encoding header",
            "latin1": "the app gave a X-Name header holding characters latin-1 has not",
            "crlf": "the app gave a X-Split header holding a control character (\"a\\r\\nSet-Cookie: evil=1\")",
            "name": "the app gave a header name that is not a token: \"Bad Name\"",
            "value-type": "the app gave a X-Number header of type int, not str",
            "two-lengths": "the app gave a Content-Length of \"3\", and another before it",
            "str-body": "the app gave a piece of its body of type str, not bytes",
        }
        with Client(self.port) as client:
            for what, line in logged.items():
                with self.subTest(what=what):
                    answer = client.request("GET", "/bad/" + what)
                    self.assertEqual((answer.status, answer.body), (500, b"internal error\n"))
                    self.assertNotIn(b"must not be sent", answer.body)
                    self.server.wait_for_log("GET /bad/%s: %s" % (what, line))
            long = client.request("GET", "/bad/long")
            self.assertEqual((long.status, long.body), (200, b"abc"))
        with Client(self.port) as client:
            short = client.request("GET", "/bad/short")
            self.assertEqual((short.status, short.body, short.complete), (200, b"abc", False))
            self.assertTrue(client.closed())
        self.server.wait_for_log("GET /bad/short: the app's body ended 7 bytes short of its Content-Length")
        self.assertEqual(self.request("GET", "/pid").status, 200)
        self.assertEqual(self.server.children(), handlers)  # Neither handler died nor was replaced.

    def test_input_in_pieces(self):
        body = b"abcdef\nsecond line\nthird\nfourth\nlast"
        expected = {"read3": "abc", "readline": "def\n", "readline2": "se", "readlines": ["cond line\n"],
                    "iterated": ["third\n", "fourth\n", "last"], "rest": "", "content_length": str(len(body))}
        self.assertEqual(json.loads(self.request("POST", "/input", body=body).body), expected)
        # A chunked body comes de-chunked, with its length.
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
        answer = self.request("POST", "/input", [("Transfer-Encoding", "chunked")], chunked)
        self.assertEqual(json.loads(answer.body), expected)

    def test_environ(self):
        environ = json.loads(self.request(
            "GET", "/environ/caf%C3%A9%20au%2Flait?q=caf%C3%A9&x", host=False,
            headers=[("Host", "example.com:8080"), ("X-Twice", "1"), ("X-Twice", "2"), ("X_Underscore", "dropped"),
                     ("Cookie", "a=1"), ("Cookie", "b=2"), ("Content-Type", "text/plain")]).body)
        self.assertEqual(environ["PATH_INFO"], "/environ/caf\u00c3\u00a9 au/lait")  # UTF-8 bytes as latin-1.
        expected = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "QUERY_STRING": "q=caf%C3%A9&x",
                    "SERVER_NAME": "example.com", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
                    "HTTP_X_TWICE": "1,2", "HTTP_COOKIE": "a=1; b=2", "CONTENT_TYPE": "text/plain",
                    "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "example.com:8080"}
        self.assertEqual({key: environ.get(key) for key in expected}, expected)
        self.assertTrue(environ["REMOTE_PORT"].isdigit())
        self.assertNotIn("HTTP_X_UNDERSCORE", environ)
        self.assertNotIn("CONTENT_LENGTH", environ)  # No body, no length.
        self.assertNotIn("HTTP_CONTENT_TYPE", environ)
        self.assertEqual(environ["wsgi"]["wsgi.version"], "(1, 0)")
        self.assertEqual(environ["wsgi"]["wsgi.url_scheme"], "'http'")
        self.assertEqual(environ["wsgi"]["wsgi.multithread"], "False")
        self.assertEqual(environ["wsgi"]["wsgi.multiprocess"], "True")
        self.assertEqual(environ["wsgi"]["wsgi.run_once"], "False")
        self.assertIn("FileWrapper", environ["wsgi"]["wsgi.file_wrapper"])
        # HTTP/1.0 without a Host: the socket's own address.
        old = json.loads(self.request("GET", "/environ", version="HTTP/1.0", host=False).body)
        self.assertEqual((old["SERVER_NAME"], old["SERVER_PORT"], old["SERVER_PROTOCOL"]),
                         ("127.0.0.1", str(self.port), "HTTP/1.0"))

    def test_script_name(self):
        port = servers["mounted"].port
        environ = json.loads(one_request(port, "GET", "/mount/environ/x").body)
        self.assertEqual((environ["SCRIPT_NAME"], environ["PATH_INFO"]), ("/mount", "/environ/x"))
        self.assertEqual(one_request(port, "GET", "/mount").body, b"no such test app\n")  # PATH_INFO "".
        self.assertEqual(one_request(port, "GET", "/mountain/environ").status, 404)
        outside = one_request(port, "GET", "/environ")
        self.assertEqual((outside.status, outside.body), (404, b"not found\n"))
        environ = json.loads(one_request(servers["mounted-by-env"].port, "GET", "/env/environ").body)
        self.assertEqual((environ["SCRIPT_NAME"], environ["PATH_INFO"]), ("/env", "/environ"))

    def test_a_factory(self):
        self.assertEqual(one_request(servers["factory"].port, "GET", "/").body, b"made by a factory\n")

    def test_the_reactors_wsgi_option_serves_the_app(self):
        """handoff --wsgi MODULE:APP is the command python3 -m handoff_handler.wsgi MODULE:APP."""
        server = servers["short-form"]
        for pid in server.children():
            with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
                self.assertEqual(cmdline.read().split(b"\0")[1:4], [b"-m", b"handoff_handler.wsgi", b"pep_apps"])
        answer = one_request(server.port, "GET", "/pid")
        self.assertEqual(answer.status, 200)
        self.assertIn(int(answer.body), server.children())

    def test_a_body_known_whole_gets_a_content_length(self):
        """PEP 3333, "Handling the Content-Length Header": a list of one item, or an iterable that ended
        before the head went out, gives the length; the connection stays open even to HTTP/1.0."""
        with Client(self.port) as client:
            one = client.request("GET", "/pid", headers=[("Connection", "keep-alive")], version="HTTP/1.0")
            self.assertEqual((one.framing, one.header("Content-Length")), ("length", str(len(one.body))))
            self.assertEqual(one.header("Connection"), "keep-alive")
            none = client.request("GET", "/stream/0", headers=[("Connection", "keep-alive")], version="HTTP/1.0")
            self.assertEqual((none.framing, none.header("Content-Length"), none.body), ("length", "0", b""))

    def test_a_line_gets_one_line_of_error(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=IO_DEADLINE) as client:
            client.sendall(b"ping\n")
            self.assertEqual(client.makefile("rb").readline(), b"ERR this port serves a WSGI app, over HTTP only\n")


class HandOffTest(unittest.TestCase):
    """What the reactor does with a WSGI handler's connections: stops, write timeouts, a handler that dies."""

    def gate(self, name):
        """The path of the gate NAME's files: NAME.started once the app holds the request, NAME.open to let it
        go on."""
        return os.path.join(servers["gate_dir"], name)

    def wait_for_file(self, path):
        end = time.monotonic() + IO_DEADLINE
        while not os.path.exists(path):
            if time.monotonic() > end:
                raise AssertionError("%s never appeared" % path)
            time.sleep(0.01)

    def test_a_stop_closes_the_connection_after_the_answer_in_progress(self):
        """SIGTERM while the app runs: the answer goes out whole, and says Connection: close (the reactor
        drains); the reactor then exits with 0."""
        reactor = servers["stopped"]
        with Client(reactor.port) as client:
            client.send("GET", "/gate/stop")
            self.wait_for_file(self.gate("stop") + ".started")
            reactor.process.send_signal(signal.SIGTERM)
            reactor.wait_for_log("finishing 1 requests in progress")
            # The reactor closes its listener after it marks the state page as draining: once a connection
            # is refused, the handler reads "draining".
            end = time.monotonic() + IO_DEADLINE
            while True:
                try:
                    socket.create_connection(("127.0.0.1", reactor.port), timeout=IO_DEADLINE).close()
                except ConnectionRefusedError:
                    break
                self.assertLess(time.monotonic(), end, "the reactor kept listening")
                time.sleep(0.01)
            open(self.gate("stop") + ".open", "w").close()
            answer = client.answer()
            self.assertEqual((answer.status, answer.body, answer.framing, answer.header("Connection")),
                             (200, b"through the gate\n", "chunked", "close"))
            self.assertTrue(client.closed())
        self.assertEqual(reactor.wait_exit(), 0)

    def test_a_client_that_reads_nothing_is_given_up_after_the_write_timeout(self):
        """--write-timeout 300ms: a client that takes none of a long stream; the handler gives it up, closes
        the app's iterable, and serves on."""
        reactor = servers["impatient"]
        with Client(reactor.port) as client:
            client.send("GET", "/closing/gone/unread")
            (line,) = closes("/closing/gone/unread")
            self.assertLess(int(line.split()[3]), 4000, line)
        self.assertEqual(one_request(reactor.port, "GET", "/pid").status, 200)

    def test_a_handler_that_dies_after_streamed_answers_costs_one_clean_502(self):
        """The reactor judges a dead handler's connection by what its socket sent against what the handler
        reported: only exact figures for the streamed answers before (chunked, sendfile, write()) let it see
        that nothing of the last request went out, and answer it with a 502 on the same connection. (A POST:
        a GET would run again on another handler, --retry-crashed.)"""
        reactor = servers["impatient"]
        with Client(reactor.port) as client:
            for target in ("/stream/5", "/file/0", "/write", "/closing/ok/before-crash"):
                self.assertTrue(client.request("GET", target).complete)
            client.send("POST", "/gate/crash")
            self.wait_for_file(self.gate("crash") + ".started")
            with open(self.gate("crash") + ".started") as started:
                os.kill(int(started.read()), signal.SIGKILL)
            answer = client.answer()
            self.assertEqual(answer.status, 502, answer.body)


    def test_a_preloaded_app_serves_from_handlers_forked_from_the_template(self):
        """--preload: the command loads the app once, as a template, and the handlers forked from it serve it
        (their parent is the template, not the reactor)."""
        if "preloaded" not in servers:
            self.skipTest("this reactor has no --preload")
        reactor = servers["preloaded"]
        with Client(reactor.port) as client:
            pid = int(client.request("GET", "/pid").body)
            self.assertEqual(client.request("GET", "/stream/2").chunks, [b"piece 0\n", b"piece 1\n"])
        (template,) = reactor.children()
        with open("/proc/%d/stat" % pid) as stat:
            self.assertEqual(int(stat.read().rsplit(")", 1)[1].split()[1]), template)


class CommandTest(unittest.TestCase):
    def test_an_app_that_cannot_be_loaded_stops_the_reactor_with_one_clear_line(self):
        cases = {
            "no_such_module:app": "handoff_handler.wsgi: cannot import no_such_module: there is no module "
                                  "'no_such_module'",
            "pep_apps:no_such_app": "handoff_handler.wsgi: module pep_apps has no attribute 'no_such_app'",
            "pep_apps:_BAD": "handoff_handler.wsgi: pep_apps:_BAD is a dict, not a WSGI app",
        }
        reactors = {spec: Handoff(spec) for spec in cases}  # Together: their start-ups overlap.
        try:
            for spec, line in cases.items():
                with self.subTest(spec=spec):
                    self.assertNotEqual(reactors[spec].wait_exit(), 0)
                    self.assertIn(line, reactors[spec].log())
        finally:
            for reactor in reactors.values():
                reactor.stop()

    def test_help(self):
        done = subprocess.run([PYTHON, "-m", "handoff_handler.wsgi", "--help"], capture_output=True, text=True,
                              env=child_environment(), timeout=IO_DEADLINE)
        self.assertEqual(done.returncode, 0)
        self.assertIn("--script-name", done.stdout)
        done = subprocess.run([PYTHON, "-m", "handoff_handler.wsgi"], capture_output=True, text=True,
                              env=child_environment(), timeout=IO_DEADLINE)
        self.assertEqual(done.returncode, 2)


if __name__ == "__main__":
    REACTOR = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else \
        os.environ.get("HANDOFF_REACTOR")
    if not REACTOR:
        sys.exit("usage: wsgi_test.py REACTOR (or HANDOFF_REACTOR=REACTOR wsgi_test.py)")
    unittest.main(verbosity=2)
