#!/bin/sh
# bench/callgrind_route.sh — instructions per call of the request-path micro-benchmarks
# (bench/microbench_route.cpp) under callgrind: deterministic, unlike wall-clock figures on
# a shared machine. Request benchmarks: the whole request (RequestPath::handle), its parse
# (wire::parseOpMsg) and route (router::routeCommand) parts; reply benchmarks: the parse
# and router::rewriteReply.
#
#   bench/callgrind_route.sh [build dir, default build] [benchmark regex, default ParseRoute|ParseOnly]
set -eu
build=${1:-build}
filter=${2:-ParseRouteRewrite|ParseOnly|ReplyRewrite}
bin=$build/bench/microbench_route
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for bench in $("$bin" --benchmark_list_tests | grep -E "$filter"); do
  valgrind --tool=callgrind --callgrind-out-file="$out/$bench.cg" "$bin" \
    --benchmark_filter="^$bench\$" --benchmark_min_time=0.05 >/dev/null 2>&1
  callgrind_annotate --threshold=100 --tree=caller --inclusive=yes "$out/$bench.cg" 2>/dev/null > "$out/$bench.txt"
  printf '%s' "$bench"
  fns='RequestPath::handle wire::parseOpMsg router::routeCommand'
  case $bench in *Reply*) fns='wire::parseOpMsg router::rewriteReply' ;; *ParseOnly*) fns='wire::parseOpMsg' ;; esac
  for fn in $fns; do
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
