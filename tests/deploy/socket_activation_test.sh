#!/usr/bin/env bash
# The reactor under systemd, without systemd as PID 1: systemd-socket-activate binds the service and admin
# ports and starts the reactor with them (LISTEN_FDS, as handoff.socket does), and a notification socket
# stands in for systemd's (NOTIFY_SOCKET, as Type=notify in handoff.service reads it). Checks that the reactor
# serves on the sockets it was given, says READY=1 once its handlers are, STOPPING=1 on SIGTERM, and that a
# successor of a takeover (SIGUSR2) tells systemd it is the main process now (MAINPID).
# Usage: socket_activation_test.sh REACTOR
set -euo pipefail
reactor=$1
work=$(mktemp -d)
pid=
listener_pid=
cleanup() {
  local status=$?  # The test's, not that of what is ended here.
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null && wait "$listener_pid" 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
source "$(dirname "$0")/../support/checks.sh"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for FILE TEXT: up to 10 s
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "FAIL: no '$2' in $1:"; cat "$1"; cat "$work/stderr"; exit 1
}

# systemd's notification socket: a datagram socket whose every message goes to a file, a line per field.
python3 - "$work/notify.sock" "$work/notifications" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode() + "\n")
PY
listener_pid=$!
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done

port=$(free_port) admin=$(free_port)
# It passes on only the environment it is told to (-E), as systemd passes only what the unit sets.
systemd-socket-activate -E "NOTIFY_SOCKET=$work/notify.sock" -l "127.0.0.1:$port" -l "127.0.0.1:$admin" \
  --fdname=serve:admin "$reactor" --handlers 1 "${as_root[@]}" >"$work/stdout" 2>"$work/stderr" &
pid=$!
wait_for "$work/stderr" "Listening on 127.0.0.1:$admin"
# systemd-socket-activate starts the reactor when the first connection comes, as systemd does.
check "GET /fib/10, the first request, starts it" "$(curl --silent --max-time 10 "http://127.0.0.1:$port/fib/10")" 55
wait_for "$work/stdout" '^admin listening on'
check "it listens on the socket passed to it" "$(head -n 1 "$work/stdout")" "listening on 127.0.0.1:$port"
check "and on the admin socket passed to it" "$(sed -n 2p "$work/stdout")" "admin listening on 127.0.0.1:$admin"
check "fib 11 on a line" "$(printf 'fib 11\n' | timeout 10 nc -N 127.0.0.1 "$port")" 89
check "GET /healthz on the admin port" "$(curl --silent --max-time 10 "http://127.0.0.1:$admin/healthz")" ok
wait_for "$work/notifications" '^READY=1'

# A takeover: the successor gets the sockets from the reactor, not from systemd, and says it is the main
# process.
kill -USR2 "$pid"
wait_for "$work/notifications" '^MAINPID='
successor=$(sed -n 's/^MAINPID=//p' "$work/notifications" | tail -n 1)
wait_for "$work/stderr" 'took every connection'
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" && status=0 || status=$?
pid=$successor  # Not a child of this shell: stopped by its pid, and waited for below.
check "the old reactor exits with 0 after the takeover" "$status" 0
check "the successor serves" "$(curl --silent --max-time 10 "http://127.0.0.1:$port/fib/12")" 144
check "the successor's /stats names its pid" \
  "$(curl --silent --max-time 10 "http://127.0.0.1:$admin/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')" \
  "$successor"
kill -TERM "$successor"
wait_for "$work/notifications" '^STOPPING=1'
# It is no child of this shell: gone, or a zombie its new parent has not reaped yet, is exited.
running() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
for _ in $(seq 100); do running "$successor" || break; sleep 0.1; done
check "the successor exits on SIGTERM" "$(running "$successor" && echo running || echo exited)" exited
pid=

# --listen and a passed socket at once is a mistake, said as one.
: >"$work/stdout"
: >"$work/stderr"
port=$(free_port)
systemd-socket-activate -l "127.0.0.1:$port" "$reactor" --listen 127.0.0.1:0 --admin off "${as_root[@]}" \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
wait_for "$work/stderr" "Listening on 127.0.0.1:$port"
curl --silent --max-time 10 "http://127.0.0.1:$port/" >/dev/null || true  # Starts it; it refuses to run.
wait "$pid" && status=0 || status=$?
pid=
check "--listen with a passed socket: exit status" "$status" 1
check "--listen with a passed socket: the reason" \
  "$(grep -c 'systemd passed a socket to listen on: give one of them' "$work/stderr")" 1

summary
