#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/ (fuzz/README.md): the HTTP conformance cases as raw requests,
lines of the line protocol, ipc frames built from the header of ipc/wire.hpp, request records built
from the layout of ipc/request_record.hpp, and PROXY protocol headers.

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
MAGIC, VERSION = 0x46444E48, 2
HELLO, CONNECTION, DONE, ANSWERED = 1, 2, 3, 4
FLAG_HTTP, FLAG_KEPT = 1 << 0, 1 << 4  # Of a kConnection frame.
DONE_KEEP_OPEN, DONE_KEPT = 1 << 0, 1 << 2  # Of a kDone frame.
MAX_REQUEST_PAYLOAD = 3 << 30  # A kConnection frame's (ipc::kMaxRequestPayloadBytes); others' 16 MiB.

# fuzz/session_driver.hpp, byte 0 of a session target's input.
OTHERS_WAITING, INPUT_CLOSED, SMALL_LIMITS, LINGERED, DRAINING = 1, 2, 4, 8, 16


def frame(kind, payload=b"", connection_id=0, flags=0, magic=MAGIC, version=VERSION, size=None):
    size = len(payload) if size is None else size
    return struct.pack("<IHHQII", magic, version, kind, connection_id, flags, size) + payload


def progress(bytes_written, status, unconsumed=b""):
    return struct.pack("<QHHI", bytes_written, status, 0, 0) + unconsumed


def split_target(target):
    """ipc::split_target: the path and query of a request-target."""
    if not target.startswith(b"/"):
        scheme = target.find(b"://")
        if scheme < 0:
            return target, b""  # "*", or the authority form.
        ends = [i for i in (target.find(c, scheme + 3) for c in (b"/", b"?", b"#")) if i >= 0]
        if not ends:
            return b"/", b""
        target = target[min(ends):]
        if not target.startswith(b"/"):
            return b"/", target[1:]
    path, question, query = target.partition(b"?")
    return path, query


def record(method=b"", target=b"", headers=(), body=b"", rest=b"", request_id=1, address=b"203.0.113.7",
           port=40000, minor=1, keep_alive=True, path=None, query=None, flags=None, field_count=None):
    """A request record (ipc/request_record.hpp): a 48-byte header of sizes, then the parts in order. path,
    query, flags and field_count, given, replace what the reactor would write (for malformed seeds)."""
    computed = split_target(target) if method else (b"", b"")
    path = computed[0] if path is None else path
    query = computed[1] if query is None else query
    flags = (1 if keep_alive else 0) if flags is None else flags
    fields = b"".join(struct.pack("<II", len(n), len(v)) + n + v for n, v in headers)
    head = struct.pack("<QHBBIIIIIIIII", request_id, port, minor, flags,
                       len(headers) if field_count is None else field_count, len(address), len(method),
                       len(target), len(path), len(query), len(fields), len(body), len(rest))
    return head + address + method + target + path + query + fields + body + rest


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

# The payloads of kConnection frames, and the inputs of request_record: records as the reactor writes them,
# and a few it never would.
PING_RECORD = record(b"GET", b"/ping", [(b"Host", b"a")])
RECORDS = {
    "line": record(target=b"fib 30", minor=0),
    "line-pipelined": record(target=b"ping", rest=b"echo a b\nfib 2\nhal", minor=0, request_id=2),
    "get": PING_RECORD,
    "get-query-headers": record(b"GET", b"/query?q=a%20b&x=1", [(b"Host", b"a:8080"), (b"X-Fuzz", b"v"),
                                                                  (b"Accept", b"")], request_id=99),
    "post-body-pipelined": record(b"POST", b"/echo", [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")],
                                  body=b"hello", rest=b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\nGET /p"),
    "absolute-form": record(b"GET", b"http://a.example:8/b/c?d=e#f", [(b"Host", b"a.example:8")]),
    "absolute-form-no-path": record(b"GET", b"http://a.example?x", [(b"Host", b"a.example")]),
    "options-star": record(b"OPTIONS", b"*", [(b"Host", b"a")]),
    "connect-authority": record(b"CONNECT", b"a.example:443", [(b"Host", b"a.example:443")]),
    "http10-ipv6": record(b"HEAD", b"/pid", address=b"2001:db8::1", port=65535, minor=0, keep_alive=False),
    "no-address": record(b"DELETE", b"/items/7", [(b"Host", b"a")], address=b"", port=0),
    # Not the reactor's: path and query that are not the target's, unknown flag bits, sizes that do not add up.
    "path-not-target": record(b"GET", b"/a?b", [(b"Host", b"a")], path=b"/x", query=b"y"),
    "unknown-flags": record(b"GET", b"/ping", [(b"Host", b"a")], flags=0xff),
    "field-count-too-large": record(b"GET", b"/ping", [(b"Host", b"a")], field_count=0xffffffff),
    "field-count-short": record(b"GET", b"/ping", [(b"Host", b"a"), (b"X", b"y")], field_count=1),
    "trailing-byte": PING_RECORD + b"\x00",
    "cut-short": PING_RECORD[:-1],
    "header-only": PING_RECORD[:48],
}

FRAMES = {
    "hello": frame(HELLO),
    "answered-then-done": frame(ANSWERED, progress(5, 200), 7) + frame(DONE, progress(8, 404, b"fib 2"), 7,
                                                                         DONE_KEEP_OPEN),
    "done-keep-open": frame(DONE, progress(120, 200), 3, DONE_KEEP_OPEN),
    "done-kept": frame(DONE, progress(120, 200), 3, DONE_KEEP_OPEN | DONE_KEPT),
    "done-short-progress": frame(DONE, b"\x01\x02", 3),
    "connection": frame(CONNECTION, PING_RECORD, 9, FLAG_HTTP),
    "connection-kept": frame(CONNECTION, RECORDS["line-pipelined"], 9, FLAG_KEPT),
    "connection-too-large": frame(CONNECTION, connection_id=9, flags=FLAG_KEPT, size=MAX_REQUEST_PAYLOAD + 1),
    "bad-magic": frame(HELLO, magic=0x46444E49),
    "bad-version": frame(HELLO, version=1),
    "unknown-type": frame(12),
    "too-large": frame(DONE, size=(16 << 20) + 1),
    "truncated": frame(DONE, progress(1, 200, b"abc"))[:-2],
}

# fuzz/session_driver.hpp: byte 0 the driver's bits, byte 1 how much the reactor read past the first request,
# then the client's bytes.
HTTP_SESSIONS = {
    "half-read": (0, 0x80, b"GET /echo/a%20b?q=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /ping HTTP/1.1\r\nHost: a\r\n\r\n"),
    "input-closed-small-limits": (INPUT_CLOSED | SMALL_LIMITS, 0xFF,
                                  b"POST /blob HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"),
    "rest-in-socket": (0, 0x40, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                                b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n"),
    "others-waiting": (OTHERS_WAITING, 0xFF, b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n" * 3),
    "draining": (DRAINING, 0xFF, b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n" * 2),
    "lingered": (LINGERED, 0xFF, b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\nGET /pi"),
    "pipelined-then-refused": (0, 0xFF, b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\nHEAD /query?q=1 HTTP/1.1\r\n"
                                        b"Host: a\r\n\r\nGET / HTTP/1.2\r\nHost: a\r\n\r\n"),
    "routes-and-headers": (0, 0xFF, b"PUT /items/a%2Fb HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"
                                    b"GET /files/c/meta HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"POST /items/a HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"GET /header/X-A/b HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"GET /header/X-A/b%0d%0aX-B:%20c HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"GET /header/Content-Length/5 HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"HEAD /status/304 HTTP/1.1\r\nHost: a\r\n\r\n"
                                    b"GET /status/99 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                    b"GET /throw HTTP/1.0\r\n\r\n"),
}

LINE_SESSIONS = {
    "others-waiting": (OTHERS_WAITING, 0xFF, b"ping\necho a\nfail\n"),
    "rest-in-socket": (0, 0x20, b"echo " + b"y" * 300 + b"\nping\n"),
    "small-limits": (SMALL_LIMITS, 0xFF, LINES["long-line"]),
    "small-limits-pipelined": (SMALL_LIMITS, 0xFF, b"ping\n" + LINES["long-line"]),
    "lingered": (LINGERED, 0xFF, b"ping\r\nquit\nping\n"),
    "input-closed-last-line": (INPUT_CLOSED, 0xFF, b"ping\necho half"),
    "input-closed-cut-line": (INPUT_CLOSED, 0xFF, b"echo cut"),
}


# PROXY protocol headers (HAProxy's doc/proxy-protocol.txt; reactor/proxy_header.hpp), as send-proxy and
# send-proxy-v2 write them and broken in the ways the decoder refuses, some with a request after them.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_LOCAL, V2_PROXY = 0x20, 0x21  # ver_cmd: version 2, then the command.
V2_TCP4, V2_UDP4, V2_TCP6, V2_UNIX_STREAM = 0x11, 0x12, 0x21, 0x31  # fam: family, then transport.
PP2_ALPN, PP2_AUTHORITY, PP2_CRC32C, PP2_NOOP, PP2_UNIQUE_ID, PP2_SSL, PP2_SSL_VERSION, PP2_SSL_CN = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x21, 0x22)
PROXIED_REQUEST = b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n"


def v2_header(ver_cmd, fam, after, length=None):
    return V2_SIGNATURE + struct.pack(">BBH", ver_cmd, fam, len(after) if length is None else length) + after


def v2_inet(source, destination, source_port, destination_port):
    return bytes(source) + bytes(destination) + struct.pack(">HH", source_port, destination_port)


def tlv(kind, value):
    return struct.pack(">BH", kind, len(value)) + value


FULL_IPV6 = b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
V2_TCP4_ADDRESSES = v2_inet([192, 0, 2, 1], [198, 51, 100, 2], 40000, 443)
IPV6_LOOPBACK = [0] * 15 + [1]
V2_TCP6_ADDRESSES = v2_inet([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [7], IPV6_LOOPBACK, 51234, 8080)
SSL_TLV_VALUE = b"\x07\x00\x00\x00\x00" + tlv(PP2_SSL_VERSION, b"TLSv1.3") + tlv(PP2_SSL_CN, b"c")
HAPROXY_TLVS = (tlv(PP2_ALPN, b"h2") + tlv(PP2_AUTHORITY, b"example.com") + tlv(PP2_UNIQUE_ID, b"u" * 32) +
                tlv(PP2_SSL, SSL_TLV_VALUE) + tlv(PP2_CRC32C, b"\x00\x00\x00\x00") + tlv(PP2_NOOP, b""))
PROXY_HEADERS = {
    "v1-tcp4": b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
    "v1-tcp4-then-request": b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n" + PROXIED_REQUEST,
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n",
    "v1-tcp6-mapped": b"PROXY TCP6 ::ffff:10.1.2.3 ::1 65535 80\r\nping\n",
    "v1-tcp6-longest": b"PROXY TCP6 " + FULL_IPV6 + b" " + FULL_IPV6 + b" 65535 65535\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n" + PROXIED_REQUEST,
    "v1-unknown-longest": b"PROXY UNKNOWN " + FULL_IPV6 + b" " + FULL_IPV6 + b" 65535 65535\r\n",
    "v1-unknown-too-long": b"PROXY UNKNOWN " + FULL_IPV6 + b" " + FULL_IPV6 + b" 65535 65535 \r\n",
    "v1-two-spaces": b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
    "v1-leading-zero": b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
    "v1-port-too-large": b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
    "v1-family-mismatch": b"PROXY TCP4 ::1 ::1 1 2\r\n",
    "v1-bare-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    "v1-cr-without-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET",
    "v1-cut-short": b"PROXY TCP4 192.168.0.1 19",
    "v2-tcp4": v2_header(V2_PROXY, V2_TCP4, V2_TCP4_ADDRESSES),
    "v2-tcp4-then-request": v2_header(V2_PROXY, V2_TCP4, V2_TCP4_ADDRESSES) + PROXIED_REQUEST,
    "v2-tcp4-haproxy-tlvs": v2_header(V2_PROXY, V2_TCP4, V2_TCP4_ADDRESSES + HAPROXY_TLVS) + b"ping\n",
    "v2-tcp6": v2_header(V2_PROXY, V2_TCP6, V2_TCP6_ADDRESSES),
    "v2-tcp6-mapped": v2_header(V2_PROXY, V2_TCP6,
                                v2_inet([0] * 10 + [0xff, 0xff, 10, 1, 2, 3], IPV6_LOOPBACK, 1, 2)),
    "v2-udp4": v2_header(V2_PROXY, V2_UDP4, V2_TCP4_ADDRESSES),
    "v2-unix-stream": v2_header(V2_PROXY, V2_UNIX_STREAM, b"/run/a.sock".ljust(108, b"\x00") * 2),
    "v2-local": v2_header(V2_LOCAL, 0x00, b"") + PROXIED_REQUEST,
    "v2-local-tlvs": v2_header(V2_LOCAL, 0x00, tlv(PP2_NOOP, b"\x00" * 5)),
    "v2-unspecified": v2_header(V2_PROXY, 0x00, b""),
    "v2-longest": v2_header(V2_PROXY, V2_TCP4, V2_TCP4_ADDRESSES + tlv(PP2_NOOP, b"n" * (4096 - 31))),
    "v2-too-long": v2_header(V2_PROXY, V2_TCP4, V2_TCP4_ADDRESSES, length=4081),
    "v2-too-short-for-ipv6": v2_header(V2_PROXY, V2_TCP6, V2_TCP4_ADDRESSES),
    "v2-version-1": v2_header(0x11, V2_TCP4, V2_TCP4_ADDRESSES),
    "v2-command-2": v2_header(0x22, V2_TCP4, V2_TCP4_ADDRESSES),
    "v2-family-4": v2_header(V2_PROXY, 0x41, V2_TCP4_ADDRESSES),
    "v2-truncated": v2_header(V2_PROXY, V2_TCP6, V2_TCP6_ADDRESSES)[:-3],
    "v2-signature-only": V2_SIGNATURE,
    "http-request": PROXIED_REQUEST,
    "tls-client-hello": b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


def main():
    for name, request in http_cases():
        for target in ("http_request_parser", "request_framing", "admin_request"):
            write(target, name, request)
        # fuzz/session_driver.hpp: no bits, all of it read by the reactor, then the client's bytes.
        write("http_session", name, b"\x00\xff" + request)
    for name, (bits, read, client) in HTTP_SESSIONS.items():
        write("http_session", name, bytes([bits, read]) + client)
    for name, lines in LINES.items():
        write("line_session", name, b"\x00\xff" + lines)
        write("request_framing", "line-" + name, lines)
    for name, (bits, read, client) in LINE_SESSIONS.items():
        write("line_session", name, bytes([bits, read]) + client)
    for name, frames in FRAMES.items():
        # frame_decoder: byte 0 seeds the cut. channel_receive: byte 0 the descriptors, bytes 1-2 where.
        write("frame_decoder", name, b"\x00" + frames)
        write("channel_receive", name, b"\x01\x00\x00" + frames)
    write("frame_decoder", "all-in-pieces", b"\x2a" + b"".join(FRAMES.values()))
    write("channel_receive", "two-descriptors", b"\x02\x00\x00" + FRAMES["connection"])
    write("channel_receive", "descriptor-on-second-frame", b"\x04\x00\x80" + FRAMES["connection"] * 2)
    write("channel_receive", "too-many-descriptors", b"\x03\x00\x00" + FRAMES["connection"])
    for name, payload in RECORDS.items():
        write("request_record", name, payload)
    for name, header in PROXY_HEADERS.items():
        write("proxy_header", name, header)


if __name__ == "__main__":
    main()
