// The agent's exit batch: the store rows and resource windows of exits and reaps, applied in
// batches on the store's flush cadence instead of at every drain of the ring.
//
// Why. Neither consumer is read within a drain: store rows are committed every flush interval
// anyway, and windows are read by scrapes and `top`. On the VM we measured, much of what a drain
// costs is the first touch of each code path and object after the thread slept (caches and TLB
// are cold after a wakeup), so work done for two exits per drain costs more than the same work
// done for forty at once (bench/README.md, "Session 7"). One batch is applied per flush
// interval, then committed at once: the store's own flush timer, armed by the first row, is
// cleared by that commit, so the batch adds no wakeup of its own.
//
// Bounds. An exit reaches the store and the windows within the flush interval (the same bound
// as before for the store), sooner when `maxEvents` wait. Order is kept: a reap is applied after
// its exit. `close()` applies what waits, so a stopping agent loses nothing.
import type { LifecycleEvent } from '../shared/events.js';
import type { Enriched } from '../process/index.js';

export interface ExitBatchOptions {
  /** ms from the first waiting event to the batch's application (read at each arming) */
  intervalMs: () => number;
  /** a batch this large is applied at once */
  maxEvents: number;
  /** applies one event; it guards its consumers itself (a throw is only counted here) */
  apply: (ev: LifecycleEvent, en: Enriched) => void;
  /** after a batch: commit it */
  done: () => void;
}

export class ExitBatch {
  private readonly events: LifecycleEvent[] = [];
  private readonly enriched: Enriched[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** applies that threw (the agent's apply guards its consumers, so a throw here is a bug) */
  errors = 0;

  constructor(private readonly opts: ExitBatchOptions) {}

  get waiting(): number {
    return this.events.length;
  }

  push(ev: LifecycleEvent, en: Enriched): void {
    if (this.closed) {
      // after close (a late drain of the stopping pipeline): apply at once
      this.opts.apply(ev, en);
      return;
    }
    this.events.push(ev);
    this.enriched.push(en);
    if (this.events.length >= this.opts.maxEvents) {
      this.flush();
      return;
    }
    if (this.timer === null) {
      this.timer = setTimeout(this.flush, this.opts.intervalMs());
      this.timer.unref();
    }
  }

  readonly flush = (): void => {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const n = this.events.length;
    if (n === 0) return;
    const { apply } = this.opts;
    for (let i = 0; i < n; i++) {
      try {
        apply(this.events[i]!, this.enriched[i]!);
      } catch {
        // the agent's apply guards each consumer itself; a throw here must not drop the rest
        this.errors++;
      }
    }
    this.events.length = 0;
    this.enriched.length = 0;
    this.opts.done();
  };

  /** Applies what waits; later pushes are applied at once. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
