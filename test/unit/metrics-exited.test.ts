// Exited processes under a flood of exits: the entries kept stay under metrics.max_exited (and no
// exit gets window series), the aggregates count every exit and sum its CPU time exactly, and the
// most expensive exits stay individual rows in `top`, in checks and in /metrics.
import parsePrometheus from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import type { ExitEvent } from '../../src/shared/events.js';
import type { ProcUsage } from '../../src/shared/usage.js';
import {
  CgroupWindows, KEPT_PER_SLOT, MAX_CELLS_PER_SLOT, NodeWindows, OTHER_COMM, PatrolMetrics, ProcessWindows, endedWithSamplesBound, seriesBound, topGroups, topRows,
} from '../../src/metrics/index.js';
import { windowQuery } from '../../src/app/window-query.js';

const S = 1_000_000_000n;
const MS = 1_000_000n;
const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };
const SLOTS = 301; // sub-windows of the longest window, plus the open one
const ids = (pid: number, start: bigint) => `id-${pid}-${start}`;

function exitEv(pid: number, startNs: bigint, atNs: bigint, cpuNs: bigint, maxRssKb: number, comm: string, writeBytes = 0n): ExitEvent {
  return {
    type: 'exit', ktimeNs: atNs, seq: 0n, cpu: 0, flags: 0, pid, tid: pid, ppid: 1, startNs, status: 0, exitCode: 0, signal: null,
    coreDumped: false, comm: { text: comm },
    usage: { cpuNs: Number(cpuNs), utimeNs: 0, stimeNs: 0, maxRssKb, readBytes: 0, writeBytes: Number(writeBytes), rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
  };
}

function usage(pid: number, startNs: bigint, cpuNs: bigint): ProcUsage {
  return {
    pid, ppid: 1, startNs, cgroupId: 7n, comm: { text: 'worker' }, cpuNs, readBytes: 0, writeBytes: 0,
    rchar: 0, wchar: 0, minflt: 0, majflt: 0, rssBytes: 8 << 20, peakRssBytes: 8 << 20, threads: 1, kthread: false, zombie: false,
  };
}

interface Fed {
  pw: ProcessWindows;
  count: number;
  cpuNs: number;
  expensive: string[];
  biggest: string;
  endMs: number;
}

/** n short exits at `rate` per second (5 comms, 3 cgroups, 0.1–1.1 ms of CPU each), with five
 *  expensive ones (2–6 s of CPU) and one 3 GB one spread among them. */
function feed(n: number, rate: number, maxExited: number): Fed {
  const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10_000, maxExited });
  const t0 = 1000n * S;
  pw.applySweep(t0, []);
  const fed: Fed = { pw, count: 0, cpuNs: 0, expensive: [], biggest: '', endMs: 0 };
  for (let i = 0; i < n; i++) {
    const start = t0 + (BigInt(i) * S) / BigInt(rate);
    const end = start + 2n * MS;
    const pid = 1000 + (i % 4_000_000);
    let cpu = BigInt(100_000 + ((i * 7919) % 1_000_000));
    let rssKb = 1024 + (i % 2048);
    if (i % 20_011 === 17) {
      cpu = BigInt(2 + fed.expensive.length) * S;
      fed.expensive.push(ids(pid, start));
    }
    if (i === 54_321) {
      rssKb = 3 << 20;
      fed.biggest = ids(pid, start);
    }
    pw.applyExit(exitEv(pid, start, end, cpu, rssKb, ['sh', 'true', 'sed', 'git', 'cc1'][i % 5]!), ids(pid, start), BigInt(100 + (i % 3)));
    fed.count++;
    fed.cpuNs += Number(cpu);
    fed.endMs = Number(end / MS);
  }
  return fed;
}

describe('exited processes under a flood of exits', () => {
  // 120,000 exits in 120 s (1,000 per second), 2,000 kept individually
  const f = feed(120_000, 1000, 2000);
  const all = topRows(f.pw, { nowMs: f.endMs, windowMs: 300_000, sort: 'cpu', limit: Number.MAX_SAFE_INTEGER });

  it('keeps at most max_exited records, no window series per exit, and bounded aggregates', () => {
    expect(f.pw.windows.size).toBe(0); // not one key per exit: without the records, 10,000 here
    expect(f.pw.exited.size).toBeLessThanOrEqual(2000);
    expect(f.pw.exited.aggregates.keptCount).toBeLessThanOrEqual(SLOTS * 2 * KEPT_PER_SLOT);
    expect(f.pw.exited.aggregates.cellCount).toBeLessThanOrEqual(SLOTS * 15); // 5 comms × 3 cgroups per sub-window
    expect(f.pw.exited.aggregated).toBeGreaterThan(100_000);
    expect(f.pw.approxBytes()).toBeLessThan(8 << 20);
  });

  it('counts every exit and sums its CPU time exactly, individual or aggregated', () => {
    const count = all.reduce((n, r) => n + (r.aggregate?.count ?? 1), 0);
    const cpuNs = all.reduce((n, r) => n + (r.aggregate ? r.aggregate.cpu_ns : r.exit!.cpu_ns), 0);
    expect(count).toBe(f.count);
    expect(cpuNs).toBe(f.cpuNs);
    expect(all.filter((r) => r.aggregate).length).toBeLessThanOrEqual(SLOTS * 15);
    const sh = all.find((r) => r.aggregate && r.comm === 'sh' && r.cgroup_id === '100')!;
    expect(sh).toMatchObject({ pid: 0, ppid: 0, exec_id: '', exited: true, exit: null });
    expect(sh.aggregate!.count).toBeGreaterThan(1000);
    expect(sh.cpu_seconds).toBeCloseTo(sh.aggregate!.cpu_ns / 1e9, 3);
    expect(sh.aggregate!.duration_ns).toBe(sh.aggregate!.count * 2_000_000);
  });

  it('ranks the most expensive exits individually, by CPU and by peak RSS', () => {
    expect(f.expensive).toHaveLength(6);
    // aggregate rows rank among them by their sums; the processes are rows of their own
    const topCpu = all.filter((r) => !r.aggregate).slice(0, 6);
    expect(topCpu.map((r) => r.exec_id)).toEqual([...f.expensive].reverse());
    expect(topCpu[0]!.exit!.cpu_ns).toBe(7e9);
    expect(topCpu[0]!.cpu_seconds).toBe(7);
    const topRss = topRows(f.pw, { nowMs: f.endMs, windowMs: 300_000, sort: 'rss', limit: 1, aggregates: false })[0]!;
    expect(topRss.exec_id).toBe(f.biggest);
    expect(topRss.rss_bytes.max).toBe(3 * 2 ** 30);
  });

  it('a shorter window counts the exits inside it, to one sub-window', () => {
    const rows = topRows(f.pw, { nowMs: f.endMs, windowMs: 10_000, sort: 'cpu', limit: Number.MAX_SAFE_INTEGER });
    const count = rows.reduce((n, r) => n + (r.aggregate?.count ?? 1), 0);
    expect(count).toBeGreaterThanOrEqual(10_000);
    expect(count).toBeLessThanOrEqual(11_000);
  });

  it('groups by cgroup count aggregated exits as processes', () => {
    const groups = topGroups(f.pw, { nowMs: f.endMs, windowMs: 300_000, sort: 'cpu', limit: 10 });
    expect(groups.reduce((n, g) => n + g.processes, 0)).toBe(f.count);
  });

  it('checks: by exec_id sees the individual exits, by comm the aggregates too', () => {
    const q = windowQuery(f.pw, new CgroupWindows(() => undefined, 1, series), new NodeWindows(series), () => f.endMs);
    const byExec = q.aggregate('cpu', 'p95', 300_000, 'exec_id')!;
    const top = byExec.groups.find((g) => g.key === f.expensive.at(-1))!;
    expect(top.value).toBeCloseTo(7 / 0.002, 0); // 7 s of CPU in 2 ms of life: the record's own figure
    const byComm = q.aggregate('cpu', 'sum', 300_000, 'comm')!;
    expect(byComm.groups.map((g) => g.key).sort()).toEqual(['cc1', 'git', 'sed', 'sh', 'true']);
  });

  it('the exposition shows exited processes, never aggregate rows, and counts what was aggregated', async () => {
    const m = new PatrolMetrics({
      node: new NodeWindows(series), cgroups: new CgroupWindows(() => undefined, 1, series), processes: f.pw, nowMs: () => f.endMs,
      health: () => ({ events: {}, lostKernel: {}, lostUserspace: {}, tableEntries: 0 }),
      windows: [{ ms: 300_000, label: '5m' }], keyWindow: { ms: 300_000, label: '5m' }, topN: 5,
    });
    const families = parsePrometheus(await m.text()) as Array<{ name: string; metrics: Array<{ labels: Record<string, string>; value: string }> }>;
    const byName = new Map(families.map((x) => [x.name, x]));
    const cpu = byName.get('patrol_process_cpu_percent')!.metrics;
    expect(cpu.every((x) => x.labels.exec_id !== '' && x.labels.pid !== '0')).toBe(true);
    expect(cpu.some((x) => x.labels.exec_id === f.expensive.at(-1))).toBe(true);
    expect(Number(byName.get('patrol_windows_exited_aggregated_total')!.metrics[0]!.value)).toBe(f.pw.exited.aggregated);
    expect(families.reduce((n, x) => n + x.metrics.length, 0)).toBeLessThanOrEqual(seriesBound({ windows: 1, cgroupsMax: 1, topN: 5 }));
  });

  it('everything leaves once the longest window has passed', () => {
    const g = feed(5000, 1000, 1000);
    g.pw.applySweep(BigInt(Math.round(g.endMs + 301_000)) * MS, []);
    expect(g.pw.exited.size).toBe(0);
    expect(g.pw.exited.aggregates.keptCount).toBe(0);
    expect(g.pw.exited.aggregates.cellCount).toBe(0);
  });
});

describe('exited processes: bounds', () => {
  it('distinct commands beyond MAX_CELLS_PER_SLOT per sub-window go to one (other) row, still counted', () => {
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100, maxExited: 64 });
    let cpu = 0;
    for (let i = 0; i < 2000; i++) {
      const start = 1000n * S + BigInt(i) * 100_000n; // 2,000 exits in 0.2 s: one sub-window
      pw.applyExit(exitEv(i + 10, start, start + MS, 1000n, 100, `cmd${i}`), ids(i + 10, start), null);
      cpu += 1000;
    }
    const rows = topRows(pw, { nowMs: 1001_000, windowMs: 60_000, sort: 'cpu', limit: 100_000 });
    expect(pw.exited.aggregates.cellCount).toBeLessThanOrEqual(MAX_CELLS_PER_SLOT + 1);
    expect(pw.exited.aggregates.overflowed).toBeGreaterThan(0);
    expect(rows.find((r) => r.comm === OTHER_COMM)!.aggregate!.count).toBe(pw.exited.aggregates.overflowed);
    expect(rows.reduce((n, r) => n + (r.aggregate?.count ?? 1), 0)).toBe(2000);
    expect(rows.reduce((n, r) => n + (r.aggregate?.cpu_ns ?? r.exit!.cpu_ns), 0)).toBe(cpu);
  });

  it('exited processes a sweep saw keep their samples up to a bound, then become records with the same CPU time', () => {
    const maxExited = 4096;
    const bound = endedWithSamplesBound(maxExited);
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 10_000, maxExited });
    pw.applySweep(999n * S, []);
    let cpuNs = 0;
    const n = bound * 4;
    for (let i = 0; i < n; i++) {
      // born after one sweep, seen by the next (1 ms of CPU), exits 50 ms later with 3 ms in all
      const start = 1000n * S + BigInt(i) * 200n * MS;
      pw.applySweep(start + 100n * MS, [usage(i + 10, start, MS)]);
      pw.applyExit(exitEv(i + 10, start, start + 150n * MS, 3n * MS, 8192, 'worker'), ids(i + 10, start), 7n);
      cpuNs += 3e6;
    }
    expect(pw.windows.ended).toBeLessThanOrEqual(bound);
    expect(pw.windows.size).toBeLessThanOrEqual(bound);
    expect(pw.exited.size).toBe(n - pw.windows.ended);
    const nowMs = 1000_000 + n * 200 + 150;
    const rows = topRows(pw, { nowMs, windowMs: 300_000, sort: 'cpu', limit: 100_000 });
    expect(rows).toHaveLength(n);
    expect(rows.reduce((x, r) => x + r.cpu_seconds, 0)).toBeCloseTo(cpuNs / 1e9, 6);
    const retired = rows.find((r) => r.exec_id === ids(10, 1000n * S))!;
    expect(retired).toMatchObject({ exited: true, aggregate: null, exit: { cpu_ns: 3e6, max_rss_bytes: 8192 * 1024 } });
    expect(retired.rss_bytes.last).toBe(8 << 20); // its sweep sample survives as the record's
  });
});
