#!/usr/bin/env bash
# Loss against lifecycle.ring_size: agents with different ring sizes run side by side (each traces
# the whole machine, so all see the same storms) through exec storms of rising weight, and each
# agent's own accounting says what it lost (`patrol status --json`: accounting.totals.lost) and
# how often the backlog passed the watermark (ring.watermark_wakes).
#
#   bash bench/ring-size.sh                  # 4M 2M 1M
#   SIZES="4M 1M" bash bench/ring-size.sh
#
# Storms (bench/build/forkexec, flat out, /bin/true): short argv on 2 loops; a 4 KB argv (40
# arguments of 100 bytes: each exec record carries ~4.2 KB) on 2, 4 and 8 loops. The agents
# contend with each other and with the storm for the CPUs, which is the point: a drain comes
# late when the JS thread is busy, and the ring is what holds the backlog meanwhile.
# Root. Compare within a run: which sizes lose, and from which storm on.
set -uo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
cd "$HERE"; source scripts/runtime.sh; patrol_runtime_env
make -s -C bench >/dev/null
SIZES=${SIZES:-"4M 2M 1M"}
declare -A PID DIR
cleanup() { for s in $SIZES; do [ -z "${PID[$s]:-}" ] || kill -TERM "${PID[$s]}" 2>/dev/null; done; sleep 2; for s in $SIZES; do [ -z "${DIR[$s]:-}" ] || rm -rf "${DIR[$s]}"; done; }
trap cleanup EXIT
for s in $SIZES; do
  D=$(mktemp -d /tmp/patrol-ring-XXXX); chmod 755 "$D"; DIR[$s]=$D
  printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\nmetrics:\n  prometheus:\n    port: 0\nlifecycle:\n  ring_size: %s\n' "$D" "$D" "$s" > "$D/patrol.yaml"
  (cd "$D"; exec "$HERE/bin/patrol" agent --config "$D/patrol.yaml" --db "$D/patrol.db" --socket "$D/patrol.sock" --checks "$HERE/checks" --log-format json > "$D/agent.log" 2>&1) &
  for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
  PID[$s]=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1)
  [ -n "${PID[$s]}" ] || { echo "ring_size $s: the agent did not start:"; tail -3 "$D/agent.log"; exit 1; }
done
report() {
  for s in $SIZES; do
    "$HERE/bin/patrol" status --socket "${DIR[$s]}/patrol.sock" --json | node -e '
      let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => {
        const j = JSON.parse(t);
        console.log(`  ring_size ${process.argv[1]}: generated ${j.accounting.totals.generated}, lost ${j.accounting.totals.lost}, watermark wakes ${j.ring.watermark_wakes}, drains ${j.ring.drains}`);
      });' "$s"
  done
}
LONG=$(for i in $(seq 40); do printf 'a%099d ' "$i"; done)
storm() { echo "== $1 (counts are cumulative)"; shift; "$HERE/bench/build/forkexec" "$@"; sleep 3; report; }
storm "short argv, 2 loops, 20,000 execs" -r 0 -j 2 -n 20000
storm "4 KB argv, 2 loops, 20,000 execs" -r 0 -j 2 -n 20000 -- true $LONG
storm "4 KB argv, 4 loops, 40,000 execs" -r 0 -j 4 -n 40000 -- true $LONG
storm "4 KB argv, 8 loops, 40,000 execs" -r 0 -j 8 -n 40000 -- true $LONG
