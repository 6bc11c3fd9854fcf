// CheckStore: check runs and alerts (migration 2), queries, retention, the acknowledged
// watermark, and durability across 50 SIGKILLs while writing results.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckStore, SCHEMA_VERSION, Store, schemaVersion } from '../../src/store/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-checkstore-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RET = { maxAgeMs: 0, maxRows: 0 };
const run = (i: number, state = 'ok', at = 1000 + i) => ({
  check_id: (i % 3).toString(16).padStart(16, '0'), name: `c${i % 3}`, file: 'x.patrol', state, at, duration_ms: 3, message: `m${i}`,
  evidence: { conditions: [], values: [{ field: 'load1', value: i, text: String(i) }] }, labels: { team: 'sre' },
});
const alert = (i: number, state = 'critical') => ({
  id: `a${i}`.padStart(16, '0'), check_id: '0'.repeat(16), name: 'c0', kind: 'firing', state, previous: 'ok', at: 5000 + i, message: 'm', labels: {}, evidence: { values: [] },
});

describe('CheckStore', () => {
  it('shares the file with Store: one schema, both migrations', () => {
    const path = join(dir, 'both.db');
    const s = Store.open(path, { retention: RET, flushIntervalMs: 100 });
    const c = CheckStore.open(path, { runs: RET, alerts: RET, flushIntervalMs: 100 });
    const d = new Database(path);
    expect(schemaVersion(d)).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
    d.close();
    c.close();
    s.close();
  });

  it('buffers until flush, then queries newest first; latest per check; alert ids are unique', () => {
    const c = CheckStore.open(join(dir, 'q.db'), { runs: RET, alerts: RET, flushIntervalMs: 100 });
    for (let i = 0; i < 10; i++) c.recordResult(run(i, i === 9 ? 'critical' : 'ok'));
    c.recordAlert(alert(1));
    c.recordAlert(alert(1)); // the same alert twice (a replay): stored once
    c.recordAlert(alert(2, 'ok'));
    expect(c.queryRuns({ limit: 100 })).toEqual([]);
    expect(c.flush()).toEqual({ committed: 12 });
    expect(c.committedRuns).toBe(10);
    expect(c.committedAlerts).toBe(2);
    const all = c.queryRuns({ limit: 100 });
    expect(all.map((r) => r.id)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(all[0]).toMatchObject({ state: 'critical', labels: { team: 'sre' }, evidence: { values: [{ value: 9 }] } });
    expect(c.queryRuns({ limit: 100, latest: true }).map((r) => r.message)).toEqual(['m9', 'm8', 'm7']);
    expect(c.queryRuns({ limit: 100, state: 'critical' })).toHaveLength(1);
    expect(c.queryRuns({ limit: 2, beforeId: 5 }).map((r) => r.id)).toEqual([4, 3]);
    expect(c.queryAlerts({ limit: 10 }).map((a) => [a.seq, a.id, a.state])).toEqual([
      [2, alert(2).id, 'ok'],
      [1, alert(1).id, 'critical'],
    ]);
    expect(c.lastAlertedStates()).toEqual(new Map([['0'.repeat(16), 'ok']]));
    c.close();
  });

  it('prunes by age and by row count', () => {
    let now = 10_000;
    const c = CheckStore.open(join(dir, 'r.db'), { runs: { maxAgeMs: 5_000, maxRows: 50 }, alerts: { maxAgeMs: 5_000, maxRows: 0 }, flushIntervalMs: 100, now: () => now });
    for (let i = 0; i < 100; i++) c.recordResult(run(i, 'ok', i < 30 ? 1000 : 9000));
    c.recordAlert(alert(1));
    c.flush();
    now = 11_000; // cutoff 6 000: the runs at 1 000 and the alert at 5 001 are too old
    c.prune();
    // 30 too old; of the 70 left, the oldest 20 beyond 50
    const left = c.queryRuns({ limit: 1000 });
    expect(left).toHaveLength(50);
    expect(left.at(-1)!.id).toBe(51);
    expect(c.queryAlerts({ limit: 10 })).toHaveLength(0);
    // ids keep growing after pruning (AUTOINCREMENT): the watermark never goes back
    c.recordResult(run(200));
    c.flush();
    expect(c.committedRuns).toBe(101);
    c.close();
  });

  it('keeps rows buffered when a flush fails and writes them later', () => {
    const path = join(dir, 'busy.db');
    const c = CheckStore.open(path, { runs: RET, alerts: RET, flushIntervalMs: 100 });
    const other = new Database(path);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    c.recordResult(run(1));
    const r = c.flush();
    expect(r.committed).toBe(0);
    expect(r.error).toMatch(/locked|busy/i);
    expect(c.stats().pendingRuns).toBe(1);
    other.exec('ROLLBACK');
    other.close();
    expect(c.flush()).toEqual({ committed: 1 });
    c.close();
  });
});

// ---------------------------------------------------------------- crash durability

function transpileDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) {
    if (!f.endsWith('.ts')) continue;
    const out = ts.transpileModule(readFileSync(join(from, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: f,
    });
    writeFileSync(join(to, f.replace(/\.ts$/, '.js')), out.outputText);
  }
}

const CHILD = `
import { CheckStore } from './src/store/index.js';
const [path, runNo] = process.argv.slice(2);
const R = { maxAgeMs: 0, maxRows: 0 };
const store = CheckStore.open(path, { runs: R, alerts: R, flushIntervalMs: 1000 });
const out = (s) => process.stdout.write(s + '\\n');
out('start ' + store.committedRuns + ' ' + store.committedAlerts);
let seq = 0;
function loop() {
  const n = 1 + Math.floor(Math.random() * 400);
  for (let i = 0; i < n; i++, seq++) {
    store.recordResult({ check_id: 'c'.repeat(16), name: 'r' + runNo + '-' + seq, file: 'f', state: 'ok', at: seq, duration_ms: 1,
      message: 'x'.repeat(seq % 300), evidence: { values: [{ field: 'load1', value: seq }] }, labels: {} });
    if (seq % 10 === 0) store.recordAlert({ id: 'r' + runNo + '-' + seq, check_id: 'c'.repeat(16), name: 'n', kind: 'firing', state: 'critical',
      previous: 'ok', at: seq, message: 'm', labels: {}, evidence: {} });
  }
  const r = store.flush();
  if (r.error) { out('error ' + r.error); process.exit(3); }
  out('ack ' + store.committedRuns + ' ' + store.committedAlerts);
  setImmediate(loop);
}
loop();
`;

function runAndKill(crashDir: string, db: string, runNo: number, killAfterMs: number): Promise<{ start: [number, number]; ack: [number, number] | null; signal: string | null; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(crashDir, 'child.mjs'), db, String(runNo)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = { start: [-1, -1] as [number, number], ack: null as [number, number] | null, signal: null as string | null, stderr: '' };
    child.stderr.on('data', (b: Buffer) => (log.stderr += b.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [what, a, b] = line.split(' ');
      if (what === 'start') {
        log.start = [Number(a), Number(b)];
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      } else if (what === 'ack') log.ack = [Number(a), Number(b)];
    });
    child.on('error', reject);
    child.on('close', (_c, signal) => {
      log.signal = signal;
      resolvePromise(log);
    });
  });
}

describe('CheckStore: crash durability', () => {
  it('50 SIGKILLs while writing results: integrity ok, no acknowledged row lost, whole transactions only', async () => {
    const crashDir = join(dir, 'crash');
    transpileDir(join(ROOT, 'src/store'), join(crashDir, 'src/store'));
    transpileDir(join(ROOT, 'src/shared'), join(crashDir, 'src/shared'));
    symlinkSync(join(ROOT, 'node_modules'), join(crashDir, 'node_modules'));
    writeFileSync(join(crashDir, 'package.json'), '{"type":"module"}\n');
    writeFileSync(join(crashDir, 'child.mjs'), CHILD);
    const db = join(crashDir, 'crash.db');
    let last: [number, number] = [0, 0];
    for (let k = 0; k < 50; k++) {
      const log = await runAndKill(crashDir, db, k, 40 + Math.floor(Math.random() * 160));
      expect(log.signal, log.stderr).toBe('SIGKILL');
      expect(log.start[0]).toBeGreaterThanOrEqual(last[0]);
      const d = new Database(db, { readonly: true });
      try {
        expect(d.pragma('integrity_check', { simple: true })).toBe('ok');
        const ack = log.ack ?? log.start;
        const runs = (d.prepare('SELECT max(id) AS m, count(*) AS n FROM check_runs WHERE id > ?').get(log.start[0]) as { m: number | null; n: number });
        const maxRun = runs.m ?? log.start[0];
        const maxAlert = (d.prepare('SELECT max(seq) AS m FROM alerts').get() as { m: number | null }).m ?? 0;
        // every acknowledged row is there, with no gaps
        expect(maxRun).toBeGreaterThanOrEqual(ack[0]);
        expect(maxAlert).toBeGreaterThanOrEqual(ack[1]);
        expect(runs.n).toBe(maxRun - log.start[0]);
        // atomicity: runs and alerts of one flush commit together (one alert per 10 runs)
        const names = d.prepare('SELECT name FROM check_runs WHERE id > ? ORDER BY id').all(log.start[0]) as { name: string }[];
        names.forEach((r, i) => expect(r.name).toBe(`r${k}-${i}`));
        const alertsThisRun = (d.prepare("SELECT count(*) AS n FROM alerts WHERE alert_id LIKE ?").get(`r${k}-%`) as { n: number }).n;
        expect(alertsThisRun).toBe(Math.ceil(names.length / 10));
        last = [maxRun, maxAlert];
      } finally {
        d.close();
      }
    }
    const c = CheckStore.open(db, { runs: RET, alerts: RET, flushIntervalMs: 100 });
    expect(c.integrityCheck()).toBe('ok');
    expect(c.committedRuns).toBe(last[0]);
    expect(last[0]).toBeGreaterThan(500);
    c.close();
  }, 120_000);
});
