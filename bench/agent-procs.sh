#!/usr/bin/env bash
# The idle agent on a node with many processes: a Kubernetes node runs hundreds to thousands,
# this VM ~70, and the once-a-second resource sweep and the checks' process list cost per
# process. Starts N extra sleeping processes, then one idle `patrol agent --checks checks` per
# tree, side by side (the same processes, the same moment), and after WARM s reports over WIN s
# the CPU of the JS thread and of the whole agent (task schedstat, % of one core), the JS
# thread's wakeups and RSS.
#
#   bash bench/agent-procs.sh [N=1000] [tree ...]        (default tree: this checkout)
#   PROCS_WARM=60 PROCS_WIN=90 bash bench/agent-procs.sh 1000 /tmp/before "$PWD"
#   PROCS_CGROUPS=200 bash bench/agent-procs.sh 200 ...   the sleepers spread over 200 new cgroups
#                                                         of the v2 hierarchy (a node's containers)
#
# Root (the agent loads BPF). Nothing else should run meanwhile: `pgrep -af "node |forkexec"`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
N=${1:-1000}; shift || true
TREES=("$@"); [ ${#TREES[@]} -gt 0 ] || TREES=("$HERE")
WARM=${PROCS_WARM:-60}; WIN=${PROCS_WIN:-90}; CGS=${PROCS_CGROUPS:-0}
CGROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)/patrol-bench-$$
SLEEPERS=(); PIDS=(); DIRS=()
cleanup() {
  [ ${#SLEEPERS[@]} -eq 0 ] || kill "${SLEEPERS[@]}" 2>/dev/null || true
  for P in "${PIDS[@]}"; do kill -TERM "$P" 2>/dev/null || true; done
  sleep 1
  for D in "${DIRS[@]}"; do rm -rf "$D"; done
  if [ "$CGS" -gt 0 ]; then rmdir "$CGROOT"/c* "$CGROOT" 2>/dev/null || true; fi
}
trap cleanup EXIT
[ "$CGS" -eq 0 ] || mkdir -p "$CGROOT"
# stdio to /dev/null: a sleeper holding our stdout would keep a pipe reading us open for an hour
for i in $(seq "$N"); do
  if [ "$CGS" -gt 0 ]; then
    C="$CGROOT/c$((i % CGS))"; mkdir -p "$C"
    sh -c "echo \$\$ > $C/cgroup.procs && exec sleep 3600" >/dev/null 2>&1 & SLEEPERS+=($!)
  else
    sleep 3600 >/dev/null 2>&1 & SLEEPERS+=($!)
  fi
done
for T in "${TREES[@]}"; do
  D=$(mktemp -d /tmp/patrol-procs-XXXX); chmod 755 "$D"; DIRS+=("$D")
  printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\nmetrics:\n  prometheus:\n    port: 0\n' "$D" "$D" > "$D/patrol.yaml"
  (cd "$D"; source "$T/scripts/runtime.sh"; patrol_runtime_env
   exec "$T/bin/patrol" agent --config "$D/patrol.yaml" --db "$D/patrol.db" --socket "$D/patrol.sock" --checks "$T/checks" --log-format json > "$D/agent.log" 2>&1) &
  for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
  P=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1 || true)
  [ -n "$P" ] || { echo "the agent of $T did not start:"; tail -3 "$D/agent.log"; exit 1; }
  PIDS+=("$P")
done
echo "agent-procs: $(ps -e --no-headers | wc -l) processes on the machine, $CGS extra cgroups, ${#TREES[@]} agent(s), ${WARM} s warm-up, ${WIN} s measured" >&2
sleep "$WARM"
snap() { echo "$(awk '/^voluntary/{print $2}' /proc/$1/task/$1/status) $(awk '{print $1}' /proc/$1/task/$1/schedstat) $(cat /proc/$1/task/*/schedstat | awk '{s+=$1} END{printf "%.0f", s}')"; }
declare -A S0
for i in "${!PIDS[@]}"; do S0[$i]=$(snap "${PIDS[$i]}"); done
sleep "$WIN"
for i in "${!PIDS[@]}"; do
  P=${PIDS[$i]}
  read -r v0 m0 t0 <<< "${S0[$i]}"; read -r v1 m1 t1 <<< "$(snap "$P")"
  rss=$(awk '/^VmRSS/{print $2}' /proc/"$P"/status); anon=$(awk '/^RssAnon/{print $2}' /proc/"$P"/status)
  awk -v l="${TREES[$i]}" -v v=$((v1 - v0)) -v m=$((m1 - m0)) -v t=$((t1 - t0)) -v w="$WIN" -v r="$rss" -v a="$anon" \
    'BEGIN{printf "%s: whole agent %.3f %% of a core, JS thread %.3f %%, %.2f wakeups/s; RSS %.0f MB (anonymous %.0f)\n", l, t/w/1e7, m/w/1e7, v/w, r/1024, a/1024}'
done
