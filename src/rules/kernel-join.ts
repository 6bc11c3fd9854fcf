// The kernel log's join to processes: a line can be read before the ring delivers the exec of
// the pid it names. Such a line waits (bounded in time and number) for an event of that pid,
// then is evaluated again with the process, or without it once the wait is over.
import type { Trigger } from './scope.js';
import type { CompiledRule } from './tree.js';

export interface Deferred {
  rule: CompiledRule;
  trigger: Trigger;
  pid: number;
  /** boottime ns after which it is evaluated without the process */
  deadlineNs: bigint;
}

export const DEFER_NS = 2_000_000_000n;
const MAX_DEFERRED = 1024;

export class DeferredLines {
  private queue: Deferred[] = [];
  /** deferred evaluations: retried with the process, expired without it, dropped over the bound */
  readonly stats = { deferred: 0, joined: 0, expired: 0, dropped: 0 };

  get pending(): number {
    return this.queue.length;
  }

  add(d: Deferred): void {
    this.stats.deferred++;
    this.queue.push(d);
    if (this.queue.length > MAX_DEFERRED) {
      this.queue.shift();
      this.stats.dropped++;
    }
  }

  /** The lines waiting for `pid`, taken out of the queue. */
  takePid(pid: number): Deferred[] {
    return this.take((d) => d.pid === pid, 'joined');
  }

  /** The lines whose wait is over at `nowNs`, taken out of the queue. */
  takeExpired(nowNs: bigint): Deferred[] {
    return this.take((d) => d.deadlineNs <= nowNs, 'expired');
  }

  private take(pred: (d: Deferred) => boolean, counter: 'joined' | 'expired'): Deferred[] {
    if (this.queue.length === 0) return [];
    const due: Deferred[] = [];
    this.queue = this.queue.filter((d) => {
      if (!pred(d)) return true;
      this.stats[counter]++;
      due.push(d);
      return false;
    });
    return due;
  }
}
