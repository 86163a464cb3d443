"""A Flask app that tests/integration/wsgi_test.py serves under handoff and under gunicorn, to compare what
each answers: routes with variables and methods, a redirect, a session cookie, JSON in and out, a multipart
upload, a file, its own 404 and 500 pages, a streamed response and the client's address.

    python3 -m handoff_handler.wsgi flask_app        (its `application`)
    python3 -m gunicorn flask_app

With HANDOFF_WSGI_VALIDATE=1, wsgiref.validate checks every call between the server and the app: a breach of
PEP 3333 on either side raises, and the client gets a 500 that the comparison catches.
"""

import hashlib
import os

from flask import Flask, Response, jsonify, redirect, request, send_file, session, stream_with_context, url_for

app = Flask(__name__)
app.config["SECRET_KEY"] = "handoff-wsgi-test"  # Fixed: both servers sign the session alike.
items = {}  # Each worker process has its own: the tests read back only what one request stored and returned.


@app.route("/")
def index():
    return "hello from flask\n"


@app.route("/items/<int:item_id>", methods=["GET", "PUT", "DELETE"])
def item(item_id):
    if request.method == "PUT":
        stored = request.get_json()
        items[item_id] = stored
        return jsonify(id=item_id, stored=stored), 201
    if request.method == "DELETE":
        items.pop(item_id, None)
        deleted = app.response_class(status=204)
        del deleted.headers["Content-Type"]  # Flask adds one; a 204 has no content (wsgiref.validate checks).
        return deleted
    return jsonify(id=item_id, name="item %d" % item_id)


@app.route("/redirect")
def moved():
    return redirect(url_for("index"))


@app.route("/session/set")
def session_set():
    session["value"] = request.args.get("value", "")
    return "stored\n"


@app.route("/session/get")
def session_get():
    return "value=%s\n" % session.get("value", "(none)")


@app.route("/json", methods=["POST"])
def echo_json():
    data = request.get_json()
    return jsonify(received=data, keys=sorted(data) if isinstance(data, dict) else None, type=request.content_type)


@app.route("/upload", methods=["POST"])
def upload():
    upload = request.files["file"]
    data = upload.read()
    return jsonify(name=upload.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   field=request.form.get("note"))


@app.route("/query")
def query():
    return jsonify(args=sorted(request.args.items(multi=True)), path=request.path, full=request.full_path)


@app.route("/file")
def file():
    return send_file(os.path.abspath(__file__), mimetype="text/plain")


@app.route("/stream/<int:count>")
def stream(count):
    prefix = request.args.get("prefix", "line")  # Read inside the generator: the request context streams along.

    def lines():
        for number in range(count):
            yield "%s %d %s\n" % (prefix, number, request.args.get("prefix", "-"))

    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.route("/plain-stream")
def plain_stream():
    return Response((b"chunk %d\n" % number for number in range(4)), mimetype="text/plain")


@app.route("/whoami")
def whoami():
    return jsonify(remote_addr=request.remote_addr, scheme=request.scheme, host=request.host)


@app.route("/boom")
def boom():
    raise RuntimeError("the flask app fails on purpose")


@app.errorhandler(404)
def not_found(error):
    return jsonify(error="not found", path=request.path), 404


@app.errorhandler(500)
def failed(error):
    return "custom 500: %s\n" % type(getattr(error, "original_exception", error)).__name__, 500


application = app
if os.environ.get("HANDOFF_WSGI_VALIDATE") == "1":
    from wsgi_validation import validated

    application = validated(app)
