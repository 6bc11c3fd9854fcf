// Sampling allocation profile of a node process started with --inspect, by allocation site:
//   node bench/alloc-profile.mjs PORT SECS        (bench/alloc-agent.sh runs it on an agent)
// ALLOC_PARENTS=a,b: also the callers of the sites whose names start with these. Every 1 KiB is
// sampled and objects either GC collected are included: the rate of allocation, not what stays.
const port = process.argv[2] ?? '9229';
const secs = Number(process.argv[3] ?? 30);
const watch = (process.env.ALLOC_PARENTS ?? '').split(',').filter(Boolean);

const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
let nextId = 0;
const pending = new Map();
const call = (method, params = {}) =>
  new Promise((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
ws.onmessage = (m) => {
  const d = JSON.parse(m.data);
  if (d.id && pending.has(d.id)) {
    pending.get(d.id)(d.result ?? d.error);
    pending.delete(d.id);
  }
};
await new Promise((r) => (ws.onopen = r));
await call('HeapProfiler.enable');
// ALLOC_LIVE=1: only what is still alive when sampling stops (what the window's work retains)
const live = process.env.ALLOC_LIVE === '1';
// ALLOC_OLD=1: what outlived the young generation (promoted, then dead in a major GC or alive):
// what makes the old generation grow, and so the major GCs
const old = process.env.ALLOC_OLD === '1';
await call('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: !live, includeObjectsCollectedByMinorGC: !live && !old });
await new Promise((r) => setTimeout(r, secs * 1000));
const { profile } = await call('HeapProfiler.stopSampling');
ws.close();

const bySite = new Map();
const byCallers = new Map();
let total = 0;
const siteName = (f) => `${f.functionName || '(anon)'} ${f.url.replace(/.*\/(dist|node_modules|lib)\//, '')}:${f.lineNumber + 1}`;
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
(function walk(node, stack) {
  const name = siteName(node.callFrame);
  total += node.selfSize;
  if (node.selfSize > 0) {
    add(bySite, name, node.selfSize);
    if (watch.some((w) => name.startsWith(w))) add(byCallers, [name, ...stack.slice(-3).reverse()].join(' <- '), node.selfSize);
  }
  for (const c of node.children) walk(c, [...stack, name]);
})(profile.head, []);

const rate = (bytes) => `${(bytes / 1024 / secs).toFixed(1).padStart(7)} kB/s`;
console.log(`total ${(total / 1024 / secs).toFixed(0)} kB/s ${live ? 'still alive after' : old ? 'outliving the young generation over' : 'sampled over'} ${secs} s`);
for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)} %  ${rate(v)}  ${k}`);
if (byCallers.size) console.log('\ncallers:');
for (const [k, v] of [...byCallers].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${rate(v)}  ${k}`);
