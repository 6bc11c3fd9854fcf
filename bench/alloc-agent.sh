#!/usr/bin/env bash
# What the agent allocates, by function: V8's sampling heap profiler (over the inspector) on a
# `patrol agent --checks checks` under a paced load. Objects either GC collected are included,
# so the figure is the allocation rate, not what stays.
#
#   bash bench/alloc-agent.sh [rate=200] [warm_s=40] [secs=30]
#   ALLOC_TREE=/other/tree ALLOC_PARENTS='Map :0,split :0' bash bench/alloc-agent.sh
#     ALLOC_PARENTS: also print the three callers of the named allocation sites
#   ALLOC_LIVE=1 ...: only what is still alive when sampling stops (what the work retains)
#   ALLOC_OLD=1 ...: what outlived the young generation (what grows the old one: the major GCs)
#   ALLOC_FLAGS='--no-allocation-site-pretenuring' ...: extra node flags for the agent
#
# Root. The inspector listens on 127.0.0.1 (ALLOC_PORT, 9239) only while the script runs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${1:-200}; WARM=${2:-40}; SECS=${3:-30}
T=${ALLOC_TREE:-$HERE}; PORT=${ALLOC_PORT:-9239}
source "$HERE/bench/agent-lib.sh"
agent_start alloc "$T" "${ALLOC_FLAGS:-} --inspect=127.0.0.1:$PORT" ""
agent_load "$RATE" $((WARM + SECS + 5))
echo "alloc: agent $P, $RATE exec/s, ${WARM} s warm-up, ${SECS} s sampled" >&2
sleep "$WARM"
source "$HERE/scripts/runtime.sh"; patrol_runtime_env
node "$HERE/bench/alloc-profile.mjs" "$PORT" "$SECS"
