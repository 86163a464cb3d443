# The smallest handoff handler in Python: `square 12` on a line, or GET /square/12, answers 144.
from handoff_handler import Handler, Reply

handler = Handler()


@handler.command("square")
def square(request):
    return Reply.text(str(int(request.arguments[0]) ** 2))


handler.run()
