#!/usr/bin/env bash
# Runs every patrol benchmark; results go to bench/results/<name>.json (gitignored) and the
# printed output to bench/results/<name>.log, one JSON line and a summary per benchmark. Needs root and a built tree (bash scripts/build.sh).
#
#   bash bench/run.sh                 # all, ~20 minutes on a 2 vCPU VM (agent-cost alone ~10)
#   bash bench/run.sh latency agent   # some
#   BENCH_QUICK=1 bash bench/run.sh   # shorter windows, ~3 minutes (smoke test, noisier)
#   bash bench/run.sh --build ...     # run scripts/build.sh first
#
# Each script first waits (up to BENCH_QUIET_WAIT_MS, default 60 s) for the machine to be idle
# and records the background CPU load it saw (background_busy_pct) in its result.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--build" ]; then
  shift
  bash scripts/build.sh
fi
if [ ! -f dist/app/lifecycle.js ] || [ ! -f native/build/Release/patrol_native.node ] || [ ! -f bpf/.output/lifecycle.bpf.o ]; then
  echo "bench: tree not built; running scripts/build.sh" >&2
  bash scripts/build.sh
fi
[ "$(id -u)" = 0 ] || { echo "bench: needs root (loads BPF programs)" >&2; exit 1; }
make -s -C bench
mkdir -p bench/results

ALL=(latency throughput overhead completeness agent agent-cost bpfcost switch windows exits-memory checks rules dashboard trend fleet-scale reload fleet-rollout)
SEL=("$@")
[ ${#SEL[@]} -gt 0 ] || SEL=("${ALL[@]}")
start=$(date +%s)
failed=()
for b in "${SEL[@]}"; do
  echo "== $b"
  t0=$(date +%s)
  if ! node --expose-gc "bench/$b.mjs" | tee "bench/results/$b.log"; then
    failed+=("$b")
    echo "bench: $b FAILED" >&2
  fi
  # scripts that only print their JSON line (switch.mjs) get a results file too
  if [ "$(stat -c %Y "bench/results/$b.json" 2>/dev/null || echo 0)" -lt "$t0" ]; then
    grep '^{"bench"' "bench/results/$b.log" | tail -1 > "bench/results/$b.json" || true
  fi
  echo "   ($(( $(date +%s) - t0 )) s)"
done
echo "== done in $(( $(date +%s) - start )) s; results in bench/results/"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
