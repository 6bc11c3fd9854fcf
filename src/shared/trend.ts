// Least-squares trends of a series of (time, value) points, shared by the resource windows
// (src/metrics, which accumulate them) and the inspection DSL (src/checks: slope, eta, leak).
//
// Points are folded into centred moments (means and co-moments of t and v), merged with the
// pairwise update of Chan, Golub and LeVeque: numerically stable for values such as RSS in bytes
// (1e9) that barely move, where Σv² − (Σv)²/n would cancel to noise. Runs of equal values (the
// windows' run-length encoding) and sub-window buckets merge in O(1), so a fit never walks raw
// samples and never allocates.
//
// The fit rules (documented in docs/dsl.md, "Trends"):
//   unknown  fewer than TREND_MIN_SAMPLES points, or points spanning less than TREND_MIN_SPAN of
//            the window; for eta also a fit quality R² below ETA_MIN_R2 (a step, a sawtooth,
//            noise around a flat line: no line describes it, so no time is predicted)
//   infinite (eta) a well-fitted trend that is flat or falling, including a constant series
//   leak     R² × the share of the movement that was upward (Σ rises / (Σ rises + Σ falls)):
//            steady growth scores near 1, a sawtooth heap near 0.

/** Fewer points than this and every trend is unknown. */
export const TREND_MIN_SAMPLES = 5;
/** The points must span at least this share of the window asked for. */
export const TREND_MIN_SPAN = 0.25;
/** eta is unknown below this fit quality (coefficient of determination). */
export const ETA_MIN_R2 = 0.8;

/** Centred moments of points in time order; t in seconds from any origin the caller keeps. */
export class Moments {
  n = 0;
  /** means */
  mt = 0;
  mv = 0;
  /** Σ(t − mt)², Σ(v − mv)², Σ(t − mt)(v − mv) */
  stt = 0;
  svv = 0;
  stv = 0;
  /** Σ of increases and of decreases between consecutive points */
  rise = 0;
  fall = 0;
  firstT = NaN;
  lastT = NaN;
  lastV = NaN;

  reset(): this {
    this.n = this.mt = this.mv = this.stt = this.svv = this.stv = this.rise = this.fall = 0;
    this.firstT = this.lastT = this.lastV = NaN;
    return this;
  }

  /** One point, later than every point so far. */
  add(t: number, v: number): void {
    this.addRun(t, t, 1, v);
  }

  /** `n` points evenly spaced over [t0, t1] (t0 = t1 when n = 1), all of value v, later than
   *  every point so far. */
  addRun(t0: number, t1: number, n: number, v: number): void {
    if (n <= 0 || !Number.isFinite(v)) return;
    const d = n > 1 ? (t1 - t0) / (n - 1) : 0;
    // variance of n evenly spaced points: d² (n² − 1) / 12 each
    this.merge(n, (t0 + t1) / 2, v, (n * (n * n - 1) * d * d) / 12, 0, 0, t0, t1, v, v);
  }

  /** Merges a block of points that all come after the points so far. `firstV`/`lastV` are its
   *  first and last values (the step between blocks counts as a rise or a fall). */
  merge(nb: number, mtb: number, mvb: number, sttb: number, svvb: number, stvb: number, firstT: number, lastT: number, firstV: number, lastV: number, riseB = 0, fallB = 0): void {
    if (nb <= 0) return;
    const na = this.n;
    if (na === 0) {
      this.n = nb;
      this.mt = mtb;
      this.mv = mvb;
      this.stt = sttb;
      this.svv = svvb;
      this.stv = stvb;
      this.firstT = firstT;
    } else {
      const n = na + nb;
      const dt = mtb - this.mt;
      const dv = mvb - this.mv;
      const f = (na * nb) / n;
      this.mt += (dt * nb) / n;
      this.mv += (dv * nb) / n;
      this.stt += sttb + dt * dt * f;
      this.svv += svvb + dv * dv * f;
      this.stv += stvb + dt * dv * f;
      this.n = n;
      const step = firstV - this.lastV; // NaN when either is unknown: the block carries its step
      if (step > 0) this.rise += step;
      else if (step < 0) this.fall -= step;
    }
    this.rise += riseB;
    this.fall += fallB;
    this.lastT = lastT;
    this.lastV = lastV;
  }

  /** Merges another accumulator whose points all come after these. */
  append(o: Moments, firstV: number): void {
    this.merge(o.n, o.mt, o.mv, o.stt, o.svv, o.stv, o.firstT, o.lastT, firstV, o.lastV, o.rise, o.fall);
  }
}

/** A least-squares line through the points, read at time `at`. */
export interface TrendFit {
  /** points fitted */
  n: number;
  /** seconds from the first to the last point */
  spanS: number;
  /** change per second (NaN with fewer than two distinct times) */
  slope: number;
  /** the line's value at `at` */
  level: number;
  /** coefficient of determination, 0..1; 1 for a constant series (the flat line fits exactly) */
  r2: number;
  rise: number;
  fall: number;
  /** the newest value */
  last: number;
}

export function fitOf(m: Moments, at: number): TrendFit {
  const slope = m.n >= 2 && m.stt > 0 ? m.stv / m.stt : NaN;
  let r2 = NaN;
  if (m.n >= 2 && m.stt > 0) r2 = m.svv <= 0 ? 1 : Math.min(1, (m.stv * m.stv) / (m.stt * m.svv));
  return {
    n: m.n,
    spanS: m.n > 0 ? m.lastT - m.firstT : 0,
    slope,
    level: Number.isNaN(slope) ? m.mv : m.mv + slope * (at - m.mt),
    r2,
    rise: m.rise,
    fall: m.fall,
    last: m.lastV,
  };
}

/** An unknown trend value says why. */
export interface TrendVerdict {
  /** a number; Infinity for an eta that is never reached; null when unknown */
  value: number | null;
  reason?: string;
}

/** Why a fit is too thin to say anything, or null when it has enough points. */
export function thin(f: TrendFit, windowS: number): string | null {
  if (f.n < TREND_MIN_SAMPLES) return `${f.n} sample${f.n === 1 ? '' : 's'} in the window, needs ${TREND_MIN_SAMPLES}`;
  if (!(f.spanS >= windowS * TREND_MIN_SPAN)) return `samples span ${round(f.spanS)}s of the ${round(windowS)}s window, needs ${round(windowS * TREND_MIN_SPAN)}s`;
  return null;
}

/** slope: the least-squares trend per second; unknown only when the window is too thin. */
export function slopeOf(f: TrendFit, windowS: number): TrendVerdict {
  const t = thin(f, windowS);
  if (t !== null) return { value: null, reason: t };
  return { value: Number.isNaN(f.slope) ? 0 : f.slope };
}

/** What eta is without knowing the limit: unknown (thin window, poor fit) or infinite (flat
 *  or falling); null when the trend rises and the limit decides. */
export function etaWithoutLimit(f: TrendFit, windowS: number): TrendVerdict | null {
  const t = thin(f, windowS);
  if (t !== null) return { value: null, reason: t };
  if (!(f.r2 >= ETA_MIN_R2)) return { value: null, reason: `poor fit: R² ${round(f.r2, 2)} < ${ETA_MIN_R2}` };
  if (!(f.slope > 0)) return { value: Infinity, reason: f.slope < 0 ? 'falling' : 'flat' };
  return null;
}

/** eta: seconds until the line reaches `limit`; 0 when it is already there (or past). */
export function etaOf(f: TrendFit, limit: number, windowS: number): TrendVerdict {
  const early = etaWithoutLimit(f, windowS);
  if (early !== null) return early;
  if (f.level >= limit) return { value: 0 };
  return { value: (limit - f.level) / f.slope };
}

/** leak: R² × the upward share of the movement, 0 for a flat or falling trend. */
export function leakOf(f: TrendFit, windowS: number): TrendVerdict {
  const t = thin(f, windowS);
  if (t !== null) return { value: null, reason: t };
  if (!(f.slope > 0)) return { value: 0, reason: 'not growing' };
  const moved = f.rise + f.fall;
  const up = moved > 0 ? f.rise / moved : 0;
  return { value: Math.max(0, Math.min(1, (Number.isNaN(f.r2) ? 0 : f.r2) * up)) };
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

// ------------------------------------------------------------------ bucketed series

/** Per bucket: index, n, mt, mv, stt, svv, stv, rise, fall, firstT. */
const F = 10;

/**
 * A series kept compact: a ring of `count` buckets of `bucketMs`, each holding the moments of
 * the points that fell in it (10 doubles), never the points. A fit over a window merges the
 * buckets that start inside it, so it costs `count` merges whatever the sample rate, and the
 * window's start is exact to one bucket. Fixed size: count × 80 bytes + ~400. Rises and falls are
 * counted against the previous point, wherever it fell (the first bucket of a window carries
 * the step into it).
 */
export class TrendBuckets {
  private readonly d: Float64Array;
  private newest = -Infinity;
  private lastT = NaN;
  private lastV = NaN;

  constructor(
    readonly bucketMs: number,
    readonly count: number,
  ) {
    this.d = new Float64Array(count * F).fill(NaN);
  }

  /** Adds a point; t in ms (any clock, increasing). Points older than the newest are dropped. */
  record(tMs: number, v: number): void {
    if (!Number.isFinite(v) || tMs < this.lastT) return;
    const index = Math.floor(tMs / this.bucketMs);
    const o = (index % this.count) * F;
    const d = this.d;
    const ts = (tMs - index * this.bucketMs) / 1000; // seconds within the bucket: small, exact
    const step = v - this.lastV; // NaN for the first point
    if (d[o] !== index) {
      d[o] = index;
      d[o + 1] = 1;
      d[o + 2] = ts;
      d[o + 3] = v;
      d[o + 4] = d[o + 5] = d[o + 6] = d[o + 7] = d[o + 8] = 0;
      d[o + 9] = tMs;
    } else {
      // Welford's update for one point
      const n = d[o + 1]! + 1;
      const dt = ts - d[o + 2]!;
      const dv = v - d[o + 3]!;
      d[o + 2]! += dt / n;
      d[o + 3]! += dv / n;
      d[o + 4]! += dt * (ts - d[o + 2]!);
      const dv2 = v - d[o + 3]!;
      d[o + 5]! += dv * dv2;
      d[o + 6]! += dt * dv2;
      d[o + 1] = n;
    }
    if (step > 0) d[o + 7]! += step;
    else if (step < 0) d[o + 8]! -= step;
    this.lastT = tMs;
    this.lastV = v;
    if (index > this.newest) this.newest = index;
  }

  /** Merges the buckets that start in [nowMs − windowMs, nowMs] into `m`, t in seconds relative
   *  to `originMs`. */
  sums(nowMs: number, windowMs: number, m: Moments, originMs: number): Moments {
    const d = this.d;
    const last = Math.min(this.newest, Math.floor(nowMs / this.bucketMs));
    const first = Math.max(last - this.count + 1, Math.ceil((nowMs - windowMs) / this.bucketMs));
    for (let index = first; index <= last; index++) {
      const o = (index % this.count) * F;
      if (d[o] !== index) continue;
      const base = (index * this.bucketMs - originMs) / 1000;
      const newest = index === this.newest;
      m.merge(
        d[o + 1]!, base + d[o + 2]!, d[o + 3]!, d[o + 4]!, d[o + 5]!, d[o + 6]!, (d[o + 9]! - originMs) / 1000,
        newest ? (this.lastT - originMs) / 1000 : base + this.bucketMs / 1000, NaN, newest ? this.lastV : NaN, d[o + 7]!, d[o + 8]!,
      );
    }
    return m;
  }

  /** Bytes held: the array's store, the typed array and the object (measured: 1,455 B for 13
   *  buckets, heap and array buffers, in bench/trend.mjs). */
  approxBytes(): number {
    return this.count * F * 8 + 400;
  }
}

/** Buckets per window: its start is exact to 1/12 of it; a ring of 13 costs ~1.4 KB. */
export const TREND_BUCKETS = 12;
export const bucketMsFor = (windowMs: number): number => Math.max(1, Math.ceil(windowMs / TREND_BUCKETS));
