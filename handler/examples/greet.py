# A handler that reads a query parameter: GET /greet?name=Ada answers "hello Ada", and so do GET /greet/Ada
# and the line `greet Ada`; without a name it greets the world. The same as handler/examples/greet.cpp, in
# Python.
from handoff_handler import Handler, Reply

handler = Handler()


@handler.command("greet")
def greet(request):
    # Over HTTP the name is the query parameter, percent-decoded (?name=Ada%20L. gives "Ada L."); without it,
    # and on a line, the words after the command.
    name = request.query_parameter("name") or " ".join(request.arguments)
    return Reply.text("hello " + (name or "world"))


handler.run()
