// Process windows from synthetic sweeps and exit records: deltas between sweeps, first sight,
// exact closing by the exit record, top ordering, and the Prometheus exposition's bound.
import parsePrometheus from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import type { ExitEvent } from '../../src/shared/events.js';
import type { ProcUsage } from '../../src/shared/usage.js';
import { CgroupWindows, NodeWindows, PatrolMetrics, ProcessWindows, seriesBound, topGroups, topRows } from '../../src/metrics/index.js';

const S = 1_000_000_000n;
const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };

function usage(pid: number, over: Partial<ProcUsage> = {}): ProcUsage {
  return {
    pid, ppid: 1, startNs: 1n * S, cgroupId: 0n, comm: { text: `p${pid}` }, cpuNs: 0n, readBytes: 0, writeBytes: 0,
    rchar: 0, wchar: 0, minflt: 0, majflt: 0, rssBytes: 1 << 20, peakRssBytes: 1 << 20, threads: 1, kthread: false, zombie: false, ...over,
  };
}

function exitEv(pid: number, startNs: bigint, atNs: bigint, cpuNs: bigint, maxRssKb: number, writeBytes = 0n): ExitEvent {
  return {
    type: 'exit', ktimeNs: atNs, seq: 0n, cpu: 0, flags: 0, pid, tid: pid, ppid: 1, startNs, status: 0, exitCode: 0, signal: null,
    coreDumped: false, comm: { text: `p${pid}` },
    usage: { cpuNs: Number(cpuNs), utimeNs: 0, stimeNs: 0, maxRssKb, readBytes: 0, writeBytes: Number(writeBytes), rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
  };
}

const ids = (pid: number, start: bigint) => `id-${pid}-${start}`;

describe('ProcessWindows', () => {
  it('CPU percent and IO from differences between sweeps; no baseline at first sight', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100 });
    pw.applySweep(10n * S, [usage(10, { cpuNs: 5n * S })]);
    pw.applySweep(11n * S, [usage(10, { cpuNs: 5n * S + S / 2n, writeBytes: 4096 })]);
    pw.applySweep(12n * S, [usage(10, { cpuNs: 6n * S + S / 4n, writeBytes: 8192 })]);
    const [row] = topRows(pw, { nowMs: 12_000, windowMs: 60_000, sort: 'cpu', limit: 10 });
    expect(row!.cpu.max).toBe(75);
    expect(row!.cpu.avg).toBe(62.5);
    expect(row!.cpu_seconds).toBeCloseTo(1.25);
    expect(row!.io_write_bytes).toBe(8192);
    expect(row!.exited).toBe(false);
  });

  it('a process born and dead between two sweeps is closed exactly by its exit record', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100 });
    pw.applySweep(10n * S, []);
    const start = 10n * S + 100_000_000n;
    const end = start + 50_000_000n; // 50 ms
    pw.applyExit(exitEv(42, start, end, 20_000_000n, 2048, 1_000_000n), ids(42, start), null);
    pw.applySweep(11n * S, []);
    const [row] = topRows(pw, { nowMs: 11_000, windowMs: 10_000, sort: 'cpu', limit: 10 });
    expect(row!.exited).toBe(true);
    expect(row!.cpu.avg).toBe(40); // 20 ms of CPU over 50 ms
    expect(row!.exit).toMatchObject({ duration_ns: 50_000_000, cpu_ns: 20_000_000, max_rss_bytes: 2048 * 1024 });
    expect(row!.rss_bytes.max).toBe(2048 * 1024);
    expect(row!.io_write_bytes).toBe(1_000_000);
  });

  it('a process born after the previous sweep is measured from its start; exit closes the rest', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100 });
    pw.applySweep(10n * S, []);
    const start = 10n * S + S / 2n;
    pw.applySweep(11n * S, [usage(7, { startNs: start, cpuNs: S / 4n })]); // 50 % for 0.5 s
    pw.applyExit(exitEv(7, start, 12n * S, S / 4n + S / 10n, 1024), ids(7, start), null); // 10 % for 1 s
    const [row] = topRows(pw, { nowMs: 12_000, windowMs: 60_000, sort: 'cpu', limit: 10 });
    expect(row!.cpu.max).toBe(50);
    expect(row!.cpu.avg).toBeCloseTo(23.33, 1); // 0.35 s of CPU over 1.5 s: exact
  });

  it('top sorts by CPU time in the window, by peak RSS, by IO; groups by cgroup', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100 });
    pw.applySweep(10n * S, [usage(1), usage(2), usage(3, { cgroupId: 5n })]);
    pw.applySweep(11n * S, [usage(1, { cpuNs: S / 10n }), usage(2, { cpuNs: S / 2n, rssBytes: 9 << 20 }), usage(3, { cgroupId: 5n, readBytes: 1 << 20 })]);
    expect(topRows(pw, { nowMs: 11_000, windowMs: 60_000, sort: 'cpu', limit: 2 }).map((r) => r.pid)).toEqual([2, 1]);
    expect(topRows(pw, { nowMs: 11_000, windowMs: 60_000, sort: 'rss', limit: 1 })[0]!.pid).toBe(2);
    expect(topRows(pw, { nowMs: 11_000, windowMs: 60_000, sort: 'io', limit: 1 })[0]!.pid).toBe(3);
    const groups = topGroups(pw, { nowMs: 11_000, windowMs: 60_000, sort: 'cpu', limit: 10, resolveCgroup: (id) => (id === 5n ? '/system.slice/x.service' : undefined) });
    expect(groups.map((g) => [g.cgroup, g.processes])).toEqual([[null, 2], ['/system.slice/x.service', 1]]);
    expect(groups[1]!.owner).toBe('x.service');
  });

  it('memory per tracked process stays small for idle processes', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10_000 });
    const procs = Array.from({ length: 1000 }, (_, i) => usage(100 + i));
    for (let t = 10n; t < 70n; t++) pw.applySweep(t * S, procs);
    expect(pw.windows.size).toBe(1000);
    expect(pw.bytesPerKey()).toBeLessThan(2048);
  });
});

describe('/metrics', () => {
  it('parses as Prometheus text, and the series count stays under the bound with 1,000 processes', async () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10_000 });
    const procs = Array.from({ length: 1000 }, (_, i) => usage(100 + i, { cgroupId: BigInt(1 + (i % 50)) }));
    const node = new NodeWindows(series);
    const cg = new CgroupWindows((id) => `/c${id}`, 20, series, () => ({ cpuUsageUs: 1000, memoryCurrentBytes: 1 << 20 }));
    for (let t = 10n; t < 13n; t++) {
      const step = procs.map((p) => ({ ...p, cpuNs: p.cpuNs + (t - 10n) * 1_000_000n * BigInt(p.pid % 7) }));
      pw.applySweep(t * S, step);
      node.sample(t * S, Number(t) * 1000);
      cg.sample(t * S, Number(t) * 1000, step);
    }
    const m = new PatrolMetrics({
      node, cgroups: cg, processes: pw, nowMs: () => 12_500,
      health: () => ({ events: { exec: 5n }, lostKernel: { exec: 0n }, lostUserspace: { exec: 0n }, tableEntries: 1000 }),
      windows: [{ ms: 10_000, label: '10s' }, { ms: 60_000, label: '1m' }, { ms: 300_000, label: '5m' }],
      keyWindow: { ms: 60_000, label: '1m' },
      topN: 20,
    });
    const text = await m.text();
    const families = parsePrometheus(text) as Array<{ name: string; metrics: unknown[] }>;
    const count = families.reduce((n, f) => n + f.metrics.length, 0);
    const bound = seriesBound({ windows: 3, cgroupsMax: 20, topN: 20 });
    expect(count).toBeLessThanOrEqual(bound);
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('patrol_process_cpu_percent')!.metrics.length).toBeLessThanOrEqual(2 * 20 * 3);
    expect(byName.get('patrol_process_cpu_percent')!.metrics.length).toBeGreaterThan(0);
    expect(byName.get('patrol_cgroup_processes')!.metrics.length).toBe(20);
    expect(byName.has('patrol_node_cpu_percent')).toBe(true);
    expect(byName.has('patrol_events_total')).toBe(true);
    expect(byName.has('patrol_agent_process_cpu_seconds_total')).toBe(true);
  });
});

describe('ProcessWindows memory bound', () => {
  it('100 ms sweeps over a 5 min window: a busy process keeps exact mode and a bounded number of samples', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10 });
    const M = 1_000_000n;
    for (let i = 0n; i < 3000n; i++) pw.applySweep(10n * S + i * 100n * M, [usage(5, { cpuNs: i * 37n * M + (i % 7n) * M, writeBytes: Number(i) * 4096 })]);
    const e = pw.windows.get(ids(5, S))!;
    expect(e.series.cpu!.mode).toBe('exact');
    expect(e.series.cpu!.figures(310_000, 300_000)!.count).toBeLessThanOrEqual(400);
    // the coarser samples still add up to every byte written
    expect(e.series.io_write!.figures(310_000, 300_000)!.sum).toBeGreaterThan(2990 * 4096 - 10 * 4096);
    expect(pw.bytesPerKey()).toBeLessThan(150_000);
  });

  it('a counter that reads low once (a thread released mid-read) gives a zero, not a negative sample and a spike', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10 });
    pw.applySweep(10n * S, [usage(6, { cpuNs: 5n * S })]);
    pw.applySweep(11n * S, [usage(6, { cpuNs: 5n * S + S / 2n })]);
    pw.applySweep(12n * S, [usage(6, { cpuNs: 5n * S + S / 4n })]); // low read
    pw.applySweep(13n * S, [usage(6, { cpuNs: 6n * S })]);
    const f = pw.windows.get(ids(6, S))!.series.cpu!.figures(13_000, 60_000)!;
    expect(f.min).toBe(0);
    expect(f.max).toBe(50);
  });
});

describe('CgroupWindows', () => {
  it('keeps one absent-file memo per cgroup across sweeps, and gives a new cgroup its own', () => {
    const seen: { path: string; memo: object; nowMs: number }[] = [];
    const cg = new CgroupWindows((id) => `/c${id}`, 20, series, (path, memo, nowMs) => {
      seen.push({ path, memo, nowMs });
      return { cpuUsageUs: 1000 };
    });
    const a = usage(100, { cgroupId: 1n });
    const b = usage(101, { cgroupId: 2n });
    cg.sample(10n * S, 10_000, [a, b]);
    cg.sample(11n * S, 11_000, [a, b]);
    const memoOf = (p: string) => [...new Set(seen.filter((s) => s.path === p).map((s) => s.memo))];
    expect(memoOf('/c1')).toHaveLength(1);
    expect(memoOf('/c2')).toHaveLength(1);
    expect(memoOf('/c1')[0]).not.toBe(memoOf('/c2')[0]);
    expect(seen.map((s) => s.nowMs)).toEqual([10_000, 10_000, 11_000, 11_000]);
  });
});
