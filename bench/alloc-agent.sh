#!/usr/bin/env bash
# What the agent allocates, by function: V8's sampling heap profiler (over the inspector) on a
# `patrol agent --checks checks` under a paced load. Objects either GC collected are included,
# so the figure is the allocation rate, not what stays.
#
#   bash bench/alloc-agent.sh [rate=200] [warm_s=40] [secs=30]
#   ALLOC_TREE=/other/tree ALLOC_PARENTS='Map :0,split :0' bash bench/alloc-agent.sh
#     ALLOC_PARENTS: also print the three callers of the named allocation sites
#   ALLOC_LIVE=1 ...: only what is still alive when sampling stops (what the work retains)
#
# Root. The inspector listens on 127.0.0.1 (ALLOC_PORT, 9239) only while the script runs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${1:-200}; WARM=${2:-40}; SECS=${3:-30}
T=${ALLOC_TREE:-$HERE}; PORT=${ALLOC_PORT:-9239}
make -s -C "$HERE/bench" >/dev/null
D=$(mktemp -d /tmp/patrol-alloc-XXXX); chmod 755 "$D"
printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\nmetrics:\n  prometheus:\n    port: 0\n' "$D" "$D" > "$D/patrol.yaml"
(cd "$T"; source scripts/runtime.sh; patrol_runtime_env
 PATROL_AGENT_NODE_FLAGS="--max-semi-space-size=2 --expose-gc --inspect=127.0.0.1:$PORT" \
   exec ./bin/patrol agent --config "$D/patrol.yaml" --db "$D/patrol.db" --socket "$D/patrol.sock" --checks "$T/checks" --log-format json > "$D/agent.log" 2>&1) &
for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
P=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1 || true)
[ -n "$P" ] || { echo "the agent did not start:"; tail -3 "$D/agent.log"; exit 1; }
LOAD=""
if [ "$RATE" != 0 ]; then (cd /tmp && exec "$HERE/bench/build/forkexec" -r "$RATE" -j 1 -d $((WARM + SECS + 5)) >/dev/null 2>&1) & LOAD=$!; fi
trap 'kill -TERM $P 2>/dev/null || true; [ -z "$LOAD" ] || kill $LOAD 2>/dev/null || true; rm -rf "$D"' EXIT
echo "alloc: agent $P, $RATE exec/s, ${WARM} s warm-up, ${SECS} s sampled" >&2
sleep "$WARM"
source "$HERE/scripts/runtime.sh"; patrol_runtime_env
node "$HERE/bench/alloc-profile.mjs" "$PORT" "$SECS"
