#!/usr/bin/env bash
# What V8's collector does in the agent under a paced load: `--trace-gc-nvp` on one
# `patrol agent --checks checks`, summarised per major GC (mark-compact): the time since the
# previous one, the scavenges between them and what they promoted, the old generation's growth,
# the live heap after it, and its cost (pause and incremental steps on the JS thread, marking on
# V8's helpers). Major GCs further apart, and less promoted per scavenge, are what the
# per-exit data's lifetime decides.
#
#   bash bench/gc-agent.sh [rate=200] [secs=130]
#   GC_TREE=/other/tree GC_FLAGS='--max-semi-space-size=8' bash bench/gc-agent.sh
#     GC_FLAGS: Node flags added to the agent's (a flag given twice: the later one counts)
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RATE=${1:-200}; SECS=${2:-130}
T=${GC_TREE:-$HERE}
source "$HERE/bench/agent-lib.sh"
agent_start gc "$T" "${GC_FLAGS:-} --trace-gc-nvp" ""
agent_load "$RATE" $((SECS + 5))
echo "gc: agent $P, $RATE exec/s, ${SECS} s" >&2
sleep "$SECS"
source "$HERE/scripts/runtime.sh"; patrol_runtime_env
node - "$D/agent.log" <<'JS'
const lines = require('node:fs').readFileSync(process.argv[2], 'utf8').split('\n');
let last = null, lastT = 0, n = 0, promoted = 0, spause = 0, survived = 0;
const mb = (b) => (b / 1048576).toFixed(1);
console.log('at s | since s | scavenges (pause ms, survived / promoted KB each) | old growth MB | live after MB | mark-compact pause + incremental ms, helpers mark ms');
for (const l of lines) {
  const m = /\]\s+(\d+) ms: (.*)/.exec(l);
  if (!m) continue;
  const d = Object.fromEntries(m[2].split(' ').filter((kv) => kv.includes('=')).map((kv) => kv.split('=')));
  if (d.gc === 's') { n++; promoted += +d.promoted; spause += +d.pause; survived += +d.new_space_survived; }
  if (d.gc === 'mc') {
    const t = +m[1] / 1000;
    if (last !== null) console.log(`${t.toFixed(0)} | ${(t - lastT).toFixed(1)} | ${n} (${(spause / n).toFixed(2)}, ${(survived / n / 1024).toFixed(0)} / ${(promoted / n / 1024).toFixed(0)}) | ${mb(+d.start_object_size - last)} | ${mb(+d.end_object_size)} | ${d.pause} + ${d.incremental}, ${d['background.mark']}`);
    last = +d.end_object_size; lastT = t; n = 0; promoted = 0; spause = 0; survived = 0;
  }
}
JS
