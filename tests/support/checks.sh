# Test support for the shell tests (tests/integration/install_test.sh, tests/deploy/*.sh); source it.
#   check WHAT GOT WANTED     counts one result and prints it
#   summary                   prints the counts; fails when a check failed (the script's last command)
#   as_root                   --allow-root-handlers when run as root (CI), which the reactor then wants
#   start_reactor COMMAND...  starts a reactor on a free port of 127.0.0.1 (port), no admin port, as
#                             reactor_pid, its output in the folder $work; fails the test when it does not start
#   stop_reactor              SIGTERM, and checks that it exits with 0
#   use_work_folder           a fresh folder in $work, removed at exit together with a reactor start_reactor
#                             left running (the EXIT trap; the test's exit status stays its own)

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

use_work_folder() {
  work=$(mktemp -d)
  reactor_pid=
  trap end_of_test EXIT
}
end_of_test() {
  local status=$?
  [ -n "$reactor_pid" ] && kill "$reactor_pid" 2>/dev/null && wait "$reactor_pid" 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}

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
