#!/usr/bin/env bash
# The agent over its first minutes: CPU by kind of thread and RSS, window by window, one agent
# under a paced load. agent-cost.mjs measures 15–55 s after start, which is start-up as much as
# steady state: V8 still compiles then, and the start-up pages of the runtime are only given back
# after a minute (src/app/startup-pages.ts). The issue's RSS bar is 10 minutes at 200 exec/s.
#
#   bash bench/agent-steady.sh [rate=200] [total_s=600]
#   STEADY_TREE=/other/tree STEADY_YAML='rules:\n  enabled: false' bash bench/agent-steady.sh 0 300
#
# Windows end at 15, 30, 60, 120, 180, 300, 480, 600 s (those within total_s). Per window: CPU of
# the JS thread, of V8's helper threads and of the rest, % of one core (task schedstat); RSS,
# RssFile and RssAnon at its end. Root.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${1:-200}; TOTAL=${2:-600}
T=${STEADY_TREE:-$HERE}
source "$HERE/bench/agent-lib.sh"
agent_start steady "$T" "" "${STEADY_YAML:-}"
agent_load "$RATE" $((TOTAL + 5))
echo "steady: agent $P, $RATE exec/s, $TOTAL s"
# ns of CPU so far: JS thread, V8 helpers, the rest (%.0f: awk's %d saturates at 2^31)
snap() {
  for t in /proc/"$P"/task/*; do
    case "$(cat "$t/comm")" in MainThread) k=js ;; V8Worker) k=v8 ;; *) k=other ;; esac
    echo "$k $(awk '{print $1}' "$t/schedstat")"
  done | awk '{a[$1] += $2} END {printf "%.0f %.0f %.0f\n", a["js"], a["v8"], a["other"]}'
}
mem() { awk '/^VmRSS/{r=$2} /^RssFile/{f=$2} /^RssAnon/{a=$2} END{printf "%d MB (file %d, anon %d)", r/1024, f/1024, a/1024}' /proc/"$P"/status; }
read -r J0 V0 O0 < <(snap); AT=0
for END in 15 30 60 120 180 300 480 600; do
  [ "$END" -le "$TOTAL" ] || break
  sleep $((END - AT))
  read -r J V O < <(snap)
  awk -v t="$END" -v w=$((END - AT)) -v j=$((J - J0)) -v v=$((V - V0)) -v o=$((O - O0)) -v m="$(mem)" \
    'BEGIN{printf "to %4d s: JS %.2f  V8 helpers %.2f  other %.2f  total %.2f %% of a core; RSS %s\n", t, j/w/1e7, v/w/1e7, o/w/1e7, (j+v+o)/w/1e7, m}'
  J0=$J; V0=$V; O0=$O; AT=$END
done
grep -o '"rss_file_mb_before":[0-9]*,"rss_file_mb_after":[0-9]*' "$D/agent.log" | sed 's/^/start-up pages: /' || true
