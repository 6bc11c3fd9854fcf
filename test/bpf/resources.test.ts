// Resource windows against the real kernel: a 50 % burner, a 200 MB allocation, a 100 MB
// fsync'd write, a 50 ms process closed exactly by its exit record, and /metrics with 1,000
// processes running. The sweep reads the BPF task iterator (source: bpf), as the agent does.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExitEvent } from '../../src/shared/events.js';
import { ResourcePipeline } from '../../src/app/resources.js';
import type { MetricsConfig } from '../../src/app/config.js';
import { seriesBound, type TopRow } from '../../src/metrics/index.js';
import { createLogger } from '../../src/shared/log.js';
import type { ProcUsage } from '../../src/shared/usage.js';
import { decodeUsageSweep } from '../../src/wire/index.js';
import { readProcUsage } from '../../src/process/index.js';
import { Recorder, bpfEnabled, run, sleep } from './helpers.js';

const HELPER_SRC = fileURLToPath(new URL('../helpers/workload.c', import.meta.url));

const cfg: MetricsConfig = {
  enabled: true,
  sweepMs: 200,
  source: 'bpf',
  windowsMs: [10_000, 60_000, 300_000],
  maxProcesses: 10_000,
  maxExited: 10_000,
  cgroupsMax: 64,
  prometheus: { enabled: true, host: '127.0.0.1', port: 0, topN: 20, windowMs: 60_000 },
};

describe.skipIf(!bpfEnabled)('resource windows (real kernel)', () => {
  let rec: Recorder;
  let res: ResourcePipeline;
  let bin: string;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-res-'));
    bin = join(dir, 'workload');
    execFileSync('cc', ['-O2', '-o', bin, HELPER_SRC]);
    rec = Recorder.start();
    const orig = rec.events.push.bind(rec.events);
    rec.events.push = (...items) => {
      for (const c of items) if (c.ev.type === 'exit') res?.onExit(c.ev, c.en);
      return orig(...items);
    };
    const health = ResourcePipeline.health(() => rec.pipeline.accounting(), () => rec.pipeline.table.size);
    res = await ResourcePipeline.start(cfg, rec.pipeline.table, () => rec.pipeline.readUsage(), health, createLogger({ level: 'warn' }));
  });

  afterAll(async () => {
    await res?.close();
    await rec?.stop();
  });

  const rowOf = (pid: number): TopRow | undefined =>
    (res.top({ windowMs: 60_000, sort: 'cpu', limit: 100_000, byCgroup: false }) as TopRow[]).find((r) => r.pid === pid);

  async function exitOf(pid: number): Promise<ExitEvent> {
    return (await rec.waitFor((c) => c.ev.type === 'exit' && c.ev.pid === pid)).ev as ExitEvent;
  }

  it('sweeps through the BPF task iterator, not /proc', () => {
    expect(res.sweep.source).toBe('bpf');
    expect(res.sweep.lastProcesses).toBeGreaterThan(10);
  });

  it('the /proc fallback sees the same processes and figures as the iterator', () => {
    const bpf = decodeUsageSweep(rec.pipeline.readUsage());
    const proc = readProcUsage();
    const me = (xs: ProcUsage[]) => xs.find((x) => x.pid === process.pid)!;
    expect(Math.abs(me(bpf).rssBytes - me(proc).rssBytes) / me(proc).rssBytes).toBeLessThan(0.1);
    // /proc's CPU is tick-sampled utime+stime; the iterator's is the exact runtime
    expect(Math.abs(Number(me(bpf).cpuNs - me(proc).cpuNs))).toBeLessThan(200_000_000);
    expect(me(bpf).threads).toBe(me(proc).threads);
    // the fields the sweep reads with plain loads through the task's pointers (usage_tasks)
    expect(me(bpf).ppid).toBe(me(proc).ppid);
    expect(me(bpf).comm.text).toBe(me(proc).comm.text);
    // /proc's start is in clock ticks
    expect(Math.abs(Number(me(bpf).startNs - me(proc).startNs))).toBeLessThan(20_000_000);
    expect(me(bpf).cgroupId).not.toBe(0n);
    expect(me(bpf).peakRssBytes).toBeGreaterThanOrEqual(me(bpf).rssBytes);
    expect(me(bpf).minflt).toBeGreaterThanOrEqual(me(proc).minflt * 0.9);
    expect(me(bpf).rchar).toBeGreaterThan(0);
    const procPids = new Set(proc.map((x) => x.pid));
    const common = bpf.filter((x) => procPids.has(x.pid)).length;
    expect(common / bpf.length).toBeGreaterThan(0.95);
  });

  it('a 50 % duty burner: 1 m avg and p95 within 10 points of the truth', async () => {
    const r = await run(bin, ['burn', '3000', '50']);
    const ex = await exitOf(r.pid);
    const truth = (100 * Number(ex.usage.cpuNs)) / Number(ex.ktimeNs - ex.startNs);
    const row = rowOf(r.pid)!;
    expect(row.exited).toBe(true);
    // The truth is what the kernel counted: on a busy machine the burner gets less than its 50 %.
    // The windows' time-weighted average is the kernel's own figure, exactly.
    expect(Math.abs(row.cpu.avg - truth)).toBeLessThanOrEqual(1);
    // ...and it was built from the live sweeps, not only from the exit record: 3 s of 200 ms
    // sweeps, sampled per process at most every 750 ms (300 samples per 5 min window), give 4+
    // interval samples, each a plausible share of one CPU.
    const cpu = res.processes.windows.get(row.exec_id)!.series.cpu!.figures(1e15, 1e15)!;
    expect(cpu.count).toBeGreaterThanOrEqual(4);
    expect(cpu.max).toBeLessThanOrEqual(101);
    expect(cpu.min).toBeGreaterThanOrEqual(0);
    if (truth >= 45) {
      // The burner got its duty: every interval sits near 50 %, and so must the p95.
      expect(Math.abs(row.cpu.p95 - 50)).toBeLessThanOrEqual(10);
    } else {
      // A loaded machine starved the burner unevenly, so its intervals really differ: the p95 is
      // then between the average and the duty the burner never exceeds.
      expect(row.cpu.p95).toBeGreaterThanOrEqual(truth - 1);
      expect(row.cpu.p95).toBeLessThanOrEqual(60);
    }
    expect(row.cpu_seconds).toBeCloseTo(Number(ex.usage.cpuNs) / 1e9, 1);
  });

  it('a process touching 200 MB: max RSS ≥ 200 MB while alive and after exit', async () => {
    // holds 200 MB for 3 s: the 1 s sweeps see it however long touching the pages took on a
    // loaded machine (a fixed 1.2 s wait read 93-164 MB there)
    const child = spawn(bin, ['alloc', '200', '3000'], { stdio: 'ignore' });
    let live = rowOf(child.pid!);
    for (const t0 = Date.now(); (live?.rss_bytes.max ?? 0) < 200 << 20 && Date.now() - t0 < 2800; live = rowOf(child.pid!)) await sleep(100);
    expect(live?.rss_bytes.max ?? 0).toBeGreaterThanOrEqual(200 << 20);
    await new Promise((r) => child.on('exit', r));
    await exitOf(child.pid!);
    expect(rowOf(child.pid!)!.rss_bytes.max).toBeGreaterThanOrEqual(200 << 20);
  });

  it('a writer of 100 MB with fsync: IO write bytes ≥ 100 MB', async () => {
    const r = await run(bin, ['write', '100', join(dir, 'out.bin')]);
    expect(r.code).toBe(0);
    await exitOf(r.pid);
    expect(rowOf(r.pid)!.io_write_bytes).toBeGreaterThanOrEqual(100 << 20);
  });

  it('a process living 50 ms: exact CPU and duration from its exit record', async () => {
    const r = await run(bin, ['burn', '50', '100']);
    const ex = await exitOf(r.pid);
    const row = rowOf(r.pid)!;
    expect(row.exit!.duration_ns).toBe(Number(ex.ktimeNs - ex.startNs));
    expect(row.exit!.cpu_ns).toBe(Number(ex.usage.cpuNs));
    expect(row.exit!.duration_ns).toBeGreaterThanOrEqual(50_000_000);
    expect(row.exit!.duration_ns).toBeLessThan(1_000_000_000);
    // the windows hold exactly the CPU the kernel counted, however the sweeps fell
    expect(row.cpu_seconds).toBeCloseTo(Number(ex.usage.cpuNs) / 1e9, 3);
  });

  it('/metrics parses, and its series stay under the bound with 1,000 processes running', async () => {
    const kids: ChildProcess[] = [];
    try {
      for (let i = 0; i < 1000; i++) kids.push(spawn('sleep', ['30'], { stdio: 'ignore' }));
      await sleep(1500);
      expect(res.sweep.lastProcesses).toBeGreaterThan(1000);
      const body = await (await fetch(`${res.listenAddress}/metrics`)).text();
      const families = parsePrometheus(body) as Array<{ name: string; metrics: unknown[] }>;
      const count = families.reduce((n, f) => n + f.metrics.length, 0);
      const bound = seriesBound({ windows: 3, cgroupsMax: cfg.cgroupsMax, topN: 20 });
      expect(count).toBeGreaterThan(50);
      expect(count).toBeLessThanOrEqual(bound);
      expect(families.find((f) => f.name === 'patrol_process_table_entries')).toBeDefined();
    } finally {
      for (const k of kids) k.kill('SIGKILL');
    }
  }, 30_000);
});
