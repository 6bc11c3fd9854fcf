// `patrol trace` as a user runs it: the NDJSON contract, filters, and clear errors.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bpfEnabled, bpfRequired, marker, run, sleep } from './helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));

interface TraceRun {
  records: Array<Record<string, unknown>>;
  stderr: string;
  code: number | null;
}

/** Runs `patrol trace --json ARGS`, starts `during` once the ready record arrives. */
function traceJson(args: string[], during: () => Promise<void>): Promise<TraceRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(PATROL, ['trace', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = false;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!started && out.includes('"type":"ready"')) {
        started = true;
        during().then(
          () => p.kill('SIGINT'),
          (e) => {
            p.kill('SIGKILL');
            reject(e);
          },
        );
      }
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      const records = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ records, stderr: err, code });
    });
  });
}

describe.skipIf(!bpfEnabled)('patrol trace --json (real kernel)', () => {
  it('writes ready first, then events with the documented fields, then the summary', async () => {
    const m = marker();
    let childPid = 0;
    const r = await traceJson([], async () => {
      childPid = (await run('/bin/sh', ['-c', 'exit 7', m])).pid;
      await sleep(200);
    });
    expect(r.code).toBe(0);
    expect(r.records[0]!.type).toBe('ready');
    const last = r.records.at(-1)!;
    expect(last.type).toBe('summary');
    expect(last.identity_holds).toBe(true);
    for (const k of ['generated', 'captured', 'lost']) {
      expect(Object.keys(last[k] as object).sort()).toEqual(['exec', 'exec_failed', 'exit', 'fork', 'reap']);
    }
    const mine = r.records.filter((x) => x.pid === childPid);
    expect(mine.map((x) => x.type)).toEqual(expect.arrayContaining(['fork', 'exec', 'exit', 'reap']));
    const fields = ['type', 'time', 'ktime_ns', 'exec_id', 'parent_exec_id', 'pid', 'ppid', 'uid', 'comm', 'filename',
      'args', 'args_truncated', 'exit_code', 'signal', 'duration_ns', 'zombie_ns'];
    for (const rec of mine) for (const f of fields) expect(rec).toHaveProperty(f);
    const exec = mine.find((x) => x.type === 'exec')!;
    expect(exec.args).toEqual(['/bin/sh', '-c', 'exit 7', m]);
    expect(exec.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof exec.ktime_ns).toBe('string');
    const exit = mine.find((x) => x.type === 'exit')!;
    expect(exit.exit_code).toBe(7);
    expect(exit.exec_id).toBe(exec.exec_id);
    expect(exit.usage).toHaveProperty('max_rss_kb');
    expect(Number(exit.duration_ns)).toBeGreaterThan(0);
  }, 30_000);

  it('--pid follows a subtree, --failed keeps only failures', async () => {
    const m = marker();
    const script = `/bin/true ${m}; /bin/sh -c 'exit 2'; /nonexistent-${m} 2>/dev/null; true`;
    // The parent waits for trace to be ready (a fixed sleep raced a slow start on a busy box).
    const go = join(tmpdir(), `${m}.go`);
    const parent = spawn('/bin/sh', ['-c', `while [ ! -e ${go} ]; do sleep 0.02; done; ${script}`], { stdio: 'ignore' });
    const exited = new Promise((res) => parent.on('exit', res));
    const r = await traceJson(['--pid', String(parent.pid), '--failed'], async () => {
      writeFileSync(go, '');
      await exited;
      await sleep(200);
    });
    rmSync(go, { force: true });
    const events = r.records.filter((x) => x.type !== 'ready' && x.type !== 'summary');
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(e.type === 'exec_failed' || (e.type === 'exit' && (e.exit_code !== 0 || e.signal !== null))).toBe(true);
    }
    expect(events.some((e) => e.type === 'exit' && e.exit_code === 2)).toBe(true);
    expect(events.some((e) => e.type === 'exec_failed' && String(e.filename).includes(m) && e.error === 'ENOENT')).toBe(true);
  }, 30_000);
});

describe.skipIf(!bpfEnabled)('patrol trace: hostile process text', () => {
  it('a comm and arguments with escape sequences are escaped for the terminal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-hostile-'));
    const evil = join(dir, '\x1b[2Jclear');
    copyFileSync('/bin/true', evil);
    chmodSync(evil, 0o755);
    const m = marker();
    const p = spawn(PATROL, ['trace', '--pid', String(process.pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    for (const end = Date.now() + 15_000; !out.includes('COMM') && Date.now() < end; ) await sleep(20);
    await run(evil, [m, '\x1b]0;title\x07', 'é\x9b']);
    for (const end = Date.now() + 5_000; !out.includes(m) && Date.now() < end; ) await sleep(20);
    p.kill('SIGINT');
    await new Promise((r) => p.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    const line = out.split('\n').find((l) => l.includes(m) && l.includes(' exec '));
    expect(line, out).toBeDefined();
    expect(out).not.toMatch(/[\x1b\x07]/); // nothing raw reached the terminal
    expect(line).toContain('\\x1b[2Jclear');
    expect(line).toContain("$'\\x1b]0;title\\x07'");
  }, 30_000);
});

describe('patrol trace errors', () => {
  it.each([
    [['trace', '--pid', 'abc'], /--pid must be a whole number/],
    [['trace', '--duration', 'soon'], /500ms, 10s, 2m, 1h/],
    [['trace', '--bogus'], /unknown option '--bogus'/],
    [['trace', '--ring-size', '3000000'], /power of two/],
  ])('%j gives one clear line', (args, re) => {
    const r = spawnSync(PATROL, args, { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  // Needs root to switch to another user; PATROL_REQUIRE_BPF=1 (CI, as root) never skips it.
  it.skipIf(!bpfRequired && process.getuid?.() !== 0)('tells a non-root user what privilege is missing', () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', PATROL, 'trace'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('patrol: needs root or CAP_BPF+CAP_PERFMON to load its BPF sensors');
  });
});
