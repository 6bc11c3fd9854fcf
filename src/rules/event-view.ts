// A lifecycle or state event as the rules see it, two ways: the EventReader the gates read
// (one object for the engine's life, pointed at each event in turn: reading a field or a
// counter allocates nothing), and the Trigger a tree run gets (built once per event, and only
// when some rule's gate let the event through).
import type { ExecEvent, ExecFailedEvent, ExitEvent, LifecycleEvent, ReapEvent, StateEvent } from '../shared/events.js';
import type { FieldRef } from './catalogue.js';
import { lifecycleField, lifecycleFields, signalName, stateField, stateFields, type EventContext } from './event-fields.js';
import type { History } from './history.js';
import type { Trigger } from './scope.js';
import type { GateReader } from './trigger-index.js';
import { formatMs, type Value } from './units.js';

export interface ReaderHost {
  readonly history: History;
  /** the exit's command (comm + executable): asks the process table */
  commandOf(ev: LifecycleEvent, en: EventContext): string;
}

export class EventReader implements GateReader {
  ev: LifecycleEvent | null = null;
  en: EventContext | null = null;
  st: StateEvent | null = null;
  toMs = 0;
  private cmd: string | null = null;

  constructor(private readonly host: ReaderHost) {}

  lifecycle(ev: LifecycleEvent, en: EventContext, toMs: number): void {
    this.ev = ev;
    this.en = en;
    this.st = null;
    this.toMs = toMs;
    this.cmd = null;
  }

  state(ev: StateEvent): void {
    this.ev = null;
    this.en = null;
    this.st = ev;
  }

  /** The exit's command, asked of the process table once per event, and only when wanted. */
  command(): string {
    if (this.cmd === null) this.cmd = this.host.commandOf(this.ev!, this.en!);
    return this.cmd;
  }

  value(ref: FieldRef): Value | undefined {
    if (this.st !== null) return stateField(ref.name, this.st);
    if (ref.fn === undefined) return lifecycleField(ref.name, this.ev!, this.en!);
    // the figures a Scope computes (scope.ts figure()), from the same counters
    const from = this.toMs - ref.windowMs!;
    const h = this.host.history;
    return ref.fn === 'history.failures' ? h.countFailures(this.command(), from, this.toMs) : h.countExecs(this.en!.parentExecId!, from, this.toMs);
  }

  hasCounter(ref: FieldRef): boolean {
    if (this.ev === null) return false;
    if (ref.fn === 'history.failures') return this.ev.type === 'exit';
    return ref.fn === 'history.execs_by_parent' && !!this.en!.parentExecId;
  }
}

/** The event as a tree run sees it (`reader` is pointed at the same event). */
export function lifecycleTrigger(ev: ExecEvent | ExitEvent | ExecFailedEvent | ReapEvent, en: EventContext, reader: EventReader): Trigger {
  const base = { tNs: ev.ktimeNs, execId: en.execId, parentExecId: en.parentExecId };
  switch (ev.type) {
    case 'exec':
      return { ...base, source: 'exec', fields: lifecycleFields('exec', ev, en), summary: `exec pid ${ev.pid} (${ev.comm.text}) ${ev.args.map((a) => a.text).join(' ').slice(0, 200)}` };
    case 'exit':
      return {
        ...base, source: 'exit', command: reader.command(), fields: lifecycleFields('exit', ev, en),
        summary: `exit pid ${ev.pid} (${ev.comm.text}) ${ev.signal !== null ? `killed by ${signalName(ev.signal)}` : `code ${ev.exitCode}`}`,
      };
    case 'exec_failed':
      return { ...base, source: 'exec_failed', fields: lifecycleFields('exec_failed', ev, en), summary: `exec of ${ev.filename.text} by pid ${ev.pid} failed (errno ${ev.errno})` };
    case 'reap':
      return { ...base, source: 'reap', fields: lifecycleFields('reap', ev, en), summary: `reap pid ${ev.pid} after ${en.zombieNs === undefined ? '?' : formatMs(Number(en.zombieNs) / 1e6)} as a zombie` };
  }
}

export function stateTrigger(ev: StateEvent, execId: string | null): Trigger {
  const dMs = Number(ev.durationNs) / 1e6;
  return {
    source: 'state', tNs: ev.ktimeNs, execId, fields: stateFields(ev),
    summary: `pid ${ev.pid} tid ${ev.tid} (${ev.comm.text}) ${ev.from}→${ev.to} after ${formatMs(dMs)} in ${ev.from}`,
  };
}
