// Event counters: what count(...), rate(...), exec_rate and exit_failures read. Each aggregate
// the loaded checks use (aggregates.ts) is a ring of time buckets holding counts, so memory is
// fixed per aggregate whatever the event rate, and a check run sums at most 600 numbers instead
// of scanning events. The feed tests each event only against the predicates of its kind,
// directly on the decoded event (event-fields.ts): no object per event.
//
// Times are ms on the counters' own clock: the agent feeds CLOCK_BOOTTIME (event ktime), a
// replay the recording's ktime, and queries pass `now` on the same clock.
import type { LifecycleEvent, StateEvent } from '../shared/events.js';
import type { EventAggregate } from './aggregates.js';
import { factField, liveField, type EventContext, type EventFact, type EventKind } from './event-fields.js';
import { compilePredicate, type Predicate } from './predicate.js';

/** At most this many buckets per window: a window's start is exact to 1/600 of its length. */
export const MAX_BUCKETS = 600;

/** The finest whole-ms bucket width that splits the window into at most MAX_BUCKETS equal
 *  buckets (1m → 100 ms, 10m → 1 s, 1h → 6 s; a window up to 600 ms → 1 ms). A window that no
 *  width splits finely enough (a prime number of ms) gets ceil(w / 600) ms buckets and may
 *  reach back up to one bucket further. */
export function bucketing(windowMs: number): { widthMs: number; buckets: number } {
  for (let k = Math.min(MAX_BUCKETS, windowMs); k >= Math.min(MAX_BUCKETS / 10, windowMs); k--) {
    if (windowMs % k === 0) return { widthMs: windowMs / k, buckets: k };
  }
  const widthMs = Math.ceil(windowMs / MAX_BUCKETS);
  return { widthMs, buckets: Math.ceil(windowMs / widthMs) };
}

/** Counts of one aggregate in buckets of `widthMs`. Bucket b holds events with
 *  (b − 1)·width < t ≤ b·width; the window read at `now` is the `buckets` buckets ending with
 *  the one that holds now. */
export class WindowCounter {
  readonly widthMs: number;
  readonly buckets: number;
  private readonly counts: Float64Array;
  /** the bucket number each slot holds: a stale slot is recognised, never swept */
  private readonly epochs: Float64Array;
  /** when counting began on the event clock (null: at the first event) */
  since: number | null;
  /** events older than every bucket held (out of order by more than a window): dropped */
  late = 0;

  constructor(readonly windowMs: number, since: number | null) {
    ({ widthMs: this.widthMs, buckets: this.buckets } = bucketing(windowMs));
    this.counts = new Float64Array(this.buckets);
    this.epochs = new Float64Array(this.buckets).fill(-Infinity);
    this.since = since;
  }

  add(t: number): void {
    const b = Math.ceil(t / this.widthMs);
    const i = ((b % this.buckets) + this.buckets) % this.buckets;
    const held = this.epochs[i]!;
    if (held === b) this.counts[i] = this.counts[i]! + 1;
    else if (held < b) {
      this.epochs[i] = b;
      this.counts[i] = 1;
    } else this.late++;
    if (this.since === null) this.since = t;
  }

  /** Events in the window that ends at `now` (rounded up to its bucket). */
  sum(now: number): number {
    const last = Math.ceil(now / this.widthMs);
    const first = last - this.buckets;
    let n = 0;
    for (let i = 0; i < this.buckets; i++) {
      const b = this.epochs[i]!;
      if (b > first && b <= last) n += this.counts[i]!;
    }
    return n;
  }

  /** The part of the window counting has covered. */
  usedMs(now: number): number {
    return this.since === null ? 0 : Math.min(this.windowMs, Math.max(0, now - this.since));
  }
}

type LiveEvent = LifecycleEvent | StateEvent;

/** One predicate of one kind, and the counters (one per window) it feeds. */
interface Filter {
  live: Predicate<LiveEvent, EventContext> | null;
  fact: Predicate<EventFact, undefined> | null;
  counters: WindowCounter[];
}

const NO_CONTEXT: EventContext = {};

/** What the evaluator reads (sources.ts). */
export interface EventCountSource {
  /** events of the aggregate in its window ending at `nowMs`, and the span counting covered;
   *  null when no counter exists for it */
  count(a: EventAggregate, nowMs: number): { n: number; usedMs: number } | null;
}

export class EventCounters implements EventCountSource {
  private counters = new Map<string, WindowCounter>();
  /** filters per event kind; a kind no check reads is absent */
  private byKind: Partial<Record<EventKind, Filter[]>> = {};

  /** Switches to a new set of aggregates. An aggregate whose key (kind, window, predicate
   *  text) was counted before keeps its counts, so a reload does not reset a firing alert's
   *  evidence; new ones start empty, counting from `nowMs` (null: from their first event). */
  configure(aggregates: readonly EventAggregate[], nowMs: number | null = null): void {
    const counters = new Map<string, WindowCounter>();
    const filters = new Map<string, Filter>();
    const byKind: Partial<Record<EventKind, Filter[]>> = {};
    for (const a of aggregates) {
      if (counters.has(a.key)) continue;
      const c = this.counters.get(a.key) ?? new WindowCounter(a.windowMs, nowMs);
      counters.set(a.key, c);
      const fk = `${a.kind}/${a.predText}`;
      let f = filters.get(fk);
      if (f === undefined) {
        f = {
          live: a.pred === null ? null : compilePredicate(a.pred, (name) => liveField(a.kind, name)),
          fact: a.pred === null ? null : compilePredicate(a.pred, factField),
          counters: [],
        };
        filters.set(fk, f);
        (byKind[a.kind] ??= []).push(f);
      }
      f.counters.push(c);
    }
    this.counters = counters;
    this.byKind = byKind;
  }

  /** whether any aggregate is counted: the feed is worth wiring */
  get active(): boolean {
    return this.counters.size > 0;
  }

  onLifecycle(ev: LifecycleEvent, cx: EventContext = NO_CONTEXT): void {
    const filters = this.byKind[ev.type];
    if (filters === undefined) return;
    // thread forks and thread exits are not process events
    if (ev.type === 'fork' ? ev.thread : ev.type === 'exit' && ev.tid !== ev.pid) return;
    this.feedLive(filters, ev, cx);
  }

  onState(ev: StateEvent): void {
    const filters = this.byKind.state;
    if (filters !== undefined) this.feedLive(filters, ev, NO_CONTEXT);
  }

  private feedLive(filters: Filter[], ev: LiveEvent, cx: EventContext): void {
    const t = Math.floor(Number(ev.ktimeNs) / 1e6);
    for (let i = 0; i < filters.length; i++) {
      const f = filters[i]!;
      if (f.live !== null && !f.live(ev, cx)) continue;
      for (let k = 0; k < f.counters.length; k++) f.counters[k]!.add(t);
    }
  }

  /** A recorded event (replay, tests). */
  addFact(fact: EventFact): void {
    const filters = this.byKind[fact.kind];
    if (filters === undefined) return;
    for (const f of filters) if (f.fact === null || f.fact(fact, undefined)) for (const c of f.counters) c.add(fact.t);
  }

  count(a: EventAggregate, nowMs: number): { n: number; usedMs: number } | null {
    const c = this.counters.get(a.key);
    return c === undefined ? null : { n: c.sum(nowMs), usedMs: c.usedMs(nowMs) };
  }

  /** What the counters hold: fixed by the aggregates, not by the events fed. */
  stats(): { aggregates: number; buckets: number; late: number } {
    let buckets = 0;
    let late = 0;
    for (const c of this.counters.values()) {
      buckets += c.buckets;
      late += c.late;
    }
    return { aggregates: this.counters.size, buckets, late };
  }
}
