# What tools/bench and the benchmarks it calls (tests/bench/*.sh) share: starting and stopping the servers they
# measure, and the arithmetic of their rows. Source it after tools/lib.sh; do not run it.

# Run as root, the reactor's handlers run as root too (it refuses to otherwise).
as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--allow-root-handlers)

# start_server OUT COMMAND...: starts a server that prints "listening on HOST:PORT" into OUT; prints its pid.
start_server() {
  local out=$1
  shift
  "$@" >"$out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do grep -q '^listening on' "$out" && break; sleep 0.1; done
  echo "$pid"
}
# start_gunicorn OUT FOLDER PATH MODULE:APP [GUNICORN_OPTION...]: starts Debian's gunicorn on a free port of
# 127.0.0.1, serving the app from FOLDER, and waits until PATH answers; prints the arbiter's pid. OUT gets the
# line a handoff server prints ("listening on 127.0.0.1:PORT", for port_of), then gunicorn's log.
start_gunicorn() {
  local out=$1 folder=$2 path=$3 app=$4
  shift 4
  local port
  port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "listening on 127.0.0.1:$port" >"$out"
  (cd "$folder" && exec /usr/bin/python3 -m gunicorn --bind "127.0.0.1:$port" --log-level warning "$@" "$app") \
    >>"$out" 2>&1 &
  local pid=$!
  wait_answering "http://127.0.0.1:$port$path" || true  # As start_server: one that never answers shows in the rows.
  echo "$pid"
}
# wait_answering URL: waits until URL gives an HTTP answer (of any status), 10 s at most; fails after that.
wait_answering() {
  for _ in $(seq 100); do curl --silent --max-time 1 --output /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}
# stop_server PID: SIGTERM, then waits until it is gone (it is not this shell's child: start_server runs in a
# subshell), so that the next row does not share the CPU with a server still winding down.
stop_server() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}
port_of() { sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$1"; }

# wrk_rps, wrk_errors: from a wrk report on stdin, its requests/s (rounded), and its errors (socket errors:
# connect, read, write, timeout; and answers that are not 2xx or 3xx).
wrk_rps() { awk '/^Requests\/sec/ { printf "%.0f", $2 }'; }
wrk_errors() { awk '/Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } /Non-2xx/ { n += $5 } END { print n + 0 }'; }

# median: the median of the numbers on stdin (separated by blanks or newlines); with decimals if any has them.
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '/\./ { decimals = 1 } { v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf(decimals ? "%.3f\n" : "%.0f\n", m) }'; }
# ratio A B: A / B, as "1.23x".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
