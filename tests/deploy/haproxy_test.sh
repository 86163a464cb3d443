#!/usr/bin/env bash
# Three reactors behind HAProxy, run with deploy/haproxy.cfg's settings (only the addresses, ports, paths and the
# check intervals are the test's own). Guards the promise that taking a reactor out of rotation costs no request:
# under wrk load, each reactor in turn is drained (POST /drain), stopped with SIGTERM once HAProxy reports it
# DOWN, restarted and waited for until HAProxy reports it UP again, and wrk must see no failed request. Then a
# reactor is killed (SIGKILL) under load: the test measures how long HAProxy takes to mark it DOWN and counts the
# requests that failed meanwhile, and checks that it is marked down in time and that requests succeed after.
# Each reactor gets its own network namespace, joined to HAProxy's by a veth pair, where `ip netns add` works
# (root, outside a restricted container); otherwise all run in this one, the reactors on 127.0.0.2, .3 and .4.
# HANDOFF_TEST_NETNS=off chooses the second way. HAProxy sends each connection's client in a PROXY protocol v2
# header (send-proxy-v2), which the reactors take from its address: a request from 127.0.0.9 is answered by a
# handler that says it came from 127.0.0.9 (the built-in `client`), not from HAProxy. About 12 s on two busy
# cores. Usage: haproxy_test.sh REACTOR
set -euo pipefail
reactor=$1
config=$(cd "$(dirname "$0")/../.." && pwd)/deploy/haproxy.cfg
work=$(mktemp -d)
namespaces=()               # Network namespaces this test made.
declare -A reactor_pid=()   # Reactor N's pid while it runs.
haproxy_pid= wrk_pid=
started_at=$(date +%s.%N)
elapsed() { python3 -c "import time; print('%.2f' % (time.time() - $1))"; }  # elapsed SINCE: seconds since then.

# end PID: SIGTERM, up to 5 s to exit, then SIGKILL. Only for processes this test started.
end() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  [ -n "$wrk_pid" ] && end "$wrk_pid"
  for n in "${!reactor_pid[@]}"; do end "${reactor_pid[$n]}"; done
  [ -n "$haproxy_pid" ] && end "$haproxy_pid"
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/../support/checks.sh"
die() {  # die WHY: a step the rest depends on failed; shows the logs.
  echo "FAIL: $1"
  for log in "$work"/*.log; do echo "--- $log"; tail -n 20 "$log"; done
  echo "$passed passed, $((failed + 1)) failed"
  exit 1
}
# POST /drain from a peer that is not loopback (the veth addresses) needs the token; the test always uses one.
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
echo "$token" >"$work/token"

# --- The network: a namespace per reactor, or addresses on loopback ---

prefix=handoff-test-$$
lb_ns=$prefix-lb
# make_namespaces: HAProxy's namespace and one per reactor, reactor N at 10.0.0.1N behind a veth pair whose
# HAProxy end is 10.0.0.1, as in deploy/haproxy.cfg. Fails (status 1) where namespaces cannot be made.
make_namespaces() {
  [ "${HANDOFF_TEST_NETNS:-auto}" != off ] || return 1
  ip netns add "$lb_ns" 2>/dev/null || return 1
  namespaces+=("$lb_ns")
  ip -n "$lb_ns" link set lo up || return 1
  for n in 1 2 3; do
    ip netns add "$prefix-$n" || return 1
    namespaces+=("$prefix-$n")
    ip -n "$lb_ns" link add "r$n" type veth peer name eth0 netns "$prefix-$n" || return 1
    ip -n "$lb_ns" addr add 10.0.0.1/32 peer "10.0.0.1$n/32" dev "r$n" || return 1
    ip -n "$prefix-$n" addr add "10.0.0.1$n/32" peer 10.0.0.1/32 dev eth0 || return 1
    ip -n "$lb_ns" link set "r$n" up && ip -n "$prefix-$n" link set eth0 up && ip -n "$prefix-$n" link set lo up ||
      return 1
  done
  # A refused connection (a reset from reactor 3's stack) shows that packets go both ways.
  ip netns exec "$lb_ns" python3 -c '
import socket, sys
try: socket.create_connection(("10.0.0.13", 1), timeout=2)
except ConnectionRefusedError: sys.exit(0)
sys.exit(1)' 2>/dev/null
}
# free_ports N ADDRESS...: N port numbers free on every one of the addresses.
free_ports() {
  python3 - "$@" <<'PY'
import socket, sys
count, addresses, found = int(sys.argv[1]), sys.argv[2:], []
while len(found) < count:
    first = socket.socket()
    first.bind((addresses[0], 0))
    port, held = first.getsockname()[1], [first]
    try:
        for address in addresses[1:]:
            s = socket.socket()
            s.bind((address, port))
            held.append(s)
        if port not in found:
            found.append(port)
    except OSError:
        pass
    for s in held:
        s.close()
print(*found)
PY
}
if make_namespaces; then
  echo "network: a namespace per reactor (10.0.0.11-13), joined to HAProxy's by veth pairs"
  addr=([1]=10.0.0.11 [2]=10.0.0.12 [3]=10.0.0.13)
  balancer=10.0.0.1  # HAProxy's address, as the reactors see it.
  port=8888 admin=8889 front=8080 stats_port=8404  # Fresh namespaces: every port is free, so deploy/'s own.
  in_lb=(ip netns exec "$lb_ns")
else
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  namespaces=()
  echo "network: loopback, the reactors on 127.0.0.2-4 (no network namespaces here)"
  addr=([1]=127.0.0.2 [2]=127.0.0.3 [3]=127.0.0.4)
  balancer=127.0.0.1  # The source address Linux gives HAProxy's connections to 127.0.0.2-4.
  read -r port admin < <(free_ports 2 127.0.0.2 127.0.0.3 127.0.0.4)
  read -r front stats_port < <(free_ports 2 127.0.0.1)
  in_lb=()
fi
# in_reactor N COMMAND...: COMMAND where reactor N's network is.
in_reactor() {
  if [ ${#namespaces[@]} -gt 0 ]; then ip netns exec "$prefix-$1" "${@:2}"; else "${@:2}"; fi
}

# --- The reactors ---

# start_reactor N: reactor N on its address, waited for (10 s at most) until its admin port listens.
start_reactor() {
  local n=$1 out=$work/reactor$1.out
  local -a netns=()
  [ ${#namespaces[@]} -gt 0 ] && netns=(ip netns exec "$prefix-$n")
  "${netns[@]}" "$reactor" --listen "${addr[n]}:$port" --admin "${addr[n]}:$admin" --handlers 1 \
    --proxy-protocol-from "$balancer" --admin-token-file "$work/token" "${as_root[@]}" >"$out" \
    2>>"$work/reactor$n.log" &
  reactor_pid[$n]=$!
  for _ in $(seq 100); do
    grep -q '^admin listening on' "$out" 2>/dev/null && return 0
    kill -0 "${reactor_pid[$n]}" 2>/dev/null || break
    sleep 0.1
  done
  die "reactor $n did not start on ${addr[n]}:$port"
}
# stop_reactor N: SIGTERM, then up to 10 s for it to finish what it serves and exit; sets $status.
stop_reactor() {
  local pid=${reactor_pid[$1]}
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then status="still running after 10 s"; else wait "$pid" && status=0 || status=$?; fi
  unset "reactor_pid[$1]"
}
admin_post() {  # admin_post N PATH: the HTTP status of POST PATH on reactor N's admin port.
  in_reactor "$1" curl --silent --max-time 5 --output /dev/null --write-out '%{http_code}' -X POST \
    -H "Authorization: Bearer $token" "http://${addr[$1]}:$admin$2" || true
}
served() {  # served N: the requests reactor N's handlers answered, from its /stats.
  in_reactor "$1" curl --silent --max-time 5 "http://${addr[$1]}:$admin/stats" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["counters"]["requests"])' 2>/dev/null || echo 0
}

# --- HAProxy ---

# deploy/haproxy.cfg with the test's addresses, ports and paths, and checks ten times as often. Any line of it
# that this cannot place stops the test: the config changed shape, and the test must follow it.
python3 - "$config" "$work/haproxy.cfg" "$work/haproxy.sock" "$front" "$stats_port" "$admin" "$port" \
  "${addr[1]}" "${addr[2]}" "${addr[3]}" <<'PY' || die "deploy/haproxy.cfg: not the shape this test expects"
import re, sys
source, target, sock, front, stats_port, admin, port = sys.argv[1:8]
addresses = sys.argv[8:]
out, section, servers, done = [], None, 0, set()
for line in open(source):
    words = line.split()
    if line[:1].isalpha():
        section = words[0]
    elif not words or words[0].startswith("#"):
        pass
    elif section == "global" and words[0] in ("chroot", "user", "group", "daemon"):
        continue  # The test runs HAProxy in the foreground as whoever runs the test.
    elif section == "global" and words[0] == "log":
        # State changes (notice) reach the log; a line per request would cost the CPU the test measures with.
        line, _ = "    log stdout format raw local0 notice\n", done.add("log")
    elif words[:2] == ["stats", "socket"]:
        line, _ = re.sub(r"socket \S+", "socket " + sock, line), done.add("socket")
    elif words[0] == "bind":
        line = "    bind 127.0.0.1:%s\n" % (front if section == "frontend" else stats_port)
        done.add("bind " + section)
    elif words[0] == "default-server":
        wanted = {"port": admin, "inter": "200ms", "fastinter": "100ms", "downinter": "200ms"}
        for key, value in wanted.items():
            line, count = re.subn(r"\b%s \S+" % key, "%s %s" % (key, value), line)
            if count != 1:
                sys.exit("default-server has no %s" % key)
        done.add("default-server")
    elif words[0] == "server":
        if servers == len(addresses):
            sys.exit("more than three servers")
        line = "    server %s %s:%s\n" % (words[1], addresses[servers], port)
        servers += 1
    out.append(line)
missing = {"log", "socket", "bind frontend", "bind listen", "default-server"} - done
if missing or servers != len(addresses):
    sys.exit("not placed: %s, %d servers" % (sorted(missing), servers))
open(target, "w").writelines(out)
PY
check "haproxy -c accepts deploy/haproxy.cfg" "$(haproxy -c -q -f "$config" && echo valid)" valid
check "haproxy -c accepts the test's config" "$(haproxy -c -q -f "$work/haproxy.cfg" && echo valid)" valid

# The states HAProxy reports for the backend's servers, read from its stats socket ("show stat", CSV).
cat >"$work/stat.py" <<'PY'
"""stat.py SOCKET wait SERVER STATE SECONDS [SINCE]: waits up to SECONDS for SERVER to be STATE, polling every
20 ms, and prints the state it saw last and the seconds from SINCE (a Unix time; default now) to seeing it.
stat.py SOCKET field SERVER COLUMN: prints one column of SERVER's row (BACKEND for the backend's)."""
import socket, sys, time

def rows(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    return {r[1]: dict(zip(header, r)) for r in (l.split(",") for l in lines[1:] if l) if r[0] == "handoff"}

path, mode, server = sys.argv[1:4]
if mode == "field":
    print(rows(path)[server][sys.argv[4]])
    sys.exit(0)
state, deadline = sys.argv[4], time.time() + float(sys.argv[5])
since = float(sys.argv[6]) if len(sys.argv) > 6 else time.time()
seen = "none"
while True:
    try:
        seen = rows(path)[server]["status"]
    except (OSError, KeyError, IndexError) as error:
        seen = type(error).__name__
    if seen == state or time.time() > deadline:
        break
    time.sleep(0.02)
print(seen.replace(" ", "_"), "%.2f" % (time.time() - since))
PY
wait_state() { python3 "$work/stat.py" "$work/haproxy.sock" wait "$@"; }
stat_field() { python3 "$work/stat.py" "$work/haproxy.sock" field "$@" 2>/dev/null || echo 0; }
through_haproxy() {  # through_haproxy PATH: GET PATH through HAProxy's frontend.
  "${in_lb[@]}" curl --silent --max-time 5 "http://127.0.0.1:$front$1" || echo failed  # Answers end in a newline.
}
# run_wrk NAME SECONDS: wrk through HAProxy in the background, at most SECONDS long (stop_wrk ends it sooner).
run_wrk() {
  "${in_lb[@]}" wrk -t1 -c16 -d"$2"s "http://127.0.0.1:$front/fib/10" >"$work/$1.wrk" 2>&1 &
  wrk_pid=$!
}
# stop_wrk NAME: SIGINT makes wrk stop and print its summary; sets $requests and $failures ("none" or wrk's lines).
stop_wrk() {
  kill -INT "$wrk_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$wrk_pid" 2>/dev/null || break; sleep 0.1; done
  end "$wrk_pid"
  wrk_pid=
  requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$work/$1.wrk")
  failures=$(grep -E 'Socket errors|Non-2xx' "$work/$1.wrk" | tr -s ' ' | paste -sd';' -) || true
  failures=${failures:-none}
}

for n in 1 2 3; do start_reactor "$n"; done
"${in_lb[@]}" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
for _ in $(seq 100); do [ -S "$work/haproxy.sock" ] && break; sleep 0.1; done
for n in 1 2 3; do
  read -r state _ < <(wait_state "reactor$n" UP 5) || true
  [ "$state" = UP ] || die "HAProxy does not report reactor$n UP: $state"
done
check "GET /fib/20 through HAProxy" "$(through_haproxy /fib/20)" 6765
# The handler sees the client's address, from HAProxy's PROXY header: not HAProxy's own.
check "GET /client from 127.0.0.9 through HAProxy: the handler sees 127.0.0.9" \
  "$("${in_lb[@]}" curl --silent --max-time 5 --interface 127.0.0.9 "http://127.0.0.1:$front/client" || echo failed)" \
  127.0.0.9

# --- Drain, stop and restart each reactor under load: no request may fail ---

run_wrk drain 50
# Load on all three first (5 s at most).
for n in 1 2 3; do
  for _ in $(seq 50); do [ "$(served "$n")" -gt 0 ] && break; sleep 0.1; done
done
for n in 1 2 3; do
  since=$(date +%s.%N)
  check "reactor$n: POST /drain" "$(admin_post "$n" /drain)" 200
  read -r state took < <(wait_state "reactor$n" DOWN 5 "$since") || true
  check "reactor$n: HAProxy reports it DOWN, $took s after POST /drain" "$state" DOWN
  since=$(date +%s.%N)
  stop_reactor "$n"
  check "reactor$n: exits with 0 on SIGTERM, $(elapsed "$since") s after it" "$status" 0
  since=$(date +%s.%N)
  start_reactor "$n"
  read -r state took < <(wait_state "reactor$n" UP 5 "$since") || true
  check "reactor$n: HAProxy reports it UP, $took s after the restart began" "$state" UP
done
# Each restarted reactor takes load again (5 s at most), and then wrk stops.
for n in 1 2 3; do
  for _ in $(seq 50); do [ "$(served "$n")" -gt 0 ] && break; sleep 0.1; done
  check "reactor$n: serves again after its restart" "$([ "$(served "$n")" -gt 0 ] && echo yes || echo no)" yes
done
check "wrk: still running after the last restart" "$(kill -0 "$wrk_pid" 2>/dev/null && echo yes || echo no)" yes
stop_wrk drain
retries=$(stat_field BACKEND wretr) redispatches=$(stat_field BACKEND wredis)
echo "wrk through three drains and restarts: ${requests:-0} requests; HAProxy retried $retries, redispatched $redispatches"
check "wrk: no socket error and no non-2xx answer through the drains" "$failures" none
check "wrk: served at least 1000 requests" "$([ "${requests:-0}" -ge 1000 ] && echo yes || echo "no: ${requests:-0}")" yes

# --- SIGKILL one reactor under load: how long until HAProxy marks it down, and what it cost ---

before=$(served 2)
run_wrk kill 30
# Load on the reactor to be killed first (5 s at most).
for _ in $(seq 50); do [ "$(served 2)" -gt $((before + 500)) ] && break; sleep 0.1; done
retries_before=$(stat_field BACKEND wretr) redispatches_before=$(stat_field BACKEND wredis)
killed_at=$(date +%s.%N)
kill -KILL "${reactor_pid[2]}"
wait "${reactor_pid[2]}" 2>/dev/null || true
unset "reactor_pid[2]"
read -r state took < <(wait_state reactor2 DOWN 5 "$killed_at") || true
check "SIGKILL: HAProxy reports reactor2 DOWN" "$state" DOWN
check "SIGKILL: within 3 s (${took} s)" "$(python3 -c "print('yes' if $took <= 3 else 'no')")" yes
answers=$(for _ in 1 2 3 4 5 6; do through_haproxy /fib/10; done | paste -sd' ' -)
check "SIGKILL: requests through HAProxy succeed after it" "$answers" "55 55 55 55 55 55"
check "wrk: still running after reactor2 was marked down" "$(kill -0 "$wrk_pid" 2>/dev/null && echo yes || echo no)" yes
stop_wrk kill
retries=$(($(stat_field BACKEND wretr) - retries_before))
redispatches=$(($(stat_field BACKEND wredis) - redispatches_before))
# wrk ran from before the kill until after HAProxy marked the reactor down: what failed, failed in that window.
echo "SIGKILL: DOWN after $took s; requests that failed in the window: $failures (of ${requests:-0});" \
  "HAProxy retried $retries, redispatched $redispatches"

echo "run time: $(elapsed "$started_at") s"
summary
