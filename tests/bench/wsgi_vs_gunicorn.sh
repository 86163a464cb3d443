#!/usr/bin/env bash
# One Flask app (tests/bench/flask_app.py) under handoff (python3 -m handoff_handler.wsgi, 2 handlers) and under
# Debian's gunicorn with sync workers (-w 2), both on Debian's python3, side by side: each shape is run on each
# server in turn, ROUNDS times, and each row is the ratio of the medians, with the range of the per-round
# ratios. The shapes:
#   - /hello with 32 keep-alive clients (gunicorn's sync workers close each connection after one answer);
#   - the CPU-bound /fib/N with 8 clients, alone and beside slow clients that trickle their request heads
#     (tests/bench/trickle_clients.py), as each server's share of its own throughput without them;
#   - the time from the SIGKILL of an idle handler (or worker) to the first answer of its replacement, with
#     and without --preload (tests/bench/respawn_probe.py), a few kills each.
# The last part of tools/bench; alone, it measures the build that is there (build/reactor/handoff):
#   tests/bench/wsgi_vs_gunicorn.sh [SECONDS_PER_RUN [ROUNDS]]   (defaults 5 and 3)
source "$(dirname "$0")/../../tools/lib.sh"
source "$HANDOFF_ROOT/tools/bench_lib.sh"

seconds=${1:-5}
rounds=${2:-3}
fib_n=24             # ~8 ms of fib(N) in Flask on a 2-core EPYC guest: a CPU-bound request of 5 to 20 ms.
slow_clients=200     # Connections trickling a request head, a byte every 0.5 to 1 s, beside the 8 wrk clients.
kills=5              # Of an idle handler, on each server, for the respawn rows.
python=/usr/bin/python3
bench=$HANDOFF_ROOT/tests/bench
reactor=$HANDOFF_ROOT/build/reactor/handoff
[ -x "$reactor" ] || { echo "wsgi_vs_gunicorn: no $reactor: build it first (tools/bench, tools/run)" >&2; exit 1; }
ensure_packages wrk gunicorn python3-flask

servers=(handoff gunicorn handoff_preload gunicorn_preload)
declare -A pid=() out=() url=()
trickle=
trickle_out=$(mktemp)
for server in "${servers[@]}"; do out[$server]=$(mktemp); done
trap 'kill ${pid[*]} $trickle 2>/dev/null || true; rm -f "${out[@]}" "$trickle_out"' EXIT

# fib(N)'s time in Flask, in process (its test client): the median of seven, taken now, beside the rows.
fib_ms=$(cd "$bench" && "$python" -c 'import sys, time, flask_app
client, times = flask_app.app.test_client(), []
for _ in range(7):
    start = time.perf_counter()
    client.get("/fib/" + sys.argv[1])
    times.append(time.perf_counter() - start)
print("%.1f" % (sorted(times)[3] * 1000))' "$fib_n")

wsgi_command="$python -m handoff_handler.wsgi --chdir $bench flask_app:app"
for preload in '' --preload; do
  server=handoff${preload:+_preload}
  pid[$server]=$(PYTHONPATH="$HANDOFF_ROOT/handler/python" start_server "${out[$server]}" "$reactor" \
    --listen 127.0.0.1:0 --admin off --handlers 2 $preload "${as_root[@]}" --handler-cmd "$wsgi_command")
  server=gunicorn${preload:+_preload}
  pid[$server]=$(start_gunicorn "${out[$server]}" "$bench" /hello flask_app:app --workers 2 --worker-class sync $preload)
done
for server in "${servers[@]}"; do
  url[$server]="http://127.0.0.1:$(port_of "${out[$server]}")"
  if ! wait_answering "${url[$server]}/hello"; then
    echo "wsgi_vs_gunicorn: $server does not answer ${url[$server]}/hello; its output:" >&2
    cat "${out[$server]}" >&2
    exit 1
  fi
done
# Every handler has served before the first round: Flask does some of its set-up on the first request.
for server in handoff gunicorn; do wrk -t1 -c8 -d1s "${url[$server]}/hello" >/dev/null; done

declare -A figures=() errors=()  # "SHAPE SERVER" -> the figure of each round; the errors of all its runs
declare -A closed=()  # SERVER -> the slow clients' connections it closed (handoff's --read-timeout: 10 s)
# measure SHAPE SERVER CONNECTIONS PATH: one wrk run; its requests/s join figures, its errors errors.
measure() {
  local report
  report=$(wrk -t1 -c"$3" -d"${seconds}s" "${url[$2]}$4")
  figures["$1 $2"]+=" $(wrk_rps <<<"$report")"
  errors["$1 $2"]=$(( ${errors["$1 $2"]:-0} + $(wrk_errors <<<"$report") ))
}
# measure_beside_slow_clients SERVER: measure's fib shape while slow clients trickle their heads into the
# server. They connect first (and so come first in gunicorn's accept queue), stay for the whole wrk run, and are
# stopped after it; then the server must answer again before the next run.
measure_beside_slow_clients() {
  local port=${url[$1]##*:}
  "$python" "$bench/trickle_clients.py" 127.0.0.1 "$port" --connections "$slow_clients" --interval 1 \
    --duration "$(( seconds + 10 ))" >"$trickle_out" &
  trickle=$!
  for _ in $(seq 100); do grep -q '^connected' "$trickle_out" && break; sleep 0.1; done
  grep -q '^connected' "$trickle_out" || { echo "wsgi_vs_gunicorn: the slow clients did not connect to $1" >&2; exit 1; }
  measure slow "$1" 8 "/fib/$fib_n"
  kill "$trickle" 2>/dev/null || true
  wait "$trickle" || true
  trickle=
  closed["$1"]=$(( ${closed["$1"]:-0} + $(sed -n 's/.*the server closed \([0-9]*\)$/\1/p' "$trickle_out") ))
  if ! wait_answering "${url[$1]}/hello"; then
    echo "wsgi_vs_gunicorn: $1 does not answer again within 10 s of the slow clients' end" >&2
    exit 1
  fi
}

for _ in $(seq "$rounds"); do
  for server in handoff gunicorn; do measure hello "$server" 32 /hello; done
done
for _ in $(seq "$rounds"); do
  for server in handoff gunicorn; do measure fib "$server" 8 "/fib/$fib_n"; done
  for server in handoff gunicorn; do measure_beside_slow_clients "$server"; done
done
# Respawns: a kill on each server in turn, KILLS times; the probe prints the milliseconds, or fails saying why.
declare -A respawn=()
for _ in $(seq "$kills"); do
  for server in "${servers[@]}"; do
    respawn[$server]+=" $("$python" "$bench/respawn_probe.py" "${pid[$server]}" "$(port_of "${out[$server]}")" --handlers 2)"
  done
done
for server in "${servers[@]}"; do stop_server "${pid[$server]}"; done
pid=()

# by_round A B: the ratios a_i / b_i of two lists of figures taken in the same rounds, one a line (none where b_i
# is 0). spread FORMAT UNIT: "lowest–highestUNIT" of the numbers on stdin, each in the printf FORMAT; "-" for none.
by_round() { paste <(tr ' ' '\n' <<<"$1" | sed '/^$/d') <(tr ' ' '\n' <<<"$2" | sed '/^$/d') | awk '$2 > 0 { print $1 / $2 }'; }
spread() { sort -g | awk -v f="$1" -v unit="$2" 'NR == 1 { low = $1 } { high = $1 } END { if (NR) printf f "–" f "%s", low, high, unit; else printf "-" }'; }
ratio_or_dash() { if [ "$2" = 0 ]; then echo -; else ratio "$1" "$2"; fi; }
share() { if [ "$2" = 0 ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; fi; }
row() { printf '%-46s %9s %9s %7s  %s\n' "$@"; }
# rps_row LABEL SHAPE, respawn_row LABEL SUFFIX: handoff's median, gunicorn's, the ratio, and the per-round range.
rps_row() {
  local h g
  h=$(median <<<"${figures[$2 handoff]}")
  g=$(median <<<"${figures[$2 gunicorn]}")
  row "$1" "$h" "$g" "$(ratio_or_dash "$h" "$g")" \
    "$(by_round "${figures[$2 handoff]}" "${figures[$2 gunicorn]}" | spread %.2f x)"
}
respawn_row() {
  local h g
  h=$(printf %.1f "$(median <<<"${respawn[handoff$2]}")")
  g=$(printf %.1f "$(median <<<"${respawn[gunicorn$2]}")")
  row "$1" "$h" "$g" "$(ratio "$h" "$g")" \
    "$(by_round "${respawn[handoff$2]}" "${respawn[gunicorn$2]}" | spread %.2f x)"
}
share_of() { share "$(median <<<"${figures[slow $1]}")" "$(median <<<"${figures[fib $1]}")"; }
share_spread() { by_round "${figures[slow $1]}" "${figures[fib $1]}" | awk '{ print 100 * $1 }' | spread %.0f %; }

echo
echo "== Flask: handoff's WSGI server (2 handlers) against gunicorn sync (-w 2), the same app, wrk -t1, ${seconds}s per"
echo "   run, side by side, each shape on each in turn: medians of $rounds rounds; ratio = handoff / gunicorn (for"
echo "   req/s above 1 is better for handoff, for times below 1), then the lowest and highest per-round ratio"
row shape handoff gunicorn ratio 'per round'
rps_row '/hello, 32 keep-alive clients, req/s' hello
rps_row "/fib/$fib_n ($fib_ms ms in Flask), 8 clients, req/s" fib
rps_row "  the same beside $slow_clients slow clients, req/s" slow
row '  beside slow clients / without them' "$(share_of handoff)" "$(share_of gunicorn)" - \
  "handoff $(share_spread handoff), gunicorn $(share_spread gunicorn)"
respawn_row "respawn: SIGKILL to the new pid's answer, ms" ''
respawn_row '  the same, both with --preload, ms' _preload
echo "   slow clients: $slow_clients connections, each sending a byte of a request head every 0.5-1 s from before"
echo "   wrk starts until after it ends (the server closed ${closed[handoff]:-0} of them in handoff's runs, ${closed[gunicorn]:-0} in"
echo "   gunicorn's); respawn: medians of $kills kills of an idle handler (worker) per server, each polled with /pid"
echo "   on fresh connections every ~2 ms until a new pid answers"
echo "   wrk's errors in all runs (socket errors and non-2xx answers; a request never answered is none):" \
  "handoff $(( ${errors[hello handoff]:-0} + ${errors[fib handoff]:-0} + ${errors[slow handoff]:-0} )), gunicorn" \
  "$(( ${errors[hello gunicorn]:-0} + ${errors[fib gunicorn]:-0} + ${errors[slow gunicorn]:-0} ))"
echo "   ($SECONDS s in all)"
