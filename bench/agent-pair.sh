#!/usr/bin/env bash
# Paired A/B of agents: every variant runs AT ONCE, on the same load, so the host's noise (the
# largest error on a shared VM: ±15-30 % between sequential windows) hits all of them alike.
# Each agent traces the whole machine, so all see the same execs. Reports each agent's CPU (summed
# thread schedstat of its process, % of one core) per window, and the mean.
#
#   bash bench/agent-pair.sh "label|tree|node flags|yaml" ...
#     tree: a built checkout (default: this one); node flags: replace the agent's
#     (default: the tree's own, bin/patrol's); yaml: extra config lines, \n for newlines
#   RATE=200 WARM=30 WIN=15 NWIN=4 bash bench/agent-pair.sh "a||" "b|||lifecycle:\n  delivery_interval: 40ms"
#   PAIR_DB_SEED=/tmp/full.db ...: every agent starts on a copy of that store file
#   BY_THREAD=1 ...: also, per agent and window, each thread name's CPU (the V8 workers summed)
#     and context switches a second (voluntary + involuntary: the wakeups), to see whether a
#     change moves work between the JS thread and V8's helpers, and whether it removes wakeups
#
# Root. Agents contend a little with each other (each is a few % of a core), so compare within a
# run, as ratios; absolute figures read higher than one agent alone.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${RATE:-200}; WARM=${WARM:-30}; WIN=${WIN:-15}; NWIN=${NWIN:-4}
make -s -C "$HERE/bench" >/dev/null
PIDS=(); LABELS=(); DIRS=()
cleanup() { for P in "${PIDS[@]}"; do kill -TERM "$P" 2>/dev/null || true; done; sleep 1; for D in "${DIRS[@]}"; do rm -rf "$D"; done; }
trap cleanup EXIT
for V in "$@"; do
  IFS='|' read -r L T FL Y <<< "$V"; T=${T:-$HERE}
  D=$(mktemp -d /tmp/patrol-pair-XXXX); chmod 755 "$D"; DIRS+=("$D")
  # the store and socket paths go as flags, so a variant's yaml may set store: and api: keys
  printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\n%b\n' "$D" "$D" "$Y" > "$D/patrol.yaml"
  # PAIR_DB_SEED: start every agent on a copy of this store (a full one: its steady state)
  [ -z "${PAIR_DB_SEED:-}" ] || cp "$PAIR_DB_SEED" "$D/patrol.db"
  grep -q '^metrics:' "$D/patrol.yaml" || printf 'metrics:\n  prometheus:\n    port: 0\n' >> "$D/patrol.yaml"
  (cd "$T"; source scripts/runtime.sh; patrol_runtime_env; [ -z "$FL" ] || export PATROL_AGENT_NODE_FLAGS="$FL"; exec ./bin/patrol agent --config "$D/patrol.yaml" --db "$D/patrol.db" --socket "$D/patrol.sock" --checks "$T/checks" --log-format json > "$D/agent.log" 2>&1) &
  for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
  P=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1 || true)
  [ -n "$P" ] || { echo "$L: the agent did not start:"; tail -3 "$D/agent.log"; exit 1; }
  PIDS+=("$P"); LABELS+=("$L")
done
if [ "$RATE" != 0 ]; then (cd /tmp && "$HERE/bench/build/forkexec" -r "$RATE" -j 1 -d $((WARM + WIN * NWIN + 2)) >/dev/null 2>&1 || true) & fi
sleep "$WARM"
cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END{print s+0}'; }
# "name run_ns switches" per thread name of a process (V8Worker threads summed)
threads() {
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ < "$t/comm")" "$(awk '{print $1}' "$t/schedstat")" \
      "$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+n}' "$t/status")"
  done 2>/dev/null | awk '{g=$1; if (g ~ /^V8Worker/) g="V8Worker"; r[g]+=$2; c[g]+=$3} END{for (k in r) print k, r[k], c[k]}' | sort
}
declare -a SUM C0 T0
for w in $(seq "$NWIN"); do
  for i in "${!PIDS[@]}"; do C0[$i]=$(cpu "${PIDS[$i]}"); [ "${BY_THREAD:-0}" != 1 ] || T0[$i]="$(threads "${PIDS[$i]}")"; done
  sleep "$WIN"
  if [ "${BY_THREAD:-0}" = 1 ]; then
    for i in "${!PIDS[@]}"; do
      echo "  window $w ${LABELS[$i]} by thread: $(join <(echo "${T0[$i]}") <(threads "${PIDS[$i]}") | awk -v w="$WIN" '{cpu=($4-$2)/w/1e7; cs=($5-$3)/w; tw+=cs; if (cpu>0.02) printf "%s %.2f%% %.0f/s, ", $1, cpu, cs} END{printf "%.0f switches/s in all", tw}')"
    done
  fi
  line="window $w:"
  for i in "${!PIDS[@]}"; do
    v=$(awk -v a="${C0[$i]}" -v b="$(cpu "${PIDS[$i]}")" -v m="$WIN" 'BEGIN{printf "%.2f", (b-a)/m/1e7}')
    line="$line ${LABELS[$i]}=$v"; SUM[$i]=$(awk -v s="${SUM[$i]:-0}" -v v="$v" 'BEGIN{print s+v}')
  done
  echo "$line"
done
line="mean, % of a core:"
for i in "${!PIDS[@]}"; do
  line="$line ${LABELS[$i]}=$(awk -v s="${SUM[$i]}" -v n="$NWIN" 'BEGIN{printf "%.2f", s/n}') (RSS $(( $(awk '/VmRSS/{print $2}' /proc/"${PIDS[$i]}"/status) / 1024 )) MB)"
done
echo "$line"
