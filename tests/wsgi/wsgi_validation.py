"""wsgiref.validate around a test app, so that a breach of PEP 3333 by the server (or the app) raises."""

from wsgiref.validate import validator


def validated(app):
    """app behind wsgiref.validate.validator.

    One key is taken out first: wsgi.input_terminated, which gunicorn sets (handoff does not). Told the input
    ends by itself, Werkzeug reads it to its end with read(), which PEP 3333 allows ("A server should allow
    read() to be called without an argument") but wsgiref.validate, written for PEP 333, refuses. Without it,
    Werkzeug reads at most CONTENT_LENGTH bytes, with sizes, under both servers alike."""
    checked = validator(app)

    def application(environ, start_response):
        environ.pop("wsgi.input_terminated", None)
        return checked(environ, start_response)

    return application
