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
source "$HERE/bench/agent-lib.sh"
# the perf data and V8's jit-<pid>.dump (written into the agent's working directory, $D) stay
AGENT_KEEP_DIR=1
agent_start profile "$T" "--perf-prof --interpreted-frames-native-stack" "${PROFILE_YAML:-}"
agent_load "$RATE" $((WARM + SECS + 5))
echo "profile: agent $P, $RATE exec/s, ${WARM} s warm-up, ${SECS} s sampled; files in $D" >&2
sleep "$WARM"
cpu0=$(cat /proc/"$P"/task/*/schedstat | awk '{s+=$1} END{print s}')
perf record -k mono -F "${PROFILE_HZ:-999}" -g -p "$P" -o "$D/perf.data" -- sleep "$SECS" >/dev/null 2>&1
cpu1=$(cat /proc/"$P"/task/*/schedstat | awk '{s+=$1} END{print s}')
agent_stop
(cd "$D" && perf inject --jit -i perf.data -o perf.jit.data >/dev/null 2>&1)
perf script -i "$D/perf.jit.data" -F comm,ip,sym 2>/dev/null > "$D/stacks.txt"
echo "agent CPU while sampled (perf adds to it): $(awk -v a="$cpu0" -v b="$cpu1" -v s="$SECS" 'BEGIN{printf "%.2f", (b-a)/s/1e7}') % of a core"
"$T/.runtime/node/bin/node" "$HERE/bench/profile-report.mjs" "$D/stacks.txt"
