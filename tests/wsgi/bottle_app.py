"""A Bottle app that tests/integration/wsgi_test.py serves under handoff and under gunicorn, to compare the
answers: routes with a variable, a POST echo, a dict as JSON, a streamed response, a redirect and its own 404.
With HANDOFF_WSGI_VALIDATE=1 it is wrapped in wsgiref.validate (tests/wsgi/wsgi_validation.py)."""

import os

import bottle

app = bottle.Bottle()


@app.route("/")
def index():
    return "hello from bottle\n"


@app.route("/hello/<name>")
def hello(name):
    return "hello %s\n" % name


@app.post("/echo")
def echo():
    bottle.response.content_type = "application/octet-stream"
    return bottle.request.body.read()


@app.route("/json")
def as_json():
    return {"query": dict(bottle.request.query), "method": bottle.request.method}


@app.route("/stream/<count:int>")
def stream(count):
    bottle.response.content_type = "text/plain"
    return ("bottle line %d\n" % number for number in range(count))


@app.route("/moved")
def moved():
    bottle.redirect("/hello/moved")


@app.error(404)
def not_found(error):
    bottle.response.content_type = "text/plain"
    return "bottle has nothing at %s\n" % bottle.request.path


application = app
if os.environ.get("HANDOFF_WSGI_VALIDATE") == "1":
    from wsgi_validation import validated

    application = validated(app)
