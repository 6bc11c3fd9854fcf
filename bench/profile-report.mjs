// Summary of `perf script -F comm,ip,sym` output of the agent (bench/profile-agent.sh):
//   - samples by thread;
//   - the JS thread by what it was doing at the outermost level (a drain, the exit batch, a
//     sweep, the event loop itself, GC);
//   - under each of the pipeline's entry points, the functions one level down.
// Every figure is a share of the JS thread's samples unless it says otherwise.
//
//   node bench/profile-report.mjs stacks.txt [extra-frame-regex ...]
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/profile-report.mjs <perf script output> [frame regex ...]');
  process.exit(2);
}

/** Samples: thread name and stack, leaf first. */
function parse(text) {
  const samples = [];
  let cur = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur) samples.push(cur);
      cur = null;
      continue;
    }
    if (!/^\s/.test(line)) cur = { comm: line.trim().split(/\s+/)[0], stack: [] };
    else if (cur) cur.stack.push(line.trim().replace(/^[0-9a-f]+\s+/, ''));
  }
  if (cur) samples.push(cur);
  return samples;
}

/** "JS:*'onBatch file:///…/dist/app/lifecycle.js:222:12" → "onBatch app/lifecycle.js:222" */
function frameName(f) {
  const m = /^JS:\S*?'?([\w$.<>\[\] ]*?)\s+(?:file:\/\/)?\S*?(?:dist\/|node_modules\/|node:)([\w@/.-]+?):(\d+)/.exec(f);
  if (m) return `${m[1] || '(anonymous)'} ${m[2]}:${m[3]}`;
  return f.replace(/\s*\(.*$/, '').slice(0, 70);
}

const GC = /Scavenge|MarkCompact|Heap::Collect|IncrementalMarking|ConcurrentMarking|Sweeper|MinorMS/;
const LOOP_ONLY = /processTimers|listOnTimeout|processImmediate|processTicksAndRejections|runNextTicks|emit |wrappedFn/;

const samples = parse(readFileSync(file, 'utf8'));
const pct = (n, d) => `${((100 * n) / Math.max(1, d)).toFixed(1).padStart(5)} %`;

// -- threads
const byThread = new Map();
for (const s of samples) byThread.set(s.comm, (byThread.get(s.comm) ?? 0) + 1);
console.log(`\nsamples by thread (${samples.length} in all):`);
for (const [t, n] of [...byThread].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(n, samples.length)}  ${t}`);
const workers = samples.filter((s) => s.comm === 'V8Worker');
if (workers.length) {
  const w = { gc: 0, compile: 0, other: 0 };
  for (const s of workers) {
    const st = s.stack.join(' ');
    if (GC.test(st) || /Marking|Evacuat|Scaveng|Sweep/.test(st)) w.gc++;
    else if (/compiler|Compil|maglev|Maglev|Turbofan|turboshaft/.test(st)) w.compile++;
    else w.other++;
  }
  console.log(`  V8 helper threads: GC ${pct(w.gc, workers.length)}, compiling ${pct(w.compile, workers.length)}, other ${pct(w.other, workers.length)} of their samples`);
}

// -- the JS thread by outermost activity
const main = samples.filter((s) => s.comm === 'MainThread');
const top = new Map();
for (const s of main) {
  const st = s.stack.join(' ');
  let k;
  if (GC.test(st)) k = 'GC on the JS thread';
  else {
    const js = s.stack.filter((f) => f.startsWith('JS:'));
    const outer = [...js].reverse().find((f) => !LOOP_ONLY.test(f));
    if (outer) k = frameName(outer);
    else if (js.length) k = 'timers and ticks (Node internals)';
    else k = 'event loop, no JS (epoll, libuv, the kernel)';
  }
  top.set(k, (top.get(k) ?? 0) + 1);
}
console.log(`\nthe JS thread (${main.length} samples), by outermost activity:`);
for (const [k, n] of [...top].sort((a, b) => b[1] - a[1]).slice(0, 16)) console.log(`  ${pct(n, main.length)}  ${k}`);

// -- one level under each entry point
const ENTRIES = [
  ['a drain tick: the addon call, then the batch', /[\^'*+~]tick .*kernel\/ring-pull/],
  ['the batch: decode and dispatch', /[\^'*+~]onBatch .*app\/lifecycle/],
  ['dispatch: the table, then the consumers', /[\^'*+~]dispatch .*app\/lifecycle/],
  ['the consumers of one event', /[\^'*+~]onEvent .*app\/agent/],
  ['the process table', /[\^'*+~]apply .*process\/table/],
  ['the rules', /[\^'*+~]onLifecycle .*rules\/engine/],
  ['the exit batch (store and windows)', /[\^'*+~]flush .*app\/exit-batch/],
  ...process.argv.slice(3).map((r) => [r, new RegExp(r)]),
];
for (const [label, re] of ENTRIES) {
  const under = new Map();
  let n = 0;
  for (const s of main) {
    const i = s.stack.findLastIndex((f) => re.test(f));
    if (i < 0) continue;
    n++;
    const k = i === 0 ? '(itself)' : frameName(s.stack[i - 1]);
    under.set(k, (under.get(k) ?? 0) + 1);
  }
  if (n === 0) continue;
  console.log(`\n${label}: ${pct(n, main.length)} of the JS thread; under it:`);
  for (const [k, c] of [...under].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${pct(c, main.length)}  ${k}`);
}
