// Event history: a bounded ring of compact event facts for count(... where ..., window) and the
// rates built on it. Fed from the lifecycle stream (src/shared/events.ts) and state events.
// Times are ms on the history's own clock (the agent feeds CLOCK_BOOTTIME ms; a replay feeds the
// recording's timestamps), and queries pass `now` on the same clock.
import type { LifecycleEvent, StateEvent } from '../shared/events.js';

export type FactValue = number | string | boolean | null;

export interface EventFact {
  kind: 'exec' | 'fork' | 'exit' | 'exec_failed' | 'reap' | 'state';
  /** ms on the history clock */
  t: number;
  /** fields named as in EVENT_KINDS (catalogue.ts); durations in seconds, sizes in bytes */
  f: Record<string, FactValue>;
}

/** ~250 bytes a fact: about 12 MB when full */
export const DEFAULT_HISTORY_CAPACITY = 50_000;

const nsToS = (ns: bigint | null | undefined): number | null => (ns === null || ns === undefined ? null : Number(ns) / 1e9);

/** Converts a decoded lifecycle event to a fact; thread forks and thread exits are skipped. */
export function lifecycleFact(ev: LifecycleEvent, ppid?: number, extra?: { durationNs?: bigint | null; zombieNs?: bigint | null }): EventFact | null {
  const t = Number(ev.ktimeNs / 1_000_000n);
  switch (ev.type) {
    case 'exec':
      return { kind: 'exec', t, f: { pid: ev.pid, ppid: ev.ppid, uid: ev.uid, comm: ev.comm.text, filename: ev.filename.text } };
    case 'fork':
      if (ev.thread) return null;
      return { kind: 'fork', t, f: { pid: ev.pid, ppid: ev.ppid, comm: ev.comm.text } };
    case 'exit':
      if (ev.tid !== ev.pid) return null;
      return {
        kind: 'exit',
        t,
        f: {
          pid: ev.pid, ppid: ppid ?? ev.ppid, comm: ev.comm.text, exit_code: ev.exitCode, signal: ev.signal, core_dumped: ev.coreDumped,
          failed: ev.signal !== null || ev.exitCode !== 0, duration: nsToS(extra?.durationNs), cpu: nsToS(ev.usage.cpuNs), max_rss: ev.usage.maxRssKb * 1024,
        },
      };
    case 'exec_failed':
      return { kind: 'exec_failed', t, f: { pid: ev.pid, comm: ev.comm.text, filename: ev.filename.text, errno: ev.errno } };
    case 'reap':
      return { kind: 'reap', t, f: { pid: ev.pid, zombie: nsToS(extra?.zombieNs ?? (ev.exitNs > 0n ? ev.ktimeNs - ev.exitNs : null)) } };
  }
}

export function stateFact(ev: StateEvent): EventFact {
  return { kind: 'state', t: Number(ev.ktimeNs / 1_000_000n), f: { pid: ev.pid, comm: ev.comm.text, from: ev.from, to: ev.to, duration: nsToS(ev.durationNs) } };
}

export class EventHistory {
  private readonly ring: (EventFact | undefined)[];
  private next = 0;
  private size = 0;
  /** facts overwritten before they aged out: a window reaching back that far undercounts */
  overwritten = 0;
  /** time of the oldest fact still held; a count over a longer window is partial */
  private latest = -Infinity;

  constructor(readonly capacity: number = DEFAULT_HISTORY_CAPACITY) {
    this.ring = new Array(Math.max(1, capacity));
  }

  add(fact: EventFact | null): void {
    if (fact === null) return;
    if (this.size === this.ring.length) this.overwritten++;
    else this.size++;
    this.ring[this.next] = fact;
    this.next = (this.next + 1) % this.ring.length;
    if (fact.t > this.latest) this.latest = fact.t;
  }

  get length(): number {
    return this.size;
  }

  /** time of the newest fact (-Infinity when empty): a replay's "now" */
  get newest(): number {
    return this.latest;
  }

  /** time of the oldest fact held, or null when empty */
  oldest(): number | null {
    if (this.size === 0) return null;
    return this.ring[(this.next - this.size + this.ring.length) % this.ring.length]!.t;
  }

  /** Counts facts of `kind` with now − windowMs < t ≤ now that pass `pred`. Newest first, so a
   *  short window touches only recent facts. */
  count(kind: EventFact['kind'], windowMs: number, now: number, pred: ((f: EventFact) => boolean) | null): number {
    let n = 0;
    const from = now - windowMs;
    for (let k = 0, i = this.next - 1; k < this.size; k++, i--) {
      if (i < 0) i += this.ring.length;
      const f = this.ring[i]!;
      // facts arrive in time order except across CPUs (a few ms); stop well past the window
      if (f.t <= from - 5_000) break;
      if (f.t <= from || f.t > now || f.kind !== kind) continue;
      if (pred === null || pred(f)) n++;
    }
    return n;
  }
}
