// Fault: a consumer of the event stream that throws on every 10th event (the test hook
// PATROL_FAULT_INJECT=rules:10). Pass: the agent lives, and every other consumer sees every
// event: the API stream every exec, the store every exit, the checks' event counters every exec,
// the resource windows every exit; the faults are counted and the health says so.
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, run } from '../bpf/helpers.js';
import { PATROL, agentDir, figure, get, runOut, sleep, startAgent, stats, stopAgent, until, waitReady, type Agent, type AgentDir } from './harness.js';

const N = 60;

describe.skipIf(!bpfEnabled)('fault: a consumer that throws on every 10th event', () => {
  let d: AgentDir;
  let agent: Agent;
  const name = `pfault${process.pid % 100000}`;
  let bin: string;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-consumer-fault-'));
    bin = join(dir, name);
    copyFileSync('/bin/true', bin);
    mkdirSync(join(dir, 'checks'));
    // the checks' event counters are a consumer too: this count must see every exec
    writeFileSync(join(dir, 'checks', 'seen.patrol'), `check seen { every 1s; warning count(exec where comm == "${name}", 10m) > 0; }\n`);
    d = agentDir();
    agent = startAgent(d, ['--checks', join(dir, 'checks')], { PATROL_FAULT_INJECT: 'rules:10' });
    await waitReady(d, agent);
  });

  afterAll(async () => {
    await stopAgent(agent);
  });

  it('the agent lives; the stream, the store, the checks and the resource windows see every event', async () => {
    let out = '';
    const req = request({ socketPath: d.socket, path: `/v1/events?comm=${name}` }, (res) => res.on('data', (b) => (out += b)));
    req.on('error', () => {});
    req.end();
    await until(() => out.includes('"ready"'), 5000);
    const before = await stats(d);
    const pids: number[] = [];
    for (let i = 0; i < N; i++) pids.push((await run(bin, [])).pid);

    const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; pid: number });
    await until(() => lines().filter((l) => l.type === 'exit').length >= N, 10_000);
    req.destroy();
    const streamExecs = lines().filter((l) => l.type === 'exec' && pids.includes(l.pid)).length;
    const streamExits = lines().filter((l) => l.type === 'exit' && pids.includes(l.pid)).length;

    const storeExits = () => {
      const db = new Database(d.db, { readonly: true });
      try {
        return (db.prepare(`SELECT count(*) AS n FROM process_exits WHERE pid IN (${pids.join(',')})`).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    await until(() => storeExits() === N, 5000, 100);

    let counted = -1;
    await until(async () => {
      const r = await get(d.socket, '/v1/checks/results?latest=true');
      const seen = (r.body.results as Array<{ name: string; evidence: { values: Array<{ value: number }> } }>).find((x) => x.name === 'seen');
      counted = seen?.evidence.values[0]?.value ?? -1;
      return counted === N;
    }, 5000, 200);

    let windowed = -1;
    await until(async () => {
      const r = await get(d.socket, '/v1/top?window=1m&limit=10000');
      windowed = (r.body.rows as Array<{ comm: string; exited: boolean; pid: number }>).filter((x) => x.comm === name && x.exited && pids.includes(x.pid)).length;
      return windowed === N;
    }, 5000, 200);

    const st = await stats(d);
    const events = st.accounting.totals.captured - before.accounting.totals.captured;
    const human = await runOut(PATROL, ['status', '--socket', d.socket]);
    figure('consumer throws every 10th event', {
      processes: N, events_during: events, rules_errors: st.consumers.rules.errors, stream: { execs: streamExecs, exits: streamExits }, store_exits: storeExits(),
      checks_count: counted, windows_exited: windowed, others_errors: Object.entries(st.consumers as Record<string, { errors: number }>).filter(([k]) => k !== 'rules').map(([k, v]) => `${k}:${v.errors}`),
    });
    expect(streamExecs).toBe(N);
    expect(streamExits).toBe(N);
    expect(storeExits()).toBe(N);
    expect(counted).toBe(N);
    expect(windowed).toBe(N);
    // the faulty consumer: every 10th of what it was given threw, and nothing else did
    expect(st.consumers.rules.errors).toBeGreaterThanOrEqual(Math.floor((4 * N) / 10));
    expect(st.consumers.rules.last_error).toMatch(/injected fault/);
    for (const [k, v] of Object.entries(st.consumers as Record<string, { errors: number }>)) if (k !== 'rules') expect(v.errors, k).toBe(0);
    expect(st.accounting.identity_holds || st.accounting.in_flight > 0).toBe(true);
    expect(st.health.status).toBe('degraded');
    expect(st.health.reasons).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'consumer', message: expect.stringMatching(/^consumer rules: \d+ errors in the last minute$/) })]));
    expect(human.code).toBe(2); // up but degraded
    expect(human.out).toMatch(/health\s+DEGRADED: consumer rules/);
    expect(human.out).toMatch(/faults\s+.*rules \d+/);
    const metrics = (await get(d.socket, '/v1/metrics')).text;
    expect(metrics).toMatch(/^patrol_consumer_errors_total\{consumer="rules"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^patrol_health_degraded\{kind="consumer"\} 1$/m);
    await sleep(200);
    expect(agent.proc.exitCode).toBeNull(); // still running
  }, 90_000);
});
