// Periodic work that shares wakeups. Every callback of one period runs on one Node timer, in
// the order it was added, so the agent's once-a-second sweeps (health, process states,
// resources) wake the JS thread once a second, not three times at three phases.
//
// Why. On the VM we measure on, a wakeup of the JS thread costs ~90 µs before any work (the
// kernel, libuv, the JS entry; bench/README.md, "Session 11"), and the first touch of each
// sweep's code and data after a sleep costs more again. Three sweeps in one wakeup share both.
//
// A callback that throws does not stop the others of its tick: the first error is rethrown
// after all of them ran, as their own timers' errors were before.
export interface Tick {
  cancel(): void;
}

interface Entry {
  fn: () => void;
  live: boolean;
}

interface Group {
  timer: NodeJS.Timeout;
  entries: Entry[];
  /** callbacks that keep the process alive (the timer is ref'd while any does) */
  refs: number;
}

export class Ticker {
  private readonly groups = new Map<number, Group>();

  /** Calls `fn` every `ms`, on the same timer as every other callback of that period.
   *  `ref: false` (the default) lets the process exit while the callback waits. */
  every(ms: number, fn: () => void, opts: { ref?: boolean } = {}): Tick {
    const period = Math.max(1, Math.round(ms));
    let g = this.groups.get(period);
    if (g === undefined) {
      const entries: Entry[] = [];
      g = { timer: setInterval(() => runAll(entries), period), entries, refs: 0 };
      g.timer.unref();
      this.groups.set(period, g);
    }
    const group = g;
    const ref = opts.ref === true;
    const entry: Entry = { fn, live: true };
    group.entries.push(entry);
    if (ref && group.refs++ === 0) group.timer.ref();
    return {
      cancel: () => {
        if (!entry.live) return;
        entry.live = false;
        group.entries.splice(group.entries.indexOf(entry), 1);
        if (ref && --group.refs === 0) group.timer.unref();
        if (group.entries.length === 0) {
          clearInterval(group.timer);
          if (this.groups.get(period) === group) this.groups.delete(period);
        }
      },
    };
  }

  /** Timers in use: one per period with callbacks (for tests and the health report). */
  get timers(): number {
    return this.groups.size;
  }
}

function runAll(entries: readonly Entry[]): void {
  let first: unknown = null;
  let failed = false;
  // a copy: a callback may cancel another (then it is skipped) or add one (it waits a period)
  const list = entries.slice();
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (!e.live) continue;
    try {
      e.fn();
    } catch (e) {
      if (!failed) first = e;
      failed = true;
    }
  }
  if (failed) throw first;
}
