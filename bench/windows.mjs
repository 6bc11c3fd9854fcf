// Resource windows (issue 5): sweep cost of the BPF task iterator against /proc for 1,000 and
// 10,000 live processes, memory per tracked process, window merge cost per read, and the agent's
// CPU at the default sweep interval with 1,000 processes (windows on vs off, same run).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PATROL, dist, ensureBuilt, median, nowMs, procUsage, report, round, sleep, startChild, stopChild, waitQuiet } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const COUNTS = (process.env.BENCH_COUNTS ?? '1000,10000').split(',').map(Number);

ensureBuilt();
const quiet = await waitQuiet();
const { LifecyclePipeline } = await dist('app/lifecycle.js');
const { decodeUsageSweep } = await dist('wire/index.js');
const { readProcUsage } = await dist('process/index.js');
const { Series, ProcessWindows } = await dist('metrics/index.js');
const { createLogger } = await dist('shared/log.js');

/** Starts n idle processes (sleep) from one shell; returns a stopper. */
async function population(n) {
  const sh = spawn('bash', ['-c', `for i in $(seq ${n}); do sleep 3600 & done; echo up; wait`], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  await new Promise((r) => sh.stdout.once('data', r));
  await sleep(500);
  return () => {
    try {
      process.kill(-sh.pid, 'SIGKILL');
    } catch {}
  };
}

const result = { ...quiet, sweep: [], memory: null, merge: null, agent: null };
const log = createLogger({ level: 'warn' });
const pipe = LifecyclePipeline.start({}, log, () => {});

// 1. Sweep cost, alternating rounds.
for (const n of COUNTS) {
  const stop = await population(n);
  try {
    const bpf = [], proc = [];
    let nb = 0, np = 0;
    for (let r = 0; r < (QUICK ? 5 : 15); r++) {
      let t = nowMs();
      const a = decodeUsageSweep(pipe.readUsage());
      bpf.push(nowMs() - t);
      t = nowMs();
      const b = readProcUsage();
      proc.push(nowMs() - t);
      nb = a.length;
      np = b.length;
    }
    result.sweep.push({ live: n, processes_seen_bpf: nb, processes_seen_proc: np, bpf_ms: round(median(bpf), 2), proc_ms: round(median(proc), 2), proc_over_bpf: round(median(proc) / median(bpf), 1) });
  } finally {
    stop();
  }
  await sleep(1000);
}

// 2. Memory per tracked process: 1,000 real processes swept once a second for 5 minutes of
//    (simulated) time, so every window fills.
{
  const stop = await population(1000);
  try {
    const snap = decodeUsageSweep(pipe.readUsage());
    const pw = new ProcessWindows(() => undefined, (pid, s) => `${pid}-${s}`, { series: { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 }, maxKeys: 100_000 });
    globalThis.gc?.();
    const h0 = process.memoryUsage().heapUsed;
    const S = 1_000_000_000n;
    for (let t = 1n; t <= 300n; t++) {
      // idle processes, plus 10 % busy ones whose CPU and RSS change every sweep
      const procs = snap.map((p, i) => (i % 10 === 0 ? { ...p, cpuNs: p.cpuNs + t * 10_000_000n * BigInt(1 + (i % 7)), rssBytes: p.rssBytes + Number(t % 13n) * 4096 } : p));
      pw.applySweep(1000n * S + t * S, procs);
    }
    globalThis.gc?.();
    const h1 = process.memoryUsage().heapUsed;
    result.memory = { processes: pw.windows.size, heap_bytes_per_process: Math.round((h1 - h0) / pw.windows.size), approx_bytes_per_process: Math.round(pw.bytesPerKey()) };
  } finally {
    stop();
  }
}
// 2b. The whole sweep as the agent runs it (iterator read, decode, process/node/cgroup windows),
//     timed in-process so other activity on the machine (execs) does not count.
{
  const { ResourcePipeline } = await dist('app/resources.js');
  const stop = await population(1000);
  try {
    const cfg = { enabled: true, sweepMs: 60_000, source: 'bpf', windowsMs: [10_000, 60_000, 300_000], maxProcesses: 10_000, maxExited: 10_000, cgroupsMax: 256, prometheus: { enabled: false, host: '127.0.0.1', port: 0, topN: 20, windowMs: 60_000 } };
    const health = () => ({ events: {}, lostKernel: {}, lostUserspace: {}, tableEntries: 0 });
    const rp = await ResourcePipeline.start(cfg, pipe.table, () => pipe.readUsage(), health, log);
    const xs = [];
    for (let i = 0; i < (QUICK ? 10 : 30); i++) {
      await sleep(100);
      const t = nowMs();
      rp.sweepOnce();
      xs.push(nowMs() - t);
    }
    const t = nowMs();
    const text = await rp.metrics.text();
    const scrapeMs = nowMs() - t;
    await rp.close();
    result.sweep_pipeline = { processes: rp.sweep.lastProcesses, ms_per_sweep: round(median(xs), 2), pct_of_core_at_1s: round(median(xs) / 10, 2), scrape_ms: round(scrapeMs, 1), scrape_bytes: text.length };
  } finally {
    stop();
  }
}
await pipe.stop();
await pipe.close();

// 3. Merge cost per read. Exact mode: 300 samples, a different window each read so nothing is
//    cached, with and without a percentile. hdr mode: the rebuild of the closed sub-windows'
//    merge (once per slide of a window), and a read within a slide (closed merge cached).
{
  const exact = new Series({ maxWindowMs: 300_000, slotMs: 1000, maxEntries: 100_000, resolution: 0.01 });
  for (let i = 0; i < 300; i++) exact.record(i * 1000, Math.random() * 100, 1);
  const hist = new Series({ maxWindowMs: 300_000, slotMs: 5000, maxEntries: 64, resolution: 0.01 });
  for (let i = 0; i < 30_000; i++) hist.record(i * 10, Math.random() * 100, 1);
  const time = (n, f) => {
    const xs = [];
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      f(i);
      xs.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    return round(median(xs), 1);
  };
  result.merge = {
    exact_300_no_percentile_us: time(2000, (i) => exact.figures(300_000, 299_000 - i)),
    exact_300_p95_us: time(2000, (i) => exact.figures(300_000, 299_000 - i).p95),
    histogram_mode: hist.mode,
    histogram_rebuild_60_subwindows_us: time(50, (i) => hist.figures(300_000, 299_000 - i).p95),
    histogram_read_within_slide_us: time(500, (i) => {
      hist.record(299_990 + i * 0.001, Math.random() * 100, 1);
      return hist.figures(299_990 + i * 0.001, 300_000).p95;
    }),
  };
}

// 4. Agent CPU with 1,000 processes at the default interval: windows on, then off.
async function agentCpu(metricsEnabled, secs) {
  const dir = mkdtempSync(path.join(tmpdir(), 'patrol-bench-agent-'));
  const cfg = path.join(dir, 'p.yaml');
  writeFileSync(cfg, `store: { path: ${dir}/p.db }\napi: { socket: ${dir}/p.sock }\nagent: { lock_file: ${dir}/p.pid, pin_dir: /sys/fs/bpf/patrol-bench }\nlog: { level: warn, format: json }\nmetrics: { enabled: ${metricsEnabled}, prometheus: { port: 0 } }\n`);
  const a = startChild(PATROL, ['agent', '--config', cfg]);
  await sleep(4000); // bootstrap and first sweeps
  const u0 = procUsage(a.child.pid);
  const t0 = nowMs();
  await sleep(secs * 1000);
  const u1 = procUsage(a.child.pid);
  const s = (nowMs() - t0) / 1000;
  await stopChild(a, 'SIGTERM');
  return { cpu_pct_of_one_core: round((100 * (u1.runNs - u0.runNs)) / 1e9 / s, 2), rss_mb: round(u1.rssKb / 1024, 1) };
}
{
  const stop = await population(1000);
  try {
    const secs = QUICK ? 10 : 30;
    const on = await agentCpu(true, secs);
    const off = await agentCpu(false, secs);
    result.agent = { processes: 1000, sweep_interval: '1s', seconds: secs, windows_on: on, windows_off: off, windows_cost_pct: round(on.cpu_pct_of_one_core - off.cpu_pct_of_one_core, 2) };
  } finally {
    stop();
  }
}

report('windows', result, [
  ...result.sweep.map((s) => `sweep of ${s.live} live processes: BPF iterator ${s.bpf_ms} ms, /proc ${s.proc_ms} ms (/proc is ×${s.proc_over_bpf})`),
  `memory per tracked process (5 min of 1 s sweeps, 10 % busy): ${result.memory.heap_bytes_per_process} B heap (estimate ${result.memory.approx_bytes_per_process} B)`,
  `merge cost per read: exact mode (300 samples) ${result.merge.exact_300_no_percentile_us} µs, ${result.merge.exact_300_p95_us} µs with a percentile; hdr mode (60 sub-windows) ${result.merge.histogram_rebuild_60_subwindows_us} µs per slide, ${result.merge.histogram_read_within_slide_us} µs per read within a slide`,
  `whole sweep with 1,000 processes (in-process): ${result.sweep_pipeline.ms_per_sweep} ms = ${result.sweep_pipeline.pct_of_core_at_1s} % of a core at 1 s; /metrics scrape ${result.sweep_pipeline.scrape_ms} ms (${result.sweep_pipeline.scrape_bytes} B)`,
  `agent CPU with 1,000 processes, 1 s sweeps: ${result.agent.windows_on.cpu_pct_of_one_core} % of a core with windows, ${result.agent.windows_off.cpu_pct_of_one_core} % without (RSS ${result.agent.windows_on.rss_mb} / ${result.agent.windows_off.rss_mb} MB)`,
]);
process.exit(0);
