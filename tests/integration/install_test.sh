#!/usr/bin/env bash
# Installs handoff into a temporary folder (meson install --destdir) and uses what was installed, as a user
# of the installed prefix would: the reactor with its built-in handler from bin/, the man page, the systemd
# units (systemd-analyze verify), the Python module (where Debian's python3 looks) serving
# handler/examples/square.py, and handler/examples/square.cpp built with nothing but
# `pkg-config --cflags --libs handoff-handler`, served over both protocols.
# Usage: install_test.sh BUILD_DIR REACTOR SQUARE_CPP [EXTRA_CXXFLAGS]
# (EXTRA_CXXFLAGS: the sanitizer flags when the library was built with them).
set -euo pipefail
build=$1 reactor=$2 source=$3 extra_flags=${4:-}
source "$(dirname "$0")/../support/checks.sh"
use_work_folder
stage=$work  # Where it is installed to.

meson install -C "$build" --destdir "$stage" --no-rebuild --quiet >/dev/null
pc=$(find "$stage" -name handoff-handler.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no handoff-handler.pc installed"; exit 1; }
[ -f "$(find "$stage" -path '*/include/handoff/handler.hpp' | head -n 1)" ] || { echo "FAIL: no header"; exit 1; }
bin=$(dirname "$(find "$stage" -path '*/bin/handoff' | head -n 1)")
[ -x "$bin/handoff" ] && [ -x "$bin/handoff-handler" ] || { echo "FAIL: no bin/handoff, bin/handoff-handler"; exit 1; }
prefix=$(dirname "${bin#"$stage"}")
libdir=$(dirname "$(find "$stage" -name 'libhandoff-handler.so' | head -n 1)")

# The installed reactor, with the built-in handler installed beside it. A real install finds the library by
# the handler's run path (or ldconfig, for /usr); the staging folder is not where that path points.
LD_LIBRARY_PATH=$libdir start_reactor "$bin/handoff"
check "installed: GET /fib/20" "$(curl --silent --max-time 10 "http://127.0.0.1:$port/fib/20")" 6765
handler=$(printf 'pid\n' | timeout 10 nc -N 127.0.0.1 "$port")
check "installed: the handler is the one installed beside the reactor" "$(readlink "/proc/$handler/exe")" \
  "$bin/handoff-handler"
stop_reactor

man_page=$(find "$stage" -path '*/man1/handoff.1' | head -n 1)
check "the man page explains --listen" "$(man -l "$man_page" 2>/dev/null | grep -c -- '--listen ADDRESS')" 1
units=$(dirname "$(find "$stage" -name handoff.service | head -n 1)")
check "handoff.service starts the installed reactor" "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$units/handoff.service")" \
  "$prefix/bin/handoff"
mkdir "$stage/units"
sed "s|^ExecStart=$prefix|ExecStart=$stage$prefix|" "$units/handoff.service" >"$stage/units/handoff.service"
cp "$units/handoff.socket" "$stage/units/"
check "systemd-analyze verify finds nothing wrong with the units" \
  "$(systemd-analyze verify --man=no "$stage/units/handoff.service" "$stage/units/handoff.socket" 2>&1)" ""

# The Python module, where Debian's python3 looks for modules of this prefix.
module=$(find "$stage" -name __init__.py -path "*/handoff_handler/*" | head -n 1)
module_dir=$(dirname "$(dirname "${module#"$stage"}")")
check "python3 looks for modules in $module_dir" \
  "$(/usr/bin/python3 -c 'import sys; print(sys.argv[1] in sys.path)' "$module_dir")" True
PYTHONPATH=$(dirname "$(dirname "$module")") start_reactor "$bin/handoff" --handler-cmd "python3 $(dirname "$source")/square.py"
check "the installed Python module serves GET /square/9" \
  "$(curl --silent --max-time 10 "http://127.0.0.1:$port/square/9")" 81
stop_reactor

# The .pc file names the real prefix; the sysroot variable points pkg-config's paths into the staging folder.
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs handoff-handler)
echo "pkg-config --cflags --libs handoff-handler: $flags"
g++ -std=c++20 $extra_flags -o "$stage/square" "$source" $flags

LD_LIBRARY_PATH=$libdir start_reactor "$reactor" --handler-cmd "$stage/square"
check "GET /square/12" "$(curl --silent --max-time 10 "http://127.0.0.1:$port/square/12")" 144
check "square 13" "$(printf 'square 13\n' | timeout 10 nc -N 127.0.0.1 "$port")" 169
stop_reactor
summary
