#!/usr/bin/env bash
# Like agent-pair.sh, by thread: every variant runs AT ONCE on one load, and each window reports,
# per agent and per thread name (the V8 workers summed), CPU (% of one core, thread schedstat)
# and context switches a second (voluntary + involuntary: the wakeups). Use it to see where a
# change moves work (the JS thread or V8's helpers) and whether it removes wakeups.
#
#   bash bench/agent-pair-threads.sh "label|node flags|yaml" ...
#   WARM=60 WIN=30 NWIN=3 bash bench/agent-pair-threads.sh "dflt|--max-semi-space-size=2 --expose-gc|" \
#     "stgc|--max-semi-space-size=2 --expose-gc --single-threaded-gc|"
#   RATE (200), WARM (60 s), WIN (30 s), NWIN (3); the tree is this checkout.
#
# Root. Compare within a run, as ratios: two agents with the same flags differ by up to ±10 %
# per window on the 2-vCPU VM.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${RATE:-200}; WARM=${WARM:-60}; WIN=${WIN:-30}; NWIN=${NWIN:-3}
make -s -C "$HERE/bench" >/dev/null
PIDS=(); LABELS=(); DIRS=(); LOAD=""
cleanup() {
  for P in "${PIDS[@]}"; do kill -TERM "$P" 2>/dev/null || true; done
  [ -z "$LOAD" ] || kill "$LOAD" 2>/dev/null || true
  sleep 1; for D in "${DIRS[@]}"; do rm -rf "$D"; done
}
trap cleanup EXIT
for V in "$@"; do
  IFS='|' read -r L FL Y <<< "$V"; FL=${FL:---max-semi-space-size=2 --expose-gc}
  D=$(mktemp -d /tmp/patrol-threads-XXXX); chmod 755 "$D"; DIRS+=("$D")
  printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\nmetrics:\n  prometheus:\n    port: 0\n%b\n' "$D" "$D" "$Y" > "$D/patrol.yaml"
  (cd "$HERE"; source scripts/runtime.sh; patrol_runtime_env; PATROL_AGENT_NODE_FLAGS="$FL" exec ./bin/patrol agent --config "$D/patrol.yaml" --db "$D/patrol.db" --socket "$D/patrol.sock" --checks "$HERE/checks" --log-format json > "$D/agent.log" 2>&1) &
  for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
  P=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1 || true)
  [ -n "$P" ] || { echo "$L: the agent did not start:"; tail -3 "$D/agent.log"; exit 1; }
  PIDS+=("$P"); LABELS+=("$L")
done
if [ "$RATE" != 0 ]; then (cd /tmp && exec "$HERE/bench/build/forkexec" -r "$RATE" -j 1 -d $((WARM + WIN * NWIN + 2)) >/dev/null 2>&1) & LOAD=$!; fi
sleep "$WARM"
# "name run_ns switches" per thread name of a process (V8Worker threads summed)
snap() {
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ < "$t/comm")" "$(awk '{print $1}' "$t/schedstat")" \
      "$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+n}' "$t/status")"
  done 2>/dev/null | awk '{g=$1; if (g ~ /^V8Worker/) g="V8Worker"; r[g]+=$2; c[g]+=$3} END{for (k in r) print k, r[k], c[k]}' | sort
}
declare -A A
for w in $(seq "$NWIN"); do
  for i in "${!PIDS[@]}"; do A[$i]="$(snap "${PIDS[$i]}")"; done
  sleep "$WIN"
  for i in "${!PIDS[@]}"; do
    echo "window $w ${LABELS[$i]}: $(join <(echo "${A[$i]}") <(snap "${PIDS[$i]}") | awk -v w="$WIN" '{cpu=($4-$2)/w/1e7; cs=($5-$3)/w; tc+=cpu; tw+=cs; if (cpu>0.02) printf "%s %.2f%% %.0f/s, ", $1, cpu, cs} END{printf "total %.2f%% %.0f switches/s", tc, tw}')"
  done
done
for i in "${!PIDS[@]}"; do echo "${LABELS[$i]}: RSS $(( $(awk '/VmRSS/{print $2}' /proc/"${PIDS[$i]}"/status) / 1024 )) MB"; done
