// Fault: a long run of short processes through the agent. The 1,000,000 with the default
// table bound and the RSS criterion (growth ≤ 5 % between 20 % and 100 % of the run) is a
// benchmark: bench/soak.mjs runs this file with FAULT_SHORT_N=1000000, FAULT_SHORT_BOUND=65536
// and FAULT_SHORT_RSS=1. CI runs FAULT_SHORT_N (default 50,000, at most FAULT_SHORT_S seconds)
// with the table bounded at its minimum (1024 entries), so the bound is exercised many times
// over. Pass: the process table never holds more than its bound, the agent evicts instead, and
// nothing is lost.
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled } from '../bpf/helpers.js';
import {
  FORKEXEC, agentDir, buildBenchHelpers, figure, identityFailures, rssBytes, runOut, settledStats, sleep, startAgent, stats, stopAgent, waitReady, type Agent, type AgentDir,
} from './harness.js';

const N = Number(process.env.FAULT_SHORT_N ?? 50_000);
const MAX_S = Number(process.env.FAULT_SHORT_S ?? 60);
const BOUND = Number(process.env.FAULT_SHORT_BOUND ?? 1024);
const RSS_CRITERION = process.env.FAULT_SHORT_RSS === '1';

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
    // RSS against progress (the run's execs as the agent counted them): at 20 % and at the end
    const base = (await stats(d)).accounting.captured.exec as number;
    let rssAt20: number | null = null;
    let rssMax = 0;
    // the trajectory: RSS (MB) at every 10 % of the run, so a slow climb shows apart from a late peak
    const trajectory: Array<{ pct: number; rss_mb: number }> = [];
    while (!done) {
      const s = await stats(d);
      maxSize = Math.max(maxSize, s.table.size);
      samples++;
      const rss = rssBytes(agent.proc.pid!);
      rssMax = Math.max(rssMax, rss);
      const progress = (s.accounting.captured.exec - base) / N;
      if (rssAt20 === null && progress >= 0.2) rssAt20 = rss;
      const mark = Math.floor(progress * 10) * 10;
      if (mark > (trajectory.at(-1)?.pct ?? 0) && mark <= 100) trajectory.push({ pct: mark, rss_mb: Number((rss / 2 ** 20).toFixed(1)) });
      await sleep(200);
    }
    const r = await load;
    expect(r.code, r.err).toBe(0);
    const ran = (JSON.parse(r.out) as { execs: number }).execs;
    const end = await settledStats(d, 10_000);
    maxSize = Math.max(maxSize, end.table.size);
    const rssEnd = rssBytes(agent.proc.pid!);
    const growth = rssAt20 === null ? null : (rssEnd - rssAt20) / rssAt20;
    const mb = (b: number | null) => (b === null ? null : Number((b / 2 ** 20).toFixed(1)));
    figure('short processes', {
      processes: ran, seconds: Number((JSON.parse(r.out) as { elapsed_s: number }).elapsed_s.toFixed(1)), table_bound: BOUND, table_max_seen: maxSize, samples,
      evictions: end.table.evictions, lost: end.accounting.totals.lost, rss_mb: { at20: mb(rssAt20), end: mb(rssEnd), max: mb(rssMax) },
      rss_growth_pct: growth === null ? null : Number((100 * growth).toFixed(2)), rss_trajectory: trajectory,
    });
    expect(ran).toBeGreaterThan(Math.min(BOUND, N / 2)); // CI: round the table ~50 times
    expect(maxSize).toBeLessThanOrEqual(BOUND);
    if (maxSize === BOUND) expect(end.table.evictions).toBeGreaterThan(0); // full: it evicted to go on
    if (RSS_CRITERION) {
      expect(rssAt20, 'the run reached 20 %').not.toBeNull();
      expect(growth!).toBeLessThanOrEqual(0.05);
    }
    expect(identityFailures(end.accounting)).toEqual([]);
    expect(end.accounting.totals.lost).toBe(0);
    expect(agent.proc.exitCode).toBeNull();
  }, (MAX_S + 60) * 1000);
});
