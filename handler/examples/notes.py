# A small web API on the handler library's routes: notes kept in the handler's memory (one handler, for the
# demo: each handler process has its own), and what a web service needs around them — any method, "/", path
# parameters, redirects, cookies, JSON, the client's address, a fallback. handler/examples/notes.cpp is the
# same in C++; tests/integration/web_api_test.cpp holds both to the same answers.
#
#   PYTHONPATH=handler/python handoff --handlers 1 --handler-cmd 'python3 handler/examples/notes.py'
#   curl -X PUT --data 'buy milk' http://127.0.0.1:8888/notes/1     # 201 stored 1
#   curl http://127.0.0.1:8888/notes/1                              # buy milk
from handoff_handler import Handler, Reply

handler = Handler()
notes = {}


@handler.route("/")
def count(request):
    return "%d notes" % len(notes)  # A str is a text answer.


@handler.route("/notes/{id}", methods=["PUT"])
def store(request):
    notes[request.path_parameter("id")] = request.body
    return Reply.text("stored " + request.path_parameter("id"), status=201)


@handler.route("/notes/{id}")
def fetch(request):
    note = notes.get(request.path_parameter("id"))
    if note is None:
        return Reply.error("no such note", 404)
    return Reply.bytes(note, "text/plain; charset=utf-8")


@handler.route("/notes/{id}", methods=["DELETE"])
def forget(request):
    notes.pop(request.path_parameter("id"), None)
    return Reply(204)


@handler.route("/notes/{id}", methods=["OPTIONS"])
def options(request):
    return Reply(204).header("Allow", "GET, HEAD, PUT, DELETE, OPTIONS")


@handler.route("/old")
def old(request):
    return Reply.redirect("/")


@handler.route("/login", methods=["POST"])
def login(request):
    return Reply.text("welcome").header("Set-Cookie", "session=abc; HttpOnly").header("Set-Cookie", "theme=dark")


# Whatever the client asks to be echoed goes into a header: a CR or LF in it must never reach the wire.
@handler.route("/echo-header")
def echo_header(request):
    return Reply.text("echoed").header("X-Echo", request.query_parameter("value") or "")


@handler.route("/whoami")
def whoami(request):
    return {"client": request.client_address, "method": request.method, "target": request.target,
            "path": request.path, "query": request.query, "version": request.version,
            "id_given": request.id > 0, "tags": len(request.query_parameters("tag"))}  # A dict is JSON.


@handler.route("/boom")
def boom(request):
    raise RuntimeError("database password is hunter2")


@handler.command("square")
def square(request):
    return Reply.text(str(int(request.arguments[0]) ** 2))


@handler.fallback
def nothing_here(request):
    return Reply.error("nothing at %s %s" % (request.method, request.target), 404)


handler.run()
