#!/usr/bin/env bash
# Runs every wire fuzzer for SECONDS each, starting from a freshly generated seed corpus
# (plus tests/fuzz/corpus/<target>/ when present, e.g. saved regressions).
# Exits non-zero if any fuzzer reports a crash, leak, sanitizer error or timeout; the
# work directory (corpora, crash artifacts, logs) is kept in that case.
# Usage: tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS   (BUILD_DIR configured with -DMONGOGATE_FUZZ=ON)
set -euo pipefail

build=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$build/tests/fuzz"
work=$(mktemp -d "${TMPDIR:-/tmp}/mongogate-fuzz.XXXXXX")

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

"$bin/fuzz_make_seeds" "$work/seeds"

failed=0
for target in op_msg op_query op_reply op_compressed; do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
  seeds=("$work/seeds/$target")
  if [[ -d "$here/corpus/$target" ]]; then seeds+=("$here/corpus/$target"); fi
  log="$work/$target.log"
  if "$bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$target/" "$work/corpus/$target" "${seeds[@]}" >"$log" 2>&1; then
    awk -v t="$target" '/stat::number_of_executed_units/ {n=$2} /stat::average_exec_per_sec/ {s=$2}
      /stat::new_units_added/ {u=$2} /stat::peak_rss_mb/ {r=$2}
      END {printf "ok    fuzz_%-14s %10d execs %8d execs/s %5d new units %5d MB\n", t, n, s, u, r}' "$log"
  else
    echo "FAIL  fuzz_$target (log: $log, artifacts: $work/artifacts/$target/)"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -20 || true
    failed=1
  fi
done

if [[ $failed -ne 0 ]]; then
  echo "fuzzing found problems; work directory kept: $work"
  exit 1
fi
rm -rf "$work"
