// The embedded store: process exit summaries and agent runs in one SQLite file (better-sqlite3).
//
// Hot path. recordExit() and recordReap() only touch memory: rows wait in a bounded buffer and
// flush() commits them in one transaction (the timer does it every flushIntervalMs). A reap that
// arrives while its row is still buffered fills the row in place; a later one becomes an UPDATE
// in the next flush transaction.
//
// Durability. journal_mode=WAL with synchronous=NORMAL: a commit has written its frames to the
// write-ahead log with write(2) before flush() returns, so once `committedRows` covers a row, the
// row survives a crash of this process (kill -9, OOM kill, an uncaught exception): the kernel
// holds the data and SQLite recovers the log on the next open. It is NOT fsynced per commit: a
// power loss or kernel crash may lose the last transactions (never corrupting the file). That
// process-crash guarantee is what we promise; test/unit/store-crash.test.ts checks it.
//
// Ids. The store assigns ids itself, in commit order, from the AUTOINCREMENT sequence; they are
// never reused, so the highest committed id (`committedRows`) is a monotonic watermark: a row is
// acknowledged exactly when its id is <= the watermark.
//
// Failures. A flush that fails (SQLITE_FULL, SQLITE_BUSY, I/O error) rolls back, keeps every row
// buffered, counts the failure, logs it (at most once a minute while failing) and is retried by
// the next flush. The buffer is bounded by maxPendingRows: beyond it the oldest rows are dropped
// and counted (`dropped`), so a store that cannot write cannot exhaust memory.
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { PatrolError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { StoreError, migrate } from './schema.js';
import { PendingRows } from './pending.js';
import type {
  ExitQuery,
  ExitRecord,
  ExitSummary,
  FlushResult,
  RetentionOptions,
  RunRecord,
  StoreOptions,
  StoreStats,
} from './types.js';

export const MAX_QUERY_LIMIT = 10_000;

const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);
const FAILURE_LOG_INTERVAL_MS = 60_000;

type Row = Record<string, bigint | string | null>;

const COLUMNS = [
  'id',
  'exec_id',
  'pid',
  'ppid',
  'parent_exec_id',
  'comm',
  'filename',
  'args',
  'uid',
  'cgroup_id',
  'start_ns',
  'exit_ns',
  'duration_ns',
  'exit_code',
  'signal',
  'core_dumped',
  'cpu_ns',
  'utime_ns',
  'stime_ns',
  'max_rss_kb',
  'read_bytes',
  'write_bytes',
  'minflt',
  'majflt',
  'zombie_ns',
  'recorded_at',
  'args_redacted',
] as const;

function int(v: bigint | number, what: string): bigint | number {
  if (typeof v === 'bigint') return v > I64_MAX ? I64_MAX : v < I64_MIN ? I64_MIN : v;
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  throw new TypeError(`${what}: expected an integer, got ${typeof v}`);
}

function intOrNull(v: bigint | number | null | undefined, what: string): bigint | number | null {
  return v === null || v === undefined ? null : int(v, what);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TypeError(`${what}: expected a string, got ${typeof v}`);
  return v;
}

function strOrNull(v: unknown, what: string): string | null {
  return v === null || v === undefined ? null : str(v, what);
}

/** Rows one INSERT statement carries: a statement's fixed cost (the N-API call, opening the
 *  table's and its indexes' cursors, the reset) is paid once for them. A 200-row flush cost
 *  ×0.87 of one statement a row, and ×0.92 at 64 rows a statement (bench/store-flush.mjs;
 *  bench/README.md, "Session 23"). */
export const ROWS_PER_INSERT = 16;

const EXEC_ID_COLUMN = COLUMNS.indexOf('exec_id');
const ZOMBIE_COLUMN = COLUMNS.indexOf('zombie_ns');

/** Fills `out` from `at` with the INSERT parameters of one row, its id (column 0) left to the
 *  flush; throws TypeError on a malformed summary (then what it wrote from `at` is overwritten by
 *  the next row). */
function bindSummary(out: unknown[], at: number, s: ExitSummary, recordedAt: number): void {
  out[at + 0] = 0;
  out[at + 1] = str(s.execId, 'execId');
  out[at + 2] = int(s.pid, 'pid');
  out[at + 3] = int(s.ppid, 'ppid');
  out[at + 4] = strOrNull(s.parentExecId, 'parentExecId');
  out[at + 5] = str(s.comm, 'comm');
  out[at + 6] = strOrNull(s.filename, 'filename');
  out[at + 7] = s.args === null || s.args === undefined ? null : JSON.stringify(s.args);
  out[at + 8] = intOrNull(s.uid, 'uid');
  out[at + 9] = s.cgroupId === null || s.cgroupId === undefined ? null : String(s.cgroupId);
  out[at + 10] = int(s.startNs, 'startNs');
  out[at + 11] = int(s.exitNs, 'exitNs');
  out[at + 12] = int(s.durationNs, 'durationNs');
  out[at + 13] = intOrNull(s.exitCode, 'exitCode');
  out[at + 14] = intOrNull(s.signal, 'signal');
  out[at + 15] = s.coreDumped ? 1 : 0;
  out[at + 16] = int(s.cpuNs, 'cpuNs');
  out[at + 17] = int(s.utimeNs, 'utimeNs');
  out[at + 18] = int(s.stimeNs, 'stimeNs');
  out[at + 19] = int(s.maxRssKb, 'maxRssKb');
  out[at + 20] = int(s.readBytes, 'readBytes');
  out[at + 21] = int(s.writeBytes, 'writeBytes');
  out[at + 22] = int(s.minflt, 'minflt');
  out[at + 23] = int(s.majflt, 'majflt');
  out[at + 24] = intOrNull(s.zombieNs, 'zombieNs');
  out[at + 25] = int(recordedAt, 'recordedAt');
  out[at + 26] = s.args === null || s.args === undefined ? null : s.argsRedacted ? 1 : 0;
}

const num = (v: bigint | string | null): number => Number(v);
const numOrNull = (v: bigint | string | null): number | null => (v === null ? null : Number(v));

function toRecord(r: Row): ExitRecord {
  return {
    id: num(r.id!),
    execId: r.exec_id as string,
    pid: num(r.pid!),
    ppid: num(r.ppid!),
    parentExecId: r.parent_exec_id as string | null,
    comm: r.comm as string,
    filename: r.filename as string | null,
    args: r.args === null ? null : (JSON.parse(r.args as string) as string[]),
    uid: numOrNull(r.uid!),
    cgroupId: r.cgroup_id === null ? null : BigInt(r.cgroup_id as string),
    startNs: r.start_ns as bigint,
    exitNs: r.exit_ns as bigint,
    durationNs: r.duration_ns as bigint,
    exitCode: numOrNull(r.exit_code!),
    signal: numOrNull(r.signal!),
    coreDumped: r.core_dumped === 1n,
    cpuNs: r.cpu_ns as bigint,
    utimeNs: r.utime_ns as bigint,
    stimeNs: r.stime_ns as bigint,
    maxRssKb: num(r.max_rss_kb!),
    readBytes: r.read_bytes as bigint,
    writeBytes: r.write_bytes as bigint,
    minflt: r.minflt as bigint,
    majflt: r.majflt as bigint,
    zombieNs: r.zombie_ns as bigint | null,
    recordedAt: num(r.recorded_at!),
    argsRedacted: r.args_redacted === null || r.args_redacted === undefined ? null : r.args_redacted === 1n,
  };
}

function fileSize(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}

export class Store {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private maxAgeMs: number;
  private maxRows: number;
  flushIntervalMs: number;
  private readonly maxPending: number;
  private readonly pruneIntervalMs: number;
  private readonly pruneBatchRows: number;
  private readonly pruneMaxBatches: number;

  /** rows waiting for the next flush, already bound (pending.ts) */
  private readonly pending = new PendingRows(COLUMNS.length, ZOMBIE_COLUMN, EXEC_ID_COLUMN);
  /** reaps of rows already flushed: exec_id → zombie ns, applied by the next flush */
  private readonly reapUpdates = new Map<string, bigint>();

  private committedId: number;
  private rowCount: number;
  private runId: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private lastFlushAt: number | null = null;
  private lastFlushMs: number | null = null;
  private lastFlushRows = 0;
  private flushes = 0;
  private flushFailures = 0;
  private failingSince: number | null = null;
  private lastFailureLogAt = 0;
  private lastError: string | null = null;
  private dropped = 0;
  private droppedReaps = 0;
  private rejected = 0;
  private reapsUnmatched = 0;
  private pruned = 0;
  private pruneBacklog = false;
  private lastPruneAt = 0;

  /** INSERTs of n rows, prepared on first use ([n], 1..ROWS_PER_INSERT) */
  private readonly insertStmts: Database.Statement[] = [];
  private readonly reapStmt: Database.Statement;
  private readonly deleteOldStmt: Database.Statement;
  private readonly deleteFirstStmt: Database.Statement;
  private readonly queryCache = new Map<string, Database.Statement>();
  private readonly flushTx: (rows: number, firstId: number) => { inserted: number; unmatched: number };

  private constructor(db: Database.Database, path: string, opts: StoreOptions) {
    this.db = db;
    this.path = path;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.maxAgeMs = opts.retention.maxAgeMs;
    this.maxRows = opts.retention.maxRows;
    this.flushIntervalMs = opts.flushIntervalMs;
    this.maxPending = opts.maxPendingRows ?? 100_000;
    this.pruneIntervalMs = opts.pruneIntervalMs ?? 10_000;
    this.pruneBatchRows = opts.pruneBatchRows ?? 1_000;
    this.pruneMaxBatches = opts.pruneMaxBatches ?? 3;

    const seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'process_exits'").get() as { seq: number } | undefined;
    const max = db.prepare('SELECT max(id) AS m FROM process_exits').get() as { m: number | null };
    this.committedId = Math.max(seq?.seq ?? 0, max.m ?? 0);
    this.rowCount = (db.prepare('SELECT count(*) AS n FROM process_exits').get() as { n: number }).n;

    const insertOf = (n: number): Database.Statement =>
      (this.insertStmts[n] ??= db.prepare(`INSERT INTO process_exits (${COLUMNS.join(', ')}) VALUES ${Array.from({ length: n }, () => `(${COLUMNS.map(() => '?').join(', ')})`).join(', ')}`));
    insertOf(1);
    insertOf(ROWS_PER_INSERT);
    this.reapStmt = db.prepare('UPDATE process_exits SET zombie_ns = ? WHERE exec_id = ? AND zombie_ns IS NULL');
    this.deleteOldStmt = db.prepare(
      'DELETE FROM process_exits WHERE id IN (SELECT id FROM process_exits WHERE recorded_at < ? LIMIT ?)',
    );
    this.deleteFirstStmt = db.prepare(
      'DELETE FROM process_exits WHERE id IN (SELECT id FROM process_exits ORDER BY id LIMIT ?)',
    );

    const width = COLUMNS.length;
    const params: unknown[] = new Array(width * ROWS_PER_INSERT).fill(null);
    this.flushTx = db.transaction((rows: number, firstId: number) => {
      const src = this.pending.buffer;
      let id = firstId;
      let held = 0; // rows copied into params, not inserted yet
      for (let i = 0; i < rows; i++) {
        const from = this.pending.at(i);
        const at = held * width;
        params[at] = id++;
        for (let k = 1; k < width; k++) params[at + k] = src[from + k];
        if (++held === ROWS_PER_INSERT) {
          // positional arguments: better-sqlite3 binds them without a property read per element
          insertOf(ROWS_PER_INSERT).run(...params);
          held = 0;
        }
      }
      if (held > 0) insertOf(held).run(...params.slice(0, held * width));
      // hold no row's strings (argv JSON, names) until the next flush: they would be promoted
      params.fill(null);
      let unmatched = 0;
      for (const [execId, zombieNs] of this.reapUpdates) {
        if (this.reapStmt.run(int(zombieNs, 'zombieNs'), execId).changes === 0) unmatched++;
      }
      return { inserted: id - firstId, unmatched };
    });
  }

  /** Opens (creating if needed) the store at `path`: parent directory mode 0700, file 0600,
   *  WAL mode, migrations applied. Throws StoreError (E_STORE, E_STORE_VERSION). */
  static open(path: string, opts: StoreOptions): Store {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      db = new Database(path, { fileMustExist: true });
      // patient while opening and migrating; short afterwards (below)
      db.pragma('busy_timeout = 5000');
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      // NORMAL in WAL mode: durable across a process crash, not across power loss (see header)
      db.pragma('synchronous = NORMAL');
      // after a checkpoint, truncate a write-ahead log that grew past 64 MiB
      db.pragma('journal_size_limit = 67108864');
      if (mode !== 'wal') {
        opts.log?.warn({ path, journalMode: mode }, 'store: WAL mode unavailable on this file system; commits are slower');
      }
      migrate(db, path);
      // Only another process can hold the write lock (a sqlite3 shell, a backup): a flush then
      // waits at most this long, blocking the event loop, before it fails and is retried.
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(opts.busyTimeoutMs ?? 250))}`);
      return new Store(db, path, opts);
    } catch (e) {
      db?.close();
      if (e instanceof PatrolError) throw e;
      throw new StoreError('E_STORE', `${path}: cannot open the store: ${(e as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- hot path (memory only)

  /** Buffers one exit summary, copied (the caller may reuse the object); it is committed by the
   *  next flush. A malformed summary is counted (`rejected`), logged and not stored. No I/O. */
  recordExit(summary: ExitSummary): void {
    if (this.closed) {
      this.dropped++;
      return;
    }
    try {
      bindSummary(this.pending.buffer, this.pending.nextAt, summary, summary.recordedAt ?? this.now());
    } catch (e) {
      this.pending.abandon();
      this.rejected++;
      this.log?.warn({ err: (e as Error).message, execId: String(summary.execId) }, 'store: malformed exit summary not stored');
      return;
    }
    this.pending.added(summary.execId, summary.zombieNs === null || summary.zombieNs === undefined);
    // full: the oldest goes, after the new row is whole (a malformed one displaces nothing)
    if (this.pending.size > this.maxPending) this.dropOldest();
    if (this.flushTimer === null) this.armFlush();
  }

  /** Records the reap of a process whose exit was recorded: fills the buffered row, or updates
   *  the stored one in the next flush. No I/O. */
  recordReap(execId: string, zombieNs: bigint): void {
    if (this.closed) return;
    if (this.pending.reap(execId, int(zombieNs, 'zombieNs'))) return;
    if (!this.reapUpdates.has(execId) && this.reapUpdates.size >= this.maxPending) {
      const oldest = this.reapUpdates.keys().next().value as string;
      this.reapUpdates.delete(oldest);
      this.droppedReaps++;
    }
    this.reapUpdates.set(execId, zombieNs);
    if (this.flushTimer === null) this.armFlush();
  }

  private dropOldest(): void {
    this.pending.dropOldest();
    if (this.dropped++ === 0 || this.dropped % 10_000 === 0) {
      this.log?.error({ dropped: this.dropped, maxPendingRows: this.maxPending }, 'store: buffer full, dropping the oldest unwritten rows');
    }
  }

  // ---------------------------------------------------------------- flush, watermark, timer

  /** Highest committed id: every row with an id up to it is durable (the acknowledged watermark). */
  get committedRows(): number {
    return this.committedId;
  }

  /** Commits the buffered rows and reap updates in one transaction. On failure nothing is lost:
   *  everything stays buffered for the next flush, and `error` says why. */
  flush(): FlushResult {
    if (this.closed) return { committed: 0 };
    const n = this.pending.size;
    if (n === 0 && this.reapUpdates.size === 0) return { committed: 0 };
    const t0 = performance.now();
    let r: { inserted: number; unmatched: number };
    try {
      r = this.flushTx(n, this.committedId + 1);
    } catch (e) {
      this.onFlushFailure(e as Error, n);
      return { committed: 0, error: (e as Error).message };
    }
    const ms = performance.now() - t0;
    this.committedId += r.inserted;
    this.rowCount += r.inserted;
    this.reapsUnmatched += r.unmatched;
    this.pending.clear();
    this.reapUpdates.clear();
    this.flushes++;
    this.lastFlushAt = this.now();
    this.lastFlushMs = ms;
    this.lastFlushRows = r.inserted;
    if (this.failingSince !== null) {
      this.log?.info({ failures: this.flushFailures, committed: r.inserted }, 'store: writes recovered');
      this.failingSince = null;
      this.lastError = null;
    }
    // Everything is committed: a flush the first row armed has nothing left to do, and would
    // only wake the process (a caller that flushes on its own cadence, like the agent's exit
    // batch, then costs no timer wakeup at all).
    this.disarmFlush();
    return { committed: r.inserted };
  }

  private onFlushFailure(e: Error, rows: number): void {
    this.flushFailures++;
    this.lastError = `${(e as { code?: string }).code ?? e.name}: ${e.message}`;
    const now = this.now();
    if (this.failingSince === null || now - this.lastFailureLogAt >= FAILURE_LOG_INTERVAL_MS) {
      this.log?.error(
        { err: this.lastError, pendingRows: rows, failures: this.flushFailures, dropped: this.dropped },
        'store: flush failed; rows stay buffered and are retried',
      );
      this.lastFailureLogAt = now;
    }
    this.failingSince ??= now;
  }

  /** Flushes buffered rows within flushIntervalMs of the first one, and prunes every
   *  pruneIntervalMs (every flush interval while a backlog of expired rows remains). The flush
   *  timer is armed by the first buffered row, so an idle agent's store never wakes it; neither
   *  timer keeps the process alive. */
  startTimer(): void {
    if (this.timer !== null || this.closed) return;
    this.lastPruneAt = this.now();
    this.timerOn = true;
    this.timer = setInterval(() => this.pruneTick(), Math.max(this.pruneIntervalMs, this.flushIntervalMs, 10));
    this.timer.unref();
    if (this.pending.size > 0 || this.reapUpdates.size > 0) this.armFlush();
  }

  stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.timerOn = false;
  }

  /** New retention and flush interval (a config reload); running timers are re-armed with it. */
  setOptions(opts: { flushIntervalMs: number; retention: RetentionOptions }): void {
    this.maxAgeMs = opts.retention.maxAgeMs;
    this.maxRows = opts.retention.maxRows;
    const rearm = this.timerOn && opts.flushIntervalMs !== this.flushIntervalMs;
    this.flushIntervalMs = opts.flushIntervalMs;
    if (rearm) {
      this.stopTimer();
      this.startTimer();
    }
  }

  private timerOn = false;
  private flushTimer: NodeJS.Timeout | null = null;

  /** Whether a flush is scheduled: only while rows wait (an idle store sets no timer). */
  get flushArmed(): boolean {
    return this.flushTimer !== null;
  }

  private disarmFlush(): void {
    if (this.flushTimer === null) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  /** The flush interval now in force (a config reload may change it). */
  get flushInterval(): number {
    return this.flushIntervalMs;
  }

  private armFlush(): void {
    if (!this.timerOn || this.flushTimer !== null) return;
    this.flushTimer = setTimeout(this.flushTick, this.flushIntervalMs);
    this.flushTimer.unref();
  }

  private readonly flushTick = (): void => {
    this.flushTimer = null;
    this.commit();
  };

  /** What the flush timer does, for a caller on its own cadence (the agent's exit batch):
   *  flush, prune when due, and come back only for rows a failed flush kept or a prune backlog. */
  commit(): void {
    this.flush();
    const now = this.now();
    if (this.pruneBacklog || now - this.lastPruneAt >= this.pruneIntervalMs) this.prune(now);
    // rows a failed flush kept, or a prune backlog: come back at the same pace
    if (this.pending.size > 0 || this.reapUpdates.size > 0 || this.pruneBacklog) this.armFlush();
  }

  private pruneTick(): void {
    const now = this.now();
    if (this.flushTimer === null && now - this.lastPruneAt >= this.pruneIntervalMs) this.prune(now);
    if (this.pruneBacklog) this.armFlush();
  }

  // ---------------------------------------------------------------- retention

  /** Deletes rows recorded before now − maxAge, then the oldest rows beyond maxRows, in
   *  transactions of pruneBatchRows rows, at most `maxBatches` of them per call (so it never
   *  blocks long; the timer continues a backlog on its next tick). Returns the rows deleted. */
  prune(now: number = this.now(), maxBatches: number = this.pruneMaxBatches): number {
    if (this.closed) return 0;
    this.lastPruneAt = now;
    let deleted = 0;
    let batches = 0;
    let more = false;
    try {
      while (batches < maxBatches) {
        let n = 0;
        if (this.maxAgeMs > 0) n = this.deleteOldStmt.run(now - this.maxAgeMs, this.pruneBatchRows).changes;
        if (n === 0 && this.maxRows > 0 && this.rowCount > this.maxRows) {
          n = this.deleteFirstStmt.run(Math.min(this.rowCount - this.maxRows, this.pruneBatchRows)).changes;
        }
        if (n === 0) break;
        batches++;
        deleted += n;
        this.rowCount = Math.max(0, this.rowCount - n);
        if (batches === maxBatches) more = true;
      }
    } catch (e) {
      this.log?.error({ err: (e as Error).message }, 'store: retention prune failed; retried later');
    }
    this.pruned += deleted;
    this.pruneBacklog = more;
    return deleted;
  }

  // ---------------------------------------------------------------- reads

  /** Committed rows, newest first (buffered rows are not visible until flushed). */
  queryExits(q: ExitQuery): ExitRecord[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.comm !== undefined) {
      where.push('comm = ?');
      params.push(q.comm);
    }
    if (q.pid !== undefined) {
      where.push('pid = ?');
      params.push(q.pid);
    }
    if (q.execId !== undefined) {
      where.push('exec_id = ?');
      params.push(q.execId);
    }
    if (q.since !== undefined) {
      where.push('recorded_at >= ?');
      params.push(q.since);
    }
    if (q.beforeId !== undefined) {
      where.push('id < ?');
      params.push(q.beforeId);
    }
    const key = where.join(' AND ');
    let stmt = this.queryCache.get(key);
    if (stmt === undefined) {
      stmt = this.db
        .prepare(`SELECT * FROM process_exits ${key === '' ? '' : `WHERE ${key}`} ORDER BY id DESC LIMIT ?`)
        .safeIntegers(true);
      this.queryCache.set(key, stmt);
    }
    const limit = Math.min(MAX_QUERY_LIMIT, Math.max(1, Math.trunc(q.limit) || 1));
    return (stmt.all(...params, limit) as Row[]).map(toRecord);
  }

  /** Agent runs, newest first. */
  runs(limit = 20): RunRecord[] {
    const rows = this.db.prepare('SELECT * FROM agent_runs ORDER BY id DESC LIMIT ?').all(Math.max(1, limit)) as {
      id: number;
      pid: number;
      version: string;
      started_at: number;
      stopped_at: number | null;
      stop_reason: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id,
      pid: r.pid,
      version: r.version,
      startedAt: r.started_at,
      stoppedAt: r.stopped_at,
      stopReason: r.stop_reason,
    }));
  }

  /** PRAGMA integrity_check: "ok", or the problems found, one per line. */
  integrityCheck(): string {
    const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('\n');
  }

  // ---------------------------------------------------------------- agent runs

  /** Records the start of an agent run. Earlier runs that never stopped (the agent crashed) keep
   *  stopped_at NULL and get stop_reason 'crashed'. Returns the run id. */
  beginRun(pid: number, version: string): number {
    const crashed = this.db
      .prepare("UPDATE agent_runs SET stop_reason = 'crashed' WHERE stopped_at IS NULL AND stop_reason IS NULL RETURNING id, pid")
      .all() as { id: number; pid: number }[];
    if (crashed.length > 0) this.log?.warn({ runs: crashed }, 'store: previous agent run did not stop cleanly');
    const r = this.db.prepare('INSERT INTO agent_runs (pid, version, started_at) VALUES (?, ?, ?)').run(pid, version, this.now());
    this.runId = Number(r.lastInsertRowid);
    return this.runId;
  }

  /** Flushes, then records the end of the current run. */
  endRun(reason: string): void {
    if (this.closed || this.runId === null) return;
    this.flush();
    this.db.prepare('UPDATE agent_runs SET stopped_at = ?, stop_reason = ? WHERE id = ?').run(this.now(), reason, this.runId);
    this.runId = null;
  }

  // ---------------------------------------------------------------- stats, close

  stats(): StoreStats {
    return {
      path: this.path,
      rows: this.rowCount,
      committedRows: this.committedId,
      pendingRows: this.pending.size,
      pendingReaps: this.reapUpdates.size,
      lastFlushAt: this.lastFlushAt,
      lastFlushMs: this.lastFlushMs,
      lastFlushRows: this.lastFlushRows,
      flushes: this.flushes,
      flushFailures: this.flushFailures,
      lastError: this.lastError,
      dropped: this.dropped,
      droppedReaps: this.droppedReaps,
      rejected: this.rejected,
      reapsUnmatched: this.reapsUnmatched,
      pruned: this.pruned,
      sizeBytes: fileSize(this.path) + fileSize(`${this.path}-wal`),
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops the timer, flushes, and closes the database (checkpointing the log). Rows a failing
   *  final flush could not write are reported in the log. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.stopTimer();
    const r = this.flush();
    const left = this.pending.size;
    if (left > 0) {
      this.log?.error({ rows: left, err: r.error }, 'store: closing with rows that could not be written; they are lost');
      this.dropped += left;
    }
    this.closed = true;
    this.pending.clear();
    this.reapUpdates.clear();
    this.db.close();
  }
}
