// Boundaries around the consumers of the event stream (states, rules, checks, store, resources,
// API stream...). A consumer that throws is counted and logged, rate-limited, and the event
// goes on to the others, and the batch goes on to its next event: one bug in one consumer
// must not kill the agent or cost the rest of the stream.
import type { Logger } from '../shared/log.js';

/** At most one log line per consumer in this long; the lines in between are counted. */
const LOG_EVERY_MS = 10_000;

export interface ConsumerFaults {
  errors: number;
  lastError: string | null;
  lastErrorAt: number | null;
}

export class ConsumerGuard {
  errors = 0;
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  private lastLogAt = -Infinity;
  private unlogged = 0;
  private seen = 0;

  constructor(
    readonly name: string,
    private readonly log: Logger,
    /** test hook (PATROL_FAULT_INJECT=name:N): throw before every Nth event of this consumer */
    private readonly injectEvery = 0,
  ) {}

  /** Called by the fault-injection hook: throws on every Nth call when configured. */
  inject(): void {
    if (this.injectEvery > 0 && ++this.seen % this.injectEvery === 0) throw new Error(`injected fault (every ${this.injectEvery}th event)`);
  }

  fail(e: unknown): void {
    this.errors++;
    const msg = e instanceof Error ? e.message : String(e);
    this.lastError = msg;
    const now = Date.now();
    this.lastErrorAt = now;
    if (now - this.lastLogAt < LOG_EVERY_MS) {
      this.unlogged++;
      return;
    }
    this.log.error(
      { consumer: this.name, err: msg, stack: e instanceof Error ? e.stack : undefined, errors: this.errors, notLogged: this.unlogged },
      'event consumer failed; the other consumers go on',
    );
    this.lastLogAt = now;
    this.unlogged = 0;
  }

  faults(): ConsumerFaults {
    return { errors: this.errors, lastError: this.lastError, lastErrorAt: this.lastErrorAt };
  }
}

/** The guards of one agent, by consumer name. */
export class Consumers {
  private readonly guards = new Map<string, ConsumerGuard>();
  private readonly inject: Map<string, number>;

  constructor(
    private readonly log: Logger,
    injectSpec = process.env.PATROL_FAULT_INJECT ?? '',
  ) {
    this.inject = parseInject(injectSpec);
  }

  guard(name: string): ConsumerGuard {
    let g = this.guards.get(name);
    if (!g) this.guards.set(name, (g = new ConsumerGuard(name, this.log, this.inject.get(name) ?? 0)));
    return g;
  }

  /** Injection is on for this consumer (the agent then calls inject() before it). */
  injecting(name: string): boolean {
    return (this.inject.get(name) ?? 0) > 0;
  }

  faults(): Record<string, ConsumerFaults> {
    const out: Record<string, ConsumerFaults> = {};
    for (const [name, g] of this.guards) out[name] = g.faults();
    return out;
  }

  totalErrors(): number {
    let n = 0;
    for (const g of this.guards.values()) n += g.errors;
    return n;
  }
}

/** "rules:10,store:3" → { rules: 10, store: 3 } */
function parseInject(spec: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const part of spec.split(',')) {
    const [name, every] = part.split(':');
    const n = Number(every);
    if (name && Number.isInteger(n) && n > 0) m.set(name.trim(), n);
  }
  return m;
}
