# Test support for the shell tests (tests/integration/install_test.sh, tests/deploy/*.sh); source it.
#   check WHAT GOT WANTED     counts one result and prints it
#   summary                   prints the counts; fails when a check failed (the script's last command)
#   as_root                   --allow-root-handlers when run as root (CI), which the reactor then wants
#   start_reactor COMMAND...  starts a reactor on a free port of 127.0.0.1 (port), no admin port, as
#                             reactor_pid, its output in the folder $work; fails the test when it does not start
#   stop_reactor              SIGTERM, and checks that it exits with 0
# The caller sets reactor_pid= first, and its cleanup trap ends a reactor still running:
#   [ -n "$reactor_pid" ] && kill "$reactor_pid"

passed=0 failed=0
check() {
  if [ "$2" = "$3" ]; then
    echo "ok: $1 -> $2"
    passed=$((passed + 1))
  else
    echo "FAIL: $1 -> '$2', not '$3'"
    failed=$((failed + 1))
  fi
}
summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--allow-root-handlers)

start_reactor() {
  # Emptied here, not by the redirection below: that happens in the child, maybe after the wait has begun
  # and found the last reactor's "listening on".
  : >"$work/stdout"
  "$@" --listen 127.0.0.1:0 --admin off --handlers 2 "${as_root[@]}" >"$work/stdout" 2>"$work/stderr" &
  reactor_pid=$!
  for _ in $(seq 100); do grep -q '^listening on' "$work/stdout" && break; sleep 0.1; done
  port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/stdout")
  [ -n "$port" ] || { echo "FAIL: the reactor did not start: $*"; cat "$work/stderr"; exit 1; }
}
stop_reactor() {
  local status
  kill "$reactor_pid" && wait "$reactor_pid" && status=0 || status=$?
  reactor_pid=
  check "the reactor exits with 0 on SIGTERM" "$status" 0
}
