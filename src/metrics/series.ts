// One windowed series: samples over time, read back as figures (max, avg, p50/p95/p99, rate,
// last) over any window up to the longest configured one.
//
// Two representations behind one interface, chosen by sample rate:
// - exact: a run-length ring of samples. Most per-process series get one sample per sweep and
//   repeat the same value while idle (0 % CPU, same RSS), so a run costs one entry. Percentiles
//   are exact.
// - histogram: once a series holds more than `maxEntries` runs it is a high-rate series (events,
//   per-switch latencies). It then moves to a ring of sub-window hdr-histogram-js histograms,
//   merged on read. A packed hdr histogram costs ~1.6 KB even when nearly empty (measured), which
//   is why idle per-process series do not start there.
// Reads are cached until the next sample or the next sub-window boundary.
import { buildHistogram, type Histogram } from './hdr.js';

export interface WindowFigures {
  /** Samples in the window (fractional when the window edge cuts a run). */
  count: number;
  min: number;
  max: number;
  /** Weighted mean: Σ value·weight / Σ weight (weight = the time a sample stands for). */
  avg: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  /** The newest sample. */
  last: number;
  /** Σ value: for delta series (bytes per interval) this is the total in the window. */
  sum: number;
  /** sum per second of window. */
  rate: number;
  /** Σ weight in the window: for per-interval samples, the time covered, s. */
  weight: number;
}

export interface SeriesOptions {
  /** Longest window a read may ask for, ms. Older samples are dropped. */
  maxWindowMs: number;
  /** Sub-window width in histogram mode, ms. */
  slotMs: number;
  /** Runs kept in exact mode before switching to histograms. */
  maxEntries: number;
  /** Smallest distinguishable value in histogram mode (values are recorded as value/resolution). */
  resolution: number;
}

export const DEFAULT_SERIES_OPTIONS: SeriesOptions = { maxWindowMs: 300_000, slotMs: 5_000, maxEntries: 512, resolution: 0.01 };

interface Run {
  t0: number;
  t1: number;
  v: number;
  n: number;
  w: number;
}

/** One sub-window: its histogram and exact moments. */
interface Slot extends Agg {
  index: number;
  hist: Histogram;
}

export class Series {
  private runs: Run[] = [];
  private slots: (Slot | undefined)[] | undefined;
  private version = 0;
  // One entry per window read, created on first read: a few entries in an array cost less than
  // a Map, and most series are read for one window (a Map costs more than an idle series' runs).
  private cache: { windowMs: number; version: number; bucket: number; figures: WindowFigures | undefined }[] | undefined;
  lastT = -Infinity;
  lastValue = NaN;

  constructor(private readonly opts: SeriesOptions = DEFAULT_SERIES_OPTIONS) {}

  get mode(): 'exact' | 'histogram' {
    return this.slots ? 'histogram' : 'exact';
  }

  record(t: number, value: number, weight = 1): void {
    if (!Number.isFinite(value)) return;
    this.version++;
    this.lastT = Math.max(this.lastT, t);
    this.lastValue = value;
    if (this.slots) return this.recordSlot(t, value, weight);
    const tail = this.runs[this.runs.length - 1];
    if (tail && tail.v === value && t >= tail.t1) {
      tail.t1 = t;
      tail.n++;
      tail.w += weight;
    } else {
      this.runs.push({ t0: t, t1: t, v: value, n: 1, w: weight });
    }
    this.prune(t);
    if (this.runs.length > this.opts.maxEntries) this.promote();
  }

  /** Extends the last run by `n` samples of its value and `weight` in all, the newest at t: what
   *  `n` records of the last value would do, in O(1). False (nothing done) in histogram mode, with
   *  no run, or when t is before the last run's end. */
  repeatTail(t: number, n: number, weight: number): boolean {
    const tail = this.runs[this.runs.length - 1];
    if (this.slots || tail === undefined || t < tail.t1) return false;
    this.version++;
    if (t > this.lastT) this.lastT = t;
    tail.t1 = t;
    tail.n += n;
    tail.w += weight;
    this.prune(t);
    return true;
  }

  /** Drops what no window can reach any more. */
  prune(now: number): void {
    const horizon = now - this.opts.maxWindowMs;
    if (this.slots) return;
    let drop = 0;
    while (drop < this.runs.length && this.runs[drop]!.t1 < horizon) drop++;
    if (drop) this.runs.splice(0, drop);
  }

  /** Figures over (now − windowMs, now]; undefined when no sample falls in it. */
  figures(now: number, windowMs: number): WindowFigures | undefined {
    const bucket = Math.floor(now / this.opts.slotMs);
    const hit = this.cache?.find((c) => c.windowMs === windowMs);
    if (hit && hit.version === this.version && hit.bucket === bucket) return hit.figures;
    const figures = this.slots ? this.mergeSlots(now, windowMs) : this.mergeRuns(now, windowMs);
    if (hit) {
      hit.version = this.version;
      hit.bucket = bucket;
      hit.figures = figures;
    } else {
      (this.cache ??= []).push({ windowMs, version: this.version, bucket, figures });
    }
    return figures;
  }

  /** The samples in (now − windowMs, now] as points, oldest first: each run gives its first and
   *  last sample (a flat stretch needs no more), each sub-window its last. For evidence such as
   *  "RSS grew from 300 MB to 2 GB in 4 min". With `perSecond`, a delta series (bytes per
   *  interval, weighted by the interval in seconds) reads as a rate: bytes/s (a run of equal
   *  deltas, at its average rate). */
  points(now: number, windowMs: number, perSecond = false): { t: number; v: number }[] {
    const start = now - windowMs;
    const out: { t: number; v: number }[] = [];
    if (this.slots) {
      for (const s of [...this.slots].sort((a, b) => (a?.index ?? 0) - (b?.index ?? 0))) {
        if (s && s.lastT > start && s.lastT <= now) out.push({ t: s.lastT, v: perSecond ? (s.wtotal > 0 ? s.sum / s.wtotal : 0) : s.last });
      }
      return out;
    }
    for (const r of this.runs) {
      if (r.t1 <= start || r.t0 > now) continue;
      // perSecond: a delta series (bytes per interval, weighted by the interval in s) as a rate
      const v = perSecond ? (r.w > 0 ? (r.v * r.n) / r.w : 0) : r.v;
      if (r.t0 > start) out.push({ t: r.t0, v });
      if (r.t1 !== r.t0 || r.t0 <= start) out.push({ t: r.t1, v });
    }
    return out;
  }

  /** Every sample kept, oldest first (a run's samples evenly spaced over it; a sub-window's as
   *  its mean at its newest time), to seed a longer trend series. */
  samples(fn: (t: number, v: number) => void, perWeight = false): void {
    if (this.slots) {
      for (const s of [...this.slots].filter((x): x is Slot => x !== undefined).sort((a, b) => a.index - b.index)) {
        fn(s.lastT, perWeight ? (s.wtotal > 0 ? s.sum / s.wtotal : 0) : s.sum / s.count);
      }
      return;
    }
    for (const r of this.runs) {
      const v = perWeight ? (r.w > 0 ? (r.v * r.n) / r.w : 0) : r.v;
      for (let i = 0; i < r.n; i++) fn(r.n === 1 ? r.t1 : r.t0 + ((r.t1 - r.t0) * i) / (r.n - 1), v);
    }
  }

  /** Approximate heap bytes held, for the memory bound. */
  approxBytes(): number {
    if (!this.slots) return 120 + this.runs.length * 72;
    let b = 120 + this.slots.length * 8;
    for (const s of this.slots) if (s) b += 1700 + 96;
    return b;
  }

  private mergeRuns(now: number, windowMs: number): WindowFigures | undefined {
    const start = now - windowMs;
    const runs = this.runs;
    let first = runs.length;
    for (let i = runs.length - 1; i >= 0; i--) {
      if (runs[i]!.t1 <= start) break; // runs are in time order
      first = i;
    }
    const f = new RunFigures(runs, first, start, now);
    let sum = 0, wsum = 0, wtotal = 0, lastT = -Infinity;
    for (let i = first; i < runs.length; i++) {
      const r = runs[i]!;
      if (r.t0 > now) continue;
      const frac = edgeFraction(r, start);
      const n = r.n * frac;
      f.count += n;
      sum += r.v * n;
      wsum += r.v * r.w * frac;
      wtotal += r.w * frac;
      if (r.v < f.min) f.min = r.v;
      if (r.v > f.max) f.max = r.v;
      if (r.t1 >= lastT) {
        lastT = r.t1;
        f.last = r.v;
      }
    }
    if (f.count === 0) return undefined;
    f.sum = sum;
    f.weight = wtotal;
    f.avg = wtotal > 0 ? wsum / wtotal : sum / f.count;
    f.rate = sum / (windowMs / 1000);
    return f;
  }

  private promote(): void {
    const runs = this.runs;
    this.runs = [];
    this.slots = new Array(Math.ceil(this.opts.maxWindowMs / this.opts.slotMs) + 1);
    for (const r of runs) {
      // Spread each run's samples over its span so sub-windows stay truthful.
      for (let i = 0; i < r.n; i++) {
        const t = r.n === 1 ? r.t1 : r.t0 + ((r.t1 - r.t0) * i) / (r.n - 1);
        this.recordSlot(t, r.v, r.w / r.n);
      }
    }
  }

  private recordSlot(t: number, value: number, weight: number): void {
    const slots = this.slots!;
    const index = Math.floor(t / this.opts.slotMs);
    const at = index % slots.length;
    let s = slots[at];
    if (!s || s.index !== index) {
      if (s && s.index > index) return; // older than the ring reaches
      const hist = s?.hist ?? buildHistogram('packed', 2);
      hist.reset();
      s = { index, hist, ...emptyAgg() };
      slots[at] = s;
    }
    s.hist.recordValue(Math.max(0, Math.round(value / this.opts.resolution)));
    s.count++;
    s.sum += value;
    s.wsum += value * weight;
    s.wtotal += weight;
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
    if (t >= s.lastT) {
      s.lastT = t;
      s.last = value;
    }
  }

  // Closed sub-windows never change, so their merge is kept per window and rebuilt only when
  // the window slides to the next sub-window; a read then adds just the open one.
  private closed: Map<number, { newest: number; oldest: number; hist: Histogram; agg: Agg }> | undefined;

  private mergeSlots(now: number, windowMs: number): WindowFigures | undefined {
    const slots = this.slots!;
    const newest = Math.floor(now / this.opts.slotMs);
    // Every sub-window that overlaps the window: it covers windowMs plus up to one sub-window.
    const oldest = Math.floor((now - windowMs) / this.opts.slotMs);
    this.closed ??= new Map();
    let c = this.closed.get(windowMs);
    if (!c || c.newest !== newest || c.oldest !== oldest) {
      c?.hist.destroy();
      const hist = buildHistogram(32, 2);
      const agg = emptyAgg();
      for (const s of slots) {
        if (!s || s.index < oldest || s.index >= newest) continue;
        hist.add(s.hist);
        addAgg(agg, s);
      }
      c = { newest, oldest, hist, agg };
      this.closed.set(windowMs, c);
    }
    const open = slots[newest % slots.length];
    const agg = { ...c.agg };
    let hist = c.hist;
    if (open && open.index === newest) {
      addAgg(agg, open);
      hist = buildHistogram(32, 2);
      hist.add(c.hist);
      hist.add(open.hist);
    }
    if (agg.count === 0) return undefined;
    const r = this.opts.resolution;
    // Percentiles are clamped to the exact extremes so hdr's bucket rounding never reports a
    // p99 above the true max.
    const q = (p: number) => Math.min(agg.max, Math.max(agg.min, hist.getValueAtPercentile(p) * r));
    const out = {
      count: agg.count, min: agg.min, max: agg.max, avg: agg.wtotal > 0 ? agg.wsum / agg.wtotal : agg.sum / agg.count,
      p50: q(50), p90: q(90), p95: q(95), p99: q(99), last: agg.last, sum: agg.sum, rate: agg.sum / (windowMs / 1000), weight: agg.wtotal,
    };
    if (hist !== c.hist) hist.destroy();
    return out;
  }
}

// A run cut by the window edge counts only its samples inside: they are evenly spaced (one per
// sweep), the newest at t1.
function edgeFraction(r: Run, start: number): number {
  return r.t0 > start || r.n < 2 ? 1 : Math.min(r.n, Math.ceil((r.t1 - start) / ((r.t1 - r.t0) / (r.n - 1)) - 1e-9)) / r.n;
}

/** Figures of the exact representation. Percentiles are weighted by the time each sample stands
 *  for, so the short first and last samples of a process (born or exited mid-interval) count for
 *  what they cover: p95 is the level exceeded 5 % of the time. Series without weights (gauges)
 *  weigh 1 per sample. They are computed on first access only (`top` reads a process's CPU p95
 *  but not the percentiles of its RSS or IO), by prototype getters: a cached figure is one small
 *  object, not a set of closures (it stays cached for every key between reads). */
class RunFigures implements WindowFigures {
  count = 0;
  min = Infinity;
  max = -Infinity;
  avg = 0;
  last = NaN;
  sum = 0;
  rate = 0;
  weight = 0;
  private sorted: { vals: Float64Array; cum: Float64Array; total: number } | undefined;

  constructor(private readonly runs: Run[], private readonly first: number, private readonly start: number, private readonly now: number) {}

  get p50(): number {
    return this.quantile(0.5);
  }
  get p90(): number {
    return this.quantile(0.9);
  }
  get p95(): number {
    return this.quantile(0.95);
  }
  get p99(): number {
    return this.quantile(0.99);
  }

  private quantile(p: number): number {
    const sorted = (this.sorted ??= this.sortParts());
    const rank = p * sorted.total - 1e-9 * sorted.total;
    // first position whose cumulative weight reaches the rank (binary search)
    let lo = 0, hi = sorted.cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted.cum[mid]! >= rank) hi = mid;
      else lo = mid + 1;
    }
    return sorted.vals[lo]!;
  }

  private sortParts(): { vals: Float64Array; cum: Float64Array; total: number } {
    const { runs, first, start, now } = this;
    const m = runs.length - first;
    const vals = new Float64Array(m);
    const ws = new Float64Array(m);
    // a plain array of indices: V8 sorts it with a comparator far faster than a typed array
    const order: number[] = [];
    let k = 0;
    for (let i = first; i < runs.length; i++) {
      const r = runs[i]!;
      if (r.t0 > now) continue;
      const f = edgeFraction(r, start);
      vals[k] = r.v;
      ws[k] = r.w > 0 ? r.w * f : r.n * f;
      order.push(k);
      k++;
    }
    const idx = order.sort((a, b) => vals[a]! - vals[b]!);
    const sv = new Float64Array(k);
    const cum = new Float64Array(k);
    let acc = 0;
    for (let j = 0; j < k; j++) {
      sv[j] = vals[idx[j]!]!;
      acc += ws[idx[j]!]!;
      cum[j] = acc;
    }
    return { vals: sv, cum, total: acc };
  }
}

interface Agg {
  count: number;
  sum: number;
  wsum: number;
  wtotal: number;
  min: number;
  max: number;
  last: number;
  lastT: number;
}

const emptyAgg = (): Agg => ({ count: 0, sum: 0, wsum: 0, wtotal: 0, min: Infinity, max: -Infinity, last: NaN, lastT: -Infinity });

function addAgg(a: Agg, s: Slot): void {
  a.count += s.count;
  a.sum += s.sum;
  a.wsum += s.wsum;
  a.wtotal += s.wtotal;
  if (s.min < a.min) a.min = s.min;
  if (s.max > a.max) a.max = s.max;
  if (s.lastT >= a.lastT) {
    a.lastT = s.lastT;
    a.last = s.last;
  }
}
