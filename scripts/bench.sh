#!/usr/bin/env bash
# Runs every benchmark of the build tree; each prints its figures and its
# ratios against a baseline measured in the same run. Results are recorded by
# hand in BENCHMARKS.md.
# Usage: scripts/bench.sh BUILD_DIR [benchmark-name...]
set -euo pipefail
build=${1:-build}
shift || true
benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
  benches=(abi_bench runtime_bench http_bench http_load swap_bench shadow_bench nats_bench placement_bench cluster_bench
    cluster_fault_bench)
fi
for b in "${benches[@]}"; do
  echo "=== $b"
  if [ "$b" = http_load ]; then
    # aether bench (and wrk) against a real host, nginx as the baseline
    bash "$(dirname "$0")/../tests/bench/http_load.sh" "$build"
    continue
  fi
  "$build/tests/bench/$b" --benchmark_min_time=0.5
done
