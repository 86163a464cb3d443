#!/usr/bin/env bash
# Runs the conformance corpus through a reactor started here: against_reactor.sh REACTOR [HANDLER_COMMAND].
# The reactor listens on a free loopback port; it is stopped (by its pid) when the corpus is done. The corpus
# runs twice: as it is, and with every case pipelined behind a valid request (which a handler may serve in the
# same hand-off: it hands back whatever it would not serve, and the reactor judges it). The reactor is the one
# judge of every request. Exits non-zero when a case failed.
set -euo pipefail
reactor=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/handoff-conformance-XXXXXX)
arguments=(--listen 127.0.0.1:0 --admin off --handlers 2)
[ $# -ge 2 ] && arguments+=(--handler-cmd "$2")
[ "$(id -u)" -eq 0 ] && arguments+=(--allow-root-handlers)  # As root (CI), the handlers run as root too.

"$reactor" "${arguments[@]}" >"$work/stdout" 2>"$work/stderr" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 200); do
  grep -q '^listening on' "$work/stdout" && break
  kill -0 "$pid" 2>/dev/null || { echo "the reactor exited:"; cat "$work/stderr"; exit 1; }
  sleep 0.05
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/stdout")
[ -n "$port" ] || { echo "the reactor did not report listening:"; cat "$work/stderr"; exit 1; }

status=0
echo "== as sent"
python3 "$here/run.py" --quiet 127.0.0.1 "$port" || status=$?
echo "== behind a valid request"
python3 "$here/run.py" --quiet --behind-valid 127.0.0.1 "$port" || status=$?
# The reactor must have survived every case, and (in the sanitized build) tripped no sanitizer.
kill -0 "$pid" || { echo "the reactor died during the corpus:"; cat "$work/stderr"; exit 1; }
kill -TERM "$pid"
wait "$pid" || { echo "the reactor did not exit cleanly:"; cat "$work/stderr"; exit 1; }
if grep -q -e 'Sanitizer' -e 'runtime error:' "$work/stderr"; then
  echo "sanitizer finding:"; cat "$work/stderr"; exit 1
fi
exit "$status"
