# The Flask app that tests/bench/wsgi_vs_gunicorn.sh serves under handoff (python3 -m handoff_handler.wsgi
# flask_app:app) and under gunicorn (gunicorn flask_app:app), the same module for both: /hello is a short text,
# /fib/N the CPU-bound route (the same naive recursion as tests/bench/fib_wsgi.py), /pid the process that
# answered, which tells the respawn row a replacement from the handlers that were there before it.
import os

from flask import Flask

app = Flask(__name__)


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


@app.route("/hello")
def hello():
    return "hello\n"


@app.route("/fib/<int:n>")
def fib(n):
    return "%d\n" % fibonacci(n)


@app.route("/pid")
def pid():
    return "%d\n" % os.getpid()
