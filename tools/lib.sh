# Shared set-up for tools/run, tools/test and tools/bench. Source it; do not run it.
# It installs the Debian packages handoff needs (when missing) and configures a meson build directory.

set -euo pipefail

HANDOFF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Packages for building: the toolchain (gcc for llhttp's C sources), libuv, cxxopts, llhttp's sources (Node's
# HTTP parser, node-llhttp), libsystemd (socket activation, readiness), nlohmann-json (the admin port's /stats),
# GoogleTest (meson.build wants it), help2man (the reactor's man page, from its --help) and Debian's python3 (the
# module is installed for it; the build embeds the status page with it).
HANDOFF_BUILD_PACKAGES=(gcc g++ meson ninja-build pkg-config libuv1-dev libcxxopts-dev node-llhttp libsystemd-dev
  nlohmann-json3-dev libgtest-dev help2man python3)
# And for testing: the real clients the integration tests drive (nc, curl, wrk), what they run handlers with
# (python3, and ruby for handler/examples/hello.rb, a handler that speaks the wire protocol itself), check
# metrics with (promtool, from prometheus), load the status page in (chromium), and the formatter every C++ file
# must satisfy (clang-format).
# systemd-socket-activate (from systemd) starts the reactor as systemd's socket activation would; haproxy
# balances several reactors in the deployment test. The WSGI tests serve real apps (Flask, Bottle) under handoff
# and under gunicorn, and compare the answers.
HANDOFF_TEST_PACKAGES=(python3 ruby netcat-openbsd curl wrk procps prometheus chromium clang-format systemd haproxy
  man-db python3-flask python3-bottle gunicorn)
# And for building the Debian packages (debian/, tests/deploy/package_test.sh).
HANDOFF_PACKAGE_PACKAGES=(dpkg-dev debhelper)
# And for fuzzing (tools/fuzz, fuzz/): clang with its libFuzzer and sanitizer runtimes.
HANDOFF_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# ensure_packages NAME... installs the named Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed; then
      missing+=("$package")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0

  echo "handoff: installing missing Debian packages: ${missing[*]}" >&2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "handoff: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# configure_build DIR [MESON_OPTION...] sets up (or reconfigures) a meson build directory below the repo root.
configure_build() {
  local dir=$1
  shift
  if [ -f "$HANDOFF_ROOT/$dir/build.ninja" ]; then
    meson configure "$HANDOFF_ROOT/$dir" "$@" >/dev/null
  else
    meson setup "$HANDOFF_ROOT/$dir" "$HANDOFF_ROOT" -Dpython=/usr/bin/python3 "$@" >&2
  fi
}

# check_format fails, naming each file and line, when a C++ file of the tree differs from what clang-format
# (with the committed .clang-format) makes of it. Fix with: clang-format -i FILE.
check_format() {
  local files
  if git -C "$HANDOFF_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git -C "$HANDOFF_ROOT" ls-files --cached --others --exclude-standard '*.cpp' '*.hpp')
  else
    mapfile -t files < <(cd "$HANDOFF_ROOT" && find . -path ./build\* -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print)
  fi
  echo "== format: clang-format --dry-run --Werror over ${#files[@]} C++ files" >&2
  (cd "$HANDOFF_ROOT" && clang-format --dry-run --Werror "${files[@]}")
}
