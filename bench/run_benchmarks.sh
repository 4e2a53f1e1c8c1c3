#!/usr/bin/env bash
# bench/run_benchmarks.sh — mongogate against a direct connection and an L4 relay, in one go.
#
# Builds the benchmark targets, starts the canned upstream, mongogate (routing on, a file
# registry of 100 stores) and haproxy (mode tcp, Debian's), then
#   - measures mongogate's resident memory idle and with many idle client connections, and
#     the upstream connections it holds for them, idle and while a closed-loop load of
#     MULTIPLEX_LOAD_CONNECTIONS more clients runs alongside;
#   - runs the closed-loop load generator at each connection count against each target;
#   - runs it open loop at OPEN_LOOP_CONNECTIONS against each target at one fixed rate (RATE,
#     or OPEN_LOOP_FRACTION of the lowest closed-loop throughput among the three targets at
#     that connection count), to judge added latency below saturation;
#   - runs the libmongoc load (mongogate_driver_load) at DRIVER_CONNECTIONS against each
#     target as a cross-check of the load generator;
# sampling the CPU time of the proxy processes from /proc around every load run, runs the
# micro-benchmarks, and writes docs/benchmarks.md (and docs/latency.png when gnuplot is
# installed).
#
# Everything listens on 127.0.0.1 only; every wait is bounded; every process started here
# is killed on exit. Settings (environment):
#   BUILD_DIR=build  DURATION_S=5  WARMUP_S=1  CONNECTIONS="1 16 64 256"  MIX=1:1:1
#   LOADGEN_THREADS=1  MONGOGATE_THREADS=1  POOL_MAX_SIZE=64  IDLE_CONNECTIONS=10000
#   MULTIPLEX_LOAD_CONNECTIONS=256  OPEN_LOOP_CONNECTIONS=64  RATE=(computed)
#   OPEN_LOOP_FRACTION=0.25  OPEN_LOOP_ROUNDS=3  OPEN_LOOP_PINNED=1  DRIVER_CONNECTIONS=16  MICROBENCH_MIN_TIME=0.3  OUT_DIR=docs
#   SKIP_BUILD=0
# Needs haproxy (and gnuplot-nox for the plot): installed with apt-get when run as root,
# else the exact command is printed.
set -euo pipefail

# The exact command, with the settings that came from the environment.
COMMAND_LINE="bench/run_benchmarks.sh"
for v in BUILD_DIR DURATION_S WARMUP_S CONNECTIONS MIX LOADGEN_THREADS MONGOGATE_THREADS POOL_MAX_SIZE \
         IDLE_CONNECTIONS MULTIPLEX_LOAD_CONNECTIONS OPEN_LOOP_CONNECTIONS RATE OPEN_LOOP_FRACTION OPEN_LOOP_ROUNDS OPEN_LOOP_PINNED \
         DRIVER_CONNECTIONS MICROBENCH_MIN_TIME OUT_DIR SKIP_BUILD; do
  if [[ -n "${!v+x}" ]]; then COMMAND_LINE="$v=\"${!v}\" $COMMAND_LINE"; fi
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
BUILD_DIR="${BUILD_DIR:-build}"
DURATION_S="${DURATION_S:-5}"
WARMUP_S="${WARMUP_S:-1}"
CONNECTIONS="${CONNECTIONS:-1 16 64 256}"
MIX="${MIX:-1:1:1}"
LOADGEN_THREADS="${LOADGEN_THREADS:-1}"
MONGOGATE_THREADS="${MONGOGATE_THREADS:-1}"
POOL_MAX_SIZE="${POOL_MAX_SIZE:-64}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
MULTIPLEX_LOAD_CONNECTIONS="${MULTIPLEX_LOAD_CONNECTIONS:-256}"
OPEN_LOOP_CONNECTIONS="${OPEN_LOOP_CONNECTIONS:-64}"
RATE="${RATE:-}"
OPEN_LOOP_FRACTION="${OPEN_LOOP_FRACTION:-0.25}"
OPEN_LOOP_ROUNDS="${OPEN_LOOP_ROUNDS:-3}"
OPEN_LOOP_PINNED="${OPEN_LOOP_PINNED:-1}"
DRIVER_CONNECTIONS="${DRIVER_CONNECTIONS:-16}"
MICROBENCH_MIN_TIME="${MICROBENCH_MIN_TIME:-0.3}"
OUT_DIR="${OUT_DIR:-docs}"
SKIP_BUILD="${SKIP_BUILD:-0}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- packages --------------------------------------------------------------------------------
need_packages=()
command -v haproxy >/dev/null || need_packages+=(haproxy)
command -v gnuplot >/dev/null || need_packages+=(gnuplot-nox)
if ((${#need_packages[@]})); then
  if [[ $(id -u) == 0 ]]; then
    log "installing ${need_packages[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_packages[@]}" >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_packages[@]}" >&2; }
  elif ! command -v haproxy >/dev/null; then
    die "haproxy is missing; run: sudo apt-get install -y ${need_packages[*]}"
  else
    log "gnuplot is missing (no plot); to get one: sudo apt-get install -y gnuplot-nox"
  fi
fi

# ---- build -----------------------------------------------------------------------------------
if [[ "$SKIP_BUILD" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/build.ninja" && ! -f "$BUILD_DIR/Makefile" ]]; then
    cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  fi
  log "building in $BUILD_DIR"
  cmake --build "$BUILD_DIR" --target mongogate canned_upstream mongogate_loadgen mongogate_driver_load \
    microbench_route registry_bench >&2
fi
CANNED="$BUILD_DIR/tests/upstream/canned_upstream"
MONGOGATE="$BUILD_DIR/proxy/mongogate"
LOADGEN="$BUILD_DIR/bench/mongogate_loadgen"
DRIVER_LOAD="$BUILD_DIR/bench/mongogate_driver_load"
MICROBENCH="$BUILD_DIR/bench/microbench_route"
for b in "$CANNED" "$MONGOGATE" "$LOADGEN" "$DRIVER_LOAD" "$MICROBENCH"; do [[ -x "$b" ]] || die "$b is not built"; done

# ---- processes -------------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/mongogate-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_file() {  # PATH SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do [[ -s "$1" ]] && return 0; sleep 0.1; done
  return 1
}
wait_for_port() {  # PORT SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, all threads
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
CLK_TCK="$(getconf CLK_TCK)"

# More descriptors for the idle-connection measurement (mongogate and the load generator
# each hold one per connection).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT="$(ulimit -n)"

log "starting the canned upstream"
"$CANNED" --host 127.0.0.1 --port 0 --port-file "$WORK/canned.port" --threads 1 >"$WORK/canned.log" 2>&1 &
CANNED_PID=$!; PIDS+=("$CANNED_PID")
wait_for_file "$WORK/canned.port" 10 || die "canned upstream did not start: $(cat "$WORK/canned.log")"
CANNED_PORT="$(cat "$WORK/canned.port")"

# 100 stores s000..s099 at 20 per database (pos_db_1..5), as in the README's POS example.
{
  echo "stores:"
  for i in $(seq 0 99); do
    printf '  - {storeId: "s%03d", name: "Store %d", prefix: s%03d, databaseId: %d}\n' "$i" "$i" "$i" $((i / 20 + 1))
  done
} >"$WORK/stores.yaml"
cat >"$WORK/mongogate.yaml" <<EOF
listen: 127.0.0.1:0
threads: $MONGOGATE_THREADS
log_level: warn
port_file: $WORK/mongogate.port
upstreams:
  main: { uri: "mongodb://127.0.0.1:$CANNED_PORT/main_db" }
pool:
  max_size: $POOL_MAX_SIZE
routing:
  main_database: main_db
  store_databases: { prefix: pos_db, count: 5, stores_per_database: 20 }
registry:
  source: file
  file: $WORK/stores.yaml
admin:
  listen: "off"
EOF
log "starting mongogate"
"$MONGOGATE" --config "$WORK/mongogate.yaml" >"$WORK/mongogate.log" 2>&1 &
MONGOGATE_PID=$!; PIDS+=("$MONGOGATE_PID")
wait_for_file "$WORK/mongogate.port" 15 || die "mongogate did not start: $(cat "$WORK/mongogate.log")"
MONGOGATE_PORT="$(cat "$WORK/mongogate.port")"

HAPROXY_PORT="$(free_port)"
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  maxconn 4096
frontend relay
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend canned
backend canned
  server canned 127.0.0.1:$CANNED_PORT maxconn 4096
EOF
log "starting haproxy"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!; PIDS+=("$HAPROXY_PID")
wait_for_port "$HAPROXY_PORT" 10 || die "haproxy did not start: $(cat "$WORK/haproxy.log")"

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# ---- load runs -----------------------------------------------------------------------------------
# Every run appends {"phase", "target", "cpu_ms", "result": <the tool's JSON>} to $RESULTS; the
# CPU time of the proxy (when there is one) is read from /proc before and after the run.
run_measured() {  # PHASE TARGET PROXY_PID COMMAND...
  local phase=$1 target=$2 pid=$3 before=0 after=0 cpu_ms=null out limit
  shift 3
  [[ -n "$pid" ]] && before="$(cpu_ticks "$pid")"
  limit=$(awk -v d="$DURATION_S" -v w="$WARMUP_S" 'BEGIN {printf "%d", d + w + 60}')
  out="$(timeout "$limit" "$@" 2>"$WORK/load.err")" ||
    log "$phase $target exited non-zero: $(head -c 2000 "$WORK/load.err")"
  [[ "$out" == "{"* ]] || out='{"ops_per_s": 0, "errors": -1}'
  if [[ -n "$pid" ]]; then
    after="$(cpu_ticks "$pid")"
    cpu_ms=$(awk -v a="$after" -v b="$before" -v t="$CLK_TCK" 'BEGIN {printf "%.1f", (a - b) * 1000 / t}')
  fi
  printf '{"phase": "%s", "target": "%s", "cpu_ms": %s, "result": %s}\n' "$phase" "$target" "$cpu_ms" "$out" >>"$RESULTS"
  log "$phase $target: $out cpu_ms=$cpu_ms"
}
run_load() {  # PHASE TARGET PORT CONNECTIONS PROXY_PID [LOADGEN OPTIONS...]
  local phase=$1 target=$2 port=$3 conns=$4 pid=$5
  shift 5
  run_measured "$phase" "$target" "$pid" "$LOADGEN" --uri-host 127.0.0.1 --port "$port" --connections "$conns" \
    --threads "$LOADGEN_THREADS" --duration-s "$DURATION_S" --warmup-s "$WARMUP_S" --mix "$MIX" --json "$@"
}
port_of() {  # TARGET
  case $1 in direct) echo "$CANNED_PORT" ;; mongogate) echo "$MONGOGATE_PORT" ;; haproxy) echo "$HAPROXY_PORT" ;; esac
}
pid_of() {  # TARGET (empty for direct)
  case $1 in mongogate) echo "$MONGOGATE_PID" ;; haproxy) echo "$HAPROXY_PID" ;; *) echo "" ;; esac
}
TARGETS="direct mongogate haproxy"

# ---- memory and upstream connections: many idle clients, then a load alongside -----------------
sleep 1
RSS_IDLE_KB="$(rss_kb "$MONGOGATE_PID")"
IDLE_NOTE=""
RSS_WITH_IDLE_KB=""
IDLE_OPEN=0
UPSTREAM_IDLE=""
UPSTREAM_UNDER_LOAD='null'
count_upstream() { python3 "$REPO/bench/upstream_connections.py" "$MONGOGATE_PID" "$CANNED_PORT" "$@"; }
if ((IDLE_CONNECTIONS > 0)); then
  if ((FD_LIMIT < IDLE_CONNECTIONS + MULTIPLEX_LOAD_CONNECTIONS + 256)); then
    IDLE_NOTE="skipped: the descriptor limit ($FD_LIMIT) is below $IDLE_CONNECTIONS + $MULTIPLEX_LOAD_CONNECTIONS + 256 and could not be raised"
  else
    log "opening $IDLE_CONNECTIONS idle connections to mongogate"
    # Held until released (after the load below), at most 10 minutes.
    timeout 700 "$LOADGEN" --uri-host 127.0.0.1 --port "$MONGOGATE_PORT" \
      --idle-connections "$IDLE_CONNECTIONS" --hold-s 600 --connect-timeout-s 60 \
      --ready-file "$WORK/idle.ready" --release-file "$WORK/idle.release" >"$WORK/idle.json" 2>"$WORK/idle.err" &
    IDLE_PID=$!; PIDS+=("$IDLE_PID")
    if wait_for_file "$WORK/idle.ready" 75; then
      sleep 1
      RSS_WITH_IDLE_KB="$(rss_kb "$MONGOGATE_PID")"
      IDLE_OPEN="$(awk '{print $2}' "$WORK/idle.ready")"
      UPSTREAM_IDLE="$(count_upstream || true)"
      if ((MULTIPLEX_LOAD_CONNECTIONS > 0)); then
        log "load of $MULTIPLEX_LOAD_CONNECTIONS connections alongside the idle ones; sampling upstream connections"
        count_upstream --until-file "$WORK/multiplex.done" --interval-s 0.5 >"$WORK/multiplex.json" &
        SAMPLER_PID=$!; PIDS+=("$SAMPLER_PID")
        run_load multiplex mongogate "$MONGOGATE_PORT" "$MULTIPLEX_LOAD_CONNECTIONS" "$MONGOGATE_PID"
        touch "$WORK/multiplex.done"
        wait "$SAMPLER_PID" || true
        UPSTREAM_UNDER_LOAD="$(cat "$WORK/multiplex.json")"
      fi
    else
      IDLE_NOTE="skipped: the idle connections were not all open within 75 s"
    fi
    touch "$WORK/idle.release"
    wait "$IDLE_PID" || true
    sleep 1  # let mongogate see the closes before the next load runs
  fi
fi

# ---- closed loop: each connection count against each target -------------------------------------
for c in $CONNECTIONS; do
  for t in $TARGETS; do run_load closed "$t" "$(port_of "$t")" "$c" "$(pid_of "$t")"; done
done

# ---- open loop at one fixed rate, below saturation ------------------------------------------------
RATE_NOTE="set by RATE"
if [[ -z "$RATE" ]]; then
  RATE_NOTE="$OPEN_LOOP_FRACTION × the lowest closed-loop throughput among the targets at $OPEN_LOOP_CONNECTIONS connections"
  # The lowest closed-loop throughput among the targets at OPEN_LOOP_CONNECTIONS (or, when that
  # count was not run, at any count), times OPEN_LOOP_FRACTION.
  RATE="$(python3 - "$RESULTS" "$OPEN_LOOP_CONNECTIONS" "$OPEN_LOOP_FRACTION" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
closed = [r["result"] for r in rows if r.get("phase") == "closed" and r["result"].get("ops_per_s")]
at = [r["ops_per_s"] for r in closed if r.get("connections") == int(sys.argv[2])]
pool = at or [r["ops_per_s"] for r in closed]
print(int(min(pool) * float(sys.argv[3])) if pool else 0)
PY
)"
fi
if awk -v r="$RATE" 'BEGIN {exit !(r > 0)}'; then
  log "open loop at $OPEN_LOOP_CONNECTIONS connections, $RATE requests/s, $OPEN_LOOP_ROUNDS round(s)"
  for ((round = 1; round <= OPEN_LOOP_ROUNDS; round++)); do
    for t in $TARGETS; do
      run_load open "$t" "$(port_of "$t")" "$OPEN_LOOP_CONNECTIONS" "$(pid_of "$t")" --rate "$RATE"
    done
  done
  # The same rounds with the proxies on the last CPU and the load generator and the upstream
  # on CPU 0: where the scheduler puts the three processes no longer varies from run to run,
  # so what differs between the proxies is their own work (each hop pays a cross-CPU wakeup).
  LAST_CPU=$(($(nproc) - 1))
  if [[ "$OPEN_LOOP_PINNED" == 1 ]] && ((LAST_CPU > 0)) && command -v taskset >/dev/null; then
    log "open loop again, pinned: proxies on CPU $LAST_CPU, load generator and upstream on CPU 0"
    taskset -a -p -c 0 "$CANNED_PID" >/dev/null
    taskset -a -p -c "$LAST_CPU" "$MONGOGATE_PID" >/dev/null
    taskset -a -p -c "$LAST_CPU" "$HAPROXY_PID" >/dev/null
    for ((round = 1; round <= OPEN_LOOP_ROUNDS; round++)); do
      for t in $TARGETS; do
        run_measured open_pinned "$t" "$(pid_of "$t")" taskset -c 0 "$LOADGEN" --uri-host 127.0.0.1 \
          --port "$(port_of "$t")" --connections "$OPEN_LOOP_CONNECTIONS" --threads "$LOADGEN_THREADS" \
          --duration-s "$DURATION_S" --warmup-s "$WARMUP_S" --mix "$MIX" --json --rate "$RATE"
      done
    done
    for pid in "$CANNED_PID" "$MONGOGATE_PID" "$HAPROXY_PID"; do taskset -a -p -c "0-$LAST_CPU" "$pid" >/dev/null; done
  fi
else
  log "no open-loop runs: no closed-loop throughput to derive a rate from (set RATE)"
fi

# ---- libmongoc cross-check ------------------------------------------------------------------------
if ((DRIVER_CONNECTIONS > 0)); then
  for t in $TARGETS; do
    # mongogate presents itself as a mongos; the other two are one standalone server.
    uri="mongodb://127.0.0.1:$(port_of "$t")/"
    [[ $t == mongogate ]] || uri="${uri}?directConnection=true"
    run_measured driver "$t" "$(pid_of "$t")" "$DRIVER_LOAD" --uri "$uri" --connections "$DRIVER_CONNECTIONS" \
      --duration-s "$DURATION_S" --warmup-s "$WARMUP_S" --mix "$MIX" --json
  done
fi
kill -0 "$MONGOGATE_PID" 2>/dev/null || die "mongogate exited during the run: $(tail -20 "$WORK/mongogate.log")"
RSS_AFTER_LOAD_KB="$(rss_kb "$MONGOGATE_PID")"

# ---- micro-benchmarks ----------------------------------------------------------------------------
log "running the micro-benchmarks"
"$MICROBENCH" --benchmark_min_time="$MICROBENCH_MIN_TIME" --benchmark_format=json \
  --benchmark_out="$WORK/microbench.json" --benchmark_out_format=json >/dev/null 2>"$WORK/microbench.err" ||
  log "microbench_route failed: $(cat "$WORK/microbench.err")"

# ---- report --------------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
PLOT_DATA="$WORK/latency.dat"
python3 "$REPO/bench/benchmarks_report.py" \
  --results "$RESULTS" --microbench "$WORK/microbench.json" --out "$OUT_DIR/benchmarks.md" \
  --plot-data "$PLOT_DATA" --command "$COMMAND_LINE" --duration-s "$DURATION_S" --warmup-s "$WARMUP_S" \
  --mix "$MIX" --loadgen-threads "$LOADGEN_THREADS" --mongogate-threads "$MONGOGATE_THREADS" \
  --pool-max-size "$POOL_MAX_SIZE" --rss-idle-kb "$RSS_IDLE_KB" --rss-with-idle-kb "$RSS_WITH_IDLE_KB" \
  --idle-open "$IDLE_OPEN" --idle-requested "$IDLE_CONNECTIONS" --idle-note "$IDLE_NOTE" \
  --upstream-idle "$UPSTREAM_IDLE" --upstream-under-load "$UPSTREAM_UNDER_LOAD" \
  --multiplex-connections "$MULTIPLEX_LOAD_CONNECTIONS" --open-loop-rate "$RATE" \
  --open-loop-connections "$OPEN_LOOP_CONNECTIONS" --open-loop-rate-note "$RATE_NOTE" --driver-connections "$DRIVER_CONNECTIONS" \
  --rss-after-load-kb "$RSS_AFTER_LOAD_KB" --with-plot "$(command -v gnuplot >/dev/null && echo 1 || echo 0)" \
  --haproxy-version "$(haproxy -v | head -1)"

if command -v gnuplot >/dev/null; then
  gnuplot <<EOF || log "gnuplot failed; no plot"
set terminal pngcairo size 900,540 font "sans,10"
set output "$OUT_DIR/latency.png"
set title "Closed-loop latency by connection count (mix $MIX, canned upstream, 127.0.0.1)"
set xlabel "client connections"
set ylabel "latency (us)"
set logscale xy
set xtics ($(echo "$CONNECTIONS" | sed 's/\([0-9]\+\)/"\1" \1/g; s/ "/, "/g'))
set key top left
set grid
plot "$PLOT_DATA" using 1:2 with linespoints lw 2 lc rgb "#1b9e77" title "direct p50", \
     "$PLOT_DATA" using 1:3 with linespoints lw 2 lc rgb "#1b9e77" dt 2 title "direct p99", \
     "$PLOT_DATA" using 1:4 with linespoints lw 2 lc rgb "#d95f02" title "mongogate p50", \
     "$PLOT_DATA" using 1:5 with linespoints lw 2 lc rgb "#d95f02" dt 2 title "mongogate p99", \
     "$PLOT_DATA" using 1:6 with linespoints lw 2 lc rgb "#7570b3" title "haproxy p50", \
     "$PLOT_DATA" using 1:7 with linespoints lw 2 lc rgb "#7570b3" dt 2 title "haproxy p99"
EOF
fi
log "wrote $OUT_DIR/benchmarks.md$( [[ -f "$OUT_DIR/latency.png" ]] && echo " and $OUT_DIR/latency.png")"
