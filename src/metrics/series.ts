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
import * as hdr from 'hdr-histogram-js';

export interface WindowFigures {
  /** Samples in the window (fractional when the window edge cuts a run). */
  count: number;
  min: number;
  max: number;
  /** Weighted mean: Σ value·weight / Σ weight (weight = the time a sample stands for). */
  avg: number;
  p50: number;
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

interface Slot {
  index: number;
  hist: hdr.Histogram;
  count: number;
  sum: number;
  wsum: number;
  wtotal: number;
  min: number;
  max: number;
  last: number;
  lastT: number;
}

export class Series {
  private runs: Run[] = [];
  private slots: (Slot | undefined)[] | undefined;
  private version = 0;
  private cache = new Map<number, { version: number; bucket: number; figures: WindowFigures | undefined }>();
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
    const hit = this.cache.get(windowMs);
    if (hit && hit.version === this.version && hit.bucket === bucket) return hit.figures;
    const figures = this.slots ? this.mergeSlots(now, windowMs) : this.mergeRuns(now, windowMs);
    this.cache.set(windowMs, { version: this.version, bucket, figures });
    return figures;
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
    const parts: { v: number; n: number }[] = [];
    let count = 0, sum = 0, wsum = 0, wtotal = 0;
    let min = Infinity, max = -Infinity, last = NaN, lastT = -Infinity;
    for (const r of this.runs) {
      if (r.t1 <= start || r.t0 > now) continue;
      // A run cut by the window edge counts only its samples inside: they are evenly spaced
      // (one per sweep), the newest at t1.
      const f = r.t0 > start || r.n < 2 ? 1 : Math.min(r.n, Math.ceil((r.t1 - start) / ((r.t1 - r.t0) / (r.n - 1)) - 1e-9)) / r.n;
      const n = r.n * f;
      parts.push({ v: r.v, n });
      count += n;
      sum += r.v * n;
      wsum += r.v * r.w * f;
      wtotal += r.w * f;
      if (r.v < min) min = r.v;
      if (r.v > max) max = r.v;
      if (r.t1 >= lastT) {
        lastT = r.t1;
        last = r.v;
      }
    }
    if (count === 0) return undefined;
    parts.sort((a, b) => a.v - b.v);
    const q = (p: number) => {
      const rank = p * count;
      let acc = 0;
      for (const x of parts) {
        acc += x.n;
        if (acc >= rank - 1e-9) return x.v;
      }
      return parts[parts.length - 1]!.v;
    };
    return { count, min, max, avg: wtotal > 0 ? wsum / wtotal : sum / count, p50: q(0.5), p95: q(0.95), p99: q(0.99), last, sum, rate: sum / (windowMs / 1000), weight: wtotal };
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
      const hist = s?.hist ?? hdr.build({ bitBucketSize: 'packed', numberOfSignificantValueDigits: 2, autoResize: true });
      hist.reset();
      s = { index, hist, count: 0, sum: 0, wsum: 0, wtotal: 0, min: Infinity, max: -Infinity, last: NaN, lastT: -Infinity };
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

  private mergeSlots(now: number, windowMs: number): WindowFigures | undefined {
    const slots = this.slots!;
    const newest = Math.floor(now / this.opts.slotMs);
    // Whole sub-windows: every one that overlaps the window, so it covers windowMs plus up to
    // one sub-window.
    const oldest = Math.floor((now - windowMs) / this.opts.slotMs);
    const merged = hdr.build({ bitBucketSize: 'packed', numberOfSignificantValueDigits: 2, autoResize: true });
    let count = 0, sum = 0, wsum = 0, wtotal = 0, min = Infinity, max = -Infinity, last = NaN, lastT = -Infinity;
    for (const s of slots) {
      if (!s || s.index < oldest || s.index > newest) continue;
      merged.add(s.hist);
      count += s.count;
      sum += s.sum;
      wsum += s.wsum;
      wtotal += s.wtotal;
      min = Math.min(min, s.min);
      max = Math.max(max, s.max);
      if (s.lastT >= lastT) {
        lastT = s.lastT;
        last = s.last;
      }
    }
    if (count === 0) {
      merged.destroy();
      return undefined;
    }
    const r = this.opts.resolution;
    // Percentiles are clamped to the exact extremes so hdr's bucket rounding never reports a
    // p99 above the true max.
    const q = (p: number) => Math.min(max, Math.max(min, merged.getValueAtPercentile(p) * r));
    const out = { count, min, max, avg: wtotal > 0 ? wsum / wtotal : sum / count, p50: q(50), p95: q(95), p99: q(99), last, sum, rate: sum / (windowMs / 1000), weight: wtotal };
    merged.destroy();
    return out;
  }
}
