#!/usr/bin/env node
// The store's commit at the agent's cadence (store.flush_interval 1 s, 200 exits/s: 200 rows a
// commit) into a process_exits table already holding N rows, with the current schema (exec_id
// indexed only for rows awaiting their reap) and with the exec_id index it had until migration 7.
// exec_ids are random, so each insert into a full index dirties a page of its own: the commit
// writes ~200 more pages to the WAL, and the checkpoint writes them again. 1 % of rows are stored
// unreaped (an exit whose reap falls into the next batch, or a zombie), the rest with their reap
// in, as the agent's exit batch stores them. CPU per commit from process.cpuUsage (user +
// system), checkpoints included.
//
//   node bench/store-commit.mjs                 # N = 10k, 300k, 1M (store.retention.max_rows)
//   STORE_COMMIT_ROWS=100000 node bench/store-commit.mjs
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dist, report } from './lib.mjs';

const { MIGRATIONS } = await dist('store/schema.js');
const sizes = (process.env.STORE_COMMIT_ROWS ?? '10000,300000,1000000').split(',').map(Number);
const COMMITS = 60;
const ROWS_PER_COMMIT = 200;
const dir = mkdtempSync(path.join(tmpdir(), 'patrol-store-commit-'));
const cols = ['exec_id', 'pid', 'ppid', 'parent_exec_id', 'comm', 'filename', 'args', 'uid', 'cgroup_id', 'start_ns', 'exit_ns', 'duration_ns', 'exit_code', 'signal', 'core_dumped', 'cpu_ns', 'utime_ns', 'stime_ns', 'max_rss_kb', 'read_bytes', 'write_bytes', 'minflt', 'majflt', 'zombie_ns', 'recorded_at'];

function measure(n, withIndex) {
  const file = path.join(dir, `s-${n}-${withIndex}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  for (const m of MIGRATIONS) db.exec(m.sql);
  if (withIndex) db.exec('DROP INDEX process_exits_unreaped; CREATE INDEX process_exits_exec_id ON process_exits (exec_id)');
  const ins = db.prepare(`INSERT INTO process_exits (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`);
  let pid = 1000;
  const hex = () => Math.floor(Math.random() * 2 ** 52).toString(16).padStart(16, '0');
  let k = 0;
  const row = () => [hex(), (pid = (pid % 4_000_000) + 1), 1, hex(), 'true', '/bin/true', '["/bin/true","x"]', 0, '123', 1, 2, 1, 0, null, 0, 1, 1, 1, 1000, 0, 0, 10, 0, ++k % 100 === 0 ? null : 5, Date.now()];
  const tx = db.transaction((k) => {
    for (let i = 0; i < k; i++) ins.run(row());
  });
  for (let i = 0; i < n; i += 10_000) tx(Math.min(10_000, n - i));
  db.pragma('wal_checkpoint(TRUNCATE)');
  const c0 = process.cpuUsage();
  for (let k = 0; k < COMMITS; k++) tx(ROWS_PER_COMMIT);
  const c = process.cpuUsage(c0);
  db.close();
  rmSync(file, { force: true });
  return { user_ms: c.user / COMMITS / 1000, system_ms: c.system / COMMITS / 1000, cpu_ms: (c.user + c.system) / COMMITS / 1000 };
}

const rows = [];
const lines = [];
for (const n of sizes) {
  process.stderr.write(`store-commit: ${n} rows…\n`);
  const now = measure(n, false);
  const before = measure(n, true);
  rows.push({ rows: n, cpu_ms_per_commit: +now.cpu_ms.toFixed(2), with_exec_id_index_ms: +before.cpu_ms.toFixed(2), ratio: +(now.cpu_ms / before.cpu_ms).toFixed(2) });
  lines.push(`${String(n).padStart(8)} rows: ${now.cpu_ms.toFixed(2)} ms per ${ROWS_PER_COMMIT}-row commit; with the exec_id index ${before.cpu_ms.toFixed(2)} ms (x${(now.cpu_ms / before.cpu_ms).toFixed(2)})`);
}
rmSync(dir, { recursive: true, force: true });
report('store-commit', { commits: COMMITS, rows_per_commit: ROWS_PER_COMMIT, results: rows }, lines);
