// The agent's exit batch: the store rows and resource windows of exits and reaps, applied in
// batches on the store's flush cadence instead of at every drain of the ring.
//
// Why. Neither consumer is read within a drain: store rows are committed every flush interval
// anyway, and windows are read by scrapes and `top`. On the VM we measured, much of what a drain
// costs is the first touch of each code path and object after the thread slept (caches and TLB
// are cold after a wakeup), so work done for two exits per drain costs more than the same work
// done for forty at once (bench/README.md, "Session 7"). One batch is applied per flush
// interval, then committed at once: the store's own flush timer, armed by the first row, is
// cleared by that commit. In the agent the batch is applied at the ticker's tick (the `ticker`
// option), in the wakeup the sweeps and the ring's drain already share, so it adds no wakeup of
// its own ("Session 21").
//
// Copies, not the events. What waits is copied into slots the batch reuses: the exit's numbers
// and the few strings the store and the windows read. Held for up to a second, the events
// themselves (and the table entry each one references) outlived V8's young generation, so
// every exit left its event, usage, enrichment and entry to the major GC (bench/README.md,
// "Session 20"). Now they die in the drain that decoded them.
//
// Bounds. An exit reaches the store and the windows within the flush interval (the same bound
// as before for the store), sooner when `maxEvents` wait. Order is kept: a reap is applied after
// its exit. `close()` applies what waits, so a stopping agent loses nothing.
import type { ExitEvent, ExitUsage, KText, LifecycleEvent } from '../shared/events.js';
import type { Enriched } from '../process/index.js';
import type { Tick, Ticker } from './ticker.js';
import { DOUBLE_ZERO } from '../shared/numbers.js';

/** What an exit's store row and windows read of the table's enrichment (a copy). */
export interface HeldEnrichment {
  execId: string;
  parentExecId: string | null;
  ppid: number;
  comm: string;
  durationNs: bigint | undefined;
  zombieNs: bigint | undefined;
  entry: {
    filename: string | null;
    argv: readonly KText[] | null;
    argsRedacted: boolean;
    uid: number | null;
    cgroupId: bigint | null;
    startNs: bigint;
  };
}

// doubles from the start: the decoder's usage objects share this shape (src/shared/numbers.ts)
const blankUsage = (): ExitUsage => ({
  cpuNs: DOUBLE_ZERO, utimeNs: DOUBLE_ZERO, stimeNs: DOUBLE_ZERO, maxRssKb: DOUBLE_ZERO, readBytes: DOUBLE_ZERO, writeBytes: DOUBLE_ZERO,
  rchar: DOUBLE_ZERO, wchar: DOUBLE_ZERO, minflt: DOUBLE_ZERO, majflt: DOUBLE_ZERO, nvcsw: DOUBLE_ZERO, nivcsw: DOUBLE_ZERO,
});

/** One waiting exit or reap. A slot is reused batch after batch; read it only inside apply. */
export class ExitSlot {
  kind: 'exit' | 'reap' = 'exit';
  /** a reap whose exit waits in the same batch: that exit's slot carries its zombie time
   *  (en.zombieNs), so the store writes the row whole and this reap needs no update */
  paired = false;
  /** the exit event, copied (of a reap, only pid is set) */
  readonly ev: ExitEvent = {
    type: 'exit', ktimeNs: 0n, seq: 0n, cpu: 0, flags: 0, pid: 0, tid: 0, ppid: 0, startNs: 0n, status: 0,
    exitCode: null, signal: null, coreDumped: false, comm: { text: '' }, usage: blankUsage(),
  };
  readonly en: HeldEnrichment = {
    execId: '', parentExecId: null, ppid: 0, comm: '', durationNs: undefined, zombieNs: undefined,
    entry: { filename: null, argv: null, argsRedacted: false, uid: null, cgroupId: null, startNs: 0n },
  };

  hold(ev: LifecycleEvent, en: Enriched): void {
    const h = this.en;
    h.execId = en.execId;
    h.zombieNs = en.zombieNs;
    this.paired = false;
    this.ev.pid = ev.pid;
    if (ev.type !== 'exit') {
      this.kind = 'reap';
      return;
    }
    this.kind = 'exit';
    const x = this.ev;
    x.ktimeNs = ev.ktimeNs;
    x.seq = ev.seq;
    x.cpu = ev.cpu;
    x.flags = ev.flags;
    x.tid = ev.tid;
    x.ppid = ev.ppid;
    x.startNs = ev.startNs;
    x.status = ev.status;
    x.exitCode = ev.exitCode;
    x.signal = ev.signal;
    x.coreDumped = ev.coreDumped;
    x.comm.text = ev.comm.text;
    x.comm.raw = ev.comm.raw;
    const u = ev.usage, c = x.usage;
    c.cpuNs = u.cpuNs;
    c.utimeNs = u.utimeNs;
    c.stimeNs = u.stimeNs;
    c.maxRssKb = u.maxRssKb;
    c.readBytes = u.readBytes;
    c.writeBytes = u.writeBytes;
    c.rchar = u.rchar;
    c.wchar = u.wchar;
    c.minflt = u.minflt;
    c.majflt = u.majflt;
    c.nvcsw = u.nvcsw;
    c.nivcsw = u.nivcsw;
    h.parentExecId = en.parentExecId;
    h.ppid = en.ppid;
    h.comm = en.comm;
    h.durationNs = en.durationNs;
    const e = en.entry, he = h.entry;
    he.filename = e.filename;
    he.argv = e.argv;
    he.argsRedacted = e.argsRedacted;
    he.uid = e.uid;
    he.cgroupId = e.cgroupId;
    he.startNs = e.startNs;
  }

  /** Between batches, drops what only this slot might keep alive (an argv array, raw comm
   *  bytes); its strings are the table's records' too. */
  release(): void {
    this.en.entry.argv = null;
    this.ev.comm.raw = undefined;
  }
}

export interface ExitBatchOptions {
  /** ms from the first waiting event to the batch's application (read at each arming) */
  intervalMs: () => number;
  /** a batch this large is applied at once */
  maxEvents: number;
  /** applies one exit or reap; it guards its consumers itself (a throw is only counted here) */
  apply: (slot: ExitSlot) => void;
  /** after a batch: commit it */
  done: () => void;
  /** the agent's ticker: a batch is applied at its tick every `intervalMs` (in the wakeup the
   *  sweeps and the ring's drain already share) instead of on a timer of its own */
  ticker?: Pick<Ticker, 'every'>;
}

/** How far before its reap an exit is looked for (pairReaps): a process's exit and reap are
 *  a few records apart, however many processes end at once. */
const PAIR_WINDOW = 64;

export class ExitBatch {
  private readonly slots: ExitSlot[] = [];
  private n = 0;
  /** for the events that come after close() */
  private readonly late = new ExitSlot();
  private timer: NodeJS.Timeout | null = null;
  /** with a ticker: its entry, and the interval it was made for (a reload may change it) */
  private tick: Tick | null = null;
  private tickMs = 0;
  private closed = false;
  /** applies that threw (the agent's apply guards its consumers, so a throw here is a bug) */
  errors = 0;

  constructor(private readonly opts: ExitBatchOptions) {}

  get waiting(): number {
    return this.n;
  }

  push(ev: LifecycleEvent, en: Enriched): void {
    if (this.closed) {
      // after close (a late drain of the stopping pipeline): apply at once
      this.late.hold(ev, en);
      this.opts.apply(this.late);
      this.late.release();
      return;
    }
    if (this.n === this.slots.length) this.slots.push(new ExitSlot());
    this.slots[this.n++]!.hold(ev, en);
    if (this.n >= this.opts.maxEvents) {
      this.flush();
      return;
    }
    if (this.n === 1) this.arm();
  }

  /** The first event waits: the batch is applied within one interval from now. */
  private arm(): void {
    const ticker = this.opts.ticker;
    if (ticker !== undefined) {
      // one entry for good; read the interval again at each batch's first event, as the timer did
      const ms = this.opts.intervalMs();
      if (this.tick !== null && this.tickMs === ms) return;
      this.tick?.cancel();
      this.tick = ticker.every(ms, this.flush);
      this.tickMs = ms;
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
    const n = this.n;
    if (n === 0) return;
    const { apply } = this.opts;
    this.pairReaps(n);
    for (let i = 0; i < n; i++) {
      const s = this.slots[i]!;
      try {
        apply(s);
      } catch {
        // the agent's apply guards each consumer itself; a throw here must not drop the rest
        this.errors++;
      }
      s.release();
    }
    this.n = 0;
    // a burst's slots are not kept: at most a steady second's worth stays allocated
    if (this.slots.length > 2 * n && this.slots.length > 64) this.slots.length = Math.max(64, n);
    this.opts.done();
  };

  /** Gives each exit waiting here the zombie time of its reap, when that waits here too (nearly
   *  always: a parent reaps its child within milliseconds), and marks the reap paired. The store
   *  then writes the row whole and keeps no index of rows still to reap (store/pending.ts). The
   *  exit is looked for among the PAIR_WINDOW slots before its reap. */
  private pairReaps(n: number): void {
    const slots = this.slots;
    for (let i = 1; i < n; i++) {
      const r = slots[i]!;
      if (r.kind !== 'reap') continue;
      for (let j = i - 1; j >= 0 && j >= i - PAIR_WINDOW; j--) {
        const x = slots[j]!;
        if (x.kind !== 'exit' || x.en.execId !== r.en.execId) continue;
        if (x.en.zombieNs === undefined && r.en.zombieNs !== undefined) {
          x.en.zombieNs = r.en.zombieNs;
          r.paired = true;
        }
        break;
      }
    }
  }

  /** Applies what waits; later pushes are applied at once. */
  close(): void {
    this.flush();
    this.closed = true;
    this.tick?.cancel();
    this.tick = null;
  }
}
