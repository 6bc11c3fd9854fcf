// Windowed series grouped by key (an exec_id, a cgroup, the node), with a bound on keys and
// expiry of keys nobody can ask about any more (ended longer ago than the longest window).
import { DEFAULT_SERIES_OPTIONS, Series, type SeriesOptions, type WindowFigures } from './series.js';
import { TREND_BUCKETS, TrendBuckets, bucketMsFor } from '../shared/trend.js';

export interface KeyEntry<M extends string, Meta> {
  key: string;
  meta: Meta;
  series: Partial<Record<M, Series>>;
  firstT: number;
  lastT: number;
  /** Set when the key's subject ended (process exit, cgroup removed). */
  endedT?: number;
  /** Compact series for trends (armTrend), by TrendArm.key. */
  trends?: Record<string, TrendBuckets>;
  /** Samples deferred (defer): each would only have extended the last run of the deferrable
   *  series. The newest one's time is lastT (a record applies them first, so nothing else moves
   *  lastT meanwhile); deferredW is the time-weighted samples' weight. */
  deferredN: number;
  deferredW: number;
  /** the oldest deferred sample's time */
  deferredFromT: number;
}

/** A trend being kept: of `metric` over `windowMs`, asked for last at askedMs. */
export interface TrendArm {
  /** metric/window: the key of its rings in each entry */
  key: string;
  metric: string;
  windowMs: number;
  bucketMs: number;
  perWeight: boolean;
  askedMs: number;
}

/** A trend nobody asked for in this long (and twice its window) stops being kept. */
export const TREND_IDLE_MS = 600_000;
/** Trend windows kept per metric at most; asking for another drops the least recently asked. */
export const MAX_TREND_WINDOWS = 4;

export interface KeyedOptions<M extends string, Meta = unknown> {
  series: SeriesOptions;
  maxKeys: number;
  /** Per-metric histogram resolution (see SeriesOptions.resolution). */
  resolution?: Partial<Record<M, number>>;
  /** Ended keys kept at most; over it the first ended goes (default: no bound but maxKeys). */
  maxEnded?: number;
  /** Called with an ended entry just before it is evicted (not when it expires). */
  onEvict?: (e: KeyEntry<M, Meta>) => void;
  /** The series `defer` extends: weighted by the time a sample stands for, or 1 per sample. */
  deferrable?: { byTime: readonly M[]; bySample: readonly M[] };
}

export class KeyedWindows<M extends string, Meta> {
  private entries = new Map<string, KeyEntry<M, Meta>>();
  evicted = 0;
  expired = 0;

  constructor(private readonly opts: KeyedOptions<M, Meta> = { series: DEFAULT_SERIES_OPTIONS, maxKeys: 10_000 }) {}

  /** New keys refused because the bound was reached with no ended key to make room. */
  refused = 0;
  /** Keys in the order they ended, from endedHead on: the first candidates for eviction. */
  private endedOrder: string[] = [];
  private endedHead = 0;
  /** Entries with endedT set. */
  private endedCount = 0;

  /** The entry for key, created with meta() when new; undefined when the bound is reached and
   *  no ended key can make room. Live keys are never evicted: evicting a live key only to see it
   *  return in the same sweep would thrash, and its baseline would be lost. */
  entry(key: string, t: number, meta: () => Meta): KeyEntry<M, Meta> | undefined {
    let e = this.entries.get(key);
    if (!e) {
      if (this.entries.size >= this.opts.maxKeys && !this.evictEnded()) {
        this.refused++;
        return undefined;
      }
      e = { key, meta: meta(), series: {}, firstT: t, lastT: t, deferredN: 0, deferredW: 0, deferredFromT: 0 };
      this.entries.set(key, e);
    }
    return e;
  }

  record(e: KeyEntry<M, Meta>, metric: M, t: number, value: number, weight = 1): void {
    if (e.deferredN !== 0) this.settle(e);
    let s = e.series[metric];
    if (!s) {
      const resolution = this.opts.resolution?.[metric] ?? this.opts.series.resolution;
      s = new Series({ ...this.opts.series, resolution });
      e.series[metric] = s;
    }
    s.record(t, value, weight);
    if (t > e.lastT) e.lastT = t;
    const arms = this.arms?.[metric];
    if (arms !== undefined) for (let i = 0; i < arms.length; i++) this.recordTrend(e, arms[i]!, t, value, weight);
  }

  // ------------------------------------------------------------------ trends
  // Trends (slope, eta, leak) are served from a compact series per key and (metric, window):
  // TrendBuckets, 13 buckets of moments (~1.4 KB), whatever the sample rate, so a fit costs 13
  // merges per key, not one step per sample (a busy process has 300 runs per 5 minutes). Kept
  // only for what a check asked about: the first ask arms it, seeded from the samples the series
  // still hold (all of a window up to the longest; what there is of a longer one), and it is
  // dropped once nobody has asked for TREND_IDLE_MS (or twice its window).

  private arms: Partial<Record<M, TrendArm[]>> | undefined;

  /** Keeps (or keeps on keeping) the trend of `metric` over `windowMs` for every key.
   *  `perWeight`: the series holds amounts per interval; the trend is of the rate. */
  armTrend(metric: M, windowMs: number, nowMs: number, perWeight = false): TrendArm {
    this.settleAll(); // the new trend is seeded from every sample, deferred ones included
    const arms = (this.arms ??= {} as Partial<Record<M, TrendArm[]>>);
    const list = (arms[metric] ??= []);
    const hit = list.find((a) => a.windowMs === windowMs);
    if (hit !== undefined) {
      hit.askedMs = nowMs;
      return hit;
    }
    if (list.length >= MAX_TREND_WINDOWS) {
      const lru = list.reduce((a, b) => (b.askedMs < a.askedMs ? b : a));
      this.disarm(metric, lru);
    }
    const arm: TrendArm = { key: `${metric}/${windowMs}`, metric, windowMs, bucketMs: bucketMsFor(windowMs), perWeight, askedMs: nowMs };
    list.push(arm);
    for (const e of this.entries.values()) {
      const s = e.series[metric];
      if (s === undefined) continue;
      const tb = new TrendBuckets(arm.bucketMs, TREND_BUCKETS + 1);
      s.samples((t, v) => tb.record(t, v), perWeight);
      (e.trends ??= {})[arm.key] = tb;
    }
    return arm;
  }

  /** A key's compact series for an armed trend. */
  trendOf(e: KeyEntry<M, Meta>, arm: TrendArm): TrendBuckets | undefined {
    return e.trends?.[arm.key];
  }

  /** Trends kept, for tests and the memory figure. */
  trendArms(): TrendArm[] {
    return Object.values(this.arms ?? {}).flat() as TrendArm[];
  }

  private recordTrend(e: KeyEntry<M, Meta>, arm: TrendArm, t: number, value: number, weight: number): void {
    const trends = (e.trends ??= {});
    let tb = trends[arm.key];
    if (tb === undefined) trends[arm.key] = tb = new TrendBuckets(arm.bucketMs, TREND_BUCKETS + 1);
    tb.record(t, arm.perWeight ? (weight > 0 ? value / weight : 0) : value);
  }

  private disarm(metric: M, arm: TrendArm): void {
    const list = this.arms?.[metric];
    if (list === undefined) return;
    list.splice(list.indexOf(arm), 1);
    if (list.length === 0) delete this.arms![metric];
    for (const e of this.entries.values()) if (e.trends) delete e.trends[arm.key];
  }

  private disarmIdle(now: number): void {
    if (this.arms === undefined) return;
    for (const m of Object.keys(this.arms) as M[]) {
      for (const a of [...this.arms[m]!]) if (now - a.askedMs > Math.max(TREND_IDLE_MS, 2 * a.windowMs)) this.disarm(m, a);
    }
  }

  end(key: string, t: number): void {
    const e = this.get(key);
    if (e && e.endedT === undefined) {
      e.endedT = t;
      this.endedOrder.push(key);
      this.endedCount++;
      if (this.endedCount > (this.opts.maxEnded ?? Infinity)) this.evictEnded();
    }
  }

  /** Keys whose subject ended and that are still kept. */
  get ended(): number {
    return this.endedCount;
  }

  /** The entry, its deferred samples applied: what every reader gets. */
  get(key: string): KeyEntry<M, Meta> | undefined {
    const e = this.entries.get(key);
    if (e !== undefined && e.deferredN !== 0) this.settle(e);
    return e;
  }

  /** The entry as it is, deferred samples pending: for the writer that may defer more. */
  peek(key: string): KeyEntry<M, Meta> | undefined {
    return this.entries.get(key);
  }

  figures(e: KeyEntry<M, Meta>, metric: M, now: number, windowMs: number): WindowFigures | undefined {
    if (e.deferredN !== 0) this.settle(e);
    return e.series[metric]?.figures(now, windowMs);
  }

  values(): IterableIterator<KeyEntry<M, Meta>> {
    this.settleAll();
    return this.entries.values();
  }

  // ------------------------------------------------------------------ deferred samples
  // A sweep samples every live process every second, and most of them are idle: 0 % CPU, no IO,
  // the same RSS, so each sample only extends the last run of four series. Touching those
  // series (and their runs) for every idle process at every sweep was most of what the windows
  // cost on a node with many processes, and on the VM we measure, memory touched after a sleep
  // is what a wakeup costs (bench/README.md, "Session 19"). So the writer may defer such a
  // sample: the entry counts it, and the first read, record, expiry or trend of the entry
  // applies all it counted at once, as the same extension of each last run.

  /** Entries with deferred samples. */
  private deferredEntries = 0;

  /** Whether a trend is kept of `metric` (its samples then go through recordTrend one by one,
   *  so they cannot be deferred). */
  armed(metric: M): boolean {
    const a = this.arms?.[metric];
    return a !== undefined && a.length > 0;
  }

  /** Whether every series of `e` is exact (run-length): only those can take deferred samples. */
  exact(e: KeyEntry<M, Meta>): boolean {
    const series = e.series as Record<string, Series | undefined>;
    for (const m in series) if (series[m]!.mode !== 'exact') return false;
    return true;
  }

  /** One sample at `t` that would only extend the last run of each deferrable series that `e`
   *  has, the time-weighted ones by `weight`. The caller knows it: the values equal the last
   *  ones, the series are exact and no trend is armed for them. */
  defer(e: KeyEntry<M, Meta>, t: number, weight: number): void {
    if (e.deferredN === 0) {
      this.deferredEntries++;
      e.deferredFromT = t;
    }
    e.deferredN++;
    e.deferredW += weight;
    if (t > e.lastT) e.lastT = t;
  }

  private settle(e: KeyEntry<M, Meta>): void {
    const d = this.opts.deferrable;
    const n = e.deferredN;
    e.deferredN = 0;
    this.deferredEntries--;
    if (d === undefined) return;
    for (let i = 0; i < d.byTime.length; i++) e.series[d.byTime[i]!]?.repeatTail(e.lastT, n, e.deferredW);
    for (let i = 0; i < d.bySample.length; i++) e.series[d.bySample[i]!]?.repeatTail(e.lastT, n, n);
    e.deferredW = 0;
  }

  private settleAll(): void {
    if (this.deferredEntries === 0) return;
    this.entries.forEach((e) => {
      if (e.deferredN !== 0) this.settle(e);
    });
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops keys whose newest sample is older than the longest window. */
  expire(now: number): number {
    const horizon = now - this.opts.series.maxWindowMs;
    let n = 0;
    // forEach and for-in, not for-of and Object.values: this runs once a sweep, mostly before
    // V8 optimizes it, and unoptimized for-of allocates per step (deleting during forEach is safe)
    this.entries.forEach((e, k) => {
      if (e.deferredN !== 0) {
        // Deferred samples extend the last runs, so prune would misread where they end. They
        // are applied here only once the oldest is half a window old: until then the entry's
        // series are left alone (an idle process's few runs wait for the next prune).
        if (now - e.deferredFromT < this.opts.series.maxWindowMs / 2) return;
        this.settle(e);
      }
      if (e.lastT < horizon) {
        this.entries.delete(k);
        if (e.endedT !== undefined) this.endedCount--;
        n++;
      } else {
        const series = e.series as Record<string, Series | undefined>;
        for (const m in series) series[m]?.prune(now);
      }
    });
    this.expired += n;
    this.disarmIdle(now);
    // keys that expired without being evicted leave the queue here, so it stays bounded
    if (this.endedOrder.length - this.endedHead > this.endedCount) {
      this.endedOrder = this.endedOrder.slice(this.endedHead).filter((k) => this.entries.get(k)?.endedT !== undefined);
      this.endedHead = 0;
    }
    return n;
  }

  approxBytes(): number {
    let b = 0;
    for (const e of this.entries.values()) {
      b += 200;
      for (const s of Object.values(e.series) as Series[]) b += s.approxBytes();
      if (e.trends) for (const t of Object.values(e.trends)) b += t.approxBytes();
    }
    return b;
  }

  // Over the bound: the key that ended first goes (its figures are the least likely asked for).
  private evictEnded(): boolean {
    while (this.endedHead < this.endedOrder.length) {
      const key = this.endedOrder[this.endedHead++]!;
      const e = this.entries.get(key);
      if (e?.endedT !== undefined) {
        this.opts.onEvict?.(e);
        this.entries.delete(key);
        this.endedCount--;
        this.evicted++;
        this.compactEndedOrder();
        return true;
      }
    }
    this.compactEndedOrder();
    return false;
  }

  // The queue is consumed from endedHead (no O(n) shift per eviction); the consumed half goes now and then.
  private compactEndedOrder(): void {
    if (this.endedHead > 1024 && this.endedHead * 2 > this.endedOrder.length) {
      this.endedOrder = this.endedOrder.slice(this.endedHead);
      this.endedHead = 0;
    }
  }
}
