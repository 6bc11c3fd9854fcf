// The fields `where` may test (EVENT_KINDS in catalogue.ts), read two ways:
//  - live, straight from a decoded event and its process-table context: one small accessor per
//    field, run only when a predicate asks for that field, so an event costs no object;
//  - from an EventFact, the plain record a replay builds from an NDJSON line (offline, so an
//    object per event is fine there).
// Durations are seconds, sizes bytes, as the catalogue says.
import type { ExecEvent, ExecFailedEvent, ExitEvent, ForkEvent, LifecycleEvent, ReapEvent, StateEvent } from '../shared/events.js';
import type { FieldAccessor, Scalar } from './predicate.js';

export type EventKind = 'exec' | 'fork' | 'exit' | 'exec_failed' | 'reap' | 'state';

export const EVENT_KIND_NAMES: readonly EventKind[] = ['exec', 'fork', 'exit', 'exec_failed', 'reap', 'state'];

/** What the process table knows about a lifecycle event (src/process's Enriched fits). */
export interface EventContext {
  /** the parent as the table knows it (an exit's own ppid may be a reaper's) */
  ppid?: number;
  /** exit: exit ktime − start time */
  durationNs?: bigint | null;
  /** reap: time spent as a zombie */
  zombieNs?: bigint | null;
}

/** One event as a plain record: a replay's unit (times in ms on the recording's clock). */
export interface EventFact {
  kind: EventKind;
  /** ms on the event clock */
  t: number;
  /** fields named as in EVENT_KINDS; durations in seconds, sizes in bytes */
  f: Record<string, Scalar>;
}

type LiveEvent = LifecycleEvent | StateEvent;
export type LiveAccessor = FieldAccessor<LiveEvent, EventContext>;

// Number(bigint) is exact below 2^53 ns (104 days) and allocates nothing, unlike bigint division.
const seconds = (ns: bigint | number | null | undefined): number | null => (ns === null || ns === undefined ? null : Number(ns) / 1e9);

const exec = (e: LiveEvent) => e as ExecEvent;
const fork = (e: LiveEvent) => e as ForkEvent;
const exit = (e: LiveEvent) => e as ExitEvent;
const failed = (e: LiveEvent) => e as ExecFailedEvent;
const reap = (e: LiveEvent) => e as ReapEvent;
const state = (e: LiveEvent) => e as StateEvent;

const LIVE: Record<EventKind, Record<string, LiveAccessor>> = {
  exec: {
    pid: (e) => exec(e).pid,
    ppid: (e) => exec(e).ppid,
    uid: (e) => exec(e).uid,
    comm: (e) => exec(e).comm.text,
    filename: (e) => exec(e).filename.text,
  },
  fork: {
    pid: (e) => fork(e).pid,
    ppid: (e) => fork(e).ppid,
    comm: (e) => fork(e).comm.text,
  },
  exit: {
    pid: (e) => exit(e).pid,
    ppid: (e, c) => c.ppid ?? exit(e).ppid,
    comm: (e) => exit(e).comm.text,
    exit_code: (e) => exit(e).exitCode,
    signal: (e) => exit(e).signal,
    core_dumped: (e) => exit(e).coreDumped,
    failed: (e) => exit(e).signal !== null || exit(e).exitCode !== 0,
    duration: (_e, c) => seconds(c.durationNs),
    cpu: (e) => seconds(exit(e).usage.cpuNs),
    max_rss: (e) => exit(e).usage.maxRssKb * 1024,
  },
  exec_failed: {
    pid: (e) => failed(e).pid,
    comm: (e) => failed(e).comm.text,
    filename: (e) => failed(e).filename.text,
    errno: (e) => failed(e).errno,
  },
  reap: {
    pid: (e) => reap(e).pid,
    zombie: (e, c) => {
      if (c.zombieNs !== undefined && c.zombieNs !== null) return seconds(c.zombieNs);
      const r = reap(e);
      return Number(r.exitNs) > 0 ? (Number(r.ktimeNs) - Number(r.exitNs)) / 1e9 : null;
    },
  },
  state: {
    pid: (e) => state(e).pid,
    comm: (e) => state(e).comm.text,
    from: (e) => state(e).from,
    to: (e) => state(e).to,
    duration: (e) => seconds(state(e).durationNs),
  },
};

/** The accessor of a field of a decoded event of `kind` (undefined for an unknown field). */
export const liveField = (kind: EventKind, name: string): LiveAccessor | undefined => LIVE[kind][name];

/** Field names per kind, for the test that keeps them in step with the catalogue. */
export const liveFieldNames = (kind: EventKind): string[] => Object.keys(LIVE[kind]);

/** The accessor of a field of an EventFact. */
export const factField =
  (name: string): FieldAccessor<EventFact, undefined> =>
  (x) =>
    x.f[name] ?? null;
