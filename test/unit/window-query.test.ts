// The check engine's view of the resource windows: units (fractions, bytes/s), grouping.
import { describe, expect, it } from 'vitest';
import type { ProcUsage } from '../../src/shared/usage.js';
import { CgroupWindows, NodeWindows, ProcessWindows } from '../../src/metrics/index.js';
import { windowQuery } from '../../src/app/window-query.js';

const S = 1_000_000_000n;
const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };
const u = (pid: number, comm: string, cpuNs: bigint, writeBytes: number): ProcUsage => ({
  pid, ppid: 1, startNs: S, cgroupId: 0n, comm: { text: comm }, cpuNs, readBytes: 0, writeBytes, rchar: 0, wchar: 0,
  minflt: 0, majflt: 0, rssBytes: pid << 20, peakRssBytes: pid << 20, threads: 1, kthread: false, zombie: false,
});

describe('windowQuery', () => {
  const pw = new ProcessWindows(() => undefined, (pid) => `x${pid}`, { series, maxKeys: 100 });
  // two workers at 50 % and 20 % of a CPU, one writer at 1 MB/s, over 10 one-second sweeps
  for (let t = 0n; t <= 10n; t++) {
    pw.applySweep((10n + t) * S, [u(1, 'worker', (t * S) / 2n, 0), u(2, 'worker', (t * S) / 5n, 0), u(3, 'dd', 0n, Number(t) << 20)]);
  }
  const q = windowQuery(pw, new CgroupWindows(() => undefined, 1, series), new NodeWindows(series), () => 20_000);

  it('CPU by exec_id as fractions of one CPU', () => {
    const r = q.aggregate('cpu', 'p95', 60_000, 'exec_id')!;
    const m = new Map(r.groups.map((g) => [g.key, g.value]));
    expect(m.get('x1')).toBeCloseTo(0.5);
    expect(m.get('x2')).toBeCloseTo(0.2);
    expect(r.usedMs).toBe(10_000);
  });

  it('by comm: avg adds up the processes, max takes the largest', () => {
    expect(q.aggregate('cpu', 'avg', 60_000, 'comm')!.groups.find((g) => g.key === 'worker')!.value).toBeCloseTo(0.7);
    expect(q.aggregate('cpu', 'max', 60_000, 'comm')!.groups.find((g) => g.key === 'worker')!.value).toBeCloseTo(0.5);
  });

  it('IO as bytes per second; RSS in bytes', () => {
    const w = q.aggregate('io_write', 'avg', 60_000, 'exec_id')!.groups.find((g) => g.key === 'x3')!;
    expect(w.value).toBeCloseTo(1 << 20);
    expect(q.aggregate('io_write', 'max', 60_000, 'exec_id')!.groups.find((g) => g.key === 'x3')!.value).toBeCloseTo(1 << 20);
    expect(q.aggregate('rss', 'max', 60_000, 'exec_id')!.groups.find((g) => g.key === 'x2')!.value).toBe(2 << 20);
  });

  it('no data yet is null; unknown metrics throw', () => {
    expect(q.aggregate('cpu', 'avg', 60_000, null)).toBeNull(); // the node was never sampled
    expect(() => q.aggregate('nope', 'avg', 60_000, null)).toThrow(/unknown windowed metric/);
  });
});

describe('rssFacts', () => {
  it('gives run endpoints oldest first, with the exit peak', async () => {
    const { rssFacts } = await import('../../src/app/window-query.js');
    const pw = new ProcessWindows(() => undefined, (pid) => `x${pid}`, { series, maxKeys: 100 });
    const mb = 1 << 20;
    for (let t = 0n; t < 5n; t++) pw.applySweep((10n + t) * S, [{ ...u(9, 'java', 0n, 0), rssBytes: 100 * mb, peakRssBytes: 100 * mb }]);
    for (let t = 5n; t < 8n; t++) pw.applySweep((10n + t) * S, [{ ...u(9, 'java', 0n, 0), rssBytes: Number(t) * 100 * mb, peakRssBytes: Number(t) * 100 * mb }]);
    const pts = rssFacts(pw).rss('x9', 60_000, 20n * S);
    expect(pts[0]).toEqual({ tNs: 10n * S, bytes: 100 * mb });
    expect(pts.at(-1)!.bytes).toBe(700 * mb);
    expect(pts.map((p) => p.tNs)).toEqual([...pts.map((p) => p.tNs)].sort((a, b) => (a < b ? -1 : 1)));
  });
});
