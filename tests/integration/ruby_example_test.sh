#!/usr/bin/env bash
# handler/examples/hello.rb, a handler in Ruby that speaks the handler channel itself (docs/protocol.md, "The
# handler channel"), served by the reactor: what it answers over HTTP and on a line, a PUT it refuses with the
# connection kept, pipelined requests handed back as the record's rest bytes, a body larger than one read of
# the channel, and its exit with status 0 when the reactor closes the channel. (The conformance corpus runs
# through it as conformance-ruby.)
# Usage: ruby_example_test.sh REACTOR HELLO_RB
set -euo pipefail
reactor=$1 hello=$2
source "$(dirname "$0")/../support/checks.sh"
use_work_folder

# A handler's exit status reaches no log of the reactor's: a wrapper writes it to the reactor's stderr.
printf '#!/bin/sh\nruby "%s"\necho "hello.rb exited with status $?" >&2\n' "$hello" >"$work/hello.sh"
chmod +x "$work/hello.sh"
start_reactor "$reactor" --handler-cmd "$work/hello.sh"
url=http://127.0.0.1:$port
# Sends the bytes, then EOF (a client that sends no more, which the reactor closes once it is answered), and
# prints what comes back until the server closes.
send() { printf '%b' "$1" | timeout 10 nc -N 127.0.0.1 "$port" || true; }
statuses() { grep -a '^HTTP/1\.1 ' | cut -d ' ' -f 2 | paste -sd ' '; }

check "GET: the method and the path" "$(curl --silent --max-time 10 "$url/a/b?x=1")" "hello from ruby: GET /a/b"
check "GET: status and Content-Length" \
  "$(curl --silent --max-time 10 --output /dev/null --write-out '%{http_code} %{size_download}' "$url/a/b")" "200 26"
check "keep-alive: curl's second request goes over the first one's connection" \
  "$(curl --silent --max-time 10 --write-out '%{num_connects}' -o /dev/null "$url/1" -o /dev/null "$url/2")" 10
head=$(send 'HEAD /a/b HTTP/1.1\r\nHost: a\r\n\r\n' | tr -d '\r')
check "HEAD: the Content-Length of its body, hello from ruby: HEAD /a/b" \
  "$(sed -n 's/^Content-Length: //p' <<<"$head")" 27
check "HEAD: no body after the head" "$(sed '1,/^$/d' <<<"$head")" ""
head -c 1500000 /dev/zero | tr '\0' x >"$work/body"
check "POST: a body of 1.5 MB, which comes over the channel in many reads" \
  "$(curl --silent --max-time 10 --data-binary "@$work/body" "$url/upload")" "hello from ruby: POST /upload"
put=$(send 'PUT /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: a\r\n\r\n')
check "PUT: 405, then the GET behind it on the same connection" "$(statuses <<<"$put")" "405 200"
check "PUT: the 405 says what is allowed" "$(tr -d '\r' <<<"$put" | sed -n 's/^Allow: //p')" "GET, HEAD, POST"
check "the GET behind the PUT" "$(tail -n 1 <<<"$put")" "hello from ruby: GET /after"

check "a line" "$(send 'hi there\n')" "hello from ruby: hi there"
check "a CR inside a line stays inside its one answer line" "$(send 'a\rb\n')" "hello from ruby: a b"
check "pipelined lines, answered in order" "$(send 'one\ntwo\r\nthree\n' | paste -sd ' ')" \
  "hello from ruby: one hello from ruby: two hello from ruby: three"
three='GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc'
three+='GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'
pipelined=$(send "$three")
check "pipelined HTTP requests: three answers" "$(statuses <<<"$pipelined")" "200 200 200"
check "pipelined HTTP requests: in order" "$(grep -a '^hello' <<<"$pipelined" | paste -sd ' ')" \
  "hello from ruby: GET /1 hello from ruby: POST /2 hello from ruby: GET /3"
check "Connection: close when the record's keep-alive flag is clear: the last of them" \
  "$(tr -d '\r' <<<"$pipelined" | grep -c '^Connection: close$')" 1
http10=$(send 'GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /c HTTP/1.0\r\n\r\n' | tr -d '\r')
check "HTTP/1.0: both answered" "$(statuses <<<"$http10")" "200 200"
check "HTTP/1.0: the one that asked says keep-alive, the other close" \
  "$(grep '^Connection: ' <<<"$http10" | paste -sd ' ')" "Connection: keep-alive Connection: close"

stop_reactor
check "both handlers exited with 0 when the reactor closed their channels" \
  "$(grep -c '^hello.rb exited with status 0$' "$work/stderr")" 2
check "the reactor warned of nothing: no handler died, none was killed" \
  "$(grep -c ' warn: ' "$work/stderr" || true)" 0
summary
