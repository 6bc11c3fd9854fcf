// Periodic work that shares wakeups. Callbacks run on one Node timer per base period, in the
// order they were added; a period that is a multiple of a base runs on the base's timer every
// k-th tick. So the agent's sweeps (health and resources every second, process states every
// 2 s, the heap governor every 5 s) wake the JS thread once a second, not at four phases.
//
// Why. On the VM we measure on, a wakeup of the idle JS thread costs ~90 µs before any work
// (the kernel, libuv, the JS entry; bench/README.md, "Session 11"), and the first touch of each
// sweep's code and data after a sleep costs more again. Sweeps in one wakeup share both.
//
// A callback that throws does not stop the others of its tick: the first error is rethrown
// after all of them ran, as their own timers' errors were before.
export interface Tick {
  cancel(): void;
}

interface Entry {
  fn: () => void;
  live: boolean;
  /** its period in ticks of its group's base period */
  stride: number;
  /** ticks until it runs next */
  left: number;
  ref: boolean;
}

interface Group {
  period: number;
  timer: NodeJS.Timeout;
  entries: Entry[];
}

export class Ticker {
  private readonly groups: Group[] = [];

  /** `before`: runs first at every tick (the agent drains the lifecycle ring there, so the
   *  sweeps read a current process table). A throw from it is treated like a callback's. */
  constructor(private readonly opts: { before?: () => void } = {}) {}

  /** Calls `fn` every `ms`, on the timer of a base period that divides `ms` when there is one.
   *  `ref: false` (the default) lets the process exit while the callback waits. */
  every(ms: number, fn: () => void, opts: { ref?: boolean } = {}): Tick {
    const period = Math.max(1, Math.round(ms));
    let g = this.groups.find((x) => period % x.period === 0);
    if (g === undefined) {
      g = this.newGroup(period);
      // groups whose period is a multiple of the new one move onto its timer
      for (const other of this.groups.slice()) {
        if (other === g || other.period % period !== 0) continue;
        for (const e of other.entries) this.join(g, e, other.period * e.stride);
        clearInterval(other.timer);
        this.groups.splice(this.groups.indexOf(other), 1);
      }
    }
    const entry: Entry = { fn, live: true, stride: 1, left: 1, ref: opts.ref === true };
    this.join(g, entry, period);
    return {
      cancel: () => {
        if (!entry.live) return;
        entry.live = false;
        // the entry's group now (a later, shorter period may have taken it over)
        const group = this.groups.find((x) => x.entries.includes(entry));
        if (group === undefined) return;
        group.entries.splice(group.entries.indexOf(entry), 1);
        if (group.entries.length === 0) {
          clearInterval(group.timer);
          this.groups.splice(this.groups.indexOf(group), 1);
        } else keepAlive(group);
      },
    };
  }

  /** Timers in use: one per base period with callbacks (for tests). */
  get timers(): number {
    return this.groups.length;
  }

  private newGroup(period: number): Group {
    const entries: Entry[] = [];
    const before = this.opts.before;
    const g: Group = { period, timer: setInterval(() => runAll(entries, before), period), entries };
    g.timer.unref();
    this.groups.push(g);
    return g;
  }

  private join(g: Group, e: Entry, period: number): void {
    e.stride = Math.max(1, Math.round(period / g.period));
    e.left = e.stride;
    g.entries.push(e);
    keepAlive(g);
  }
}

/** The timer keeps the process alive while any of its callbacks asked for it. */
function keepAlive(g: Group): void {
  if (g.entries.some((e) => e.ref)) g.timer.ref();
  else g.timer.unref();
}

function runAll(entries: readonly Entry[], before: (() => void) | undefined): void {
  let first: unknown = null;
  let failed = false;
  if (before) {
    try {
      before();
    } catch (err) {
      first = err;
      failed = true;
    }
  }
  // a copy: a callback may cancel another (then it is skipped) or add one (it waits a period)
  const list = entries.slice();
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (!e.live || --e.left > 0) continue;
    e.left = e.stride;
    try {
      e.fn();
    } catch (err) {
      if (!failed) first = err;
      failed = true;
    }
  }
  if (failed) throw first;
}
