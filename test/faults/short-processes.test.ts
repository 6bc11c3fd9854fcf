// Fault: a long run of short processes through the agent. The 1,000,000 (with the RSS
// criterion: growth ≤ 5 % between 20 % and 100 % of the run) is a benchmark, bench/soak.mjs; CI
// runs FAULT_SHORT_N (default 50,000, at most FAULT_SHORT_S seconds) with the table bounded at
// its minimum (1024 entries) so the bound is exercised many times over. Pass: the process table
// never holds more than its bound, the agent evicts instead, and nothing is lost.
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled } from '../bpf/helpers.js';
import {
  FORKEXEC, agentDir, buildBenchHelpers, figure, identityFailures, rssBytes, runOut, settledStats, sleep, startAgent, stats, stopAgent, waitReady, type Agent, type AgentDir,
} from './harness.js';

const N = Number(process.env.FAULT_SHORT_N ?? 50_000);
const MAX_S = Number(process.env.FAULT_SHORT_S ?? 60);
const BOUND = 1024;

describe.skipIf(!bpfEnabled)('fault: many short processes through the agent', () => {
  let d: AgentDir;
  let agent: Agent;

  beforeAll(async () => {
    buildBenchHelpers();
    d = agentDir({ lifecycle: `{ table_max_entries: ${BOUND} }` });
    agent = startAgent(d);
    await waitReady(d, agent);
  });

  afterAll(async () => {
    await stopAgent(agent);
  });

  it(`${N} processes (at most ${MAX_S} s): the table stays within its bound of ${BOUND}, evicting; nothing lost`, async () => {
    const jobs = Math.max(1, availableParallelism());
    const load = runOut(FORKEXEC, ['-r', '0', '-j', String(jobs), '-n', String(N), '-d', String(MAX_S)]);
    let done = false;
    void load.then(() => (done = true));
    let maxSize = 0;
    let samples = 0;
    const rss: number[] = [];
    while (!done) {
      const s = await stats(d);
      maxSize = Math.max(maxSize, s.table.size);
      samples++;
      rss.push(rssBytes(agent.proc.pid!));
      await sleep(200);
    }
    const r = await load;
    expect(r.code, r.err).toBe(0);
    const ran = (JSON.parse(r.out) as { execs: number }).execs;
    const end = await settledStats(d, 10_000);
    maxSize = Math.max(maxSize, end.table.size);
    const at = (f: number) => rss[Math.min(rss.length - 1, Math.floor(f * rss.length))]!;
    figure('short processes', {
      processes: ran, seconds: Number((JSON.parse(r.out) as { elapsed_s: number }).elapsed_s.toFixed(1)), table_bound: BOUND, table_max_seen: maxSize, samples,
      evictions: end.table.evictions, lost: end.accounting.totals.lost, rss_mb: { at20: (at(0.2) / 2 ** 20).toFixed(1), end: (rssBytes(agent.proc.pid!) / 2 ** 20).toFixed(1) },
    });
    expect(ran).toBeGreaterThan(BOUND); // enough to go round the table (CI: ~50 times)
    expect(maxSize).toBeLessThanOrEqual(BOUND);
    expect(end.table.evictions).toBeGreaterThan(0);
    expect(identityFailures(end.accounting)).toEqual([]);
    expect(end.accounting.totals.lost).toBe(0);
    expect(agent.proc.exitCode).toBeNull();
  }, (MAX_S + 60) * 1000);
});
