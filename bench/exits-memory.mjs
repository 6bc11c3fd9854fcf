// Memory of the per-process windows under a steady stream of exits (issue 11): ProcessWindows fed
// synthetic exit records at a paced rate in simulated time (no kernel, no root), with a sweep of
// the live processes every second and a Prometheus-style top read every 15 s. Reports the heap
// after a full GC at minutes 1, 2, 5 and 10, and the entries kept.
//
//   node --expose-gc bench/exits-memory.mjs                 # 200 exec/s for 10 min, then 2,000 exec/s for 5 min
//   EXITS_RATES=200 EXITS_MINUTES=10 node --expose-gc bench/exits-memory.mjs
//   EXITS_COMMS=1 EXITS_CGROUPS=1 node --expose-gc bench/exits-memory.mjs   # one command in one cgroup (default 8 × 5)
//   BENCH_TREE=/path/to/other/checkout node --expose-gc bench/exits-memory.mjs   # the same on another build
import { dist, report, round } from './lib.mjs';

if (!globalThis.gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const { ProcessWindows, topRows } = await dist('metrics/index.js');

const S = 1_000_000_000n;
const MS = 1_000_000n;
const RATES = (process.env.EXITS_RATES ?? '200,2000').split(',').map(Number);
const MINUTES = (process.env.EXITS_MINUTES ?? '10,5').split(',').map(Number);
const COMMS = ['sh', 'true', 'date', 'git', 'sed', 'awk', 'cat', 'grep'].slice(0, Number(process.env.EXITS_COMMS ?? 8));
const CGROUPS = [101n, 102n, 103n, 104n, 105n].slice(0, Number(process.env.EXITS_CGROUPS ?? 5));
// Of the exits, this share lived through a sweep first (they have window samples when they exit).
const SWEPT_SHARE = 0.02;
const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };

function exitEvent(pid, startNs, atNs, cpuNs, maxRssKb, comm) {
  return {
    type: 'exit', ktimeNs: atNs, seq: 0n, cpu: 0, flags: 0, pid, tid: pid, ppid: 1, startNs, status: 0, exitCode: 0, signal: null,
    coreDumped: false, comm: { text: comm },
    usage: { cpuNs: Number(cpuNs), utimeNs: 0, stimeNs: 0, maxRssKb, readBytes: 0, writeBytes: 4096, rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
  };
}

function usage(pid, startNs, cpuNs, comm, cgroupId) {
  return {
    pid, ppid: 1, startNs, cgroupId, comm: { text: comm }, cpuNs, readBytes: 0, writeBytes: 0,
    rchar: 0, wchar: 0, minflt: 0, majflt: 0, rssBytes: 4 << 20, peakRssBytes: 4 << 20, threads: 1, kthread: false, zombie: false,
  };
}

const heapMb = () => {
  globalThis.gc();
  globalThis.gc();
  return round(process.memoryUsage().heapUsed / 2 ** 20, 1);
};

function run(rate, minutes) {
  const ids = (pid, start) => `${pid.toString(16).padStart(8, '0')}${(start % 2n ** 32n).toString(16).padStart(8, '0')}`;
  const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10_000, maxExited: 10_000 });
  const base = heapMb();
  const out = { rate, minutes, exits: 0, heap_mb: {} };
  // 100 long-lived processes, swept every second
  const resident = Array.from({ length: 100 }, (_, i) => ({ pid: 10 + i, start: S, comm: 'daemon', cg: CGROUPS[i % 5] }));
  let pid = 1000;
  let seq = 0;
  const t0 = 1000n * S;
  let pending = []; // processes that live through the next sweep before exiting
  for (let sec = 0; sec < minutes * 60; sec++) {
    const tSec = t0 + BigInt(sec) * S;
    const live = resident.map((r) => usage(r.pid, r.start, BigInt(sec) * MS, r.comm, r.cg));
    for (const p of pending) live.push(usage(p.pid, p.start, 2n * MS, p.comm, p.cg));
    pw.applySweep(tSec, live);
    const seen = pending;
    pending = [];
    for (const p of seen) pw.applyExit(exitEvent(p.pid, p.start, tSec + 3n * MS, 3n * MS, 2048, p.comm), ids(p.pid, p.start), p.cg);
    for (let i = 0; i < rate; i++) {
      pid = pid >= 4_000_000 ? 1000 : pid + 1;
      seq++;
      const start = tSec + (BigInt(i) * S) / BigInt(rate) + 1000n;
      const comm = COMMS[seq % COMMS.length];
      const cg = CGROUPS[seq % CGROUPS.length];
      if (seq % Math.round(1 / SWEPT_SHARE) === 0) {
        pending.push({ pid, start, comm, cg });
        continue;
      }
      const cpuNs = BigInt(200_000 + ((seq * 7919) % 1_000_000)); // 0.2–1.2 ms
      pw.applyExit(exitEvent(pid, start, start + 2n * MS, cpuNs, 1024 + (seq % 4096), comm), ids(pid, start), cg);
      out.exits++;
    }
    if (sec % 15 === 14) {
      const nowMs = Number(tSec / MS);
      topRows(pw, { nowMs, windowMs: 60_000, sort: 'cpu', limit: 20 });
      topRows(pw, { nowMs, windowMs: 60_000, sort: 'rss', limit: 20 });
    }
    const minute = (sec + 1) / 60;
    if ([1, 2, 5, 10].includes(minute)) out.heap_mb[`${minute}m`] = round(heapMb() - base, 1);
  }
  out.keys = pw.windows.size;
  out.exited_kept = pw.exited?.size ?? null;
  out.aggregated = pw.exited?.aggregated ?? null;
  out.approx_mb = round(pw.windows.approxBytes() / 2 ** 20 + (pw.exited?.approxBytes() ?? 0) / 2 ** 20, 1);
  return out;
}

const result = { runs: RATES.map((r, i) => run(r, MINUTES[i] ?? MINUTES[0])) };
report('exits-memory', result, result.runs.map((r) =>
  `${r.rate} exits/s for ${r.minutes} min: heap above start ${Object.entries(r.heap_mb).map(([k, v]) => `${k} ${v} MB`).join(', ')}; window keys ${r.keys}, exited records ${r.exited_kept ?? '-'}, aggregated ${r.aggregated ?? '-'}`));
process.exit(0);
