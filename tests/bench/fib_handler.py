# tools/bench's Python handler: the built-in handler's /fib/N on the Python library (handler/python), the same
# naive recursion as tests/bench/fib_wsgi.py, which gunicorn serves beside it.
from handoff_handler import Handler, Reply

handler = Handler()


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


@handler.command("fib")
def fib(request):
    return Reply.text(str(fibonacci(int(request.arguments[0]))))


handler.run()
