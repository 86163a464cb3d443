#!/usr/bin/env python3
"""Runs the HTTP/1.1 request conformance corpus against a server.

    run.py HOST PORT [CASE_FILES...] [--quiet] [--json FILE] [--jobs N]

Each case file (format in README.md beside this script) holds the raw bytes of one request, or of several
pipelined ones, and the statuses the server must answer. For each case the runner connects, sends the bytes
(never half-closing its side, so that the server cannot take an EOF for a reason to close), and reads responses
until the expected number arrived and 300 ms more went by (to see whether the server closes), or the server
closes, or 3 s pass without progress. One case never takes more than 4 s. A case passes when the final
statuses are exactly the expected ones, in order, and the connection was closed or left open as expected.

Standard library only, so that it runs wherever python3 does.
"""

import argparse
import concurrent.futures
import json
import os
import re
import selectors
import socket
import sys
import time

CASE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")

STALL_SECONDS = 3.0  # no byte sent or received for this long: the server has said all it will
VALID_FIRST_REQUEST = b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n"  # --behind-valid
CLOSE_WINDOW_SECONDS = 0.3  # after the last expected response, how long to watch for a close
CASE_SECONDS = 3.95  # hard bound on one case, connect included
MAX_HEAD_BYTES = 1 << 20  # a response head longer than this is not HTTP

NOT_HTTP = "not-http"  # what the runner records for bytes that do not start a response
TRUNCATED = "truncated"  # a response head the server cut off by closing

# A line that looks like a request line (METHOD SP target SP HTTP/...), used only to tell which responses
# answer a HEAD and so carry no body; see README.md.
REQUEST_LINE = re.compile(rb"(?m)^([A-Za-z-]+) [^\r\n ]+ HTTP/")
STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})(?:[ \t][^\r\n]*)?\r?\n")


class CaseError(Exception):
    """A case file that does not follow the format of README.md."""


class Case:
    def __init__(self, name, path, rfc, why, expect, close, request):
        self.name = name
        self.path = path
        self.rfc = rfc
        self.why = why
        self.expect = expect  # list of int statuses, in order
        self.close = close  # True: the server must close after the last response
        self.request = request  # the bytes to send


def decode_escapes(text, where):
    """Turns the escaped request text of a case into bytes: \\r \\n \\t \\0 \\\\ and \\xHH; any other byte
    stands for itself. An unknown escape is an error, so that a typo never becomes a silent backslash."""
    out = bytearray()
    i = 0
    simple = {ord("r"): b"\r", ord("n"): b"\n", ord("t"): b"\t", ord("0"): b"\0", ord("\\"): b"\\"}
    while i < len(text):
        byte = text[i]
        if byte != ord("\\"):
            out.append(byte)
            i += 1
            continue
        if i + 1 >= len(text):
            raise CaseError(f"{where}: a lone backslash at the end")
        code = text[i + 1]
        if code in simple:
            out += simple[code]
            i += 2
        elif code == ord("x"):
            digits = text[i + 2 : i + 4]
            if len(digits) != 2 or not all(chr(d) in "0123456789abcdefABCDEF" for d in digits):
                raise CaseError(f"{where}: \\x needs two hex digits")
            out.append(int(digits, 16))
            i += 4
        else:
            raise CaseError(f"{where}: unknown escape \\{chr(code)}")
    return bytes(out)


def load_case(path):
    """Reads one case file: '# key: value' lines, a '---' line, then the escaped request split over lines
    whose line ends are not part of the request."""
    name = os.path.basename(path)
    if name.endswith(".req"):
        name = name[: -len(".req")]
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    fields = {}
    body_start = None
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line == b"---":
            body_start = number
            break
        if not line.strip():
            continue
        match = re.fullmatch(rb"# ?([a-z-]+): ?(.*)", line)
        if not match:
            raise CaseError(f"{path}:{number}: expected '# key: value' or '---'")
        fields[match.group(1).decode()] = match.group(2).decode("utf-8").strip()
    if body_start is None:
        raise CaseError(f"{path}: no '---' line")
    for key in ("rfc", "why", "expect"):
        if not fields.get(key):
            raise CaseError(f"{path}: missing '# {key}:'")
    try:
        expect = [int(s) for s in fields["expect"].split()]
    except ValueError:
        raise CaseError(f"{path}: '# expect:' takes statuses like '200 400'") from None
    if not expect or not all(200 <= s <= 599 for s in expect):
        raise CaseError(f"{path}: '# expect:' takes one or more final statuses, 200 to 599 (1xx are skipped)")
    close = fields.get("close")
    if close is None:
        close = expect[-1] >= 400
    elif close in ("yes", "no"):
        close = close == "yes"
    else:
        raise CaseError(f"{path}: '# close:' is yes or no")
    text = b"".join(line[:-1] if line.endswith(b"\r") else line for line in lines[body_start:])
    request = decode_escapes(text, path)
    if not request:
        raise CaseError(f"{path}: no request bytes after '---'")
    return Case(name, path, fields["rfc"], fields["why"], expect, close, request)


def parse_response(buf, head_request, closed):
    """Parses one response at the start of buf. Returns (status, length consumed), or None when more bytes
    are needed. status is an int, NOT_HTTP for bytes that are no response, or TRUNCATED. A response to HEAD,
    a 1xx, 204 or 304 has no body; otherwise the body is framed by chunked, by Content-Length, or by the
    close of the connection."""
    if not buf:
        return None
    prefix = min(len(buf), 5)
    if bytes(buf[:prefix]) != b"HTTP/"[:prefix]:
        return NOT_HTTP, len(buf)
    end = buf.find(b"\r\n\r\n")
    separator = 4
    lf_end = buf.find(b"\n\n")
    if lf_end != -1 and (end == -1 or lf_end < end):
        end, separator = lf_end, 2
    if end == -1:
        if len(buf) > MAX_HEAD_BYTES:
            return NOT_HTTP, len(buf)
        return (TRUNCATED, len(buf)) if closed else None
    head = bytes(buf[: end + separator])
    match = STATUS_LINE.match(head)
    if not match:
        return NOT_HTTP, len(buf)
    status = int(match.group(1))
    headers = {}
    for line in head[match.end() :].split(b"\n"):
        name, colon, value = line.rstrip(b"\r").partition(b":")
        if colon:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    body_at = end + separator
    if head_request or status < 200 or status in (204, 304):
        return status, body_at
    codings = b",".join(headers.get(b"transfer-encoding", [])).lower()
    if codings:
        if codings.split(b",")[-1].strip() != b"chunked":
            return (status, len(buf)) if closed else None
        at = skip_chunked(buf, body_at)
        if at is None:
            return (status, len(buf)) if closed else None
        return status, at
    if b"content-length" in headers:
        try:
            length = int(headers[b"content-length"][0])
        except ValueError:
            return NOT_HTTP, len(buf)
        if len(buf) - body_at < length:
            return (status, len(buf)) if closed else None
        return status, body_at + length
    return (status, len(buf)) if closed else None


def skip_chunked(buf, at):
    """Returns the offset just past a complete chunked body (trailers included) starting at at, or None."""
    while True:
        line_end = buf.find(b"\n", at)
        if line_end == -1:
            return None
        size_text = bytes(buf[at:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return len(buf)  # not chunked after all: take the rest
        at = line_end + 1
        if size == 0:
            while True:
                line_end = buf.find(b"\n", at)
                if line_end == -1:
                    return None
                line = buf[at:line_end]
                at = line_end + 1
                if line in (b"", b"\r"):
                    return at
        if len(buf) < at + size:
            return None
        at += size
        line_end = buf.find(b"\n", at)
        if line_end == -1:
            return None
        at = line_end + 1


def head_flags(request):
    """For the n-th request line found in the bytes, whether it is a HEAD (its response has no body)."""
    return [m.group(1) == b"HEAD" for m in REQUEST_LINE.finditer(request)]


class Result:
    def __init__(self, case, got, closed, note=""):
        self.case = case
        self.got = got
        self.closed = closed
        self.note = note
        self.passed = case is not None and got == case.expect and closed == case.close


def run_case(host, port, case):
    """Sends one case and collects the statuses of its responses and whether the server closed."""
    start = time.monotonic()
    hard_end = start + CASE_SECONDS
    heads = head_flags(case.request)
    got = []
    note = ""
    try:
        sock = socket.create_connection((host, port), timeout=min(STALL_SECONDS, CASE_SECONDS))
    except OSError as e:
        return Result(case, [], False, f"connect: {e.strerror or e}")
    with sock:
        sock.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        request = memoryview(case.request)
        sent = 0
        buf = bytearray()
        closed = False
        unparsable = False
        last_progress = time.monotonic()
        window_end = None
        while not closed:
            now = time.monotonic()
            if window_end is None and (len(got) >= len(case.expect) or unparsable):
                window_end = now + CLOSE_WINDOW_SECONDS
            deadline = min(hard_end, last_progress + STALL_SECONDS, window_end or hard_end)
            if now >= deadline:
                break
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if sent < len(request) else 0)
            selector.modify(sock, events)
            for _, mask in selector.select(deadline - now):
                if mask & selectors.EVENT_WRITE and sent < len(request):
                    try:
                        sent += sock.send(request[sent : sent + 65536])
                        last_progress = time.monotonic()
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        # The server closed while bytes were still going out; what it answered before is
                        # still readable.
                        sent = len(request)
                if mask & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        closed = True
                    else:
                        buf += data
                        last_progress = time.monotonic()
            while buf and not unparsable:
                index = len(got)
                parsed = parse_response(buf, index < len(heads) and heads[index], closed)
                if parsed is None:
                    break
                status, used = parsed
                if status == NOT_HTTP:
                    unparsable = True
                    note = f"not HTTP: {bytes(buf[:40])!r}"
                if isinstance(status, int) and status < 200:
                    del buf[:used]
                    continue
                got.append(status)
                del buf[:used]
        selector.close()
    if buf and not note:
        note = f"incomplete response: {bytes(buf[:40])!r}"
    return Result(case, got, closed, note)


def describe(statuses, close):
    return "[" + ", ".join(str(s) for s in statuses) + "] " + ("close" if close else "open")


def resolve(argument):
    """A case argument is a path, or a name (with or without .req) of a file in cases/."""
    if os.path.exists(argument):
        return argument
    for candidate in (argument, argument + ".req"):
        path = os.path.join(CASE_DIR, candidate)
        if os.path.exists(path):
            return path
    raise CaseError(f"{argument}: no such case")


def main():
    parser = argparse.ArgumentParser(description="HTTP/1.1 request conformance corpus runner.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("cases", nargs="*", help="case files (default: every cases/*.req beside this script)")
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("--json", metavar="FILE", help="write per-case results as JSON to FILE")
    parser.add_argument("--jobs", type=int, default=8, help="cases run at once, each on its own connection (8)")
    parser.add_argument("--behind-valid", action="store_true",
                        help="send every case pipelined behind a valid GET /ping, which must get 200 first: a "
                             "server that reads whole first requests itself (handoff's reactor) then leaves "
                             "the case to the parser that reads later requests (the handler's)")
    args = parser.parse_intermixed_args()

    paths = args.cases or sorted(
        os.path.join(CASE_DIR, f) for f in os.listdir(CASE_DIR) if f.endswith(".req")
    )
    cases = []
    broken = []
    for argument in paths:
        try:
            cases.append(load_case(resolve(argument)))
        except (CaseError, OSError, UnicodeDecodeError) as e:
            broken.append(str(e))
    for message in broken:
        print(f"FAIL bad case: {message}", flush=True)
    if args.behind_valid:
        for case in cases:
            case.request = VALID_FIRST_REQUEST + case.request
            case.expect = [200] + case.expect

    results = {}
    passed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for result in pool.map(lambda c: run_case(args.host, args.port, c), cases):
            case = result.case
            results[case.name] = {"pass": result.passed, "got": result.got, "closed": result.closed}
            if result.passed:
                passed += 1
                if not args.quiet:
                    print(f"PASS {case.name}", flush=True)
            else:
                line = f"FAIL {case.name}: expected {describe(case.expect, case.close)}, got "
                line += describe(result.got, result.closed)
                if result.note:
                    line += f" ({result.note})"
                print(line, flush=True)

    total = len(cases) + len(broken)
    print(f"passed {passed} of {total}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0 if passed == total and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
