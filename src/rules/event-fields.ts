// The fields a lifecycle or state event offers to rules (catalogue.ts SOURCE_FIELDS), read one at
// a time straight from the event. One definition serves both the trigger index's gates (which
// read a field or two without building anything) and the field record a tree run gets, so the
// two can never disagree.
import type { LifecycleEvent, StateEvent } from '../shared/events.js';
import { SOURCE_FIELDS, type SourceKind } from './catalogue.js';
import type { Value } from './units.js';
import type { Enriched } from '../process/index.js';

/** What the process table tells about an event's process: its Enriched without the entry. */
export type EventContext = Omit<Enriched, 'entry'>;

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS' };
export const signalName = (n: number | null) => (n === null ? null : (SIGNALS[n] ?? `signal ${n}`));

/** Lifecycle event types that are rule sources. */
export const LIFECYCLE_SOURCES: ReadonlySet<SourceKind> = new Set(['exec', 'exit', 'exec_failed', 'reap']);

/** Fields whose value costs an allocation (a joined string): the index does not read them. */
const COSTLY = new Set(['exec:args']);

/** Whether `name` is a field of `source`'s events that can be read without allocating. */
export function isEventField(source: SourceKind, name: string): boolean {
  return (LIFECYCLE_SOURCES.has(source) || source === 'state') && name in SOURCE_FIELDS[source] && !COSTLY.has(`${source}:${name}`);
}

/** ns → ms as a number: exact to well under a microsecond for any uptime. */
export const nsAsMs = (ns: bigint) => Number(ns) / 1e6;

/** One field of a lifecycle event; undefined for a name the event's type does not have. */
export function lifecycleField(name: string, ev: LifecycleEvent, en: EventContext): Value | undefined {
  switch (ev.type) {
    case 'exec':
      switch (name) {
        case 'pid': return ev.pid;
        case 'ppid': return ev.ppid;
        case 'comm': return ev.comm.text;
        case 'filename': return ev.filename.text;
        case 'args': return ev.args.map((a) => a.text).join(' ');
      }
      return undefined;
    case 'exit':
      switch (name) {
        case 'pid': return ev.pid;
        case 'ppid': return ev.ppid;
        case 'comm': return ev.comm.text;
        case 'exit_code': return ev.exitCode;
        case 'signal': return ev.signal;
        case 'signal_name': return signalName(ev.signal);
        case 'core_dumped': return ev.coreDumped;
        case 'failed': return ev.signal !== null || ev.exitCode !== 0;
        case 'max_rss': return ev.usage.maxRssKb * 1024;
        case 'duration': return en.durationNs === undefined ? null : nsAsMs(en.durationNs);
        case 'write_bytes': return Number(ev.usage.writeBytes);
        case 'read_bytes': return Number(ev.usage.readBytes);
      }
      return undefined;
    case 'exec_failed':
      switch (name) {
        case 'pid': return ev.pid;
        case 'comm': return ev.comm.text;
        case 'filename': return ev.filename.text;
        case 'errno': return ev.errno;
      }
      return undefined;
    case 'reap':
      switch (name) {
        case 'pid': return ev.pid;
        case 'zombie': return en.zombieNs === undefined ? null : nsAsMs(en.zombieNs);
      }
      return undefined;
    default:
      return undefined;
  }
}

export function stateField(name: string, ev: StateEvent): Value | undefined {
  switch (name) {
    case 'pid': return ev.pid;
    case 'tid': return ev.tid;
    case 'comm': return ev.comm.text;
    case 'from': return ev.from;
    case 'to': return ev.to;
    case 'state_duration': return nsAsMs(ev.durationNs);
    case 'reason': return ev.reason;
  }
  return undefined;
}

/** Every field of a lifecycle event, for a tree run. */
export function lifecycleFields(source: SourceKind, ev: LifecycleEvent, en: EventContext): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const name in SOURCE_FIELDS[source]) {
    const v = lifecycleField(name, ev, en);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export function stateFields(ev: StateEvent): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const name in SOURCE_FIELDS.state) {
    const v = stateField(name, ev);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
