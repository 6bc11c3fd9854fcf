// Trends (issue 18): the cost of one run of slope/eta/leak checks over 1,000 processes, in
// process, through the same path the agent uses (Executor → evaluator → windowQuery → the
// compact trend series of the resource windows). 1,000 processes sampled once a second for 5
// minutes (300 sweeps), two shapes: "typical" (one process in ten changes its RSS every sweep;
// the others are idle) and "worst" (every process changes every sweep). Also the memory of the
// compact series and what keeping them adds to a sweep. CPU time of this process (all threads),
// median over the rounds. No root; `node --expose-gc bench/trend.mjs`. Prints one JSON line,
// then a summary.
import { dist, machine, median, round } from './lib.mjs';

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const checks = await dist('checks/index.js');
const metrics = await dist('metrics/index.js');
const { windowQuery } = await dist('app/window-query.js');

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 15 : 41;
const N = 1000;
const SWEEPS = 300;
const S = 1_000_000_000n;
const MB = 1 << 20;
const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };

const usage = (pid, rss) => ({
  pid, ppid: 1, startNs: S, cgroupId: BigInt(100 + (pid % 20)), comm: { text: `c${pid % 50}` }, cpuNs: 0n, readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0,
  minflt: 0, majflt: 0, rssBytes: rss, peakRssBytes: rss, threads: 1, kthread: false, zombie: false,
});

function world(busyShare) {
  const pw = new metrics.ProcessWindows(() => undefined, (pid) => `x${pid}`, { series, maxKeys: 20_000 });
  const cw = new metrics.CgroupWindows((id) => `/cg${id}`, 256, series, () => ({}));
  const nw = new metrics.NodeWindows(series);
  let now = 0;
  const sweep = (t) => {
    const procs = [];
    for (let p = 0; p < N; p++) {
      const busy = p < N * busyShare;
      // busy: noisy growth; idle: constant
      procs.push(usage(1000 + p, busy ? 100 * MB + t * 4096 * (1 + (p % 7)) + ((t * 7919 + p) % 13) * 4096 : 50 * MB + p * 4096));
    }
    const tNs = (10n + BigInt(t)) * S;
    pw.applySweep(tNs, procs);
    cw.sample(tNs, Number(tNs / 1_000_000n), procs);
    now = 10_000 + t * 1000;
  };
  for (let t = 0; t < SWEEPS; t++) sweep(t);
  const q = windowQuery(pw, cw, nw, () => now);
  const windows = { aggregate: (...a) => q.aggregate(...a), trend: (...a) => q.trend(...a), memoryLimit: () => 8 * 1024 * MB };
  return { pw, cw, q, windows, sweep, next: SWEEPS };
}

const FORMS = {
  'eta by exec_id, 5m': 'check a { critical eta(rss, memory_limit, 5m) by exec_id < 10m; }',
  'leak by exec_id, 5m': 'check a { warning leak(rss, 5m) by exec_id > 0.8; }',
  'slope by comm, 5m': 'check a { warning slope(rss, 5m) by comm > 10MB/s; }',
  'eta by cgroup, 5m (default pack)': 'check a { critical eta(rss, memory_limit, 5m) by cgroup < 10m; }',
  'eta by exec_id, 30m (compact series)': 'check a { critical eta(rss, memory_limit, 30m) by exec_id < 10m; }',
  'p95(cpu, 5m) by exec_id (for comparison)': 'check a { critical p95(cpu, 5m) by exec_id > 80%; }',
};

async function timeCheck(w, src) {
  const compiled = checks.compileSource(src, 'b.patrol');
  if (compiled.checks.length !== 1) throw new Error(JSON.stringify(compiled.diagnostics));
  const ex = new checks.Executor({ sources: { windows: w.windows }, clock: new checks.FakeClock() });
  ex.setChecks(compiled.checks);
  for (let i = 0; i < 5; i++) await ex.runAll(); // JIT warm-up, and the first ask arms the trend
  // a full collection first: building a world leaves a heap that concurrent marking would
  // otherwise charge to the rounds (CPU time counts every thread); run with --expose-gc
  globalThis.gc?.();
  const ms = [];
  let last;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = cpuMs();
    [last] = await ex.runAll();
    ms.push(cpuMs() - t0);
  }
  return { ms: round(median(ms), 3), state: last.state };
}

const out = { bench: 'trend', machine: machine(), processes: N, sweeps: SWEEPS, runs: {} };
for (const [shape, share] of [['typical', 0.1], ['worst', 1]]) {
  const w = world(share);
  const res = {};
  for (const [label, src] of Object.entries(FORMS)) res[label] = await timeCheck(w, src);
  // a sweep with the three trend windows the checks above keep (5m and 30m of processes, 5m of
  // cgroups), against a twin world without any, alternating; neither has run checks (garbage)
  const twin = world(share);
  const kept = world(share);
  kept.q.trend('rss', 300_000, 'exec_id');
  kept.q.trend('rss', 1_800_000, 'exec_id');
  kept.q.trend('rss', 300_000, 'cgroup');
  const plain = [];
  const armed = [];
  for (let i = 0; i < 60; i++) {
    for (const [x, xs] of i % 2 ? [[kept, armed], [twin, plain]] : [[twin, plain], [kept, armed]]) {
      const t0 = cpuMs();
      x.sweep(x.next++);
      xs.push(cpuMs() - t0);
    }
  }
  res.sweep_ms = { plain: round(median(plain), 3), with_trends_armed: round(median(armed), 3), armed: kept.pw.windows.trendArms().length + kept.cw.windows.trendArms().length };
  out.runs[shape] = res;
}

// memory of the compact series: 1,000 processes, armed by one ask
globalThis.gc?.();
const m = world(0.1);
globalThis.gc?.();
// typed arrays' backing stores are outside the JS heap: count them too
const mem = () => {
  const u = process.memoryUsage();
  return u.heapUsed + u.arrayBuffers;
};
const h0 = mem();
m.q.trend('rss', 1_800_000, 'exec_id');
globalThis.gc?.();
const h1 = mem();
const e = m.pw.windows.get('x1000');
const ring = e.trends['rss/1800000'];
out.long_trend = {
  heap_bytes_per_process: round((h1 - h0) / N, 0),
  approx_bytes_per_series: ring.approxBytes(),
  windows_approx_bytes_per_process_without: round((m.pw.windows.approxBytes() - N * ring.approxBytes()) / N, 0),
};

console.log(JSON.stringify(out));
for (const [shape, res] of Object.entries(out.runs)) {
  console.log(`${shape} (${shape === 'typical' ? '10 %' : 'all'} of ${N} processes changing every sweep, ${SWEEPS} sweeps):`);
  for (const [label, r] of Object.entries(res)) if (label !== 'sweep_ms') console.log(`  ${label.padEnd(42)} ${String(r.ms).padStart(7)} ms CPU per check run (${r.state})`);
  console.log(`  sweep of ${N} processes: ${res.sweep_ms.plain} ms CPU; with ${res.sweep_ms.armed} trend windows kept: ${res.sweep_ms.with_trends_armed} ms`);
}
console.log(`compact series (one 30m window): ${out.long_trend.heap_bytes_per_process} B per process measured (heap + array buffers) (${out.long_trend.approx_bytes_per_series} B accounted); the resource windows account ~${out.long_trend.windows_approx_bytes_per_process_without} B per process without it`);
