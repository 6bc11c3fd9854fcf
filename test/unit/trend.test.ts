// The trend math behind slope, eta and leak (src/shared/trend.ts), and the two ways the windows
// feed it (a Series' run-length samples, a TrendBuckets ring): properties with fast-check.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ETA_MIN_R2, Moments, TREND_BUCKETS, TREND_MIN_SAMPLES, TrendBuckets, bucketMsFor, etaOf, fitOf, leakOf, slopeOf, type TrendFit,
} from '../../src/shared/trend.js';
import { Series } from '../../src/metrics/series.js';

const close = (a: number, b: number, rel = 1e-7) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));

/** Points (t s, v) oldest first → a fit read at `at`. */
function fitPoints(pts: readonly [number, number][], at = 0): TrendFit {
  const m = new Moments();
  for (const [t, v] of pts) m.add(t, v);
  return fitOf(m, at);
}

/** The textbook least-squares fit, two passes, for comparison. */
function reference(pts: readonly [number, number][]): { slope: number; r2: number } {
  const n = pts.length;
  const mt = pts.reduce((a, p) => a + p[0], 0) / n;
  const mv = pts.reduce((a, p) => a + p[1], 0) / n;
  let stt = 0, svv = 0, stv = 0;
  for (const [t, v] of pts) {
    stt += (t - mt) ** 2;
    svv += (v - mv) ** 2;
    stv += (t - mt) * (v - mv);
  }
  return { slope: stv / stt, r2: svv === 0 ? 1 : (stv * stv) / (stt * svv) };
}

// a series: n points, evenly spaced by dt seconds, ending at t = 0
const arbLine = fc.record({
  n: fc.integer({ min: TREND_MIN_SAMPLES, max: 400 }),
  dt: fc.double({ min: 0.05, max: 120, noNaN: true }),
  base: fc.double({ min: 0, max: 1e12, noNaN: true }),
  slope: fc.double({ min: -1e8, max: 1e8, noNaN: true }),
});
const times = (n: number, dt: number) => Array.from({ length: n }, (_, i) => -(n - 1 - i) * dt);

describe('least squares', () => {
  it('a linear series gives its exact slope, its level now and R² = 1', () => {
    fc.assert(
      fc.property(arbLine, ({ n, dt, base, slope }) => {
        const pts = times(n, dt).map((t) => [t, base + slope * t] as [number, number]);
        const f = fitPoints(pts);
        expect(f.n).toBe(n);
        // float64 resolves about 1e-15 of the largest value in play
        const scale = Math.max(1, Math.abs(base), Math.abs(slope) * n * dt);
        expect(Math.abs(f.slope - slope)).toBeLessThanOrEqual((1e-9 * scale) / ((n - 1) * dt));
        expect(Math.abs(f.level - base)).toBeLessThanOrEqual(1e-9 * scale);
        if (Math.abs(slope) * (n - 1) * dt > 1e-6 * scale) expect(f.r2).toBeGreaterThan(1 - 1e-6);
        expect(slopeOf(f, n * dt).value).toBeCloseTo(f.slope, 6);
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with the two-pass textbook fit on arbitrary points', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0.01, max: 10, noNaN: true }), fc.integer({ min: -1e6, max: 1e6 })), { minLength: 3, maxLength: 200 }), (raw) => {
        let t = 0;
        const pts = raw.map(([dt, v]) => [(t += dt), v] as [number, number]);
        const f = fitPoints(pts, t);
        const r = reference(pts);
        expect(close(f.slope, r.slope, 1e-6) || Math.abs(f.slope - r.slope) < 1e-9).toBe(true);
        expect(Math.abs(f.r2 - r.r2)).toBeLessThan(1e-6);
      }),
      { numRuns: 300 },
    );
  });

  it('stays exact for a large value that barely moves (RSS of 1 GB, a page at a time)', () => {
    const pts = times(300, 1).map((t, i) => [t, 1e9 + 4096 * i] as [number, number]);
    const f = fitPoints(pts);
    expect(f.slope).toBeCloseTo(4096, 6);
    expect(f.r2).toBeCloseTo(1, 9);
  });
});

describe('eta', () => {
  it('a rising line reaches its limit when the line says', () => {
    fc.assert(
      // a rise the numbers can resolve: at least a millionth of the level over the window
      fc.property(arbLine.filter((x) => x.slope * (x.n - 1) * x.dt > 1e-6 * Math.max(1, x.base)), fc.double({ min: 1, max: 1e6, noNaN: true }), ({ n, dt, base, slope }, ahead) => {
        const pts = times(n, dt).map((t) => [t, base + slope * t] as [number, number]);
        const limit = base + slope * ahead;
        const v = etaOf(fitPoints(pts), limit, n * dt).value!;
        expect(Math.abs(v - ahead)).toBeLessThanOrEqual(1e-6 * ahead + 1e-9 * Math.max(1, base) / slope);
      }),
      { numRuns: 300 },
    );
  });

  it('a flat or falling series gives an infinite eta', () => {
    fc.assert(
      // a fall the numbers can resolve (as for the rise above), or none at all: below a
      // millionth of the level, rounding of base + slope × t makes a staircase, not a line
      fc.property(arbLine.map((x) => ({ ...x, slope: -Math.abs(x.slope) })).filter((x) => x.slope === 0 || -x.slope * (x.n - 1) * x.dt > 1e-6 * Math.max(1, x.base)), fc.double({ min: 0, max: 0.01, noNaN: true }), fc.integer(), ({ n, dt, base, slope }, noise, seed) => {
        // noise of at most 1 % of the fall (none when flat): still a clear fall
        let s = seed;
        const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 2;
        const fallen = Math.abs(slope) * (n - 1) * dt;
        const pts = times(n, dt).map((t) => [t, base + slope * t + noise * fallen * rnd()] as [number, number]);
        const r = etaOf(fitPoints(pts), base + 1e9 + 1, n * dt);
        expect(r.value).toBe(Infinity);
      }),
      { numRuns: 300 },
    );
  });

  it('already past the limit: 0', () => {
    const pts = times(10, 1).map((t) => [t, 100 + 5 * t] as [number, number]);
    expect(etaOf(fitPoints(pts), 50, 10).value).toBe(0);
  });

  it('too few samples, or samples covering too little of the window: unknown, never a number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: TREND_MIN_SAMPLES - 1 }), fc.double({ min: -1e6, max: 1e6, noNaN: true }), (n, slope) => {
        const pts = times(n, 1).map((t) => [t, 1000 + slope * t] as [number, number]);
        const f = fitPoints(pts);
        for (const r of [etaOf(f, 1e9, n + 1), slopeOf(f, n + 1), leakOf(f, n + 1)]) {
          expect(r.value).toBeNull();
          expect(r.reason).toMatch(/needs 5/);
        }
      }),
    );
    // one sample
    const one = fitPoints([[0, 42]]);
    expect(etaOf(one, 100, 60)).toMatchObject({ value: null });
    // 10 samples over 10 s of a 10-minute window: a quarter of the window is needed
    const short = fitPoints(times(10, 1).map((t) => [t, 5 * t] as [number, number]));
    expect(etaOf(short, 1000, 600)).toMatchObject({ value: null, reason: expect.stringContaining('span') });
  });

  it('noise around a flat line is unknown (poor fit), not a wrong number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 300 }), fc.integer(), (n, seed) => {
        let s = seed;
        const rnd = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
        const pts = times(n, 1).map((t) => [t, 1e6 + 1e4 * rnd()] as [number, number]);
        const f = fitPoints(pts);
        const r = etaOf(f, 2e6, n);
        if (f.r2 < ETA_MIN_R2) expect(r.value).toBeNull();
        else expect(r.value === Infinity || (r.value! > 0 && f.slope > 0)).toBe(true);
      }),
    );
  });
});

describe('leak', () => {
  it('steady growth scores near 1', () => {
    const pts = times(120, 1).map((t, i) => [t, 5e8 + 4e6 * i + (i % 7 === 0 ? -1e5 : 0)] as [number, number]);
    expect(leakOf(fitPoints(pts), 120).value!).toBeGreaterThan(0.95);
  });

  it('a sawtooth (allocate, free, repeat) does not score as a leak, nor gets an eta', () => {
    fc.assert(
      fc.property(
        fc.record({
          periods: fc.double({ min: 2, max: 20, noNaN: true }),
          period: fc.double({ min: 1, max: 60, noNaN: true }),
          phase: fc.double({ min: 0, max: 1, noNaN: true }),
          ramp: fc.double({ min: 0, max: 0.95, noNaN: true }),
          base: fc.double({ min: 1e6, max: 1e10, noNaN: true }),
          amp: fc.double({ min: 1e5, max: 1e9, noNaN: true }),
        }),
        ({ periods, period, phase, ramp, base, amp }) => {
          const window = periods * period;
          const n = Math.max(TREND_MIN_SAMPLES, Math.min(2000, Math.ceil((window / period) * 20)));
          const dt = window / n;
          const pts = times(n, dt).map((t) => {
            const x = (((t / period + phase) % 1) + 1) % 1;
            // grows over `ramp` of the period (0: a square wave), held, then freed at once
            const v = ramp === 0 ? (x < 0.5 ? amp : 0) : x < ramp ? (x / ramp) * amp : amp;
            return [t, base + v] as [number, number];
          });
          const f = fitPoints(pts);
          expect(leakOf(f, window).value!).toBeLessThan(0.5);
          const eta = etaOf(f, base + 100 * amp, window).value;
          expect(eta === null || eta === Infinity).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('flat or falling: 0', () => {
    expect(leakOf(fitPoints(times(10, 1).map((t) => [t, 7] as [number, number])), 10).value).toBe(0);
    expect(leakOf(fitPoints(times(10, 1).map((t) => [t, 7 - t] as [number, number])), 10).value).toBe(0);
  });
});

describe('the windows feed the same fit', () => {
  it('a run-length Series gives back every sample it holds, to seed a trend ring', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 60 }), (runs) => {
        const s = new Series({ maxWindowMs: 300_000, slotMs: 5000, maxEntries: 100_000, resolution: 1 });
        const all: [number, number][] = [];
        let t = 1_000_000;
        for (const [len, level] of runs) {
          for (let i = 0; i < len; i++) {
            s.record(t, level * 1000 + 7, 1);
            all.push([t, level * 1000 + 7]);
            t += 1000;
          }
        }
        const got: [number, number][] = [];
        s.samples((x, v) => got.push([x, v]));
        const kept = all.filter(([x]) => x >= all.at(-1)![0] - 300_000);
        expect(got.length).toBeGreaterThanOrEqual(kept.length);
        const tail = got.slice(-kept.length);
        tail.forEach(([x, v], i) => {
          expect(x).toBeCloseTo(kept[i]![0], 6);
          expect(v).toBe(kept[i]![1]);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('a TrendBuckets ring gives the per-sample fit of the buckets inside the window', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 5, maxLength: 400 }), fc.integer({ min: 10_000, max: 3_600_000 }), (vals, windowMs) => {
        const tb = new TrendBuckets(bucketMsFor(windowMs), TREND_BUCKETS + 1);
        const step = (windowMs * 1.5) / vals.length;
        const pts: [number, number][] = [];
        let v = 1e9;
        vals.forEach((d, i) => {
          v += d;
          const t = 5_000_000 + i * step;
          tb.record(t, v);
          pts.push([t, v]);
        });
        const now = pts[pts.length - 1]![0];
        // the buckets that start inside the window
        const from = Math.ceil((now - windowMs) / tb.bucketMs) * tb.bucketMs;
        const inWin = pts.filter(([t]) => t >= from && t <= now).map(([t, x]) => [(t - now) / 1000, x] as [number, number]);
        const got = fitOf(tb.sums(now, windowMs, new Moments(), now), 0);
        expect(got.n).toBe(inWin.length);
        if (inWin.length >= 3) {
          const want = fitPoints(inWin);
          expect(Math.abs(got.slope - want.slope)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want.slope)));
          expect(Math.abs(got.r2 - want.r2)).toBeLessThan(1e-6);
          expect(Math.abs(got.level - want.level)).toBeLessThan(1e-6 * Math.abs(want.level));
          expect(got.spanS).toBeCloseTo(want.spanS, 6);
          expect(got.last).toBe(want.last);
          // rises and falls agree, but for the step into the first bucket (from a point before it)
          const before = pts.filter(([t]) => t < from).at(-1);
          const into = before === undefined ? 0 : inWin[0]![1] - before[1];
          expect(got.rise - Math.max(0, into)).toBeCloseTo(want.rise, 3);
          expect(got.fall - Math.max(0, -into)).toBeCloseTo(want.fall, 3);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a TrendBuckets ring is fixed-size: old buckets are overwritten, not kept', () => {
    const tb = new TrendBuckets(1000, 13);
    for (let i = 0; i < 100_000; i++) tb.record(i * 100, i);
    expect(tb.approxBytes()).toBe(13 * 10 * 8 + 400);
    const f = fitOf(tb.sums(9_999_900, 12_000, new Moments(), 9_999_900), 0);
    expect(f.n).toBe(120);
    expect(f.slope).toBeCloseTo(10, 6);
  });
});
