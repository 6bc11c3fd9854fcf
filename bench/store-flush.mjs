#!/usr/bin/env node
// Store.flush() as the agent calls it: 200 exit summaries a commit (store.flush_interval 1 s at
// 200 exits/s), 1 % of them awaiting their reap, into a store that already holds ROWS rows. Each
// tree's own compiled Store (dist/store), so two builds compare in one run: rounds alternate, and
// the CPU per commit (process.cpuUsage, user + system, checkpoints included) is the median of
// the rounds.
//
//   STORE_FLUSH_TREES='before=/tmp/old-tree;after=.' node bench/store-flush.mjs
//   STORE_FLUSH_ROWS=300000 STORE_FLUSH_ROUNDS=5 ...
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, report } from './lib.mjs';

const trees = (process.env.STORE_FLUSH_TREES ?? `this=${ROOT}`).split(';').map((s) => {
  const [label, dir] = s.split('=');
  return { label, dir: path.resolve(dir) };
});
const ROWS = Number(process.env.STORE_FLUSH_ROWS ?? 100_000);
const ROUNDS = Number(process.env.STORE_FLUSH_ROUNDS ?? 5);
const COMMITS = 50;
const PER_COMMIT = 200;
const work = mkdtempSync(path.join(tmpdir(), 'patrol-store-flush-'));

let n = 0;
const hex = () => Math.floor(Math.random() * 2 ** 52).toString(16).padStart(16, '0');
function summary() {
  const i = ++n;
  return {
    execId: hex(), pid: (i % 4_000_000) + 1, ppid: 4242, parentExecId: hex(), comm: 'true', filename: '/usr/bin/true',
    args: ['true', String(i)], uid: 0, cgroupId: 4242n, startNs: 1_000_000_000_000n + BigInt(i), exitNs: 1_000_000_500_000n + BigInt(i),
    durationNs: 500_000n, exitCode: 0, signal: null, coreDumped: false, cpuNs: 480_000n, utimeNs: 0n, stimeNs: 480_000n,
    maxRssKb: 1536, readBytes: 0n, writeBytes: 0n, minflt: 64n, majflt: 0n, argsRedacted: false,
  };
}

function commit(store) {
  for (let i = 0; i < PER_COMMIT; i++) {
    const s = summary();
    store.recordExit(s);
    if (i % 100 !== 0) store.recordReap(s.execId, 1_000n);
  }
  const r = store.flush();
  if (r.committed !== PER_COMMIT) throw new Error(`committed ${JSON.stringify(r)}`);
}

async function round(tree, r) {
  const { Store } = await import(pathToFileURL(path.join(tree.dir, 'dist/store/index.js')).href);
  const store = Store.open(path.join(work, `${tree.label}-${r}.db`), { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 10_000 });
  try {
    for (let k = 0; k < ROWS / PER_COMMIT; k++) commit(store);
    for (let k = 0; k < 10; k++) commit(store); // warm: the statements compiled and optimized
    const c0 = process.cpuUsage();
    for (let k = 0; k < COMMITS; k++) commit(store);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / COMMITS / 1000;
  } finally {
    store.close();
  }
}

const ms = Object.fromEntries(trees.map((t) => [t.label, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const t of r % 2 ? [...trees].reverse() : trees) {
    process.stderr.write(`store-flush: round ${r + 1}/${ROUNDS}, ${t.label}…\n`);
    ms[t.label].push(await round(t, r));
  }
}
rmSync(work, { recursive: true, force: true });
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = median(ms[trees[0].label]);
const results = trees.map((t) => ({ tree: t.label, cpu_ms_per_commit: +median(ms[t.label]).toFixed(3), rounds: ms[t.label].map((v) => +v.toFixed(3)), ratio: +(median(ms[t.label]) / base).toFixed(2) }));
report('store-flush', { rows_before: ROWS, rows_per_commit: PER_COMMIT, commits: COMMITS, results }, results.map((x) => `${x.tree.padEnd(8)} ${x.cpu_ms_per_commit.toFixed(3)} ms per ${PER_COMMIT}-row flush (rounds ${x.rounds.join(' / ')}), x${x.ratio} of ${trees[0].label}`));
