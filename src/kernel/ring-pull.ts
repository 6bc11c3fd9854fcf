// The efficient delivery policy's consumer: the JS thread drains the ring on a timer, through
// one synchronous addon call per tick, and sleeps when the stream stops (docs/architecture.md,
// "Delivery policies"). No consumer thread, no cross-thread hand-off, no wakeup per record:
// - awake: a drain every `tickMs`; producers wake us early only past the watermark;
// - after `idleTicks` empty drains: asleep (flag 1, no timer); the next record wakes us, and
//   its drain comes one tick later, so the records around it (a process's fork, exec, exit and
//   reap) arrive together;
// - asleep: a drain every `sleepCheckMs` anyway, in case a wakeup could not be sent (a full
//   ring: records are then already being lost and counted).
// - on demand: drainNow() drains at once, for a reader that wants the latest (the agent drains
//   before it answers a request or sweeps); setTickMs() changes the interval while running;
// - paced by the owner (setPaced): no timer of ours and no sleeping; the owner drains
//   (pacedTick) in a wakeup it has anyway (the agent: its once-a-second sweeps), and producers
//   wake us only past the watermark.
import { native, type BpfObject, type RingPullHandle, type RingPullOptions, type RingStats } from './native.js';

export interface PullPolicy {
  /** ms between drains while records flow: the delivery latency bound */
  tickMs: number;
  /** empty drains in a row before sleeping */
  idleTicks: number;
  /** ms between safety drains while asleep */
  sleepCheckMs: number;
  /** bytes pending in the ring that wake JS before the tick (0: never) */
  wakeAboveBytes: number;
  /** the reused drain buffer; larger drains get a buffer of their own */
  bufferBytes: number;
}

export const DEFAULT_PULL_POLICY: PullPolicy = {
  tickMs: 10,
  idleTicks: 2,
  sleepCheckMs: 5000,
  wakeAboveBytes: 0,
  bufferBytes: 256 << 10,
};

export type PullBatchHandler = (batch: Buffer) => void;

const NO_DROPS: number[] = new Array(256).fill(0);
/** drainNow's bound: 16 slices of 256 KiB, the default ring's size */
const MAX_DEMAND_SLICES = 16;

export class RingPuller {
  private readonly handle: RingPullHandle;
  private readonly buf: Buffer;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;
  private asleep = false;
  private idle = 0;
  private closed = false;
  private ticks = 0;
  private batches = 0;
  private sleepWakes = 0;
  private watermarkWakes = 0;
  private timedDrains = 0;
  private demandDrains = 0;
  /** a batch is being handed over: a drain asked for from inside it waits (the reused buffer
   *  holds the batch being read) */
  private delivering = false;
  /** ms between drains while records flow (the policy's tickMs until setTickMs) */
  private tickMs: number;
  /** the owner calls pacedTick() every tickMs: no timer of ours (setPaced) */
  private paced = false;
  /** called after each drain a watermark wake brought (the backlog passed the watermark): the
   *  owner may look at its loss counters then, rather than at its next sample */
  onPressure: (() => void) | null = null;

  constructor(
    obj: BpfObject,
    map: string,
    opts: Omit<RingPullOptions, 'wakeAbovePages'>,
    readonly policy: PullPolicy,
    private readonly onBatch: PullBatchHandler,
  ) {
    const n = native();
    this.tickMs = policy.tickMs;
    this.buf = Buffer.allocUnsafe(policy.bufferBytes);
    const pages = policy.wakeAboveBytes > 0 ? Math.max(1, Math.ceil(policy.wakeAboveBytes / 4096)) : 0;
    this.handle = n.ringPullOpen(obj, map, { ...opts, wakeAbovePages: pages }, this.onWake);
    this.schedule(this.tickMs);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    // Reuse the timer object: refresh() re-arms it without allocating.
    if (this.timer && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(this.tick, ms);
    // The uv_poll keeps the loop alive while we consume; the timer need not.
    this.timer.unref();
  }

  /** Hands a drain's result to the handler; false if it held nothing. */
  private deliver(r: number | Buffer): boolean {
    if (typeof r === 'number' && r <= 0) return false;
    this.batches++;
    this.delivering = true;
    try {
      this.onBatch(typeof r === 'number' ? this.buf.subarray(0, r) : r);
    } finally {
      this.delivering = false;
    }
    return true;
  }

  /** The interval between drains while records flow, from now on. */
  setTickMs(ms: number): void {
    const next = Math.max(1, Math.round(ms));
    if (next === this.tickMs) return;
    this.tickMs = next;
    // awake: the next drain comes at the new interval (asleep: the next record's wakeup uses it;
    // paced: the owner's wakeups bring it)
    if (!this.asleep && !this.closed && !this.paced) this.schedule(next);
  }

  get intervalMs(): number {
    return this.tickMs;
  }

  /** Paced (true): the owner drains every tickMs (pacedTick, and drainNow for its readers), in a
   *  wakeup it has anyway (the agent's ticker), so this consumer keeps no timer and never sleeps:
   *  a record wakes no one until the backlog passes the watermark (with no watermark in the
   *  policy, any record would; the agent always has one). false: back to our own timer. Why: on
   *  the VM we measured, each wakeup of the JS thread costs more than the drain it carries
   *  (caches and TLB are cold after a sleep), so the ring's drain rides the sweeps' wakeup
   *  (bench/README.md, "Session 21"). */
  setPaced(paced: boolean): void {
    if (this.closed || paced === this.paced) return;
    this.paced = paced;
    this.idle = 0;
    if (!paced) {
      this.asleep = false;
      this.schedule(this.tickMs);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerMs = 0;
    if (!this.asleep) return;
    // Asleep, any record would wake us. A drain sets the flag back to the watermark (inside a
    // delivery it cannot run: the first record's wakeup then does it, in onWake).
    this.asleep = false;
    this.drainSlices();
  }

  get isPaced(): boolean {
    return this.paced;
  }

  /** The owner's periodic drain while paced (counted as a tick, not as a reader's demand). */
  pacedTick(): void {
    if (this.closed || !this.paced) return;
    this.ticks++;
    this.drainSlices();
  }

  /** Drains what the ring holds now and hands it over before returning: for a reader that wants
   *  the latest. Asleep, it stays asleep unless it finds records. A no-op inside a delivery. */
  drainNow(): void {
    if (this.closed || this.delivering) return;
    this.demandDrains++;
    const n = native();
    if (this.asleep) {
      const r = n.ringPullSleep(this.handle, this.buf);
      if (r === -1) return;
      this.asleep = false;
      this.idle = 0;
      this.schedule(this.tickMs);
      this.deliver(r);
      return;
    }
    this.drainSlices();
  }

  /** One drain stops at a slice (256 KiB, bufferBytes): a reader wants all of it, so drain
   *  again while a drain came back large, within a bound (a producer faster than us never ends). */
  private drainSlices(): void {
    if (this.delivering) return;
    const n = native();
    for (let i = 0; i < MAX_DEMAND_SLICES; i++) {
      const r = n.ringPullDrain(this.handle, this.buf);
      if (!this.deliver(r)) break;
      this.idle = 0;
      if (typeof r === 'number' && r < this.buf.length >> 1) break;
    }
  }

  private readonly tick = (): void => {
    if (this.closed) return;
    if (this.delivering) {
      // a handler waited on the loop mid-batch (it cannot, today): drain at the next tick
      this.schedule(this.tickMs);
      return;
    }
    this.ticks++;
    const n = native();
    if (this.asleep) {
      // Safety drain: stay asleep (flag 1) unless it finds records.
      const r = n.ringPullSleep(this.handle, this.buf);
      if (r === -1) {
        this.schedule(this.policy.sleepCheckMs);
        return;
      }
      this.asleep = false;
      this.timedDrains++;
      this.idle = 0;
      this.schedule(this.tickMs);
      this.deliver(r);
      return;
    }
    // Re-arm before delivering: a handler that throws must not stop the stream.
    this.schedule(this.tickMs);
    if (this.deliver(n.ringPullDrain(this.handle, this.buf))) {
      this.idle = 0;
      return;
    }
    if (++this.idle < this.policy.idleTicks) return;
    const r = n.ringPullSleep(this.handle, this.buf);
    if (r === -1) {
      this.asleep = true;
      this.schedule(this.policy.sleepCheckMs);
      return;
    }
    this.idle = 0;
    this.deliver(r);
  };

  private readonly onWake = (): void => {
    if (this.closed) return;
    if (this.paced) {
      // past the watermark (or a wakeup asked for before we were paced): one slice, as a tick
      // drains. While the backlog stays past the watermark, the next record's commit wakes us
      // again; between wakes the loop turns (timers, requests, check runs), which an overloaded
      // consumer needs to report its own loss in time (test/faults/overload.test.ts).
      this.watermarkWakes++;
      if (!this.delivering) this.deliver(native().ringPullDrain(this.handle, this.buf));
      this.onPressure?.();
      return;
    }
    if (this.asleep) {
      // A record after an idle spell: drain one tick from now, with what follows it.
      this.asleep = false;
      this.sleepWakes++;
      this.idle = 0;
      this.schedule(this.tickMs);
      return;
    }
    // Awake and woken: the backlog passed the watermark. Drain now.
    this.watermarkWakes++;
    this.tick();
    this.onPressure?.();
  };

  /** Drains until the ring is empty, then closes. Detach the programs first: the ring then
   *  holds the stream's tail, and every record of it is handed over before this returns. */
  close(): void {
    if (this.closed) return;
    const n = native();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (let i = 0; i < 1024 && this.deliver(n.ringPullDrain(this.handle, this.buf)); i++);
    this.closed = true;
    this.finalStats = this.stats();
    n.ringPullClose(this.handle);
  }

  private finalStats: RingStats | null = null;

  /** In the shape of the threaded consumer's stats, so accounting and status read both. */
  stats(): RingStats {
    if (this.finalStats) return this.finalStats;
    const s = native().ringPullStats(this.handle);
    return {
      delivery: 'efficient',
      records: s.records,
      batches: this.batches,
      deliveredBatches: this.batches,
      pendingBatches: 0,
      pendingBytes: 0,
      sleeps: s.sleeps,
      timedRecords: this.timedDrains,
      running: s.running,
      droppedRecords: s.droppedRecords,
      droppedBatches: 0,
      droppedByTag: NO_DROPS,
      wakeups: s.wakeups,
      timedConsumes: this.timedDrains,
      lingerRecords: 0,
      lingerSteps: 0,
      holdWaits: 0,
      realtimeError: null,
      ticks: this.ticks,
      drains: s.drains,
      sleepWakes: this.sleepWakes,
      watermarkWakes: this.watermarkWakes,
      demandDrains: this.demandDrains,
      intervalMs: this.tickMs,
      paced: this.paced,
      overflows: s.overflows,
      cutDrains: s.cutDrains,
    };
  }
}
