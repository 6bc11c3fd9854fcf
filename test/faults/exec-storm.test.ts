// Fault: an exec storm at the machine's max rate (forkexec, one loop per CPU, flat out). Pass:
// the loss accounting's identity is exact for every event type (generated = captured + lost),
// nothing is lost, and every exec and exit of the storm reaches an API client. CI runs
// FAULT_STORM_S (default 12 s); bench/soak.mjs runs the 60 s.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled } from '../bpf/helpers.js';
import {
  FORKEXEC, agentDir, buildBenchHelpers, figure, identityFailures, runOut, settledStats, startAgent, stopAgent, until, waitReady, type Agent, type AgentDir,
} from './harness.js';

const STORM_S = Number(process.env.FAULT_STORM_S ?? 12);

describe.skipIf(!bpfEnabled)('fault: exec storm at the machine\'s max rate', () => {
  let d: AgentDir;
  let agent: Agent;

  beforeAll(async () => {
    buildBenchHelpers();
    d = agentDir();
    agent = startAgent(d);
    await waitReady(d, agent);
  });

  afterAll(async () => {
    await stopAgent(agent);
  });

  it(`${STORM_S} s flat out: identity exact per type, 0 lost, every exec and exit delivered`, async () => {
    // a copy of true with a name of its own: the storm's processes, and nobody else's
    const name = `pstorm${process.pid % 100000}`;
    const bin = join(mkdtempSync(join(tmpdir(), 'patrol-storm-')), name);
    copyFileSync('/bin/true', bin);

    // an API client following the storm's events
    let buf = '';
    const seen = { exec: 0, exit: 0, dropped: 0, ready: false };
    const req = request({ socketPath: d.socket, path: `/v1/events?comm=${name}` }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const r = JSON.parse(buf.slice(0, i)) as { type: string; comm?: string; count?: number };
          buf = buf.slice(i + 1);
          if (r.type === 'ready') seen.ready = true;
          else if (r.type === 'dropped') seen.dropped += r.count!;
          else if (r.type === 'exec' && r.comm === name) seen.exec++;
          else if (r.type === 'exit' && r.comm === name) seen.exit++;
        }
      });
    });
    req.on('error', () => {});
    req.end();
    expect(await until(() => seen.ready, 5000)).toBe(true);

    const before = await settledStats(d);
    const jobs = Math.max(1, availableParallelism());
    const storm = await runOut(FORKEXEC, ['-r', '0', '-j', String(jobs), '-d', String(STORM_S), '-e', bin]);
    expect(storm.code, storm.err).toBe(0);
    const load = JSON.parse(storm.out) as { execs: number; rate: number; failed: number };
    expect(load.execs).toBeGreaterThan(100); // a storm happened (a quiet 2-CPU VM: ~2,000 execs/s)

    await until(() => seen.exit >= load.execs, 10_000);
    const after = await settledStats(d, 10_000);
    req.destroy();
    const a = after.accounting;
    const lostDuring = a.totals.lost - before.accounting.totals.lost;
    figure('exec storm', {
      seconds: STORM_S, jobs, execs: load.execs, exec_per_s: load.rate, captured_exec: a.captured.exec - before.accounting.captured.exec,
      lost: lostDuring, in_flight: a.in_flight, stream: seen, identity: identityFailures(a).length === 0 ? 'exact' : identityFailures(a),
    });
    expect(a.in_flight).toBe(0);
    expect(identityFailures(a)).toEqual([]);
    expect(a.identity_holds).toBe(true);
    expect(a.totals.lost).toBe(0);
    expect(a.seq_gaps).toBe(0);
    expect(seen.dropped).toBe(0);
    expect(seen.exec).toBe(load.execs);
    expect(seen.exit).toBe(load.execs);
    expect(after.health.status).toBe('ok');
  }, (STORM_S + 60) * 1000);
});
