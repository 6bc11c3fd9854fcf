// Alert delivery: every alert goes into the outbox (durable, committed) for each output, and each
// output's pump delivers its due rows in batches, one request in flight per output.
//
// - Retries: a failed batch waits an exponential backoff with jitter (initial × 2^(n−1), capped,
//   then a uniformly random half to full of it), n = the output's consecutive failures. Rows are
//   deleted only after the receiver acknowledged them, so an agent killed at any point delivers
//   after its restart; a row acknowledged but not yet deleted is delivered twice, with one id.
// - Grouping: an alert waits group_wait before its first attempt, so alerts raised together go
//   in one request (up to max_batch).
// - Rate limit: a token bucket per output (rate_limit alerts per minute, a minute's worth of
//   burst). When more alerts are due than tokens are left, each check's due alerts collapse to
//   its newest (the others are counted as superseded), so one crash loop is one page.
// - Bound: the outbox keeps queue_max rows; beyond, the oldest are dropped and counted.
// - Alertmanager refresh: the firing alerts an Alertmanager output announced are sent again every
//   resend_interval, and once at start (see alertmanager.ts), while none of its rows wait.
import { hostname } from 'node:os';
import type { Logger } from '../../shared/log.js';
import type { Alert } from '../../checks/index.js';
import { activeKey } from './alertmanager.js';
import { DeliveryError, type AlertSender, type AlertsConfig, type OutboundAlert, type OutboxCounters, type OutboxPort } from './types.js';

export interface DeliveryOptions {
  config: AlertsConfig;
  outbox: OutboxPort;
  senders: AlertSender[];
  log: Logger;
  /** applied to every string of an alert before it is queued (argv redaction) */
  redactText?: (s: string) => string;
  now?: () => number;
  random?: () => number;
}

export interface OutputStats extends OutboxCounters {
  type: string;
  /** consecutive failed attempts (0 when the last one succeeded) */
  consecutiveFailures: number;
  /** ms since the epoch of the next attempt, when rows wait */
  nextAttemptAt: number | null;
  /** Alertmanager: firing alerts refreshed */
  active?: number;
}

interface Runtime {
  sender: AlertSender;
  name: string;
  inFlight: Promise<void> | null;
  timer: NodeJS.Timeout | null;
  resendTimer: NodeJS.Timeout | null;
  fails: number;
  tokens: number;
  refilledAt: number;
}

/** Oldest rows read per pump: enough to see a check's several alerts when collapsing them. */
const SCAN_FACTOR = 8;

export function topCause(attribution: unknown): string | null {
  const causes = (attribution as { causes?: unknown } | null)?.causes;
  if (!Array.isArray(causes) || causes.length === 0) return null;
  const c = causes[0] as { cause?: unknown; explanation?: unknown };
  if (typeof c.cause !== 'string') return null;
  return typeof c.explanation === 'string' && c.explanation !== '' ? `${c.cause}: ${c.explanation}` : c.cause;
}

/** Deep copy with `f` applied to every string (keys kept). */
export function mapStrings(v: unknown, f: (s: string) => string, depth = 0): unknown {
  if (typeof v === 'string') return f(v);
  if (v === null || typeof v !== 'object' || depth > 16) return v;
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f, depth + 1));
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) o[k] = mapStrings(x, f, depth + 1);
  return o;
}

/** A check's alert as it leaves the agent: node, top cause, every string through `redactText`. */
export function outboundAlert(a: Alert, attribution: unknown, node: string, redactText?: (s: string) => string): OutboundAlert {
  const out: OutboundAlert = {
    id: a.id, check_id: a.check_id, name: a.name, kind: a.kind, state: a.state, previous: a.previous, at: a.at,
    message: a.message, labels: { ...a.labels }, node, top_cause: topCause(attribution), attribution: attribution ?? null, evidence: a.evidence,
  };
  return redactText ? (mapStrings(out, redactText) as OutboundAlert) : out;
}

export class AlertDelivery {
  private readonly outputs: Runtime[];
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly node: string;
  private closed = false;
  /** false until start(): alerts enqueued before wait in the outbox (a reload queues into the
   *  new delivery while the old one finishes its requests) */
  private started = false;
  enqueueErrors = 0;

  constructor(private readonly opts: DeliveryOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.node = opts.config.node ?? hostname();
    this.outputs = opts.senders.map((sender) => ({
      sender, name: sender.config.name, inFlight: null, timer: null, resendTimer: null, fails: 0,
      tokens: sender.config.ratePerMinute, refilledAt: this.now(),
    }));
  }

  /** Resumes what a previous run left: drops rows of outputs no longer configured, schedules the
   *  pending ones, refreshes Alertmanager's firing alerts. */
  start(): void {
    if (this.closed || this.started) return;
    this.started = true;
    const gone = this.opts.outbox.retain(this.outputs.map((o) => o.name));
    if (gone > 0) this.opts.log.warn({ rows: gone }, 'alerts: dropped queued deliveries of outputs no longer configured');
    for (const o of this.outputs) {
      this.schedule(o);
      if (o.sender.config.type === 'alertmanager') this.armResend(o, 0);
    }
  }

  /** The alert, as the outputs receive it. */
  outbound(a: Alert, attribution: unknown): OutboundAlert {
    return outboundAlert(a, attribution, this.node, this.opts.redactText);
  }

  /** Queues the alert for every output; durable when this returns. Never throws: a store that
   *  cannot take it is counted and logged (the alert is still in the check store). */
  enqueue(a: Alert, attribution: unknown = null): OutboundAlert | null {
    if (this.closed || this.outputs.length === 0) return null;
    const alert = this.outbound(a, attribution);
    const now = this.now();
    try {
      this.opts.outbox.enqueue(this.outputs.map((o) => o.name), alert, now + this.groupWait());
      for (const o of this.outputs) {
        if (o.sender.config.type !== 'alertmanager') continue;
        const k = activeKey(alert);
        this.opts.outbox.setActive(o.name, k.key, k.firing ? alert : null);
        // the refresh timer runs only while the output holds firing alerts
        if (k.firing && o.resendTimer === null) this.armResend(o, o.sender.config.resendIntervalMs);
      }
    } catch (e) {
      this.enqueueErrors++;
      this.opts.log.error({ alert_id: a.id, err: (e as Error).message }, 'alerts: cannot queue the alert for delivery');
      return null;
    }
    for (const o of this.outputs) this.schedule(o);
    return alert;
  }

  private groupWait(): number {
    return Math.min(...this.outputs.map((o) => o.sender.config.groupWaitMs));
  }

  /** ms of backoff after `fails` consecutive failures, jittered to [½, 1] of the step. */
  backoffMs(fails: number): number {
    const { initialMs, maxMs } = this.opts.config.retry;
    const step = Math.min(maxMs, initialMs * 2 ** Math.min(30, Math.max(0, fails - 1)));
    return Math.round(step / 2 + (this.random() * step) / 2);
  }

  private refill(o: Runtime, now: number): void {
    const rate = o.sender.config.ratePerMinute;
    if (rate <= 0) return;
    o.tokens = Math.min(rate, o.tokens + ((now - o.refilledAt) * rate) / 60_000);
    o.refilledAt = now;
  }

  private schedule(o: Runtime, atLeastMs = 0): void {
    if (this.closed || !this.started || o.inFlight !== null) return;
    const next = this.opts.outbox.nextAt(o.name);
    if (next === null) return;
    const delay = Math.max(atLeastMs, next - this.now(), 0);
    if (o.timer !== null) clearTimeout(o.timer);
    o.timer = setTimeout(() => {
      o.timer = null;
      void this.pump(o);
    }, delay);
    o.timer.unref();
  }

  /** Delivers one batch of the output's due rows. */
  pump(o: Runtime): Promise<void> {
    if (this.closed || o.inFlight !== null) return o.inFlight ?? Promise.resolve();
    o.inFlight = this.pumpOnce(o).finally(() => {
      o.inFlight = null;
    });
    return o.inFlight.then(() => this.schedule(o, this.rateWait(o)));
  }

  /** ms until the bucket holds a token again (0 without a limit or with one left). */
  private rateWait(o: Runtime): number {
    const rate = o.sender.config.ratePerMinute;
    if (rate <= 0) return 0;
    this.refill(o, this.now());
    return o.tokens >= 1 ? 0 : Math.ceil(((1 - o.tokens) * 60_000) / rate);
  }

  private async pumpOnce(o: Runtime): Promise<void> {
    const cfg = o.sender.config;
    const now = this.now();
    let budget = cfg.maxBatch;
    if (cfg.ratePerMinute > 0) {
      this.refill(o, now);
      budget = Math.min(budget, Math.floor(o.tokens));
      if (budget < 1) return;
    }
    let rows = this.opts.outbox.due(o.name, now, cfg.maxBatch * SCAN_FACTOR);
    if (rows.length === 0) return;
    if (cfg.ratePerMinute > 0 && rows.length > Math.floor(o.tokens)) {
      // over the limit: each check's due alerts collapse to its newest
      const newest = new Map<string, number>();
      for (const r of rows) newest.set(r.alert.check_id, r.seq);
      const old = rows.filter((r) => newest.get(r.alert.check_id) !== r.seq).map((r) => r.seq);
      if (old.length > 0) {
        this.opts.outbox.discard(o.name, old, 'superseded');
        this.opts.log.warn({ output: o.name, superseded: old.length }, 'alerts: rate limited; older alerts of the same checks replaced by their newest');
        rows = rows.filter((r) => newest.get(r.alert.check_id) === r.seq);
      }
    }
    const batch = rows.slice(0, budget);
    const seqs = batch.map((r) => r.seq);
    try {
      await o.sender.send(batch.map((r) => r.alert));
    } catch (e) {
      const msg = (e as Error).message;
      if (e instanceof DeliveryError && !e.retry) {
        this.opts.outbox.discard(o.name, seqs, 'rejected');
        this.opts.log.error({ output: o.name, alerts: seqs.length, err: msg }, 'alerts: the receiver refused the alerts; they are not retried');
        return;
      }
      o.fails++;
      const wait = this.backoffMs(o.fails);
      this.opts.outbox.failed(o.name, seqs, this.now() + wait, msg);
      if (o.fails === 1 || o.fails % 10 === 0) this.opts.log.warn({ output: o.name, alerts: seqs.length, failures: o.fails, retry_ms: wait, err: msg }, 'alerts: delivery failed; will retry');
      return;
    }
    if (o.fails > 0) this.opts.log.info({ output: o.name, after_failures: o.fails }, 'alerts: delivery recovered');
    o.fails = 0;
    if (cfg.ratePerMinute > 0) o.tokens -= batch.length;
    this.opts.outbox.delivered(o.name, seqs);
  }

  private armResend(o: Runtime, delayMs: number): void {
    if (this.closed || !this.started || o.sender.config.type !== 'alertmanager') return;
    if (o.resendTimer !== null) clearTimeout(o.resendTimer);
    o.resendTimer = setTimeout(() => {
      o.resendTimer = null;
      void this.resend(o).finally(() => {
        if (o.sender.config.type === 'alertmanager' && this.opts.outbox.active(o.name).length > 0) this.armResend(o, o.sender.config.resendIntervalMs);
      });
    }, delayMs);
    o.resendTimer.unref();
  }

  /** Alertmanager: sends the firing alerts again (while none of the output's rows wait: those
   *  deliveries come first, and their retries keep trying). */
  async resend(o: Runtime): Promise<void> {
    if (this.closed || o.inFlight !== null || this.opts.outbox.nextAt(o.name) !== null) return;
    const active = this.opts.outbox.active(o.name);
    if (active.length === 0) return;
    const p = o.sender.send(active).catch((e: Error) => {
      this.opts.log.debug({ output: o.name, err: e.message }, 'alerts: refreshing firing alerts failed; retried at the next interval');
    });
    o.inFlight = p;
    try {
      await p;
    } finally {
      o.inFlight = null;
    }
    this.schedule(o);
  }

  /** Delivers what is due now on every output (tests; `patrol` never waits for this). */
  async flush(): Promise<void> {
    await Promise.all(this.outputs.map((o) => (o.inFlight ?? Promise.resolve()).then(() => this.pump(o))));
  }

  stats(): Record<string, OutputStats> {
    const out: Record<string, OutputStats> = {};
    for (const o of this.outputs) {
      const c = this.opts.outbox.counters(o.name);
      out[o.name] = {
        type: o.sender.config.type, ...c, consecutiveFailures: o.fails, nextAttemptAt: this.opts.outbox.nextAt(o.name),
        ...(o.sender.config.type === 'alertmanager' ? { active: this.opts.outbox.active(o.name).length } : {}),
      };
    }
    return out;
  }

  /** Stops the timers and waits (up to `waitMs`) for requests in flight. Rows not delivered
   *  stay in the outbox for the next run. */
  async close(waitMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const o of this.outputs) {
      if (o.timer) clearTimeout(o.timer);
      if (o.resendTimer) clearTimeout(o.resendTimer);
      o.timer = o.resendTimer = null;
    }
    const inflight = this.outputs.map((o) => o.inFlight).filter((p): p is Promise<void> => p !== null);
    if (inflight.length) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(inflight), new Promise((r) => (t = setTimeout(r, waitMs)))]);
      if (t) clearTimeout(t);
    }
    for (const o of this.outputs) o.sender.close?.();
  }
}
