// Deferred samples of idle processes (KeyedWindows.defer): the windows read exactly as if every
// sample had been recorded, whatever the sequence of sweeps, exits, reads and trends. The
// property runs two ProcessWindows side by side, one deferring and one recording every sample.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExitEvent } from '../../src/shared/events.js';
import type { ProcUsage } from '../../src/shared/usage.js';
import { ProcessWindows, topRows } from '../../src/metrics/index.js';

const S = 1_000_000_000n;
const ids = (pid: number, start: bigint) => `id-${pid}-${start}`;

interface Proc {
  pid: number;
  cpuNs: bigint;
  readBytes: number;
  writeBytes: number;
  rssBytes: number;
  peakRssBytes: number;
  kthread: boolean;
}

const usage = (p: Proc): ProcUsage => ({
  pid: p.pid, ppid: 1, startNs: 1n * S, cgroupId: 0n, comm: { text: `p${p.pid}` }, cpuNs: p.cpuNs, readBytes: p.readBytes, writeBytes: p.writeBytes,
  rchar: 0, wchar: 0, minflt: 0, majflt: 0, rssBytes: p.kthread ? 0 : p.rssBytes, peakRssBytes: p.kthread ? 0 : p.peakRssBytes, threads: 1, kthread: p.kthread, zombie: false,
});

const exitOf = (p: Proc, atNs: bigint): ExitEvent => ({
  type: 'exit', ktimeNs: atNs, seq: 0n, cpu: 0, flags: 0, pid: p.pid, tid: p.pid, ppid: 1, startNs: 1n * S, status: 0, exitCode: 0, signal: null,
  coreDumped: false, comm: { text: `p${p.pid}` },
  usage: { cpuNs: Number(p.cpuNs), utimeNs: 0, stimeNs: 0, maxRssKb: p.peakRssBytes / 1024, readBytes: p.readBytes, writeBytes: p.writeBytes, rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
});

// one step of a process between two sweeps: mostly idle, sometimes busy, sometimes gone
const change = fc.record({
  busy: fc.integer({ min: 0, max: 9 }), // 0..2: CPU moves
  io: fc.integer({ min: 0, max: 9 }), // 0: IO moves
  rss: fc.integer({ min: 0, max: 9 }), // 0: RSS changes
  absent: fc.integer({ min: 0, max: 19 }), // 0: not in this sweep
  exit: fc.integer({ min: 0, max: 39 }), // 0: exits before the sweep
});
const step = fc.record({
  dtMs: fc.oneof(fc.constant(1000), fc.integer({ min: 200, max: 3000 })),
  procs: fc.array(change, { minLength: 6, maxLength: 6 }),
  read: fc.integer({ min: 0, max: 4 }), // 0: a reader reads the windows after the sweep
  arm: fc.integer({ min: 0, max: 59 }), // 0: a check arms a trend of CPU
});

function rows(pw: ProcessWindows, nowMs: number): unknown {
  const round = (v: unknown): unknown =>
    typeof v === 'number' ? (Number.isFinite(v) ? Number(v.toPrecision(9)) : v) : Array.isArray(v) ? v.map(round) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, round(x)])) : v;
  return [10_000, 60_000, 300_000].map((windowMs) => round(topRows(pw, { nowMs, windowMs, sort: 'cpu', limit: 100 })));
}

describe('deferred samples of idle processes', () => {
  it('read exactly as recorded samples, through idle stretches, busy moments, exits, reads, trends, pruning and histogram mode', () => {
    let deferrals = 0; // the property says nothing unless samples were deferred
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 90 }), fc.integer({ min: 4, max: 600 }), (steps, maxEntries) => {
        // a short longest window (pruning and expiry inside the run) and few runs per series
        // before histogram mode (busy processes switch to it)
        const series = { maxWindowMs: 20_000, slotMs: 1000, maxEntries, resolution: 0.01 };
        const eager = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100, deferIdle: false });
        const lazy = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100 });
        const defer = lazy.windows.defer.bind(lazy.windows);
        lazy.windows.defer = (...a) => {
          deferrals++;
          defer(...a);
        };
        const procs: Proc[] = [1, 2, 3, 4, 5, 6].map((pid) => ({ pid, cpuNs: 0n, readBytes: 0, writeBytes: 0, rssBytes: 1 << 20, peakRssBytes: 1 << 20, kthread: pid === 6 }));
        const live = new Set(procs.map((p) => p.pid));
        let tNs = 10n * S;
        for (const st of steps) {
          tNs += BigInt(st.dtMs) * 1_000_000n;
          const seen: ProcUsage[] = [];
          for (const p of procs) {
            if (!live.has(p.pid)) continue;
            const c = st.procs[p.pid - 1]!;
            if (c.busy <= 2) p.cpuNs += BigInt(1 + c.busy) * 7_000_000n;
            if (c.io === 0) p.writeBytes += 4096;
            if (c.rss === 0) {
              p.rssBytes += 4096 * (c.busy - 1);
              p.peakRssBytes = Math.max(p.peakRssBytes, p.rssBytes);
            }
            if (c.exit === 0) {
              live.delete(p.pid);
              const ev = exitOf(p, tNs - 1_000_000n);
              eager.applyExit(ev, ids(p.pid, 1n * S), null);
              lazy.applyExit(ev, ids(p.pid, 1n * S), null);
              continue;
            }
            if (c.absent !== 0) seen.push(usage(p));
          }
          eager.applySweep(tNs, seen.map((u) => ({ ...u })));
          lazy.applySweep(tNs, seen.map((u) => ({ ...u })));
          const nowMs = Number(tNs / 1_000_000n);
          if (st.arm === 0) {
            eager.windows.armTrend('cpu', 10_000, nowMs);
            lazy.windows.armTrend('cpu', 10_000, nowMs);
          }
          if (st.read === 0) expect(rows(lazy, nowMs)).toEqual(rows(eager, nowMs));
        }
        const nowMs = Number(tNs / 1_000_000n);
        expect(rows(lazy, nowMs)).toEqual(rows(eager, nowMs));
        expect(lazy.windows.size).toBe(eager.windows.size);
      }),
      { numRuns: 300 },
    );
    expect(deferrals).toBeGreaterThan(1000);
  });

  it('an idle process touches no series between reads, and a read sees every sample', () => {
    const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };
    const pw = new ProcessWindows(() => undefined, ids, { series, maxKeys: 100 });
    const p: Proc = { pid: 7, cpuNs: 5n * S, readBytes: 0, writeBytes: 0, rssBytes: 8 << 20, peakRssBytes: 8 << 20, kthread: false };
    pw.applySweep(10n * S, [usage(p)]);
    p.cpuNs += S / 2n;
    pw.applySweep(11n * S, [usage(p)]); // 50 %
    pw.applySweep(12n * S, [usage(p)]); // idle: recorded (the last sample was busy)
    const e = pw.windows.peek(ids(7, 1n * S))!;
    const runs = (s: unknown) => (s as { runs: { n: number }[] }).runs;
    for (let t = 13n; t <= 39n; t++) pw.applySweep(t * S, [usage(p)]); // idle: deferred
    // the windows' expiry (every 5 s) leaves deferred samples alone for half a window (150 s)
    expect(e.deferredN).toBe(27);
    expect(runs(e.series.cpu).map((r) => r.n)).toEqual([1, 1]); // untouched since 12 s
    const [row] = topRows(pw, { nowMs: 39_000, windowMs: 60_000, sort: 'cpu', limit: 10 });
    expect(e.deferredN).toBe(0);
    expect(runs(e.series.cpu).map((r) => r.n)).toEqual([1, 28]);
    expect(row!.cpu.max).toBe(50);
    expect(row!.cpu.avg).toBeCloseTo(50 / 29, 2); // 0.5 s of CPU over 29 s (top rounds to 0.01)
    expect(row!.cpu_seconds).toBeCloseTo(0.5, 9);
    expect(row!.rss_bytes.last).toBe(8 << 20);
  });
});
