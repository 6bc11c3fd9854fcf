// The overlap of a sensor reload, in user space: while two generations of the lifecycle hooks
// are attached, one kernel event may be recorded by both (the generation word flipped between
// the old hook's check and the new one's, docs/reload.md). Such a record is the same event
// twice: same type and identity, which never repeats for a real event —
//   fork  the child (tid, start time): a task is created once;
//   exec  (pid, start time, exec_seq): the task's exec counter tells its execs apart;
//   exit  (pid, start time): a process ends once;
//   reap  (pid, start time): and is reaped once.
// exec_failed needs no filter: its hooks consume their per-task entry, so a second generation
// finds nothing to report (bpf/lifecycle.bpf.c). Every record is still counted as captured (the
// loss identity is about the ring); the copies removed here are counted as duplicates.
import type { EventType, LifecycleEvent } from '../shared/events.js';

export class OverlapDedupe {
  private seen: Set<string> | null = null;
  private closeAt = Infinity;
  readonly duplicates: Record<EventType, bigint> = { exec: 0n, fork: 0n, exit: 0n, reap: 0n, exec_failed: 0n };
  /** duplicates removed in the current (or last) overlap */
  lastDuplicates = 0;

  get active(): boolean {
    return this.seen !== null;
  }

  /** Opens the window: call before the new generation's hooks are attached. */
  open(): void {
    this.seen = new Set();
    this.closeAt = Infinity;
    this.lastDuplicates = 0;
  }

  /** The old hooks are detached: the window closes with the first batch handled `graceMs`
   *  from now (by then every record of an event that fired before the detach is in the ring,
   *  so it is in that batch or an earlier one). */
  closeAfter(graceMs: number, now = performance.now()): void {
    if (this.seen) this.closeAt = now + graceMs;
  }

  /** Removes, in place, records already seen in this window. Call per chunk of a batch; a no-op
   *  (one property read) outside a window. */
  filter(events: LifecycleEvent[]): void {
    const seen = this.seen;
    if (seen === null) return;
    let w = 0;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      const key = keyOf(ev);
      if (key !== null) {
        if (seen.has(key)) {
          this.duplicates[ev.type]++;
          this.lastDuplicates++;
          continue;
        }
        seen.add(key);
      }
      events[w++] = ev;
    }
    events.length = w;
  }

  /** Call when a whole batch has been filtered, with the time it was drained. The window closes
   *  only here: a batch is handed over in chunks, and a duplicate in its last chunk may repeat a
   *  record of its first. */
  batchDone(now: number): void {
    if (this.seen !== null && now >= this.closeAt) {
      this.seen = null;
      this.closeAt = Infinity;
    }
  }

  get total(): bigint {
    let n = 0n;
    for (const v of Object.values(this.duplicates)) n += v;
    return n;
  }
}

function keyOf(ev: LifecycleEvent): string | null {
  switch (ev.type) {
    case 'fork':
      return `f${ev.tid}:${ev.startNs}`;
    case 'exec':
      return `e${ev.pid}:${ev.startNs}:${ev.execSeq ?? ev.ktimeNs}`;
    case 'exit':
      return `x${ev.pid}:${ev.startNs}`;
    case 'reap':
      return `r${ev.pid}:${ev.startNs}`;
    default:
      return null;
  }
}
