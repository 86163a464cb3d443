#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/ (fuzz/README.md): the HTTP conformance cases as raw requests,
lines of the line protocol, and ipc frames built from the header of ipc/wire.hpp.

    fuzz/make_corpus.py

Seeds are named after what they are and rewritten on every run; other files in the corpus folders (the
regression-* inputs that crashed a target once, and inputs a fuzzing run kept) are left alone. Standard
library only.
"""

import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
import run  # noqa: E402  (the conformance runner: its reader of case files)

CORPUS = os.path.join(ROOT, "fuzz", "corpus")
LONGEST_HTTP_SEED = 16 * 1024  # The cases past this test 64 KiB limits, which the targets reach with small ones.

# ipc/wire.hpp: magic, version, type, connection_id, flags, payload_size; host byte order (little-endian here).
MAGIC, VERSION = 0x46444E48, 1
HELLO, CONNECTION, DONE, ANSWERED = 1, 2, 3, 4


def frame(kind, payload=b"", connection_id=0, flags=0, magic=MAGIC, version=VERSION, size=None):
    size = len(payload) if size is None else size
    return struct.pack("<IHHQII", magic, version, kind, connection_id, flags, size) + payload


def progress(bytes_written, status, unconsumed=b""):
    return struct.pack("<QHHI", bytes_written, status, 0, 0) + unconsumed


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def http_cases():
    for name in sorted(os.listdir(run.CASE_DIR)):
        if name.endswith(".req"):
            case = run.load_case(os.path.join(run.CASE_DIR, name))
            if len(case.request) <= LONGEST_HTTP_SEED:
                yield case.name, case.request


LINES = {
    "ping": b"ping\n",
    "fib-crlf": b"fib 10\r\n",
    "pipelined": b"ping\r\necho a b\nfail teapot\nthrow\nquery\nblob x\nquit\nping\n",
    "partial-last": b"ping\necho half",
    "blank-lines": b"\n\r\n  \t\nping\n",
    "unknown-command": b"PING\nnope 1 2 3\n\x01\x7f\n",
    "long-line": b"echo " + b"x" * 3000 + b"\n",
}

FRAMES = {
    "hello": frame(HELLO),
    "answered-then-done": frame(ANSWERED, progress(5, 200), 7) + frame(DONE, progress(8, 404, b"fib 2"), 7, 1),
    "done-keep-open": frame(DONE, progress(120, 200), 3, 1),
    "done-short-progress": frame(DONE, b"\x01\x02", 3),
    "connection": frame(CONNECTION, b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n", 9, 4),
    "bad-magic": frame(HELLO, magic=0x46444E49),
    "bad-version": frame(HELLO, version=2),
    "unknown-type": frame(9),
    "too-large": frame(DONE, size=(16 << 20) + 1),
    "truncated": frame(DONE, progress(1, 200, b"abc"))[:-2],
}


def main():
    for name, request in http_cases():
        for target in ("http_request_parser", "request_framing", "admin_request"):
            write(target, name, request)
        # fuzz/session_driver.hpp: flags (none), all of it read by the reactor, then the client's bytes.
        write("http_session", name, b"\x00\xff" + request)
    write("http_session", "head-truncated-half-read", b"\x01\x80GET /echo/a%20b?q=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    write("http_session", "input-closed-small-limits", b"\x06\xffPOST /blob HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    write("http_session", "read-on", b"\x00\x40POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    for name, lines in LINES.items():
        write("line_session", name, b"\x00\xff" + lines)
        write("request_framing", "line-" + name, lines)
    write("line_session", "head-truncated-read-on", b"\x01\x20echo " + b"y" * 300 + b"\n")
    write("line_session", "small-limits", b"\x04\xff" + LINES["long-line"])
    for name, frames in FRAMES.items():
        # frame_decoder: byte 0 seeds the cut. channel_receive: byte 0 the descriptors, bytes 1-2 where.
        write("frame_decoder", name, b"\x00" + frames)
        write("channel_receive", name, b"\x01\x00\x00" + frames)
    write("frame_decoder", "all-in-pieces", b"\x2a" + b"".join(FRAMES.values()))
    write("channel_receive", "two-descriptors", b"\x02\x00\x00" + FRAMES["connection"])
    write("channel_receive", "descriptor-on-second-frame", b"\x04\x00\x80" + FRAMES["connection"] * 2)
    write("channel_receive", "too-many-descriptors", b"\x03\x00\x00" + FRAMES["connection"])


if __name__ == "__main__":
    main()
