// What the dashboard's charts read: per-process samples as points (rates for IO), the node
// strip's figures and series, and the states a process went through as the agent observed them.
import { describe, expect, it } from 'vitest';
import type { ProcUsage } from '../../src/shared/usage.js';
import { NodeWindows, ProcessWindows, Series, nodeStrip, processHistory } from '../../src/metrics/index.js';
import { ProcessStates, ProcessTable, STATE_LOG_MAX } from '../../src/process/index.js';
import type { ThreadSnap } from '../../src/wire/index.js';

const S = 1_000_000_000n;
const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };

function usage(pid: number, over: Partial<ProcUsage> = {}): ProcUsage {
  return {
    pid, ppid: 1, startNs: 1n * S, cgroupId: 0n, comm: { text: `p${pid}` }, cpuNs: 0n, readBytes: 0, writeBytes: 0,
    rchar: 0, wchar: 0, minflt: 0, majflt: 0, rssBytes: 1 << 20, peakRssBytes: 1 << 20, threads: 1, kthread: false, zombie: false, ...over,
  };
}

describe('Series.points', () => {
  it('a delta series read per second: bytes per interval over the interval, flat runs as their two ends', () => {
    const s = new Series(series);
    s.record(1000, 500, 0.5); // 500 B in 0.5 s
    s.record(2000, 2000, 1); // 2000 B in 1 s
    s.record(3000, 2000, 1);
    s.record(4000, 2000, 1);
    expect(s.points(4000, 10_000)).toEqual([{ t: 1000, v: 500 }, { t: 2000, v: 2000 }, { t: 4000, v: 2000 }]);
    expect(s.points(4000, 10_000, true)).toEqual([{ t: 1000, v: 1000 }, { t: 2000, v: 2000 }, { t: 4000, v: 2000 }]);
  });
});

describe('processHistory', () => {
  it('CPU %, RSS and IO rates per sample, in wall time; null for a process the windows do not hold', () => {
    const pw = new ProcessWindows(() => ({ execId: 'aaaaaaaaaaaaaaaa', comm: 'p10', cgroupId: null }), () => 'x', { series, maxKeys: 100 });
    pw.applySweep(10n * S, [usage(10, { cpuNs: 5n * S })]);
    pw.applySweep(11n * S, [usage(10, { cpuNs: 5n * S + S / 2n, readBytes: 4096, rssBytes: 2 << 20 })]);
    pw.applySweep(13n * S, [usage(10, { cpuNs: 6n * S + S / 2n, readBytes: 10240, rssBytes: 2 << 20 })]);
    const wall = (t: number) => t + 1_000_000;
    const h = processHistory(pw, 'aaaaaaaaaaaaaaaa', 13_000, 60_000, wall)!;
    expect(h.cpu).toEqual([[1_011_000, 50], [1_013_000, 50]]);
    expect(h.rss).toEqual([[1_010_000, 1 << 20], [1_011_000, 2 << 20], [1_013_000, 2 << 20]]);
    // 4096 B in 1 s, then 6144 B in 2 s (equal deltas would merge into one run, read at the
    // run's average rate)
    expect(h.io_read).toEqual([[1_011_000, 4096], [1_013_000, 3072]]);
    expect(processHistory(pw, 'bbbbbbbbbbbbbbbb', 13_000, 60_000, wall)).toBeNull();
  });
});

describe('nodeStrip', () => {
  it('figures and series from a real /proc (CPU, memory, load; disk totals on the node key)', () => {
    const nw = new NodeWindows(series);
    nw.sample(10n * S, 10_000);
    nw.sample(11n * S, 11_000);
    const n = nodeStrip(nw, 11_000, 60_000, (t) => t + 5);
    expect(n.cpu).not.toBeNull();
    expect(n.memory!.last).toBeGreaterThan(0);
    expect(n.memory_total_bytes).toBeGreaterThan(0);
    expect(n.cpus).toBeGreaterThan(0);
    expect(n.load1).not.toBeNull();
    expect(n.series.memory.map((p) => p[0])).toEqual([10_005, 11_005]);
    expect(n.series.cpu).toHaveLength(1);
    expect(n.disk_read_bytes_per_s).toBeGreaterThanOrEqual(0);
    expect(n.series.disk_read).toHaveLength(1);
  });
});

describe('ProcessStates.history', () => {
  const procfs = { listPids: () => [], readStat: () => null, readCmdline: () => null, readUid: () => null };
  const snap = (state: ThreadSnap['state'], sinceNs: bigint): ThreadSnap => ({
    pid: 50, tid: 50, startNs: 5n * S, cgroupId: 7n, comm: { text: 'w' }, state, rawState: 0, sinceNs,
    rqMaxNs: 0, rqHist: [], nvcsw: 0, nivcsw: 0,
  });

  it('keeps the observed states with their start, bounded; forgets them at the reap', () => {
    const table = new ProcessTable({ bootId: '00000000-0000-0000-0000-000000000000', procfs, now: () => 100n * S });
    table.bootstrap([{ pid: 50, ppid: 1, startNs: 5n * S, parentStartNs: 0n, uid: 0, cgroupId: 7n, comm: 'w', exitState: 0 }], { readArgs: false });
    const id = table.byPid(50)!.execId;
    const st = new ProcessStates(table);
    st.applySweep([snap('S', 6n * S)]);
    st.applySweep([snap('S', 6n * S)]); // no change: no entry
    st.applySweep([snap('D', 8n * S)]);
    st.applySweep([snap('R', 9n * S)]);
    expect(st.history(id)).toEqual([
      { state: 'S', sinceNs: 6n * S },
      { state: 'D', sinceNs: 8n * S },
      { state: 'R', sinceNs: 9n * S },
    ]);
    for (let i = 0; i < 200; i++) st.applySweep([snap(i % 2 ? 'R' : 'S', (10n + BigInt(i)) * S)]);
    const h = st.history(id)!;
    expect(h).toHaveLength(STATE_LOG_MAX);
    expect(h[h.length - 1]).toEqual({ state: 'R', sinceNs: 209n * S });
    expect(h[0]!.sinceNs).toBe(BigInt(210 - STATE_LOG_MAX) * S);
    expect(st.history('ffffffffffffffff')).toBeNull();
  });
});
