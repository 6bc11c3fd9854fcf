// Windowed series grouped by key (an exec_id, a cgroup, the node), with a bound on keys and
// expiry of keys nobody can ask about any more (ended longer ago than the longest window).
import { DEFAULT_SERIES_OPTIONS, Series, type SeriesOptions, type WindowFigures } from './series.js';

export interface KeyEntry<M extends string, Meta> {
  key: string;
  meta: Meta;
  series: Partial<Record<M, Series>>;
  firstT: number;
  lastT: number;
  /** Set when the key's subject ended (process exit, cgroup removed). */
  endedT?: number;
}

export interface KeyedOptions<M extends string> {
  series: SeriesOptions;
  maxKeys: number;
  /** Per-metric histogram resolution (see SeriesOptions.resolution). */
  resolution?: Partial<Record<M, number>>;
}

export class KeyedWindows<M extends string, Meta> {
  private entries = new Map<string, KeyEntry<M, Meta>>();
  evicted = 0;
  expired = 0;

  constructor(private readonly opts: KeyedOptions<M> = { series: DEFAULT_SERIES_OPTIONS, maxKeys: 10_000 }) {}

  /** New keys refused because the bound was reached with no ended key to make room. */
  refused = 0;
  /** Keys in the order they ended: the first candidates for eviction. */
  private endedOrder: string[] = [];

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
      e = { key, meta: meta(), series: {}, firstT: t, lastT: t };
      this.entries.set(key, e);
    }
    return e;
  }

  record(e: KeyEntry<M, Meta>, metric: M, t: number, value: number, weight = 1): void {
    let s = e.series[metric];
    if (!s) {
      const resolution = this.opts.resolution?.[metric] ?? this.opts.series.resolution;
      s = new Series({ ...this.opts.series, resolution });
      e.series[metric] = s;
    }
    s.record(t, value, weight);
    if (t > e.lastT) e.lastT = t;
  }

  end(key: string, t: number): void {
    const e = this.entries.get(key);
    if (e && e.endedT === undefined) {
      e.endedT = t;
      this.endedOrder.push(key);
    }
  }

  get(key: string): KeyEntry<M, Meta> | undefined {
    return this.entries.get(key);
  }

  figures(e: KeyEntry<M, Meta>, metric: M, now: number, windowMs: number): WindowFigures | undefined {
    return e.series[metric]?.figures(now, windowMs);
  }

  values(): IterableIterator<KeyEntry<M, Meta>> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops keys whose newest sample is older than the longest window. */
  expire(now: number): number {
    const horizon = now - this.opts.series.maxWindowMs;
    let n = 0;
    for (const [k, e] of this.entries) {
      if (e.lastT < horizon) {
        this.entries.delete(k);
        n++;
      } else {
        for (const s of Object.values(e.series) as Series[]) s.prune(now);
      }
    }
    this.expired += n;
    // keys that expired without being evicted leave the queue here, so it stays bounded
    if (this.endedOrder.length > this.entries.size) this.endedOrder = this.endedOrder.filter((k) => this.entries.get(k)?.endedT !== undefined);
    return n;
  }

  approxBytes(): number {
    let b = 0;
    for (const e of this.entries.values()) {
      b += 200;
      for (const s of Object.values(e.series) as Series[]) b += s.approxBytes();
    }
    return b;
  }

  // Over the bound: the key that ended first goes (its figures are the least likely asked for).
  private evictEnded(): boolean {
    while (this.endedOrder.length > 0) {
      const key = this.endedOrder.shift()!;
      if (this.entries.get(key)?.endedT !== undefined) {
        this.entries.delete(key);
        this.evicted++;
        return true;
      }
    }
    return false;
  }
}
