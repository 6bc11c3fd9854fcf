// A lifecycle or state event as the rules see it, two ways: the EventReader the gates read
// (one object for the engine's life, pointed at each event in turn: reading a field or a
// counter allocates nothing), and the Trigger a tree run gets (built once per event, and only
// when some rule's gate let the event through).
import type { ExecEvent, ExecFailedEvent, ExitEvent, LifecycleEvent, ReapEvent, StateEvent } from '../shared/events.js';
import { SOURCE_FIELDS, type FieldRef } from './catalogue.js';
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
    return ref.fn === 'history.failures' ? h.countFailures(this.command(), from, this.toMs, ref.countLimit) : h.countExecs(this.en!.parentExecId!, from, this.toMs, ref.countLimit);
  }

  hasCounter(ref: FieldRef): boolean {
    if (this.ev === null) return false;
    if (ref.fn === 'history.failures') return this.ev.type === 'exit';
    return ref.fn === 'history.execs_by_parent' && !!this.en!.parentExecId;
  }
}

/** The event as a tree run sees it (`reader` is pointed at the same event). Its field record and
 *  its summary are built on first read: a rule that fires at every exec of a storm reads a
 *  history figure and the process, and its coalesced firings never render the event. */
class LifecycleTrigger implements Trigger {
  readonly tNs: bigint;
  readonly execId: string;
  readonly parentExecId: string | null;
  readonly command?: string;
  private fieldsVal: Record<string, Value> | null = null;
  private summaryVal: string | null = null;

  constructor(
    readonly source: 'exec' | 'exit' | 'exec_failed' | 'reap',
    private readonly ev: ExecEvent | ExitEvent | ExecFailedEvent | ReapEvent,
    private readonly en: EventContext,
    reader: EventReader,
  ) {
    this.tNs = ev.ktimeNs;
    this.execId = en.execId;
    this.parentExecId = en.parentExecId;
    if (ev.type === 'exit') this.command = reader.command();
  }

  get fields(): Record<string, Value> {
    return (this.fieldsVal ??= lifecycleFields(this.source, this.ev, this.en));
  }

  field(name: string): Value | undefined {
    if (this.fieldsVal !== null) return this.fieldsVal[name];
    return name in SOURCE_FIELDS[this.source] ? lifecycleField(name, this.ev, this.en) : undefined;
  }

  get summary(): string {
    return (this.summaryVal ??= lifecycleSummary(this.ev, this.en));
  }
}

function lifecycleSummary(ev: ExecEvent | ExitEvent | ExecFailedEvent | ReapEvent, en: EventContext): string {
  switch (ev.type) {
    case 'exec':
      return `exec pid ${ev.pid} (${ev.comm.text}) ${ev.args.map((a) => a.text).join(' ').slice(0, 200)}`;
    case 'exit':
      return `exit pid ${ev.pid} (${ev.comm.text}) ${ev.signal !== null ? `killed by ${signalName(ev.signal)}` : `code ${ev.exitCode}`}`;
    case 'exec_failed':
      return `exec of ${ev.filename.text} by pid ${ev.pid} failed (errno ${ev.errno})`;
    case 'reap':
      return `reap pid ${ev.pid} after ${en.zombieNs === undefined ? '?' : formatMs(Number(en.zombieNs) / 1e6)} as a zombie`;
  }
}

export function lifecycleTrigger(ev: ExecEvent | ExitEvent | ExecFailedEvent | ReapEvent, en: EventContext, reader: EventReader): Trigger {
  return new LifecycleTrigger(ev.type, ev, en, reader);
}

/** A copy of `t` as a plain object (its lazy parts read now), for a deferred retry. */
export function plainTrigger(t: Trigger, extra: Partial<Trigger>): Trigger {
  return { source: t.source, tNs: t.tNs, fields: t.fields, summary: t.summary, ...(t.line !== undefined ? { line: t.line } : {}),
    ...(t.execId !== undefined ? { execId: t.execId } : {}), ...(t.parentExecId !== undefined ? { parentExecId: t.parentExecId } : {}),
    ...(t.command !== undefined ? { command: t.command } : {}), ...(t.alert !== undefined ? { alert: t.alert } : {}), ...extra };
}

export function stateTrigger(ev: StateEvent, execId: string | null): Trigger {
  const dMs = Number(ev.durationNs) / 1e6;
  return {
    source: 'state', tNs: ev.ktimeNs, execId, fields: stateFields(ev),
    summary: `pid ${ev.pid} tid ${ev.tid} (${ev.comm.text}) ${ev.from}→${ev.to} after ${formatMs(dMs)} in ${ev.from}`,
  };
}
