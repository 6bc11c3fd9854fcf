// The store's schema and its forward-only migrations. `meta.schema_version` is the number of the
// last migration applied; each migration runs in its own transaction together with the version
// bump, so a crash leaves the database at one version or the next, never in between. A database
// written by a newer patrol (a higher version than this code knows) is refused, not downgraded.
//
// To change the schema: append a migration with the next version. Never edit a released one.
import type { Database } from 'better-sqlite3';
import { PatrolError } from '../shared/errors.js';

export class StoreError extends PatrolError {}

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'process_exits and agent_runs',
    sql: `
      -- One lifecycle summary per process that ended. AUTOINCREMENT: ids are never reused, even
      -- after retention deleted every row, so the highest id is a monotonic commit watermark.
      -- *_ns: CLOCK_BOOTTIME ns or ns durations, INTEGER (int64); bytes and faults likewise.
      CREATE TABLE process_exits (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        exec_id        TEXT    NOT NULL,
        pid            INTEGER NOT NULL,
        ppid           INTEGER NOT NULL,
        parent_exec_id TEXT,
        comm           TEXT    NOT NULL,
        filename       TEXT,
        args           TEXT,              -- JSON array of strings; NULL when no exec was seen
        uid            INTEGER,
        cgroup_id      TEXT,              -- u64 as decimal text
        start_ns       INTEGER NOT NULL,
        exit_ns        INTEGER NOT NULL,
        duration_ns    INTEGER NOT NULL,
        exit_code      INTEGER,
        signal         INTEGER,
        core_dumped    INTEGER NOT NULL,  -- 0 or 1
        cpu_ns         INTEGER NOT NULL,
        utime_ns       INTEGER NOT NULL,
        stime_ns       INTEGER NOT NULL,
        max_rss_kb     INTEGER NOT NULL,
        read_bytes     INTEGER NOT NULL,
        write_bytes    INTEGER NOT NULL,
        minflt         INTEGER NOT NULL,
        majflt         INTEGER NOT NULL,
        zombie_ns      INTEGER,           -- NULL until reaped
        recorded_at    INTEGER NOT NULL   -- ms since the epoch
      );
      CREATE INDEX process_exits_exec_id ON process_exits (exec_id);
      CREATE INDEX process_exits_recorded_at ON process_exits (recorded_at);
      CREATE INDEX process_exits_comm ON process_exits (comm);
      CREATE INDEX process_exits_pid ON process_exits (pid);

      CREATE TABLE agent_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        pid         INTEGER NOT NULL,
        version     TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,     -- ms since the epoch
        stopped_at  INTEGER,              -- NULL while running, or if the run crashed
        stop_reason TEXT
      );
    `,
  },
  {
    version: 2,
    description: 'check_runs and alerts (src/checks results)',
    sql: `
      -- One row per check run. Ids are assigned by CheckStore in commit order (AUTOINCREMENT:
      -- never reused), so the highest id is the acknowledged watermark, as for process_exits.
      CREATE TABLE check_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        check_id    TEXT    NOT NULL,     -- 16 hex digits, stable across reloads
        name        TEXT    NOT NULL,
        file        TEXT    NOT NULL,
        state       TEXT    NOT NULL,     -- ok | warning | critical | unknown | timeout
        at          INTEGER NOT NULL,     -- ms since the epoch, start of the run
        duration_ms INTEGER NOT NULL,
        message     TEXT    NOT NULL,
        evidence    TEXT    NOT NULL,     -- JSON: { conditions, values, error? }
        labels      TEXT    NOT NULL      -- JSON object
      );
      CREATE INDEX check_runs_check ON check_runs (check_id, id);
      CREATE INDEX check_runs_at ON check_runs (at);

      -- State changes worth telling someone about. alert_id is stable (sha256 of check, time,
      -- kind and state), so consumers (src/rules, the web UI) can refer to an alert; seq orders
      -- them and is the acknowledged watermark.
      CREATE TABLE alerts (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id  TEXT    NOT NULL UNIQUE,
        check_id  TEXT    NOT NULL,
        name      TEXT    NOT NULL,
        kind      TEXT    NOT NULL,       -- firing | resolved | flapping | flapping_end
        state     TEXT    NOT NULL,
        previous  TEXT    NOT NULL,
        at        INTEGER NOT NULL,       -- ms since the epoch
        message   TEXT    NOT NULL,
        labels    TEXT    NOT NULL,
        evidence  TEXT    NOT NULL
      );
      CREATE INDEX alerts_at ON alerts (at);
      CREATE INDEX alerts_check ON alerts (check_id, seq);
    `,
  },
  {
    version: 3,
    description: 'alerts.attribution (src/rules causes at the time the alert fired)',
    sql: `
      -- JSON: {causes: [{cause, confidence, explanation, evidence, ...}]}, best first; NULL when
      -- the rules engine was not running or the alert is a resolution.
      ALTER TABLE alerts ADD COLUMN attribution TEXT;
    `,
  },
  {
    version: 4,
    description: 'alert outbox: deliveries to alert outputs, their counters, the alerts each output holds active (issue 17)',
    sql: `
      -- One row per (output, alert) still to deliver; deleted once delivered. AUTOINCREMENT: seq
      -- is never reused, so it orders rows across restarts. alert: the JSON as delivered.
      CREATE TABLE outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        output     TEXT    NOT NULL,
        alert_id   TEXT    NOT NULL,
        check_id   TEXT    NOT NULL,
        alert      TEXT    NOT NULL,
        created_at INTEGER NOT NULL,     -- ms since the epoch
        attempts   INTEGER NOT NULL DEFAULT 0,
        next_at    INTEGER NOT NULL,     -- ms since the epoch of the next attempt
        last_error TEXT,
        UNIQUE (output, alert_id)
      );
      CREATE INDEX outbox_due ON outbox (output, next_at);
      -- delivered, dropped, superseded, rejected, failures: per output, across restarts
      CREATE TABLE outbox_counters (
        output TEXT    NOT NULL,
        name   TEXT    NOT NULL,
        value  INTEGER NOT NULL,
        PRIMARY KEY (output, name)
      ) WITHOUT ROWID;
      -- the firing alert each output announced per check, refreshed to Alertmanager until resolved
      CREATE TABLE outbox_active (
        output   TEXT NOT NULL,
        check_id TEXT NOT NULL,
        alert    TEXT NOT NULL,
        PRIMARY KEY (output, check_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    description: 'check_runs.version, alerts.version (the check set that produced the row, issue 13)',
    sql: `
      -- sha256 of the check set's canonical content (src/checks compile version); NULL for rows
      -- written before versions existed.
      ALTER TABLE check_runs ADD COLUMN version TEXT;
      ALTER TABLE alerts ADD COLUMN version TEXT;
    `,
  },
  {
    version: 6,
    description: 'process_exits.args_redacted (export.redact masked part of args, issue 17)',
    sql: `
      -- 1: the redaction patterns masked part of args (the row holds the masked copy); 0: they
      -- did not; NULL: no exec was seen (args NULL), or the row predates this column.
      ALTER TABLE process_exits ADD COLUMN args_redacted INTEGER;
    `,
  },
  {
    version: 7,
    description: 'process_exits: exec_id indexed only for rows awaiting their reap',
    sql: `
      -- exec_ids are random: each insert (and each retention delete) dirtied an index page of its
      -- own, so a commit of 200 rows into a full store wrote ~200 index pages to the WAL, and the
      -- checkpoint wrote them again (bench/store-commit.mjs: 5.5 against 1.5 ms of CPU per
      -- 200-row commit at 1,000,000 rows, 1 % of rows unreaped). A reap finds its row by exec_id
      -- only while the row awaits it; most rows are stored with their reap already in, so this
      -- index stays small.
      DROP INDEX IF EXISTS process_exits_exec_id;
      CREATE INDEX process_exits_unreaped ON process_exits (exec_id) WHERE zombie_ns IS NULL;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function schemaVersion(db: Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  return row === undefined ? 0 : Number(row.value);
}

/** Applies the migrations the database lacks. Returns the versions before and after. */
export function migrate(db: Database, path: string, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  const from = schemaVersion(db);
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  if (!Number.isInteger(from) || from > latest) {
    throw new StoreError(
      'E_STORE_VERSION',
      `${path}: schema version ${String(from)} is newer than this patrol understands (${latest}); use a newer patrol or another store.path`,
    );
  }
  const setVersion = db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  for (const m of migrations) {
    if (m.version <= from) continue;
    db.transaction(() => {
      // re-read under the write lock: another process may have migrated since
      if (schemaVersion(db) >= m.version) return;
      db.exec(m.sql);
      setVersion.run(String(m.version));
    }).immediate();
  }
  return { from, to: Math.max(from, latest) };
}
