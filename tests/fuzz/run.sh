#!/usr/bin/env bash
# Runs libFuzzer targets over their seed corpora: run.sh BUILD_DIR SECONDS TARGET...
# Each target runs its corpus (tests/fuzz/corpus/<target>, plus what earlier
# runs found, kept in BUILD_DIR/fuzz-corpus/<target>), then fuzzes until
# SECONDS have passed. A crash stops the run with the input saved under
# BUILD_DIR/fuzz-artifacts/; add it to the corpus with the fix.
# Prints one line per target: executions, coverage, executions per second.
set -euo pipefail
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "$@"; do
  work=$build/fuzz-corpus/$t
  mkdir -p "$work" "$build/fuzz-artifacts" "$build/fuzz-logs"
  log=$build/fuzz-logs/$t.log
  if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
      -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
      "$work" "$src/corpus/$t" >"$log" 2>&1; then
    echo "fuzz $t: FAILED (see $log)"
    grep -m1 -E "ERROR|runtime error|deadly signal" "$log" || true
    status=1
    continue
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  echo "fuzz $t: ${seconds}s, $runs executions ($speed/s), $cov, corpus $(ls "$work" | wc -l) files"
done
exit $status
