// The window engine on a fake clock: expiry, merge, percentiles against exact values, both
// representations (exact runs and hdr sub-window histograms), keyed bounds and expiry.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyedWindows, Series } from '../../src/metrics/index.js';

const opts = { maxWindowMs: 60_000, slotMs: 1_000, maxEntries: 64, resolution: 0.01 };

function exactQuantile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
}

describe('Series', () => {
  it('figures over a window: max, avg, percentiles, last, sum, rate', () => {
    const s = new Series(opts);
    for (let i = 1; i <= 10; i++) s.record(i * 1000, i * 10, 1);
    const f = s.figures(10_000, 10_000)!;
    expect(f.count).toBe(10);
    expect(f.max).toBe(100);
    expect(f.min).toBe(10);
    expect(f.avg).toBeCloseTo(55);
    expect(f.p50).toBe(50);
    expect(f.p95).toBe(100);
    expect(f.last).toBe(100);
    expect(f.sum).toBe(550);
    expect(f.rate).toBeCloseTo(55);
    // a 3 s window sees only the last 3 samples
    expect(s.figures(10_000, 3_000)!.count).toBe(3);
    expect(s.figures(10_000, 3_000)!.min).toBe(80);
  });

  it('weights: the avg is time-weighted', () => {
    const s = new Series(opts);
    s.record(1000, 100, 0.1); // 100 % for 0.1 s
    s.record(2000, 0, 0.9); // 0 % for 0.9 s
    expect(s.figures(2000, 10_000)!.avg).toBeCloseTo(10);
    expect(s.figures(2000, 10_000)!.weight).toBeCloseTo(1);
  });

  it('idle series repeat one run; samples older than the longest window are dropped', () => {
    const s = new Series(opts);
    for (let t = 0; t <= 120_000; t += 1000) s.record(t, 0);
    expect(s.mode).toBe('exact');
    expect(s.approxBytes()).toBeLessThan(300);
    s.record(121_000, 5);
    s.prune(200_000);
    expect(s.figures(200_000, 60_000)).toBeUndefined();
    // the window edge cuts a run: only the part inside counts
    const r = new Series(opts);
    for (let t = 0; t <= 20_000; t += 1000) r.record(t, 7);
    expect(r.figures(20_000, 10_000)!.count).toBeCloseTo(10, 0);
  });

  it('reads are cached until the next sample or sub-window', () => {
    const s = new Series(opts);
    s.record(1000, 1);
    const a = s.figures(1500, 10_000);
    expect(s.figures(1500, 10_000)).toBe(a);
    s.record(1600, 2);
    expect(s.figures(1600, 10_000)).not.toBe(a);
  });

  it('a high-rate series moves to hdr sub-window histograms and stays accurate', () => {
    const s = new Series(opts);
    const values: number[] = [];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 5000; i++) {
      const v = Math.round(rnd() * 100_000) / 100;
      values.push(v);
      s.record(10_000 + i * 10, v); // 50 s of samples, 100/s
    }
    expect(s.mode).toBe('histogram');
    const f = s.figures(60_000, 60_000)!;
    expect(f.count).toBe(5000);
    expect(f.max).toBe(Math.max(...values));
    for (const [p, got] of [[0.5, f.p50], [0.95, f.p95], [0.99, f.p99]] as const) {
      const exact = exactQuantile(values, p);
      expect(Math.abs(got - exact) / exact).toBeLessThan(0.01); // 2 significant digits
    }
    // 10 s window: the last 10 sub-windows only
    const g = s.figures(60_000, 10_000)!;
    expect(g.count).toBeGreaterThanOrEqual(1000);
    expect(g.count).toBeLessThanOrEqual(1100);
  });

  it('property: exact mode percentiles equal the exact quantiles', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 60 }), (xs) => {
        const s = new Series({ ...opts, maxEntries: 1000 });
        xs.forEach((x, i) => s.record(1000 + i * 500, x));
        const f = s.figures(1000 + xs.length * 500, 60_000)!;
        expect(f.count).toBe(xs.length);
        expect(f.p50).toBe(exactQuantile(xs, 0.5));
        expect(f.p95).toBe(exactQuantile(xs, 0.95));
        expect(f.max).toBe(Math.max(...xs));
        expect(f.last).toBe(xs[xs.length - 1]);
      }),
    );
  });
});

describe('KeyedWindows', () => {
  it('bounds keys: ended keys make room, live keys are never evicted (new ones are refused); expiry after the longest window', () => {
    const k = new KeyedWindows<'cpu', { n: number }>({ series: opts, maxKeys: 3 });
    for (let i = 0; i < 3; i++) k.record(k.entry(`p${i}`, 1000 * i, () => ({ n: i }))!, 'cpu', 1000 * i, i);
    k.end('p1', 2500);
    k.record(k.entry('p3', 3000, () => ({ n: 3 }))!, 'cpu', 3000, 3);
    expect([...k.values()].map((e) => e.key)).toEqual(['p0', 'p2', 'p3']);
    expect(k.evicted).toBe(1);
    // every key is live: the newcomer is refused and counted, nobody loses a baseline
    expect(k.entry('p4', 3000, () => ({ n: 4 }))).toBeUndefined();
    expect(k.refused).toBe(1);
    expect(k.get('p0')).toBeDefined();
    expect(k.expire(63_500)).toBe(3); // p0, p2 and p3 are older than 60 s
    expect(k.size).toBe(0);
  });

  it('a sweep over more live processes than the bound keeps every tracked one sampled', () => {
    const k = new KeyedWindows<'cpu', null>({ series: opts, maxKeys: 100 });
    for (let sweep = 0; sweep < 5; sweep++) {
      for (let i = 0; i < 105; i++) {
        const e = k.entry(`p${i}`, sweep * 1000, () => null);
        if (e) k.record(e, 'cpu', sweep * 1000, 1);
      }
    }
    expect(k.size).toBe(100);
    expect(k.evicted).toBe(0);
    expect(k.refused).toBe(25);
    expect([...k.values()].every((e) => e.series.cpu!.figures(4000, 60_000)!.count === 5)).toBe(true);
  });
});
