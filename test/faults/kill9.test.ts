// Fault: kill -9 of the agent under load, FAULT_KILL_ROUNDS times (CI 20; bench/soak.mjs 100).
// Pass, after every kill: no program, link or map of the killed agent is left in the kernel (by
// id, from its fds; it pins nothing), the store passes SQLite's integrity check, and every row
// the store had acknowledged (committed_rows: the highest committed id) is still there.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { execFileSync, spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { bpfEnabled } from '../bpf/helpers.js';
import {
  FORKEXEC, agentDir, buildBenchHelpers, exited, figure, heldProgIds, sleep, startAgent, stats, stillLoaded, until, waitReady,
} from './harness.js';

const ROUNDS = Number(process.env.FAULT_KILL_ROUNDS ?? 20);

/** BPF map ids a process holds (fdinfo map_id of its map fds). */
function heldMapIds(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^map_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  return ids;
}

function mapsLoaded(ids: Set<number>): number {
  return (JSON.parse(execFileSync('bpftool', ['map', 'show', '-j']).toString()) as Array<{ id: number }>).filter((m) => ids.has(m.id)).length;
}

describe.skipIf(!bpfEnabled)('fault: kill -9 of the agent under load', () => {
  it(`${ROUNDS} times: nothing left in the kernel, the store intact, no acknowledged row lost`, async () => {
    buildBenchHelpers();
    const d = agentDir();
    let acked = 0;
    const progsHeld: number[] = [];
    let worstFree = 0;
    let startMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const t = Date.now();
      const agent = startAgent(d);
      await waitReady(d, agent);
      startMs = Math.max(startMs, Date.now() - t);
      // load: execs flat out, so exit rows are being written when the kill comes
      // (its own process group: the kill below takes its workers too)
      const load = spawn(FORKEXEC, ['-r', '0', '-j', String(availableParallelism()), '-d', '30'], { stdio: 'ignore', detached: true });
      await sleep(200 + (round % 5) * 60);
      const progs = heldProgIds(agent.proc.pid!);
      const maps = heldMapIds(agent.proc.pid!);
      expect(progs.size).toBeGreaterThanOrEqual(5);
      progsHeld.push(progs.size);
      acked = Math.max(acked, (await stats(d)).store.committed_rows as number);
      agent.proc.kill('SIGKILL');
      await exited(agent.proc);
      process.kill(-load.pid!, 'SIGKILL');
      await exited(load);
      // the kernel frees programs once their last fd is gone (asynchronously, after RCU)
      const t0 = Date.now();
      expect(await until(() => stillLoaded(progs).progs === 0 && mapsLoaded(maps) === 0, 5000, 50), `round ${round}: programs or maps left`).toBe(true);
      worstFree = Math.max(worstFree, Date.now() - t0);
      expect(stillLoaded(progs).links).toBe(0);
      expect(existsSync(d.pinDir) ? readdirSync(d.pinDir) : []).toEqual([]);
      const db = new Database(d.db, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true }), `round ${round}`).toBe('ok');
        // ids are committed in order from 1 and never reused: every acknowledged id is there
        const have = (db.prepare('SELECT count(*) AS n FROM process_exits WHERE id <= ?').get(acked) as { n: number }).n;
        expect(have, `round ${round}: acknowledged rows`).toBe(acked);
      } finally {
        db.close();
      }
    }
    figure('kill -9 under load', { rounds: ROUNDS, acknowledged_rows: acked, lost_acknowledged: 0, programs_per_agent: Math.min(...progsHeld), leftover: 0, worst_free_ms: worstFree, slowest_start_ms: startMs });
    expect(acked).toBeGreaterThan(ROUNDS);
  }, ROUNDS * 20_000 + 30_000);
});
