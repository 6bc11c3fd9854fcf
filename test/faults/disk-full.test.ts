// Fault: the disk under the store fills up (the store on a small tmpfs, then a filler file takes
// the rest). Pass: the agent keeps capturing (events reach the API stream, the accounting keeps
// counting), its health is degraded with a `store` reason, and once space returns (the filler
// is deleted) the buffered rows are committed and the health is ok again.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, run } from '../bpf/helpers.js';
import { PATROL, agentDir, figure, get, runOut, startAgent, stats, stopAgent, until, waitReady, type Agent, type AgentDir } from './harness.js';

describe.skipIf(!bpfEnabled)('fault: disk full under the store', () => {
  let base: string;
  let mnt: string;
  let d: AgentDir;
  let agent: Agent;
  const name = `pdisk${process.pid % 100000}`;
  let bin: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'patrol-diskfull-'));
    mnt = join(base, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'patrol-fault', mnt]);
    bin = join(base, name);
    copyFileSync('/bin/true', bin);
    d = agentDir({ store: `{ path: ${join(mnt, 'patrol.db')}, flush_interval: 50ms }` }, join(mnt, 'patrol.db'));
    agent = startAgent(d);
    await waitReady(d, agent);
  });

  afterAll(async () => {
    await stopAgent(agent);
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
    rmSync(base, { recursive: true, force: true });
  });

  /** Fills the tmpfs: one file, written until ENOSPC. */
  function fill(path: string): number {
    const fd = openSync(path, 'w');
    const chunk = Buffer.alloc(64 << 10, 0x5a);
    let n = 0;
    try {
      for (;;) n += writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      closeSync(fd);
    }
    // what is left is less than a chunk: take that too
    const small = openSync(path + '.tail', 'w');
    try {
      for (;;) n += writeSync(small, Buffer.alloc(512, 0x5a));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      closeSync(small);
    }
    return n;
  }

  it('keeps capturing while the store cannot write, is degraded (store), and recovers when space returns', async () => {
    let out = '';
    const req = request({ socketPath: d.socket, path: `/v1/events?comm=${name}` }, (res) => res.on('data', (b) => (out += b)));
    req.on('error', () => {});
    req.end();
    await until(() => out.includes('"ready"'), 5000);

    const filler = join(mnt, 'filler');
    const filled = fill(filler);
    expect(statfsSync(mnt).bavail).toBe(0);
    const before = await stats(d);
    const pids: number[] = [];
    for (let i = 0; i < 40; i++) pids.push((await run(bin, [])).pid);

    // degraded, naming the store
    let health: any;
    const t0 = Date.now();
    expect(await until(async () => {
      health = (await get(d.socket, '/v1/health')).body;
      return health.reasons.some((r: { kind: string }) => r.kind === 'store');
    }, 10_000, 100), JSON.stringify(health)).toBe(true);
    const degradedMs = Date.now() - t0;
    expect(health.status).toBe('degraded');
    expect(health.reasons.find((r: { kind: string }) => r.kind === 'store').message).toMatch(/store writes failing: .*(FULL|full|ENOSPC)/);
    const human = await runOut(PATROL, ['status', '--socket', d.socket]);
    expect(human.code).toBe(2);
    expect(human.out).toMatch(/health\s+DEGRADED: store writes failing/);

    // still capturing: every exec and exit of ours reached the stream, the accounting counted
    await until(() => out.split('\n').filter((l) => l.includes('"type":"exit"')).length >= 40, 10_000);
    const streamed = (type: string) => out.split('\n').filter((l) => l.includes(`"type":"${type}"`) && pids.some((p) => l.includes(`"pid":${p},`))).length;
    expect(streamed('exec')).toBe(40);
    expect(streamed('exit')).toBe(40);
    const during = await stats(d);
    expect(during.accounting.captured.exec - before.accounting.captured.exec).toBeGreaterThanOrEqual(40);
    expect(during.store.flush_failures).toBeGreaterThan(0);
    expect(during.store.pending_rows).toBeGreaterThan(0);

    // space returns: the rows buffered meanwhile are committed and the health is ok again
    rmSync(filler);
    rmSync(filler + '.tail');
    const t1 = Date.now();
    expect(await until(async () => (await get(d.socket, '/v1/health')).body.status === 'ok', 15_000, 100), JSON.stringify((await get(d.socket, '/v1/health')).body)).toBe(true);
    const recoveredMs = Date.now() - t1;
    req.destroy();
    const after = await stats(d);
    const db = new Database(d.db, { readonly: true });
    const stored = (db.prepare(`SELECT count(*) AS n FROM process_exits WHERE pid IN (${pids.join(',')})`).get() as { n: number }).n;
    const integrity = db.pragma('integrity_check', { simple: true });
    db.close();
    figure('disk full under the store', {
      tmpfs: '2 MiB', filler_bytes: filled, degraded_after_ms: degradedMs, recovered_after_ms: recoveredMs, flush_failures: after.store.flush_failures,
      captured_during: during.accounting.captured.exec - before.accounting.captured.exec, stored_after: stored, dropped: after.store.dropped,
    });
    expect(after.store.last_error).toBeNull();
    expect(after.store.dropped).toBe(0);
    expect(stored).toBe(40); // nothing lost: buffered through the outage, committed after
    expect(integrity).toBe('ok');
    expect(agent.proc.exitCode).toBeNull();
  }, 90_000);
});
