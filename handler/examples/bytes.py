# A handler that answers as many bytes as asked, of the content type asked, as httpbin's /bytes/N and
# /response-headers do: for trying a client, a proxy or a load balancer on answers of any size.
#   curl -o /dev/null http://127.0.0.1:8888/bytes/50000000   ->  50 MB, application/octet-stream
#   curl 'http://127.0.0.1:8888/bytes/5?type=text/plain'       ->  abcde, as text/plain
#   bytes 5                                                    ->  abcde
# The bytes run through the alphabet. The type is the client's, taken as it comes: a type with CR, LF or NUL
# in it, which would write headers of its own into the answer, is refused by the library (500). The same as
# handler/examples/bytes.cpp, in Python.
import re

from handoff_handler import Handler, Reply

MAX_BYTES = 100 << 20
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"

handler = Handler()


@handler.command("bytes")
def answer_bytes(request):
    text = request.arguments[0] if len(request.arguments) == 1 else ""
    if not re.fullmatch("[0-9]+", text) or int(text) > MAX_BYTES:
        return Reply.error("bytes takes one whole number from 0 to %d" % MAX_BYTES)
    size = int(text)
    data = (ALPHABET * (size // len(ALPHABET) + 1))[:size]
    return Reply.bytes(data, request.query_parameter("type") or "application/octet-stream")


handler.run()
