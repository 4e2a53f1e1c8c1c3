#!/bin/sh
# bench/callgrind_route.sh — instructions per call of the request-path micro-benchmarks
# (bench/microbench_route.cpp) under callgrind: deterministic, unlike wall-clock figures on
# a shared machine. Per benchmark: the whole request (RequestPath::handle), and its parse
# (wire::parseOpMsg) and route (router::routeCommand) parts.
#
#   bench/callgrind_route.sh [build dir, default build] [benchmark regex, default ParseRoute|ParseOnly]
set -eu
build=${1:-build}
filter=${2:-ParseRouteRewrite|ParseOnly}
bin=$build/bench/microbench_route
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for bench in $("$bin" --benchmark_list_tests | grep -E "$filter"); do
  valgrind --tool=callgrind --callgrind-out-file="$out/$bench.cg" "$bin" \
    --benchmark_filter="^$bench\$" --benchmark_min_time=0.05 >/dev/null 2>&1
  callgrind_annotate --tree=caller --inclusive=yes "$out/$bench.cg" 2>/dev/null > "$out/$bench.txt"
  printf '%s' "$bench"
  for fn in 'RequestPath::handle' 'wire::parseOpMsg' 'router::routeCommand'; do
    # A function's block: its callers ("<" lines, with call counts) then its own "*" line.
    awk -v fn="$fn" '
      /^ *[0-9,]+ .*< / { n = $0; sub(/.*\(/, "", n); sub(/x\).*/, "", n); gsub(/,/, "", n); calls += n; next }
      /^ *[0-9,]+ .*\* / && index($0, fn) && calls > 0 {
        ir = $1; gsub(/,/, "", ir); printf "  %s %d", fn, ir / calls; found = 1; exit }
      { calls = 0 }
      END { if (!found) printf "  %s -", fn }' "$out/$bench.txt"
  done
  echo
done
