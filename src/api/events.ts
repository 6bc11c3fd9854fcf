// The live event stream of GET /v1/events: one subscription to the agent, fanned out to every
// connected client with its own filters and its own bounded buffer.
//
// Records are serialized in the agent's event callback, because the process entry they read
// keeps changing afterwards; a record matched by several clients is serialized once. Lines are
// queued per client and pushed to the client's stream once per event-loop turn.
//
// Slow clients. Each client's stream is a Readable whose high-water mark is the per-client bound
// (`bufferBytes`). When the bytes waiting for the client (the stream's buffer plus this turn's
// queue) reach the bound, events for that client are dropped and counted, and keep being dropped
// until the stream asks for more data (its buffer fell below the bound: the client caught up).
// Then a `{"type":"dropped","count":N}` record is written at the place of the gap, and events
// flow again. Other clients and the agent are not affected. Beyond the bound, a client's data
// can also sit in the HTTP response's own buffer (16 KiB) and in the kernel's socket buffers.
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { isFailure, type LifecycleEvent, type StateEvent, type StateStreamEvent } from '../shared/events.js';
import { hasIdentityFilter, identityMatches, type Enriched, type ProcessEntry } from '../process/index.js';
import { SCHEMA_VERSION, eventRecord, stateRecord, toLine } from '../export/index.js';
import type { AgentView } from './view.js';

export interface EventFilter {
  /** exact comm names; any of them */
  comm?: readonly string[];
  uid?: number;
  /** this pid and its descendants, including the ones born while connected */
  pid?: number;
  /** only failures: non-zero exits, deaths by signal, failed execs */
  failed?: boolean;
  /** include thread creation (fork with thread: true), when the agent emits it */
  threads?: boolean;
  /** cgroup identity: systemd unit, container id (prefix), pod uid (prefix) */
  unit?: string;
  container?: string;
  pod?: string;
}

type Match = (ev: LifecycleEvent, en: Enriched) => boolean;

export { isFailure };

function matcher(view: AgentView, f: EventFilter): Match {
  // SubtreeFilter must see every event, in order: it runs first.
  const sub = f.pid !== undefined ? view.table.subtreeFilter(f.pid) : null;
  const comms = f.comm !== undefined && f.comm.length > 0 ? new Set(f.comm) : null;
  const uid = f.uid;
  const failed = f.failed === true;
  const threads = f.threads === true;
  const ident = hasIdentityFilter(f) ? { unit: f.unit, container: f.container, pod: f.pod } : null;
  return (ev, en) => {
    if (sub !== null && !sub.matches(ev, en)) return false;
    if (!threads && ev.type === 'fork' && ev.thread) return false;
    if (comms !== null && !comms.has(en.comm)) return false;
    if (uid !== undefined && en.entry.uid !== uid) return false;
    if (failed && !isFailure(ev)) return false;
    if (ident !== null && !identityMatches(en.entry.identity, ident)) return false;
    return true;
  };
}

export class ClientStream extends Readable {
  private pending: string[] = [];
  private pendingBytes = 0;
  /** events dropped since the last `dropped` record; > 0 means "dropping" */
  private dropped = 0;
  /** events dropped over the client's life */
  droppedTotal = 0;
  sent = 0;

  constructor(
    private readonly hub: EventHub,
    readonly match: Match,
    readonly bufferBytes: number,
    private readonly criteria: EventFilter = {},
  ) {
    super({ highWaterMark: bufferBytes });
  }

  /** Whether a state transition of this process passes the client's filters. */
  matchState(ev: StateEvent, entry: ProcessEntry | undefined): boolean {
    const f = this.criteria;
    if (f.failed) return false;
    if (f.comm !== undefined && f.comm.length > 0 && !f.comm.includes(entry?.comm ?? ev.comm.text)) return false;
    if (f.uid !== undefined && entry?.uid !== f.uid) return false;
    if (f.pid !== undefined && ev.pid !== f.pid && !(entry && this.hub.inSubtree(entry, f.pid))) return false;
    if (hasIdentityFilter(f) && !identityMatches(entry?.identity ?? null, f)) return false;
    return true;
  }

  /** Queues a line; returns false if it was dropped. */
  offer(line: string): boolean {
    if (this.destroyed || this.readableEnded) return false;
    if (this.dropped > 0 || this.readableLength + this.pendingBytes >= this.bufferBytes) {
      this.dropped++;
      this.droppedTotal++;
      return false;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.sent++;
    return true;
  }

  /** Pushes this turn's queue into the stream. */
  flushPending(): void {
    if (this.pending.length === 0 || this.destroyed) return;
    const chunk = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    this.push(chunk);
  }

  /** The consumer wants more: its buffer is below the bound. Close a drop episode here. */
  override _read(): void {
    this.flushPending();
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.hub.noteDropped(this, n);
      this.push(toLine({ type: 'dropped', time: new Date().toISOString(), count: n }));
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.pending = [];
    this.hub.remove(this);
    cb(err);
  }

  /** Ends the stream after what is queued (agent shutting down). */
  finish(): void {
    if (this.destroyed || this.readableEnded) return;
    this.flushPending();
    if (this.dropped > 0) {
      this.push(toLine({ type: 'dropped', time: new Date().toISOString(), count: this.dropped }));
      this.dropped = 0;
    }
    this.push(null);
    this.hub.remove(this);
  }
}

export class EventHub {
  private readonly clients = new Set<ClientStream>();
  private unsubscribe: (() => void) | null = null;
  private unsubscribeState: (() => void) | null = null;
  private flushQueued = false;
  private closed = false;
  private serializeErrors = 0;

  constructor(
    private readonly view: AgentView,
    private readonly log: Logger,
    private readonly bufferBytes: number,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  inSubtree(entry: ProcessEntry, rootPid: number): boolean {
    return this.view.table.inSubtree(entry, rootPid);
  }

  /** A new client: its stream starts with the `ready` record; events after it are delivered. */
  open(filter: EventFilter): ClientStream {
    const c = new ClientStream(this, matcher(this.view, filter), this.bufferBytes, filter);
    if (this.closed) {
      c.push(null);
      return c;
    }
    this.clients.add(c);
    this.unsubscribe ??= this.view.subscribe(this.onEvent);
    if (this.view.subscribeState) this.unsubscribeState ??= this.view.subscribeState(this.onState);
    const stats = this.view.stats();
    c.push(
      toLine({
        type: 'ready',
        time: new Date().toISOString(),
        schema: SCHEMA_VERSION,
        programs: [...stats.programs],
        table_size: this.view.table.size,
        ring_bytes: this.view.config.ringBytes,
        args_cap: this.view.config.argsCap,
        version: this.view.version,
        buffer_bytes: this.bufferBytes,
      }),
    );
    return c;
  }

  remove(c: ClientStream): void {
    if (!this.clients.delete(c)) return;
    this.log.debug({ sent: c.sent, dropped: c.droppedTotal, clients: this.clients.size }, 'event stream client left');
    if (this.clients.size === 0) this.unsubscribeAll();
  }

  private unsubscribeAll(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.unsubscribeState?.();
    this.unsubscribeState = null;
  }

  noteDropped(c: ClientStream, n: number): void {
    this.log.info({ dropped: n, total: c.droppedTotal }, 'event stream client too slow: events dropped');
  }

  /** Ends every stream (what is queued is still sent) and stops the subscription. */
  close(): void {
    this.closed = true;
    for (const c of [...this.clients]) c.finish();
    this.unsubscribeAll();
  }

  /** State records follow the same filters, judged on the process the thread belongs to;
   *  throttle notices go to every client. */
  private readonly onState = (ev: StateStreamEvent): void => {
    const entry = ev.type === 'state' ? this.view.table.byPid(ev.pid) : undefined;
    const own = entry && ev.type === 'state' && entry.startNs === ev.startNs ? entry : undefined;
    const line = toLine(stateRecord(ev, own?.execId ?? null, this.view.clock));
    let queued = false;
    for (const c of this.clients) {
      if (ev.type === 'state' && !c.matchState(ev, own)) continue;
      if (c.offer(line)) queued = true;
    }
    if (queued && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  };

  private readonly onEvent = (ev: LifecycleEvent, en: Enriched): void => {
    let line: string | undefined;
    let queued = false;
    try {
      for (const c of this.clients) {
        if (!c.match(ev, en)) continue;
        line ??= toLine(eventRecord(ev, en, this.view.clock));
        if (c.offer(line)) queued = true;
      }
    } catch (e) {
      // never let a client's stream break the agent's event path
      if (this.serializeErrors++ < 10) this.log.error({ err: (e as Error).message, type: ev.type }, 'event stream: cannot serialize event');
    }
    if (queued && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  };

  private readonly flush = (): void => {
    this.flushQueued = false;
    for (const c of this.clients) c.flushPending();
  };
}
