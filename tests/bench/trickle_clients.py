"""Slow clients for tests/bench/wsgi_vs_gunicorn.sh: connections that each trickle an HTTP request head into a
server, one byte at a time, and never finish it; the program stops by itself after --duration.

    python3 tests/bench/trickle_clients.py HOST PORT [--connections 200] [--interval 1] [--duration 10]

Each connection sends its first byte as soon as it is open, then one byte after each wait, drawn anew between
half of --interval and --interval (0.5 to 1 s by default), so the connections do not send in step. The head
never ends: after the request line and a Host field come the bytes of a header field that goes on for ever (a
server's limit on heads is far beyond what a run sends). A connection the server closes (handoff's
--read-timeout answers a head that takes too long with a 408) is opened again at its next byte, so that the
server has --connections slow clients for the whole run.

Prints "connected N" once every connection is open and has sent its first byte, then, at the end, what was
sent and how many connections the server closed. SIGTERM or SIGINT ends it early, the same way.
"""

import argparse
import heapq
import random
import selectors
import signal
import socket
import sys
import time

_HEAD = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: "
_FILLER = b"a"  # After _HEAD: the value of X-Trickle, which never ends.


class _SlowClient:
    def __init__(self, address):
        self._address = address
        self.sock = None
        self.sent = 0  # Bytes of the head sent on the current connection.

    def open(self):
        self.sock = socket.create_connection(self._address, timeout=5)
        self.sock.setblocking(False)
        self.sent = 0

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send_byte(self):
        """Sends the next byte of the head; False when the server has closed the connection."""
        piece = _HEAD[self.sent:self.sent + 1] or _FILLER
        try:
            if self.sock.send(piece) != 1:
                return False
        except (BlockingIOError, ConnectionError):
            return False
        self.sent += 1
        return True


def _stop(signal_number, frame):
    raise SystemExit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="the longest wait between two bytes of a connection, in seconds; the shortest is half")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds until it stops by itself")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    deadline = time.monotonic() + options.duration
    address = (options.host, options.port)
    clients = [_SlowClient(address) for _ in range(options.connections)]
    selector = selectors.DefaultSelector()  # Every open connection, to see the server close it.
    due = []  # (when, index): each connection's next byte.
    bytes_sent = closed_by_server = 0

    def open_and_send(index):
        nonlocal bytes_sent
        client = clients[index]
        client.open()
        selector.register(client.sock, selectors.EVENT_READ, index)
        if client.send_byte():
            bytes_sent += 1

    def closed(index):
        nonlocal closed_by_server
        closed_by_server += 1
        selector.unregister(clients[index].sock)
        clients[index].close()

    try:
        try:
            for index in range(options.connections):
                open_and_send(index)
                heapq.heappush(due, (time.monotonic() + random.uniform(options.interval / 2, options.interval), index))
        except OSError as error:
            sys.stderr.write("trickle_clients: cannot open connection %d of %d to %s:%d: %s\n"
                             % (len(selector.get_map()) + 1, options.connections, options.host, options.port,
                                error.strerror or error))
            sys.exit(1)
        print("connected %d" % options.connections, flush=True)
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            for key, _ in selector.select(max(0.0, min(due[0][0], deadline) - now)):
                # The server answered (a 408) or closed: either way this head goes no further on it.
                try:
                    key.fileobj.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    pass
                closed(key.data)
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, index = heapq.heappop(due)
                client = clients[index]
                try:
                    if client.sock is None:
                        open_and_send(index)
                    elif client.send_byte():
                        bytes_sent += 1
                    else:
                        closed(index)
                except OSError as error:
                    sys.stderr.write("trickle_clients: cannot open a connection again: %s\n" % (error.strerror or error))
                heapq.heappush(due, (now + random.uniform(options.interval / 2, options.interval), index))
    finally:
        for client in clients:
            client.close()
        print("sent %d bytes on %d connections; the server closed %d" % (bytes_sent, options.connections,
                                                                          closed_by_server), flush=True)


if __name__ == "__main__":
    main()
