# tools/bench's WSGI app for gunicorn: GET /fib/N answers fib(N) as text, the same work and the same answer
# as tests/bench/fib_handler.py on handoff.


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def app(environ, start_response):
    body = ("%d\n" % fibonacci(int(environ["PATH_INFO"].rsplit("/", 1)[1]))).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
