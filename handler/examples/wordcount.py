# A handler that does real work on a request body: the ten most frequent words of a text.
#   curl --data-binary @book.txt http://127.0.0.1:8888/wordcount   ->  the=4120 and=3190 ...
#   wordcount to be or not to be                                   ->  be=2 to=2 not=1 or=1
# Words are runs of ASCII letters and digits, lower-cased; ties go in alphabetical order. The same as
# handler/examples/wordcount.cpp, in Python.
import collections
import os
import re

from handoff_handler import Handler, Reply

handler = Handler()


@handler.command("wordcount")
def wordcount(request):
    # Over HTTP the text is the body; on a line, the words after the command.
    text = request.body.decode("latin-1") + " " + " ".join(request.arguments)
    counts = collections.Counter(re.findall(r"[a-z0-9]+", text.lower()))
    if not counts:
        raise ValueError("no words to count")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    return Reply.text(" ".join("%s=%d" % item for item in ranked))


@handler.command("pid")
def pid(request):
    return Reply.text(str(os.getpid()))


handler.run()
