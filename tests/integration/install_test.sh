#!/usr/bin/env bash
# Installs handoff into a temporary folder (meson install --destdir), builds handler/examples/square.cpp with
# nothing but `pkg-config --cflags --libs handoff-handler` from there, serves it with the reactor, and asks it
# over both protocols. Usage: install_test.sh BUILD_DIR REACTOR SQUARE_CPP [EXTRA_CXXFLAGS]
# (EXTRA_CXXFLAGS: the sanitizer flags when the library was built with them).
set -euo pipefail
build=$1 reactor=$2 source=$3 extra_flags=${4:-}
stage=$(mktemp -d)
reactor_pid=
cleanup() {
  [ -n "$reactor_pid" ] && kill "$reactor_pid" 2>/dev/null && wait "$reactor_pid" 2>/dev/null
  rm -rf "$stage"
}
trap cleanup EXIT

meson install -C "$build" --destdir "$stage" --no-rebuild --quiet >/dev/null
pc=$(find "$stage" -name handoff-handler.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no handoff-handler.pc installed"; exit 1; }
[ -f "$(find "$stage" -path '*/include/handoff/handler.hpp' | head -n 1)" ] || { echo "FAIL: no header"; exit 1; }

# The .pc file names the real prefix; the sysroot variable points pkg-config's paths into the staging folder.
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs handoff-handler)
echo "pkg-config --cflags --libs handoff-handler: $flags"
g++ -std=c++20 $extra_flags -o "$stage/square" "$source" $flags
libdir=$(dirname "$(find "$stage" -name 'libhandoff-handler.so' | head -n 1)")

as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--allow-root-handlers)  # As root (CI), the handlers run as root too.
LD_LIBRARY_PATH=$libdir "$reactor" --listen 127.0.0.1:0 --admin off --handlers 2 --handler-cmd "$stage/square" \
  "${as_root[@]}" >"$stage/stdout" 2>"$stage/stderr" &
reactor_pid=$!
for _ in $(seq 100); do grep -q '^listening on' "$stage/stdout" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$stage/stdout")
[ -n "$port" ] || { echo "FAIL: the reactor did not start"; cat "$stage/stderr"; exit 1; }

over_http=$(curl --silent --max-time 10 "http://127.0.0.1:$port/square/12")
on_a_line=$(printf 'square 13\n' | timeout 10 nc -N 127.0.0.1 "$port")
passed=0 failed=0
check() {  # check WHAT GOT WANTED
  if [ "$2" = "$3" ]; then echo "ok: $1 -> $2"; passed=$((passed + 1)); else echo "FAIL: $1 -> '$2', not '$3'"; failed=$((failed + 1)); fi
}
check "GET /square/12" "$over_http" 144
check "square 13" "$on_a_line" 169
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
