// PATH search probes. `execvp("sh")` tries /usr/local/sbin/sh, /usr/local/bin/sh, /usr/sbin/sh
// ... in turn: each miss is a real failed execve (ENOENT, or EACCES), then the same task execs
// the same basename from a later PATH entry. Reported as failures, a healthy machine looks like
// it is failing (a shell with a long PATH makes several per command). So a failed exec is marked
// `pathProbe` when the same task's next exec attempt names the same basename; a search that
// never succeeds still ends in a failure that is not a probe ("command not found" stays one).
//
// The verdict needs the task's next attempt, which is usually a few µs later, in the same batch.
// A failure that is its task's last event in a batch is carried to the next batch (or released
// by flushStale after HOLD_NS), so the stream is delayed only at a batch boundary, and only for
// that task's failure.
import type { ExecFailedEvent, LifecycleEvent } from '../shared/events.js';

const ENOENT = 2;
const EACCES = 13;
/** how long a failure may wait for its task's next attempt */
export const PATH_PROBE_HOLD_NS = 50_000_000n;

function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

const candidate = (ev: LifecycleEvent): ev is ExecFailedEvent => ev.type === 'exec_failed' && (ev.errno === ENOENT || ev.errno === EACCES);

/** The task (tid) an event is about, for the attempts that can continue a search. */
function attemptTid(ev: LifecycleEvent): number {
  if (ev.type === 'exec_failed') return ev.tid;
  // an exec replaces the whole process; the kernel reports it on the thread-group leader
  if (ev.type === 'exec') return ev.pid;
  return -1;
}

function attemptName(ev: LifecycleEvent): string | null {
  if (ev.type === 'exec_failed' || ev.type === 'exec') return basename(ev.filename.text);
  return null;
}

export class PathProbeMarker {
  /** failures carried from the previous batch, oldest first */
  private carried: ExecFailedEvent[] = [];
  probes = 0;

  /** Marks the probes among `carried` + `batch`, and appends to `out` what can be delivered now,
   *  in order (carried failures first: they are older). Failures still waiting are kept. */
  process(batch: readonly LifecycleEvent[], out: LifecycleEvent[]): void {
    const events = this.carried.length ? [...this.carried, ...batch] : batch;
    this.carried = [];
    // per task, the index of its failure still waiting for a verdict (none: no allocation)
    let open: Map<number, number> | null = null;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      if (open !== null && open.size > 0) {
        const tid = ev.type === 'exit' ? ev.tid : attemptTid(ev);
        const j = tid >= 0 ? open.get(tid) : undefined;
        if (j !== undefined) {
          // the task's next attempt names the same program: the failure was one step of a search
          const prev = events[j] as ExecFailedEvent;
          if (ev.type !== 'exit' && attemptName(ev) === basename(prev.filename.text)) {
            prev.pathProbe = true;
            this.probes++;
          }
          open.delete(tid);
        }
      }
      if (candidate(ev)) (open ??= new Map()).set(ev.tid, i);
    }
    if (open === null || open.size === 0) {
      for (let i = 0; i < events.length; i++) out.push(events[i]!);
      return;
    }
    const waiting = new Set(open.values());
    for (let i = 0; i < events.length; i++) {
      if (waiting.has(i)) this.carried.push(events[i] as ExecFailedEvent);
      else out.push(events[i]!);
    }
  }

  /** Releases carried failures older than the hold (their search is over: final failures). */
  flushStale(nowNs: bigint, out: LifecycleEvent[]): void {
    if (this.carried.length === 0) return;
    const keep: ExecFailedEvent[] = [];
    for (const ev of this.carried) {
      if (nowNs - ev.ktimeNs >= PATH_PROBE_HOLD_NS) out.push(ev);
      else keep.push(ev);
    }
    this.carried = keep;
  }

  /** Releases everything (stop: the stream is complete). */
  flushAll(out: LifecycleEvent[]): void {
    for (const ev of this.carried) out.push(ev);
    this.carried = [];
  }

  get waiting(): number {
    return this.carried.length;
  }
}
