#!/usr/bin/env bash
# Where the agent's CPU goes, by thread and by JS function, with exact JIT symbols.
#
#   bash bench/profile-agent.sh [rate=200] [warm_s=60] [secs=30]
#   PROFILE_TREE=/other/tree PROFILE_YAML='rules:\n  enabled: false' bash bench/profile-agent.sh
#   PROFILE_HZ=4999 ...: a finer sample (perf itself then costs more; default 999 Hz)
#
# Runs `patrol agent --checks checks` under `bench/build/forkexec -r <rate>`, waits warm_s, then
# samples every thread of the agent with `perf record -g` for secs, and prints
# bench/profile-report.mjs's summary (threads; the JS thread by handler; the functions under the
# pipeline's entry points).
#
# Why jitdump (`--perf-prof` and `perf inject --jit`), not the perf map (`--perf-basic-prof`): V8
# frees code and reuses its addresses (bytecode flushing, deopts), and a perf map keeps every
# name an address ever had, so a later function is reported under an earlier one's name (a YAML
# parser "running" in the exit batch). jitdump records when each code object appeared and perf
# names every sample by the code that was there at that time.
#
# Root; Debian's linux-perf. The perf data and the JIT files stay in the printed directory.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${1:-200}; WARM=${2:-60}; SECS=${3:-30}
T=${PROFILE_TREE:-$HERE}
command -v perf >/dev/null || { echo "perf missing: apt-get install linux-perf" >&2; exit 1; }
make -s -C "$HERE/bench" >/dev/null
D=$(mktemp -d /tmp/patrol-profile-XXXX); chmod 755 "$D"
printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\nmetrics:\n  prometheus:\n    port: 0\n%b\n' "$D" "$D" "${PROFILE_YAML:-}" > "$D/patrol.yaml"
# the agent runs in $D: V8 writes its jit-<pid>.dump into the working directory
(cd "$D"; source "$T/scripts/runtime.sh"; patrol_runtime_env
 PATROL_AGENT_NODE_FLAGS="--max-semi-space-size=2 --expose-gc --perf-prof --interpreted-frames-native-stack" \
   exec "$T/bin/patrol" agent --config "$D/patrol.yaml" --db "$D/patrol.db" --socket "$D/patrol.sock" --checks "$T/checks" --log-format json > "$D/agent.log" 2>&1) &
for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
P=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1 || true)
[ -n "$P" ] || { echo "the agent did not start:"; tail -3 "$D/agent.log"; exit 1; }
LOAD=""
if [ "$RATE" != 0 ]; then (cd /tmp && exec "$HERE/bench/build/forkexec" -r "$RATE" -j 1 -d $((WARM + SECS + 5)) >/dev/null 2>&1) & LOAD=$!; fi
trap 'kill -TERM $P 2>/dev/null || true; [ -z "$LOAD" ] || kill $LOAD 2>/dev/null || true' EXIT
echo "profile: agent $P, $RATE exec/s, ${WARM} s warm-up, ${SECS} s sampled; files in $D" >&2
sleep "$WARM"
cpu0=$(cat /proc/"$P"/task/*/schedstat | awk '{s+=$1} END{print s}')
perf record -k mono -F "${PROFILE_HZ:-999}" -g -p "$P" -o "$D/perf.data" -- sleep "$SECS" >/dev/null 2>&1
cpu1=$(cat /proc/"$P"/task/*/schedstat | awk '{s+=$1} END{print s}')
kill -TERM "$P"; for _ in $(seq 50); do kill -0 "$P" 2>/dev/null || break; sleep 0.2; done
(cd "$D" && perf inject --jit -i perf.data -o perf.jit.data >/dev/null 2>&1)
perf script -i "$D/perf.jit.data" -F comm,ip,sym 2>/dev/null > "$D/stacks.txt"
echo "agent CPU while sampled (perf adds to it): $(awk -v a="$cpu0" -v b="$cpu1" -v s="$SECS" 'BEGIN{printf "%.2f", (b-a)/s/1e7}') % of a core"
"$T/.runtime/node/bin/node" "$HERE/bench/profile-report.mjs" "$D/stacks.txt"
