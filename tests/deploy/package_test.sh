#!/usr/bin/env bash
# Builds the Debian packages from a copy of the source tree (dpkg-buildpackage -us -uc -b, debian/), unpacks
# them into a throw-away root, and uses what they hold: the installed reactor serves with its built-in
# handler, the Python module serves handler/examples/square.py, and handler/examples/square.cpp builds
# against the -dev package with pkg-config alone and serves. Usage: package_test.sh SOURCE_ROOT
set -euo pipefail
source_root=$1
source "$(dirname "$0")/../support/checks.sh"
use_work_folder

# The packages are built from a copy: dpkg-buildpackage writes into the tree and beside it. In a git
# checkout the copy is what git tracks, with uncommitted changes; else everything but build folders.
mkdir "$work/src"
if git -C "$source_root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$source_root" && git ls-files --cached --others --exclude-standard | while read -r file; do
    [ -e "$file" ] && printf '%s\0' "$file"
  done | xargs -0 cp --parents -t "$work/src")
else
  (cd "$source_root" && find . -path './build*' -prune -o -path './obj-*' -prune -o -type f -print0 |
    xargs -0 cp --parents -t "$work/src")
fi
started=$(date +%s)
if ! (cd "$work/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)" >"$work/build.log" 2>&1); then
  echo "FAIL: dpkg-buildpackage; the end of its output:"
  tail -n 40 "$work/build.log"
  exit 1
fi
echo "dpkg-buildpackage took $(($(date +%s) - started)) s"
version=$(sed -n '1s/^handoff (\([^)]*\)).*/\1/p' "$source_root/debian/changelog")
arch=$(dpkg --print-architecture)
for package in "handoff_${version}_$arch" "libhandoff-handler0_${version}_$arch" \
  "libhandoff-handler-dev_${version}_$arch" "python3-handoff_${version}_all"; do
  check "built $package.deb" "$([ -f "$work/$package.deb" ] && echo yes || echo no)" yes
done
server=$work/handoff_${version}_$arch.deb
check "handoff depends on the handler library" \
  "$(dpkg-deb -f "$server" Depends | grep -c 'libhandoff-handler0 (>= ')" 1
check "handoff holds the reactor, the handler, the man page and the units" \
  "$(dpkg-deb -c "$server" | grep -cE '\./usr/bin/handoff$|\./usr/bin/handoff-handler$|\./usr/share/man/man1/handoff\.1\.gz$|\./lib/systemd/system/handoff\.(service|socket)$')" 5

mkdir "$work/root"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
libdir=$work/root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# Installed on a system, ldconfig finds the library in /usr/lib; in the throw-away root, LD_LIBRARY_PATH does.
LD_LIBRARY_PATH=$libdir start_reactor "$work/root/usr/bin/handoff"
check "packaged: GET /fib/20" "$(curl --silent --max-time 10 "http://127.0.0.1:$port/fib/20")" 6765
handler=$(printf 'pid\n' | timeout 10 nc -N 127.0.0.1 "$port")
check "packaged: the built-in handler is the packaged one" "$(readlink "/proc/$handler/exe")" \
  "$work/root/usr/bin/handoff-handler"
stop_reactor

PYTHONPATH=$work/root/usr/lib/python3/dist-packages LD_LIBRARY_PATH=$libdir \
  start_reactor "$work/root/usr/bin/handoff" --handler-cmd "python3 $source_root/handler/examples/square.py"
check "python3-handoff serves GET /square/9" "$(curl --silent --max-time 10 "http://127.0.0.1:$port/square/9")" 81
stop_reactor

export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$work/root
g++ -std=c++20 -o "$work/square" "$source_root/handler/examples/square.cpp" $(pkg-config --cflags --libs handoff-handler)
LD_LIBRARY_PATH=$libdir start_reactor "$work/root/usr/bin/handoff" --handler-cmd "$work/square"
check "a handler built against libhandoff-handler-dev: square 13" \
  "$(printf 'square 13\n' | timeout 10 nc -N 127.0.0.1 "$port")" 169
stop_reactor

summary
