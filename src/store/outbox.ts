// The alert outbox (tables outbox, outbox_counters, outbox_active; migration 4): deliveries to
// alert outputs, durable before the first attempt. Unlike the event tables nothing is buffered:
// alerts are rare, and an alert acknowledged to the delivery must survive kill -9, so every call
// commits before it returns (WAL, synchronous=FULL on this connection: a commit is on disk).
//
// Its own connection to the store file, on the event loop like the others, so its transactions
// never overlap theirs. The shape is src/export's OutboxPort (the app hands this in).
import Database from 'better-sqlite3';
import { PatrolError } from '../shared/errors.js';
import { StoreError, migrate } from './schema.js';

/** What the outbox stores per row: any JSON object with an id and a check id. */
export interface OutboxAlert {
  id: string;
  check_id: string;
}

export interface OutboxRowOf<A> {
  seq: number;
  output: string;
  alert: A;
  attempts: number;
  createdAt: number;
}

export interface OutboxCounterValues {
  pending: number;
  delivered: number;
  dropped: number;
  superseded: number;
  rejected: number;
  failures: number;
  lastError: string | null;
  oldestAt: number | null;
}

export interface OutboxOptions {
  /** rows kept at most over all outputs (oldest dropped and counted) */
  maxRows: number;
  now?: () => number;
}

const COUNTERS = ['delivered', 'dropped', 'superseded', 'rejected', 'failures'] as const;
type CounterName = (typeof COUNTERS)[number];

export class Outbox<A extends OutboxAlert = OutboxAlert> {
  private closed = false;
  private readonly st: Record<string, Database.Statement>;
  private readonly lastErrors = new Map<string, string>();

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly opts: OutboxOptions,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.st = {
      insert: p('INSERT OR IGNORE INTO outbox (output, alert_id, check_id, alert, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?)'),
      count: p('SELECT count(*) AS c FROM outbox'),
      oldest: p('SELECT seq, output FROM outbox ORDER BY seq LIMIT ?'),
      del: p('DELETE FROM outbox WHERE seq = ?'),
      due: p('SELECT seq, output, alert, attempts, created_at FROM outbox WHERE output = ? AND next_at <= ? ORDER BY seq LIMIT ?'),
      nextAt: p('SELECT min(next_at) AS t FROM outbox WHERE output = ?'),
      fail: p('UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE seq = ?'),
      bump: p('INSERT INTO outbox_counters (output, name, value) VALUES (?, ?, ?) ON CONFLICT (output, name) DO UPDATE SET value = value + excluded.value'),
      counters: p('SELECT name, value FROM outbox_counters WHERE output = ?'),
      pending: p('SELECT count(*) AS c, min(created_at) AS oldest, (SELECT last_error FROM outbox WHERE output = ? AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1) AS err FROM outbox WHERE output = ?'),
      setActive: p('INSERT INTO outbox_active (output, check_id, alert) VALUES (?, ?, ?) ON CONFLICT (output, check_id) DO UPDATE SET alert = excluded.alert'),
      delActive: p('DELETE FROM outbox_active WHERE output = ? AND check_id = ?'),
      active: p('SELECT alert FROM outbox_active WHERE output = ? ORDER BY check_id'),
      outputs: p('SELECT DISTINCT output FROM outbox UNION SELECT DISTINCT output FROM outbox_active'),
      dropOutput: p('DELETE FROM outbox WHERE output = ?'),
      dropActive: p('DELETE FROM outbox_active WHERE output = ?'),
    };
  }

  /** Opens the store file (creating and migrating it if needed). Throws StoreError. */
  static open<A extends OutboxAlert = OutboxAlert>(path: string, opts: OutboxOptions): Outbox<A> {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      // an enqueued alert is acknowledged: it must be on disk when enqueue() returns
      db.pragma('synchronous = FULL');
      migrate(db, path);
      return new Outbox<A>(db, path, opts);
    } catch (e) {
      db?.close();
      if (e instanceof PatrolError) throw e;
      throw new StoreError('E_STORE', `${path}: cannot open the alert outbox: ${(e as Error).message}`);
    }
  }

  /** The bound (alerts.queue_max) changed by a reload: applies from the next enqueue. */
  setMaxRows(n: number): void {
    this.opts.maxRows = n;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private bump(output: string, name: CounterName, n: number): void {
    if (n > 0) this.st.bump!.run(output, name, n);
  }

  enqueue(outputs: readonly string[], alert: A, nextAt: number): number {
    if (this.closed) throw new StoreError('E_STORE_CLOSED', 'the alert outbox is closed');
    const json = JSON.stringify(alert);
    const now = this.now();
    return this.db.transaction(() => {
      let added = 0;
      for (const o of outputs) added += this.st.insert!.run(o, alert.id, alert.check_id, json, now, nextAt).changes;
      const total = (this.st.count!.get() as { c: number }).c;
      if (total > this.opts.maxRows) {
        // full: the oldest rows go, each counted against its output
        for (const r of this.st.oldest!.all(total - this.opts.maxRows) as { seq: number; output: string }[]) {
          this.st.del!.run(r.seq);
          this.bump(r.output, 'dropped', 1);
        }
      }
      return added;
    }).immediate();
  }

  due(output: string, now: number, limit: number): OutboxRowOf<A>[] {
    if (this.closed) return [];
    const rows = this.st.due!.all(output, now, Math.max(1, limit)) as { seq: number; output: string; alert: string; attempts: number; created_at: number }[];
    return rows.map((r) => ({ seq: r.seq, output: r.output, alert: JSON.parse(r.alert) as A, attempts: r.attempts, createdAt: r.created_at }));
  }

  nextAt(output: string): number | null {
    if (this.closed) return null;
    return (this.st.nextAt!.get(output) as { t: number | null }).t;
  }

  delivered(output: string, seqs: readonly number[]): void {
    if (this.closed) return;
    this.db.transaction(() => {
      let n = 0;
      for (const s of seqs) n += this.st.del!.run(s).changes;
      this.bump(output, 'delivered', n);
    })();
    this.lastErrors.delete(output);
  }

  failed(output: string, seqs: readonly number[], nextAt: number, error: string): void {
    if (this.closed) return;
    const msg = error.slice(0, 500);
    this.db.transaction(() => {
      for (const s of seqs) this.st.fail!.run(nextAt, msg, s);
      this.bump(output, 'failures', 1);
    })();
    this.lastErrors.set(output, msg);
  }

  discard(output: string, seqs: readonly number[], why: 'superseded' | 'rejected'): void {
    if (this.closed) return;
    this.db.transaction(() => {
      let n = 0;
      for (const s of seqs) n += this.st.del!.run(s).changes;
      this.bump(output, why, n);
    })();
  }

  setActive(output: string, checkId: string, alert: A | null): void {
    if (this.closed) return;
    if (alert === null) this.st.delActive!.run(output, checkId);
    else this.st.setActive!.run(output, checkId, JSON.stringify(alert));
  }

  active(output: string): A[] {
    if (this.closed) return [];
    return (this.st.active!.all(output) as { alert: string }[]).map((r) => JSON.parse(r.alert) as A);
  }

  retain(outputs: readonly string[]): number {
    const keep = new Set(outputs);
    let dropped = 0;
    this.db.transaction(() => {
      for (const { output } of this.st.outputs!.all() as { output: string }[]) {
        if (keep.has(output)) continue;
        dropped += this.st.dropOutput!.run(output).changes;
        this.st.dropActive!.run(output);
      }
    })();
    return dropped;
  }

  counters(output: string): OutboxCounterValues {
    const c: Record<string, number> = {};
    for (const r of this.st.counters!.all(output) as { name: string; value: number }[]) c[r.name] = r.value;
    const p = this.st.pending!.get(output, output) as { c: number; oldest: number | null; err: string | null };
    return {
      pending: p.c,
      delivered: c.delivered ?? 0,
      dropped: c.dropped ?? 0,
      superseded: c.superseded ?? 0,
      rejected: c.rejected ?? 0,
      failures: c.failures ?? 0,
      lastError: this.lastErrors.get(output) ?? p.err,
      oldestAt: p.oldest,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
