import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  MIGRATIONS,
  ROWS_PER_INSERT,
  SCHEMA_VERSION,
  Store,
  StoreError,
  exitSummary,
  migrate,
  schemaVersion,
  type ExitSummary,
  type StoreOptions,
} from '../../src/store/index.js';
import { ProcessEntry, type Enriched } from '../../src/process/index.js';
import type { ExitEvent } from '../../src/shared/events.js';

let dir: string;
let opened: Store[] = [];
const extra: Database.Database[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-store-'));
});

afterEach(() => {
  for (const s of opened) s.close();
  for (const d of extra) d.close();
  opened = [];
  extra.length = 0;
  rmSync(dir, { recursive: true, force: true });
});

const DAY = 86_400_000;

function open(path = join(dir, 'patrol.db'), opts: Partial<StoreOptions> = {}): Store {
  const s = Store.open(path, { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 200, ...opts });
  opened.push(s);
  return s;
}

function reopen(s: Store, opts: Partial<StoreOptions> = {}): Store {
  s.close();
  return open(s.path, opts);
}

/** a second connection, as another process (or the sqlite3 shell) would see the file */
function peek(path: string): Database.Database {
  const d = new Database(path);
  extra.push(d);
  return d;
}

function count(path: string): number {
  return (peek(path).prepare('SELECT count(*) AS n FROM process_exits').get() as { n: number }).n;
}

function summary(i: number, over: Partial<ExitSummary> = {}): ExitSummary {
  return {
    execId: `e${i}`,
    pid: 1000 + i,
    ppid: 1,
    parentExecId: 'parent',
    comm: i % 2 === 0 ? 'even' : 'odd',
    filename: '/usr/bin/true',
    args: ['true', String(i)],
    uid: 1000,
    cgroupId: 4242n,
    startNs: 1_000_000_000n + BigInt(i),
    exitNs: 2_000_000_000n + BigInt(i),
    durationNs: 1_000_000_000n,
    exitCode: 0,
    signal: null,
    coreDumped: false,
    cpuNs: 1_500_000n,
    utimeNs: 1_000_000n,
    stimeNs: 500_000n,
    maxRssKb: 3200,
    readBytes: 4096n,
    writeBytes: 0n,
    minflt: 120n,
    majflt: 0n,
    ...over,
  };
}

describe('Store: file, mode, pragmas', () => {
  it('creates the parent directory 0700 and the file 0600, in WAL mode', () => {
    const path = join(dir, 'var', 'lib', 'patrol', 'patrol.db');
    const s = open(path);
    expect(statSync(join(dir, 'var', 'lib', 'patrol')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    s.recordExit(summary(1));
    s.flush();
    // SQLite gives the write-ahead log the database file's permissions
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    expect(peek(path).pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('integrity_check is ok', () => {
    const s = open();
    for (let i = 0; i < 100; i++) s.recordExit(summary(i));
    s.flush();
    expect(s.integrityCheck()).toBe('ok');
  });

  it('refuses a file that is not a database with E_STORE', () => {
    const path = join(dir, 'junk.db');
    writeFileSync(path, 'this is not sqlite, not at all, certainly not a header of one');
    let err: unknown;
    try {
      open(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('E_STORE');
    expect((err as Error).message).toContain(path);
  });
});

describe('Store: buffering and the committed watermark', () => {
  it('buffered rows are invisible until flush, visible after', () => {
    const s = open();
    for (let i = 1; i <= 3; i++) s.recordExit(summary(i));
    expect(s.queryExits({ limit: 10 })).toEqual([]);
    expect(count(s.path)).toBe(0);
    expect(s.stats().pendingRows).toBe(3);
    expect(s.flush()).toEqual({ committed: 3 });
    expect(count(s.path)).toBe(3);
    expect(s.queryExits({ limit: 10 }).map((r) => r.execId)).toEqual(['e3', 'e2', 'e1']);
    expect(s.stats()).toMatchObject({ rows: 3, pendingRows: 0, committedRows: 3, flushes: 1, lastFlushRows: 3 });
    expect(s.flush()).toEqual({ committed: 0 });
  });

  it('committedRows is the highest committed id and only moves on commit', () => {
    const s = open();
    expect(s.committedRows).toBe(0);
    s.recordExit(summary(1));
    s.recordExit(summary(2));
    expect(s.committedRows).toBe(0);
    s.flush();
    expect(s.committedRows).toBe(2);
    s.recordExit(summary(3));
    s.flush();
    expect(s.committedRows).toBe(3);
    const ids = s.queryExits({ limit: 10 }).map((r) => r.id);
    expect(ids).toEqual([3, 2, 1]);
    expect(Math.max(...ids)).toBe(s.committedRows);
  });

  it('the watermark survives reopen and never goes back, even after every row was pruned', () => {
    let s = open(undefined, { retention: { maxAgeMs: DAY, maxRows: 0 }, now: () => 1_000 * DAY });
    for (let i = 0; i < 5; i++) s.recordExit(summary(i));
    s.flush();
    s = reopen(s, { retention: { maxAgeMs: DAY, maxRows: 0 }, now: () => 1_000 * DAY });
    expect(s.committedRows).toBe(5);
    expect(s.prune(1_010 * DAY, Infinity)).toBe(5);
    s = reopen(s);
    expect(s.committedRows).toBe(5);
    s.recordExit(summary(9));
    s.flush();
    expect(s.committedRows).toBe(6);
    expect(s.queryExits({ limit: 5 }).map((r) => r.id)).toEqual([6]);
  });

  it('reopen keeps every row and every value, bigints beyond 2^53 included', () => {
    let s = open();
    const big = (1n << 62n) + 12345n;
    const row = summary(7, {
      startNs: big,
      exitNs: big + 10n,
      durationNs: 10n,
      cgroupId: (1n << 63n) + 99n, // u64 above i64: stored as text, exact
      readBytes: (1n << 64n) - 1n, // above i64: clamped
      args: ['sh', '-c', 'echo "ü ✓"', ''],
      filename: null,
      parentExecId: null,
      uid: null,
      exitCode: null,
      signal: 9,
      coreDumped: true,
      recordedAt: 1_700_000_000_123,
    });
    s.recordExit(row);
    s.flush();
    s = reopen(s);
    const [r] = s.queryExits({ limit: 1 });
    expect(r).toEqual({
      ...row,
      id: 1,
      readBytes: (1n << 63n) - 1n,
      args: ['sh', '-c', 'echo "ü ✓"', ''],
      argsRedacted: false,
      zombieNs: null,
    });
    expect(typeof r!.pid).toBe('number');
    expect(typeof r!.startNs).toBe('bigint');
  });

  it('the row says whether redaction masked its args (args_redacted: 1, 0, or NULL without args)', () => {
    let s = open();
    s.recordExit(summary(1, { args: ['mysql', '--password=****'], argsRedacted: true }));
    s.recordExit(summary(2, { args: ['ls'], argsRedacted: false }));
    s.recordExit(summary(3, { args: null, filename: null }));
    s.flush();
    s = reopen(s);
    expect(s.queryExits({ limit: 10 }).map((r) => [r.execId, r.argsRedacted])).toEqual([['e3', null], ['e2', false], ['e1', true]]);
    const raw = peek(s.path).prepare('SELECT exec_id, args, args_redacted FROM process_exits ORDER BY id').all();
    expect(raw).toEqual([
      { exec_id: 'e1', args: '["mysql","--password=****"]', args_redacted: 1 },
      { exec_id: 'e2', args: '["ls"]', args_redacted: 0 },
      { exec_id: 'e3', args: null, args_redacted: null },
    ]);
  });

  it('queries filter by comm, pid, exec_id, since and page with beforeId', () => {
    const s = open();
    for (let i = 1; i <= 10; i++) s.recordExit(summary(i, { recordedAt: i * 1000 }));
    s.flush();
    expect(s.queryExits({ comm: 'odd', limit: 100 }).map((r) => r.execId)).toEqual(['e9', 'e7', 'e5', 'e3', 'e1']);
    expect(s.queryExits({ pid: 1004, limit: 100 }).map((r) => r.execId)).toEqual(['e4']);
    expect(s.queryExits({ execId: 'e6', limit: 100 }).map((r) => r.pid)).toEqual([1006]);
    expect(s.queryExits({ since: 8000, limit: 100 }).map((r) => r.execId)).toEqual(['e10', 'e9', 'e8']);
    expect(s.queryExits({ comm: 'even', since: 5000, limit: 100 }).map((r) => r.execId)).toEqual(['e10', 'e8', 'e6']);
    const page1 = s.queryExits({ limit: 4 });
    const page2 = s.queryExits({ limit: 4, beforeId: page1.at(-1)!.id });
    expect([...page1, ...page2].map((r) => r.id)).toEqual([10, 9, 8, 7, 6, 5, 4, 3]);
    expect(s.queryExits({ limit: 0 })).toHaveLength(1); // clamped to at least 1
  });
});

describe('Store: reaps', () => {
  it('a reap before the flush fills the buffered row', () => {
    const s = open();
    s.recordExit(summary(1));
    s.recordReap('e1', 250_000n);
    expect(s.stats().pendingReaps).toBe(0);
    s.flush();
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBe(250_000n);
  });

  it('a reap after the flush updates the stored row in the next flush', () => {
    const s = open();
    s.recordExit(summary(1));
    s.recordExit(summary(2));
    s.flush();
    s.recordReap('e1', 300_000n);
    expect(s.stats().pendingReaps).toBe(1);
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBeNull(); // not yet
    expect(s.flush()).toEqual({ committed: 0 });
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBe(300_000n);
    expect(s.queryExits({ execId: 'e2', limit: 1 })[0]!.zombieNs).toBeNull();
    expect(s.stats()).toMatchObject({ pendingReaps: 0, reapsUnmatched: 0 });
  });

  it('a reap of an exit never recorded is counted, not an error', () => {
    const s = open();
    s.recordReap('nobody', 1n);
    s.flush();
    expect(s.stats().reapsUnmatched).toBe(1);
  });

  it('a reap arriving before its exit still lands (applied after the inserts)', () => {
    const s = open();
    s.recordExit(summary(1));
    s.flush();
    s.recordReap('e2', 77n);
    s.recordExit(summary(2));
    s.flush();
    expect(s.queryExits({ execId: 'e2', limit: 1 })[0]!.zombieNs).toBe(77n);
  });

  it('a flush writes rows ROWS_PER_INSERT at a time: every value and id as one by one, a malformed row anywhere skipped alone', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 * ROWS_PER_INSERT + 3 }), fc.array(fc.nat(), { maxLength: 5 }), (n, badPicks) => {
        const s = Store.open(join(dir, `chunks-${Math.random()}.db`), { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 200 });
        try {
          const bad = new Set(n === 0 ? [] : badPicks.map((b) => b % n));
          const kept: ExitSummary[] = [];
          for (let i = 0; i < n; i++) {
            if (bad.has(i)) {
              s.recordExit(summary(i, { comm: 42 as unknown as string }));
              continue;
            }
            // every row different in every column, so a value bound to the wrong row shows
            const row = summary(i, { ppid: 2 + i, uid: i, exitCode: i % 256, cpuNs: BigInt(i) * 7n, maxRssKb: i * 3, minflt: BigInt(i), recordedAt: 1_700_000_000_000 + i });
            kept.push(row);
            s.recordExit(row);
          }
          expect(s.flush()).toEqual({ committed: kept.length });
          const rows = s.queryExits({ limit: 1000 }).sort((a, b) => a.id - b.id);
          expect(rows).toEqual(kept.map((k, j) => ({ ...k, id: j + 1, argsRedacted: false, zombieNs: null })));
          expect(s.committedRows).toBe(kept.length);
        } finally {
          s.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('model check: any interleaving of exits, reaps and flushes stores what was recorded', () => {
    type Op = { t: 'exit'; i: number } | { t: 'reap'; i: number; z: number } | { t: 'flush' };
    const op = fc.oneof(
      fc.record({ t: fc.constant('exit' as const), i: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ t: fc.constant('reap' as const), i: fc.integer({ min: 0, max: 30 }), z: fc.integer({ min: 1, max: 1e9 }) }),
      fc.record({ t: fc.constant('flush' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops: Op[]) => {
        const s = Store.open(join(dir, `model-${Math.random()}.db`), { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 200 });
        try {
          const recorded = new Set<number>();
          const zombie = new Map<number, bigint>(); // the first reap of a recorded exit wins
          for (const o of ops) {
            if (o.t === 'exit') {
              if (recorded.has(o.i)) continue; // an exec_id exits once
              recorded.add(o.i);
              s.recordExit(summary(o.i));
            } else if (o.t === 'reap') {
              if (!recorded.has(o.i) || zombie.has(o.i)) continue; // the kernel reaps once, after the exit
              zombie.set(o.i, BigInt(o.z));
              s.recordReap(`e${o.i}`, BigInt(o.z));
            } else {
              s.flush();
            }
          }
          s.flush();
          const rows = s.queryExits({ limit: 1000 });
          expect(rows.map((r) => r.execId).sort()).toEqual([...recorded].map((i) => `e${i}`).sort());
          for (const r of rows) expect(r.zombieNs).toBe(zombie.get(Number(r.execId.slice(1))) ?? null);
          expect(s.committedRows).toBe(recorded.size);
        } finally {
          s.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('Store: retention', () => {
  it('prunes rows older than max_age', () => {
    let now = 100 * DAY;
    const s = open(undefined, { retention: { maxAgeMs: 7 * DAY, maxRows: 0 }, now: () => now });
    for (let i = 0; i < 10; i++) s.recordExit(summary(i, { recordedAt: now - (10 - i) * DAY })); // 10..1 days old
    s.flush();
    expect(s.prune(now)).toBe(3); // 10, 9 and 8 days old
    expect(s.queryExits({ limit: 100 }).map((r) => r.execId).sort()).toEqual(['e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
    now += 2 * DAY;
    expect(s.prune(now)).toBe(2);
    expect(s.stats()).toMatchObject({ rows: 5, pruned: 5 });
  });

  it('prunes the oldest rows beyond max_rows', () => {
    const s = open(undefined, { retention: { maxAgeMs: 0, maxRows: 100 } });
    for (let i = 0; i < 250; i++) s.recordExit(summary(i));
    s.flush();
    expect(s.prune()).toBe(150);
    const ids = s.queryExits({ limit: 1000 }).map((r) => r.id);
    expect(ids).toHaveLength(100);
    expect(Math.min(...ids)).toBe(151);
    expect(s.stats().rows).toBe(100);
    expect(s.prune()).toBe(0);
  });

  it('works in bounded batches: one call deletes at most pruneBatchRows × maxBatches', () => {
    const s = open(undefined, { retention: { maxAgeMs: 0, maxRows: 10 }, pruneBatchRows: 25, pruneMaxBatches: 2 });
    for (let i = 0; i < 200; i++) s.recordExit(summary(i));
    s.flush();
    expect(s.prune()).toBe(50);
    expect(s.prune()).toBe(50);
    expect(s.prune(Date.now(), Infinity)).toBe(90);
    expect(s.stats().rows).toBe(10);
  });

  it('0 disables a limit', () => {
    const s = open(undefined, { retention: { maxAgeMs: 0, maxRows: 0 } });
    for (let i = 0; i < 50; i++) s.recordExit(summary(i, { recordedAt: 1 }));
    s.flush();
    expect(s.prune(Date.now(), Infinity)).toBe(0);
  });

  it('the timer flushes and prunes', async () => {
    const s = open(undefined, { flushIntervalMs: 20, retention: { maxAgeMs: 0, maxRows: 5 }, pruneIntervalMs: 0 });
    s.startTimer();
    for (let i = 0; i < 20; i++) s.recordExit(summary(i));
    expect(s.stats().pendingRows).toBe(20);
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ pendingRows: 0, committedRows: 20, rows: 5 }), { timeout: 5000, interval: 20 });
    s.stopTimer();
  });

  it('an idle store schedules no flush: the first buffered row arms one, and it disarms once written', async () => {
    const s = open(undefined, { flushIntervalMs: 20 });
    s.startTimer();
    expect(s.flushArmed).toBe(false);
    s.recordExit(summary(1));
    expect(s.flushArmed).toBe(true);
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ pendingRows: 0, committedRows: 1 }), { timeout: 5000, interval: 10 });
    expect(s.flushArmed).toBe(false);
    s.recordReap('e1', 7n);
    expect(s.flushArmed).toBe(true);
    s.stopTimer();
    expect(s.flushArmed).toBe(false);
  });

  it('a commit on its caller cadence clears the flush the first row armed; a failed one keeps it armed', () => {
    const s = open(undefined, { flushIntervalMs: 60_000, busyTimeoutMs: 0 });
    s.startTimer();
    s.recordExit(summary(1));
    expect(s.flushArmed).toBe(true);
    s.commit();
    expect(s.stats()).toMatchObject({ pendingRows: 0, committedRows: 1 });
    expect(s.flushArmed).toBe(false);
    // a failed commit (another writer holds the lock): the row stays buffered, the timer retries it
    s.recordExit(summary(2));
    const other = peek(s.path);
    other.exec('BEGIN IMMEDIATE');
    s.commit();
    expect(s.stats()).toMatchObject({ pendingRows: 1, flushFailures: 1 });
    expect(s.flushArmed).toBe(true);
    other.exec('ROLLBACK');
    s.commit();
    expect(s.stats()).toMatchObject({ pendingRows: 0, committedRows: 2 });
    expect(s.flushArmed).toBe(false);
    s.stopTimer();
  });
});

describe('Store: failures', () => {
  it('a failed flush keeps the rows, counts and reports the failure, and the next flush commits them', () => {
    const logs: { obj: unknown; msg: string }[] = [];
    const log = {
      error: (obj: unknown, msg: string) => logs.push({ obj, msg }),
      warn: () => {},
      info: (obj: unknown, msg: string) => logs.push({ obj, msg }),
    } as unknown as StoreOptions['log'];
    const s = open(undefined, { busyTimeoutMs: 0, log });
    s.recordExit(summary(1));
    s.flush();
    s.recordReap('e1', 5n);
    for (let i = 2; i <= 4; i++) s.recordExit(summary(i));
    const other = peek(s.path);
    other.exec('BEGIN IMMEDIATE'); // another writer holds the lock: SQLITE_BUSY
    const r = s.flush();
    expect(r.committed).toBe(0);
    expect(r.error).toMatch(/locked|busy/i);
    expect(s.flush().committed).toBe(0);
    expect(s.stats()).toMatchObject({ pendingRows: 3, pendingReaps: 1, flushFailures: 2, committedRows: 1 });
    expect(s.stats().lastError).toMatch(/SQLITE_BUSY/);
    expect(logs.filter((l) => /flush failed/.test(l.msg))).toHaveLength(1); // not once per retry
    other.exec('ROLLBACK');
    expect(s.flush()).toEqual({ committed: 3 });
    expect(s.stats()).toMatchObject({ pendingRows: 0, pendingReaps: 0, committedRows: 4, lastError: null });
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBe(5n);
    expect(logs.some((l) => /recovered/.test(l.msg))).toBe(true);
  });

  it('the buffer is bounded: beyond maxPendingRows the oldest rows are dropped and counted', () => {
    const s = open(undefined, { busyTimeoutMs: 0, maxPendingRows: 100 });
    const other = peek(s.path);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 250; i++) {
      s.recordExit(summary(i));
      if (i % 50 === 0) s.flush(); // fails
    }
    expect(s.stats()).toMatchObject({ pendingRows: 100, dropped: 150 });
    s.recordReap('e10', 1n); // dropped row: becomes a pending update that will match nothing
    s.recordReap('e200', 2n); // still buffered
    other.exec('ROLLBACK');
    expect(s.flush().committed).toBe(100);
    const rows = s.queryExits({ limit: 1000 });
    expect(rows.map((r) => r.execId)).toEqual(Array.from({ length: 100 }, (_, k) => `e${249 - k}`));
    expect(rows.find((r) => r.execId === 'e200')!.zombieNs).toBe(2n);
    expect(s.stats().reapsUnmatched).toBe(1);
  });

  it('dropping thousands of rows keeps every reap on its own row (the buffer is compacted under them)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 4000 }), fc.array(fc.nat(), { maxLength: 40 }), (max, n, reapPicks) => {
        const s = Store.open(join(dir, `drops-${Math.random()}.db`), { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 200, maxPendingRows: max });
        try {
          const kept = Math.min(n, max);
          const reaped = new Map<number, bigint>();
          const reap = (i: number) => {
            if (reaped.has(i)) return;
            if (i >= n - kept) reaped.set(i, BigInt(i) * 3n + 1n); // a dropped row's reap matches nothing
            s.recordReap(`e${i}`, BigInt(i) * 3n + 1n);
          };
          for (let i = 0; i < n; i++) {
            s.recordExit(summary(i));
            if (reapPicks.includes(i)) reap(i); // at once: a row some of which are dropped later
          }
          // and after every drop: rows added before the compactions, found through them
          for (const pick of reapPicks) if (n > 0) reap(n - 1 - (pick % n));
          expect(s.stats()).toMatchObject({ pendingRows: kept, dropped: n - kept });
          expect(s.flush().committed).toBe(kept);
          const rows = s.queryExits({ limit: 1000 }).sort((a, b) => a.id - b.id);
          expect(rows.map((r) => r.execId)).toEqual(Array.from({ length: kept }, (_, k) => `e${n - kept + k}`));
          for (const r of rows) expect(r.zombieNs).toBe(reaped.get(Number(r.execId.slice(1))) ?? null);
        } finally {
          s.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('a reap finds its row after the buffer was compacted under it', () => {
    // 100 rows at most: the 1124th exit drops the 1024th row, which compacts the buffer while
    // rows 1024..1122 wait; each of them is then reaped through the moved index
    const s = open(undefined, { maxPendingRows: 100 });
    for (let i = 0; i < 1124; i++) s.recordExit(summary(i));
    expect(s.stats()).toMatchObject({ pendingRows: 100, dropped: 1024 });
    for (let i = 1024; i < 1124; i++) s.recordReap(`e${i}`, BigInt(i));
    expect(s.flush().committed).toBe(100);
    const rows = s.queryExits({ limit: 1000 });
    expect(rows.every((r) => r.zombieNs === BigInt(r.execId.slice(1)))).toBe(true);
    expect(s.stats().reapsUnmatched).toBe(0);
  });

  it('recordExit copies the summary: the caller may reuse the object at once', () => {
    const s = open();
    const scratch = summary(1);
    s.recordExit(scratch);
    Object.assign(scratch, summary(2), { comm: 'changed', args: ['x'] });
    s.recordExit(scratch);
    s.flush();
    const rows = s.queryExits({ limit: 10 }).sort((a, b) => a.id - b.id);
    expect(rows.map((r) => [r.execId, r.comm, r.args])).toEqual([
      ['e1', 'odd', ['true', '1']],
      ['e2', 'changed', ['x']],
    ]);
  });

  it('a malformed summary into a full buffer displaces no row; a second reap of a row loses to the first', () => {
    const s = open(undefined, { maxPendingRows: 2 });
    s.recordExit(summary(1));
    s.recordExit(summary(2));
    s.recordExit({ ...summary(3), pid: 'x' as unknown as number });
    expect(s.stats()).toMatchObject({ pendingRows: 2, dropped: 0, rejected: 1 });
    s.recordReap('e1', 5n);
    s.recordReap('e1', 6n);
    expect(s.flush().committed).toBe(2);
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBe(5n);
    expect(s.stats().reapsUnmatched).toBe(1);
  });

  it('a malformed summary is rejected alone; the rest of the batch is stored', () => {
    const s = open();
    s.recordExit(summary(1));
    s.recordExit({ ...summary(2), startNs: 'soon' as unknown as bigint });
    s.recordExit(summary(3));
    expect(s.flush()).toEqual({ committed: 2 });
    expect(s.stats().rejected).toBe(1);
    expect(s.queryExits({ limit: 10 }).map((r) => [r.id, r.execId])).toEqual([
      [2, 'e3'],
      [1, 'e1'],
    ]);
  });

  it('close flushes; recording after close is counted as dropped', () => {
    const s = open();
    s.recordExit(summary(1));
    s.close();
    s.recordExit(summary(2));
    expect(s.stats().dropped).toBe(1);
    const again = open(s.path);
    expect(again.committedRows).toBe(1);
    s.close(); // idempotent
  });
});

describe('Store: schema and migrations', () => {
  it('records schema_version and reopening migrates nothing', () => {
    let s = open();
    s = reopen(s);
    s = reopen(s);
    const d = peek(s.path);
    expect(schemaVersion(d)).toBe(SCHEMA_VERSION);
    expect(migrate(d, s.path)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    expect(migrate(d, s.path)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    const tables = (d.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(
      expect.arrayContaining(['agent_runs', 'meta', 'process_exits', 'process_exits_comm', 'process_exits_recorded_at']),
    );
    // random exec_ids made every insert and delete dirty an index page of its own (schema v7):
    // exec_id is indexed only for rows awaiting their reap, and a reap still finds its row that way
    expect(tables).not.toContain('process_exits_exec_id');
    expect(tables).toContain('process_exits_unreaped');
    const plan = (d.prepare('EXPLAIN QUERY PLAN UPDATE process_exits SET zombie_ns = 1 WHERE exec_id = ? AND zombie_ns IS NULL').all('x') as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan).toContain('USING INDEX process_exits_unreaped');
  });

  it('applies only the migrations a database lacks, forward', () => {
    const d = peek(join(dir, 'm.db'));
    const extraMigration = { version: SCHEMA_VERSION + 1, description: 'test', sql: 'CREATE TABLE t2 (x INTEGER)' };
    expect(migrate(d, 'm.db', MIGRATIONS)).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(migrate(d, 'm.db', [...MIGRATIONS, extraMigration])).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION + 1 });
    expect(migrate(d, 'm.db', [...MIGRATIONS, extraMigration])).toEqual({ from: SCHEMA_VERSION + 1, to: SCHEMA_VERSION + 1 });
  });

  it('migration 6 keeps the rows of a schema-5 store; their args_redacted is NULL (unknown)', () => {
    const path = join(dir, 'v5.db');
    const d = new Database(path);
    migrate(d, path, MIGRATIONS.filter((m) => m.version <= 5));
    d.prepare("INSERT INTO process_exits (exec_id, pid, ppid, comm, args, start_ns, exit_ns, duration_ns, core_dumped, cpu_ns, utime_ns, stime_ns, max_rss_kb, read_bytes, write_bytes, minflt, majflt, recorded_at) VALUES ('old', 1, 0, 'sh', '[\"sh\"]', 1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1000)").run();
    d.close();
    const s = open(path);
    expect(s.queryExits({ limit: 5 })).toEqual([expect.objectContaining({ execId: 'old', args: ['sh'], argsRedacted: null })]);
    expect(schemaVersion(peek(path))).toBe(SCHEMA_VERSION);
  });

  it('migration 7 indexes exec_id only while a row awaits its reap; a row the previous run stored unreaped still gets it', () => {
    const path = join(dir, 'v6.db');
    const d = new Database(path);
    migrate(d, path, MIGRATIONS.filter((m) => m.version <= 6));
    d.close();
    let s = open(path);
    s.recordExit(summary(1));
    s.recordExit(summary(2));
    s.recordReap('e2', 5n);
    s.flush();
    s = reopen(s); // the zombie e1 outlives the run that stored its exit
    s.recordReap('e1', 9n);
    s.recordReap('nobody', 1n);
    s.flush();
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBe(9n);
    expect(s.queryExits({ execId: 'e2', limit: 1 })[0]!.zombieNs).toBe(5n);
    expect(s.stats().reapsUnmatched).toBe(1);
    const idx = (peek(path).prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]).map((r) => r.name);
    expect(idx).not.toContain('process_exits_exec_id');
    // both reaped: the partial index holds neither
    expect((peek(path).prepare('SELECT count(*) AS n FROM process_exits INDEXED BY process_exits_unreaped WHERE zombie_ns IS NULL').get() as { n: number }).n).toBe(0);
  });

  it('a second reap of a row already reaped changes nothing', () => {
    const s = open();
    s.recordExit(summary(1));
    s.flush();
    s.recordReap('e1', 3n);
    s.flush();
    s.recordReap('e1', 4n);
    s.flush();
    expect(s.queryExits({ execId: 'e1', limit: 1 })[0]!.zombieNs).toBe(3n);
    expect(s.stats().reapsUnmatched).toBe(1);
  });

  it('refuses a database from a newer schema', () => {
    const path = join(dir, 'new.db');
    const s = open(path);
    s.close();
    const d = peek(path);
    d.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 5));
    expect(() => open(path)).toThrow(expect.objectContaining({ code: 'E_STORE_VERSION' }));
  });
});

describe('Store: agent runs and stats', () => {
  it('beginRun/endRun record runs; a run that never ended is marked crashed', () => {
    let s = open(undefined, { now: () => 5_000 });
    const r1 = s.beginRun(111, '0.1.0');
    s.close(); // no endRun: as if killed
    s = open(s.path, { now: () => 6_000 });
    const r2 = s.beginRun(222, '0.1.0');
    s.endRun('SIGTERM');
    expect(s.runs()).toEqual([
      { id: r2, pid: 222, version: '0.1.0', startedAt: 6_000, stoppedAt: 6_000, stopReason: 'SIGTERM' },
      { id: r1, pid: 111, version: '0.1.0', startedAt: 5_000, stoppedAt: null, stopReason: 'crashed' },
    ]);
  });

  it('stats reports the store', () => {
    const s = open();
    for (let i = 0; i < 10; i++) s.recordExit(summary(i));
    s.flush();
    s.recordExit(summary(10));
    const st = s.stats();
    expect(st).toMatchObject({ path: s.path, rows: 10, committedRows: 10, pendingRows: 1, pruned: 0, flushFailures: 0, dropped: 0 });
    expect(st.lastFlushAt).toBeGreaterThan(0);
    expect(st.lastFlushMs).toBeGreaterThanOrEqual(0);
    expect(st.sizeBytes).toBeGreaterThan(0);
  });
});

describe('exitSummary', () => {
  it('maps an exit event and its enrichment', () => {
    const entry = new ProcessEntry('x1', 42, 100n, 'fork');
    entry.filename = '/bin/ls';
    entry.argv = [{ text: 'ls' }, { text: '-l' }];
    entry.uid = 1000;
    entry.cgroupId = 7n;
    const usage = {
      cpuNs: 5n, utimeNs: 3n, stimeNs: 2n, maxRssKb: 900, readBytes: 10n, writeBytes: 20n,
      rchar: 0n, wchar: 0n, minflt: 30n, majflt: 1n, nvcsw: 0n, nivcsw: 0n,
    };
    const ev: ExitEvent = {
      type: 'exit', ktimeNs: 350n, seq: 0n, cpu: 0, flags: 0, pid: 42, tid: 42, ppid: 1, startNs: 100n,
      status: 0x8b, exitCode: null, signal: 11, coreDumped: true, comm: { text: 'ls' }, usage,
    };
    const en: Enriched = { execId: 'x1', parentExecId: 'p0', ppid: 1, comm: 'ls', durationNs: 250n, entry };
    expect(exitSummary(ev, en)).toEqual({
      execId: 'x1', pid: 42, ppid: 1, parentExecId: 'p0', comm: 'ls', filename: '/bin/ls', args: ['ls', '-l'],
      uid: 1000, cgroupId: 7n, startNs: 100n, exitNs: 350n, durationNs: 250n, exitCode: null, signal: 11,
      coreDumped: true, cpuNs: 5n, utimeNs: 3n, stimeNs: 2n, maxRssKb: 900, readBytes: 10n, writeBytes: 20n,
      minflt: 30n, majflt: 1n, zombieNs: null, argsRedacted: false,
    });
  });
});
