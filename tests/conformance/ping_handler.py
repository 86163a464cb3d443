"""The conformance corpus's handler in Python: ping (and pid), as the built-in C++ handler has them, so that the
same corpus judges both handler libraries."""

import os

from handoff_handler import Handler, Reply

handler = Handler()


@handler.command("ping")
def ping(request):
    if request.arguments:
        return Reply.error("ping takes no argument")
    return Reply.text("pong")


@handler.command("pid")
def pid(request):
    if request.arguments:
        return Reply.error("pid takes no argument")
    return Reply.text(str(os.getpid()))


handler.run()
