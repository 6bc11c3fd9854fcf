// What the store records and returns. Plain objects: the app maps ExitEvent + Enriched into an
// ExitSummary (see exitSummary() in summary.ts), the API serves ExitRecords.
//
// Kernel u64 values (ns since boot, byte and fault counters) are bigint, as in src/shared/events.
// They are stored as SQLite INTEGER (signed 64-bit): they sort and sum as numbers in SQL, and
// come back as bigint. A value above 2^63−1 (never seen in practice) is stored as 2^63−1.
// cgroup ids are stored as decimal TEXT: they are identifiers, not quantities.
import type { Logger } from '../shared/log.js';

/** The lifecycle summary of one process that ended. */
export interface ExitSummary {
  execId: string;
  /** thread-group id */
  pid: number;
  /** parent pid at exit (after any reparenting) */
  ppid: number;
  parentExecId: string | null;
  comm: string;
  /** path given to the last successful execve; null if no exec was seen */
  filename: string | null;
  /** argv of the last exec, as redacted (export.redact); null if no exec was seen */
  args: readonly string[] | null;
  /** the redaction masked part of args (stored as args_redacted) */
  argsRedacted?: boolean;
  uid: number | null;
  cgroupId: bigint | null;
  /** CLOCK_BOOTTIME ns */
  startNs: bigint;
  /** CLOCK_BOOTTIME ns of the group exit */
  exitNs: bigint;
  durationNs: bigint;
  /** exit code when the process exited normally, else null */
  exitCode: number | null;
  /** terminating signal, else null */
  signal: number | null;
  coreDumped: boolean;
  cpuNs: number | bigint;
  utimeNs: number | bigint;
  stimeNs: number | bigint;
  maxRssKb: number;
  readBytes: number | bigint;
  writeBytes: number | bigint;
  minflt: number | bigint;
  majflt: number | bigint;
  /** time spent as a zombie, when the reap is already known; else set later by recordReap */
  zombieNs?: bigint | null;
  /** ms since the epoch; default: when recordExit was called */
  recordedAt?: number;
}

/** A stored row: the summary plus its id (the commit order) and when it was recorded. */
/** Usage columns: a summary takes them as the exit record's numbers (or bigints), a stored row
 *  gives them back as bigints (SQLite int64, read with safeIntegers). */
type UsageColumn = 'cpuNs' | 'utimeNs' | 'stimeNs' | 'readBytes' | 'writeBytes' | 'minflt' | 'majflt';

export interface ExitRecord extends Omit<ExitSummary, 'zombieNs' | 'recordedAt' | 'args' | 'argsRedacted' | UsageColumn> {
  id: number;
  cpuNs: bigint;
  utimeNs: bigint;
  stimeNs: bigint;
  readBytes: bigint;
  writeBytes: bigint;
  minflt: bigint;
  majflt: bigint;
  args: string[] | null;
  /** the redaction masked part of args; null without args, or for rows stored before the
   *  column existed (schema 6) */
  argsRedacted: boolean | null;
  /** null until reaped */
  zombieNs: bigint | null;
  recordedAt: number;
}

export interface ExitQuery {
  comm?: string;
  pid?: number;
  /** exec_id is indexed only for rows awaiting their reap (schema 7): otherwise this reads the
   *  table from the newest row back; pair it with `since` or `pid` on a large store */
  execId?: string;
  /** only rows recorded at or after this time (ms since the epoch) */
  since?: number;
  /** only rows with a smaller id (paging backwards: pass the last id of the previous page) */
  beforeId?: number;
  /** rows to return, newest first; clamped to 1..MAX_QUERY_LIMIT */
  limit: number;
}

export interface RunRecord {
  id: number;
  pid: number;
  version: string;
  /** ms since the epoch */
  startedAt: number;
  /** null while running, or when that run crashed */
  stoppedAt: number | null;
  stopReason: string | null;
}

export interface RetentionOptions {
  /** rows recorded longer ago than this are deleted; 0: no age limit */
  maxAgeMs: number;
  /** the oldest rows beyond this count are deleted; 0: no count limit */
  maxRows: number;
}

export interface StoreOptions {
  retention: RetentionOptions;
  /** period of the timer flush (startTimer) */
  flushIntervalMs: number;
  log?: Logger;
  /** bound on buffered rows (and on buffered reap updates); the oldest are dropped beyond it
   *  (default 100 000) */
  maxPendingRows?: number;
  /** how often the timer prunes (default 10 000 ms) */
  pruneIntervalMs?: number;
  /** rows deleted per prune transaction (default 1 000) */
  pruneBatchRows?: number;
  /** prune transactions per prune() call; the timer continues a backlog on its next tick
   *  (default 3) */
  pruneMaxBatches?: number;
  /** SQLite busy_timeout once open: how long a flush waits for a write lock held by another
   *  process before failing (and being retried); it blocks the event loop meanwhile (default
   *  250 ms; opening and migrating wait up to 5 s) */
  busyTimeoutMs?: number;
  /** wall clock in ms since the epoch (tests) */
  now?: () => number;
}

export interface FlushResult {
  /** rows committed by this flush */
  committed: number;
  /** set when the flush failed; the rows stay buffered for the next flush */
  error?: string;
}

export interface StoreStats {
  path: string;
  /** rows in the table (committed) */
  rows: number;
  /** highest committed id: every row up to it is durable */
  committedRows: number;
  /** rows waiting for the next flush */
  pendingRows: number;
  /** reap updates of already flushed rows waiting for the next flush */
  pendingReaps: number;
  /** ms since the epoch of the last successful flush that had work; null before the first */
  lastFlushAt: number | null;
  /** duration of that flush */
  lastFlushMs: number | null;
  lastFlushRows: number;
  flushes: number;
  flushFailures: number;
  /** message of the last flush failure, null once a flush succeeded again */
  lastError: string | null;
  /** rows dropped because the buffer was full (the oldest go first), or recorded after close */
  dropped: number;
  /** reap updates dropped because their buffer was full */
  droppedReaps: number;
  /** rows that could not be converted for storage (malformed summaries) */
  rejected: number;
  /** reap updates that found no row (its exit was never stored, or was already pruned) */
  reapsUnmatched: number;
  /** rows deleted by retention since open */
  pruned: number;
  /** database file plus its write-ahead log */
  sizeBytes: number;
}
