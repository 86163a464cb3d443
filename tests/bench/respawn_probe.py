"""Times how long a server takes to replace a killed handler, from the outside, for
tests/bench/wsgi_vs_gunicorn.sh: SIGKILLs one idle handler of the server and polls it until a process that was
not there before answers; prints the time from the kill to that answer, in milliseconds.

    python3 tests/bench/respawn_probe.py SERVER_PID PORT [--handlers 2] [--timeout 15]

SERVER_PID is a handoff reactor or a gunicorn arbiter. Its handlers (or workers) are the processes below it that
have none of their own: with --preload a reactor's handlers are the children of its template. The app answers
GET /pid with the pid of the process that served it (tests/bench/flask_app.py). The kill waits until the
server has --handlers of them, each at least a second and a half old: handoff starts a replacement for a
handler that dies within its first second only after a backoff, which is not what this measures.

Each poll sends two requests at once, each on a fresh connection: while the surviving handler serves one,
the other goes to the replacement as soon as it serves (a handoff reactor queues it until then; gunicorn's
workers take it from the listening socket's backlog). Exits 1, saying what it saw, when no new process answers
within --timeout.
"""

import argparse
import os
import signal
import socket
import sys
import time

_REQUEST = b"GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
_MIN_AGE = 1.5  # Seconds a handler must have lived before it is killed.
_POLL_GAP = 0.002  # Seconds between two polls: the pollers share the cores with the handler that starts.


def _processes():
    """{pid: (parent pid, start time in clock ticks after boot)} of every process (proc(5), /proc/PID/stat)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # Gone meanwhile.
        found[int(name)] = (int(fields[1]), int(fields[19]))  # Fields 4 and 22, counted after the name.
    return found


def _descendants(processes, root):
    children = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    below, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            below.append(child)
            todo.append(child)
    return below, children


def _handlers_ready(server, count, deadline):
    """(handler pids, every pid below the server) once the server has count handlers, each old enough."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    while True:
        processes = _processes()
        if server not in processes:
            sys.exit("respawn_probe: the server (pid %d) is gone" % server)
        below, children = _descendants(processes, server)
        handlers = sorted(pid for pid in below if pid not in children)
        with open("/proc/uptime") as uptime:
            now = float(uptime.read().split()[0])
        youngest = min((now - processes[pid][1] / ticks_per_second for pid in handlers), default=0.0)
        if len(handlers) == count and youngest >= _MIN_AGE:
            return handlers, set(below) | {server}
        if time.monotonic() > deadline:
            sys.exit("respawn_probe: the server (pid %d) has %d handlers (%s), not %d each %.1f s old or more"
                     % (server, len(handlers), " ".join(map(str, handlers)) or "none", count, _MIN_AGE))
        time.sleep(0.05)


def _ask_pids(port, timeout):
    """Sends /pid on two fresh connections at once; the pids that answered, and the errors met."""
    answers, errors, connections = [], [], []
    for _ in range(2):
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            connection.sendall(_REQUEST)
            connections.append(connection)
        except OSError as error:
            errors.append(error)
    for connection in connections:
        try:
            response = b""
            while True:
                data = connection.recv(4096)
                if not data:
                    break
                response += data
            head, _, body = response.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200 ") and body.strip().isdigit():
                answers.append(int(body))
            else:
                errors.append(ValueError("an answer that is no pid: %r" % response[:80]))
        except OSError as error:
            errors.append(error)
        finally:
            connection.close()
    return answers, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", type=int, metavar="SERVER_PID")
    parser.add_argument("port", type=int)
    parser.add_argument("--handlers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each step")
    options = parser.parse_args()

    handlers, known = _handlers_ready(options.server, options.handlers, time.monotonic() + options.timeout)
    victim = handlers[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    deadline = killed_at + options.timeout
    polls = old_answers = 0
    failures = []
    while time.monotonic() < deadline:
        polls += 1
        answers, errors = _ask_pids(options.port, max(0.1, min(2.0, deadline - time.monotonic())))
        failures += errors
        new = [pid for pid in answers if pid not in known]
        if new:
            print("%.1f" % ((time.monotonic() - killed_at) * 1000))
            return
        old_answers += len(answers)
        time.sleep(_POLL_GAP)
    last = " (the last: %s)" % failures[-1] if failures else ""
    sys.exit("respawn_probe: no new process answered /pid within %.0f s of the SIGKILL of handler %d of server "
             "%d: %d polls, %d answers from the processes there before, %d failed requests%s"
             % (options.timeout, victim, options.server, polls, old_answers, len(failures), last))


if __name__ == "__main__":
    main()
