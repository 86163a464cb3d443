# A long computation that stops when its client leaves: how many primes there are below N, by trial
# division, on purpose slow.
#   primes 100000                                      ->  9592
#   curl http://127.0.0.1:8888/primes/100000           ->  9592
# It looks at request.cancelled every 1024 numbers: a client that gives up (curl -m 1
# http://127.0.0.1:8888/primes/1000000000000) frees its handler a moment later, with no process killed and
# started again (and no app imported again). The same as handler/examples/primes.cpp, in Python.
from handoff_handler import Handler, Reply

handler = Handler()


def is_prime(n):
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True


@handler.command("primes")
def primes(request):
    if len(request.arguments) != 1 or not request.arguments[0].isdecimal():
        return Reply.error("primes takes one whole number")
    count = 0
    for n in range(2, int(request.arguments[0])):
        # Nobody will read the answer: what is returned goes nowhere, and the handler is free at once.
        if n % 1024 == 0 and request.cancelled:
            return Reply.error("the client left", 503)
        if is_prime(n):
            count += 1
    return Reply.text(str(count))


handler.run()
