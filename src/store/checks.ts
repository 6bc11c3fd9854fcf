// Check results and alerts in the store file (tables check_runs and alerts, migration 2).
//
// Same write discipline as Store (store.ts): record*() only buffers; flush() commits both
// buffers in one transaction; ids are assigned here in commit order, so the highest committed id
// of each table is its acknowledged watermark (a row is durable across kill -9 once its id is at
// or below it: WAL, synchronous=NORMAL). A failed flush keeps everything buffered and is retried;
// the buffer is bounded (oldest dropped and counted). CheckStore opens its own connection to the
// same file; both run on the event loop, so their transactions never overlap.
import Database from 'better-sqlite3';
import { PatrolError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { StoreError, migrate } from './schema.js';
import type { FlushResult, RetentionOptions } from './types.js';

/** A check run as the store keeps it (src/checks' CheckResult has this shape). */
export interface CheckRunInput {
  check_id: string;
  name: string;
  file: string;
  state: string;
  at: number;
  duration_ms: number;
  message: string;
  evidence: unknown;
  labels: Record<string, string>;
  /** version of the check set that produced the run (null: unknown) */
  version?: string | null;
}

export interface CheckRunRecord extends CheckRunInput {
  id: number;
}

/** An alert as the store keeps it (src/checks' Alert has this shape; `id` is the stable id). */
export interface AlertInput {
  id: string;
  check_id: string;
  name: string;
  kind: string;
  state: string;
  previous: string;
  at: number;
  message: string;
  labels: Record<string, string>;
  evidence: unknown;
  /** ranked causes from the attribution engine when the alert fired (issue 7), or null */
  attribution?: unknown;
  /** version of the check set that raised it (null: unknown) */
  version?: string | null;
}

export interface AlertRecord extends AlertInput {
  seq: number;
}

export interface CheckRunQuery {
  checkId?: string;
  name?: string;
  state?: string;
  since?: number;
  beforeId?: number;
  /** only the newest run of each check */
  latest?: boolean;
  limit: number;
}

export interface AlertQuery {
  checkId?: string;
  since?: number;
  beforeSeq?: number;
  limit: number;
}

export interface CheckStoreOptions {
  runs: RetentionOptions;
  alerts: RetentionOptions;
  flushIntervalMs: number;
  log?: Logger;
  maxPendingRows?: number;
  pruneIntervalMs?: number;
  now?: () => number;
}

export interface CheckStoreStats {
  committedRuns: number;
  committedAlerts: number;
  pendingRuns: number;
  pendingAlerts: number;
  flushes: number;
  flushFailures: number;
  lastError: string | null;
  dropped: number;
  pruned: number;
}

const MAX_LIMIT = 10_000;

export class CheckStore {
  private runs: CheckRunInput[] = [];
  private alerts: AlertInput[] = [];
  private runId: number;
  private alertSeq: number;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private flushes = 0;
  private flushFailures = 0;
  private lastError: string | null = null;
  private dropped = 0;
  private pruned = 0;
  private lastPruneAt = 0;
  private readonly now: () => number;
  private readonly maxPending: number;
  private readonly tx: (runs: CheckRunInput[], alerts: AlertInput[]) => { runs: number; alerts: number };
  private readonly insRun: Database.Statement;
  private readonly insAlert: Database.Statement;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly opts: CheckStoreOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.maxPending = opts.maxPendingRows ?? 50_000;
    const seq = (t: string) => (db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(t) as { seq: number } | undefined)?.seq ?? 0;
    this.runId = Math.max(seq('check_runs'), (db.prepare('SELECT max(id) AS m FROM check_runs').get() as { m: number | null }).m ?? 0);
    this.alertSeq = Math.max(seq('alerts'), (db.prepare('SELECT max(seq) AS m FROM alerts').get() as { m: number | null }).m ?? 0);
    this.insRun = db.prepare(
      'INSERT INTO check_runs (id, check_id, name, file, state, at, duration_ms, message, evidence, labels, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insAlert = db.prepare(
      'INSERT OR IGNORE INTO alerts (seq, alert_id, check_id, name, kind, state, previous, at, message, labels, evidence, attribution, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.tx = db.transaction((runs: CheckRunInput[], alerts: AlertInput[]) => {
      let id = this.runId;
      for (const r of runs) {
        this.insRun.run(++id, r.check_id, r.name, r.file, r.state, Math.trunc(r.at), Math.max(0, Math.trunc(r.duration_ms)), r.message, JSON.stringify(r.evidence), JSON.stringify(r.labels), r.version ?? null);
      }
      let seqNo = this.alertSeq;
      for (const a of alerts) {
        // a replayed alert (same stable id) is stored once
        const ch = this.insAlert.run(seqNo + 1, a.id, a.check_id, a.name, a.kind, a.state, a.previous, Math.trunc(a.at), a.message, JSON.stringify(a.labels), JSON.stringify(a.evidence), a.attribution == null ? null : JSON.stringify(a.attribution), a.version ?? null).changes;
        if (ch > 0) seqNo++;
      }
      return { runs: id, alerts: seqNo };
    });
  }

  /** Opens the store file (creating and migrating it if needed). Throws StoreError. */
  static open(path: string, opts: CheckStoreOptions): CheckStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, path);
      db.pragma('busy_timeout = 250');
      return new CheckStore(db, path, opts);
    } catch (e) {
      db?.close();
      if (e instanceof PatrolError) throw e;
      throw new StoreError('E_STORE', `${path}: cannot open the store: ${(e as Error).message}`);
    }
  }

  recordResult(r: CheckRunInput): void {
    if (this.closed) return void this.dropped++;
    if (this.runs.length >= this.maxPending) {
      this.runs.shift();
      this.dropped++;
    }
    this.runs.push(r);
    this.armFlush();
  }

  recordAlert(a: AlertInput): void {
    if (this.closed) return void this.dropped++;
    if (this.alerts.length >= this.maxPending) {
      this.alerts.shift();
      this.dropped++;
    }
    this.alerts.push(a);
    this.armFlush();
  }

  /** Highest committed check_runs id: every run up to it is durable. */
  get committedRuns(): number {
    return this.runId;
  }

  /** Highest committed alerts seq. */
  get committedAlerts(): number {
    return this.alertSeq;
  }

  flush(): FlushResult {
    if (this.closed || (this.runs.length === 0 && this.alerts.length === 0)) return { committed: 0 };
    try {
      const r = this.tx(this.runs, this.alerts);
      const n = r.runs - this.runId + (r.alerts - this.alertSeq);
      this.runId = r.runs;
      this.alertSeq = r.alerts;
      this.runs = [];
      this.alerts = [];
      this.flushes++;
      this.lastError = null;
      return { committed: n };
    } catch (e) {
      this.flushFailures++;
      this.lastError = (e as Error).message;
      if (this.flushFailures === 1 || this.flushFailures % 60 === 0) this.opts.log?.error({ err: this.lastError }, 'check store: flush failed; rows stay buffered');
      return { committed: 0, error: this.lastError };
    }
  }

  /** Flushes within flushIntervalMs of the first buffered row (that row arms the timer, so an
   *  idle agent never wakes for it), and prunes every pruneIntervalMs. */
  startTimer(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setInterval(() => {
      const now = this.now();
      if (now - this.lastPruneAt >= (this.opts.pruneIntervalMs ?? 60_000)) this.prune(now);
    }, Math.max(this.opts.pruneIntervalMs ?? 60_000, this.opts.flushIntervalMs, 10));
    this.timer.unref();
    if (this.runs.length > 0 || this.alerts.length > 0) this.armFlush();
  }

  stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  private flushTimer: NodeJS.Timeout | null = null;

  /** Whether a flush is scheduled: only while rows wait. */
  get flushArmed(): boolean {
    return this.flushTimer !== null;
  }

  private armFlush(): void {
    if (this.timer === null || this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
      if (this.runs.length > 0 || this.alerts.length > 0) this.armFlush(); // a failed flush: retry
    }, this.opts.flushIntervalMs);
    this.flushTimer.unref();
  }

  /** Deletes runs and alerts beyond their age and row limits, in batches of 1000 per table. */
  prune(now: number = this.now()): number {
    if (this.closed) return 0;
    this.lastPruneAt = now;
    let n = 0;
    const one = (table: string, key: string, time: string, r: RetentionOptions) => {
      if (r.maxAgeMs > 0) n += this.db.prepare(`DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${time} < ? LIMIT 1000)`).run(now - r.maxAgeMs).changes;
      if (r.maxRows > 0) {
        const count = (this.db.prepare(`SELECT count(*) AS c FROM ${table}`).get() as { c: number }).c;
        if (count > r.maxRows) n += this.db.prepare(`DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} ORDER BY ${key} LIMIT ?)`).run(Math.min(1000, count - r.maxRows)).changes;
      }
    };
    try {
      one('check_runs', 'id', 'at', this.opts.runs);
      one('alerts', 'seq', 'at', this.opts.alerts);
    } catch (e) {
      this.opts.log?.error({ err: (e as Error).message }, 'check store: prune failed; retried later');
    }
    this.pruned += n;
    return n;
  }

  queryRuns(q: CheckRunQuery): CheckRunRecord[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.checkId !== undefined) (where.push('check_id = ?'), params.push(q.checkId));
    if (q.name !== undefined) (where.push('name = ?'), params.push(q.name));
    if (q.state !== undefined) (where.push('state = ?'), params.push(q.state));
    if (q.since !== undefined) (where.push('at >= ?'), params.push(q.since));
    if (q.beforeId !== undefined) (where.push('id < ?'), params.push(q.beforeId));
    if (q.latest) where.push('id IN (SELECT max(id) FROM check_runs GROUP BY check_id)');
    const sql = `SELECT * FROM check_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, clamp(q.limit)) as Record<string, string | number>[];
    return rows.map((r) => ({
      id: r.id as number, check_id: r.check_id as string, name: r.name as string, file: r.file as string, state: r.state as string, at: r.at as number,
      duration_ms: r.duration_ms as number, message: r.message as string, evidence: JSON.parse(r.evidence as string), labels: JSON.parse(r.labels as string),
      version: (r.version as string | null) ?? null,
    }));
  }

  queryAlerts(q: AlertQuery): AlertRecord[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.checkId !== undefined) (where.push('check_id = ?'), params.push(q.checkId));
    if (q.since !== undefined) (where.push('at >= ?'), params.push(q.since));
    if (q.beforeSeq !== undefined) (where.push('seq < ?'), params.push(q.beforeSeq));
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, clamp(q.limit)) as Record<string, string | number>[];
    return rows.map((r) => ({
      seq: r.seq as number, id: r.alert_id as string, check_id: r.check_id as string, name: r.name as string, kind: r.kind as string, state: r.state as string,
      previous: r.previous as string, at: r.at as number, message: r.message as string, labels: JSON.parse(r.labels as string), evidence: JSON.parse(r.evidence as string),
      attribution: r.attribution == null ? null : JSON.parse(r.attribution as string),
      version: (r.version as string | null) ?? null,
    }));
  }

  /** The state each check's last stored alert announced: seeds alert deduplication after a
   *  restart, so a still-critical check does not alert again. */
  lastAlertedStates(): Map<string, string> {
    const rows = this.db.prepare('SELECT check_id, state FROM alerts WHERE seq IN (SELECT max(seq) FROM alerts GROUP BY check_id)').all() as { check_id: string; state: string }[];
    return new Map(rows.map((r) => [r.check_id, r.state]));
  }

  integrityCheck(): string {
    return (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('\n');
  }

  stats(): CheckStoreStats {
    return {
      committedRuns: this.runId, committedAlerts: this.alertSeq, pendingRuns: this.runs.length, pendingAlerts: this.alerts.length,
      flushes: this.flushes, flushFailures: this.flushFailures, lastError: this.lastError, dropped: this.dropped, pruned: this.pruned,
    };
  }

  close(): void {
    if (this.closed) return;
    this.stopTimer();
    this.flush();
    const left = this.runs.length + this.alerts.length;
    if (left > 0) this.opts.log?.error({ rows: left }, 'check store: closing with rows that could not be written; they are lost');
    this.closed = true;
    this.db.close();
  }
}

const clamp = (n: number) => Math.min(MAX_LIMIT, Math.max(1, Math.trunc(n) || 1));
