// Durability across a process crash: a child process writes and flushes batches of rows through
// the real Store, printing each committed watermark, and is SIGKILLed mid-stream. The database
// must then pass integrity_check, hold every row the child reported as acknowledged, and hold
// only whole batches (a transaction is all or nothing).
//
// The child runs src/store compiled on the fly with TypeScript's transpileModule (no build step,
// no loader): the output goes to a temp dir whose node_modules links to the project's.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;

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
import { Store } from './src/store/index.js';
const [path, run] = process.argv.slice(2);
const store = Store.open(path, { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 1000 });
const out = (s) => process.stdout.write(s + '\\n'); // synchronous for pipes on Linux
out('start ' + store.committedRows);
let seq = 0;
function loop() {
  const n = 1 + Math.floor(Math.random() * 1500);
  out('batch ' + n);
  for (let i = 0; i < n; i++, seq++) {
    store.recordExit({
      execId: 'r' + run + '-' + seq, pid: seq, ppid: 1, parentExecId: null, comm: 'crash',
      filename: '/bin/x', args: ['x', 'y'.repeat(seq % 200)], uid: 0, cgroupId: 1n,
      startNs: BigInt(seq), exitNs: BigInt(seq) + 10n, durationNs: 10n, exitCode: 0, signal: null,
      coreDumped: false, cpuNs: 1n, utimeNs: 1n, stimeNs: 0n, maxRssKb: 1, readBytes: 0n,
      writeBytes: 0n, minflt: 0n, majflt: 0n,
    });
  }
  const r = store.flush();
  if (r.error) { out('error ' + r.error); process.exit(3); }
  out('ack ' + store.committedRows);
  setImmediate(loop);
}
loop();
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-crash-'));
  transpileDir(join(ROOT, 'src/store'), join(dir, 'src/store'));
  transpileDir(join(ROOT, 'src/shared'), join(dir, 'src/shared'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  writeFileSync(join(dir, 'child.mjs'), CHILD);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface RunLog {
  start: number;
  batches: number[];
  acks: number[];
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child and SIGKILLs it `killAfterMs` after it opened the store: at an arbitrary point
 *  of its loop, most often inside a flush, which is where it spends most of its time. */
function runAndKill(db: string, run: number, killAfterMs: number): Promise<RunLog> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(dir, 'child.mjs'), db, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log: RunLog = { start: -1, batches: [], acks: [], signal: null, stderr: '' };
    child.stderr.on('data', (b: Buffer) => (log.stderr += b.toString()));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const [what, arg] = line.split(' ');
      if (what === 'start') {
        log.start = Number(arg);
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      } else if (what === 'batch') log.batches.push(Number(arg));
      else if (what === 'ack') log.acks.push(Number(arg));
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      log.signal = signal;
      resolvePromise(log);
    });
  });
}

describe('Store: crash durability', () => {
  it('every acknowledged row survives SIGKILL, and only whole transactions are stored (5 runs)', async () => {
    const db = join(dir, 'crash.db');
    let lastAck = 0;
    for (let run = 0; run < 5; run++) {
      const log = await runAndKill(db, run, 100 + Math.floor(Math.random() * 400));
      expect(log.signal, log.stderr).toBe('SIGKILL');
      expect(log.start).toBe(lastAck); // the watermark carries over the crash

      const d = new Database(db);
      try {
        expect(d.pragma('integrity_check', { simple: true })).toBe('ok');
        const rows = d.prepare('SELECT id, exec_id FROM process_exits WHERE id > ? ORDER BY id').all(log.start) as { id: number; exec_id: string }[];
        const ack = log.acks.at(-1) ?? log.start;
        // every acknowledged row is there, in order, with the content the child wrote
        expect(rows.length).toBeGreaterThanOrEqual(ack - log.start);
        rows.forEach((r, k) => {
          expect(r.id).toBe(log.start + 1 + k);
          expect(r.exec_id).toBe(`r${run}-${k}`);
        });
        // atomicity: the rows stored are exactly the first m batches for some m
        const prefix = [0];
        for (const b of log.batches) prefix.push(prefix.at(-1)! + b);
        expect(prefix).toContain(rows.length);
        lastAck = log.start + rows.length;
        if (process.env.PATROL_CRASH_DEBUG) {
          console.log(`run ${run}: acked ${ack - log.start}, stored ${rows.length}, batches announced ${log.batches.length}, acked ${log.acks.length}`);
        }
      } finally {
        d.close();
      }
    }
    const s = Store.open(db, { retention: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 200 });
    try {
      expect(s.integrityCheck()).toBe('ok');
      expect(s.committedRows).toBe(lastAck);
    } finally {
      s.close();
    }
  });
});
