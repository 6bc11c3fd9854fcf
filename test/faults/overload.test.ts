// Fault: 5× overload, a producer faster than the consumer. bench_produce (loaded into the agent's
// own lifecycle object by the PATROL_BENCH_PRODUCE=1 test hook, never attached) writes
// fork-shaped records into the agent's ring from bench/build/bpf-produce, pinned to CPU 0. A
// first agent measures what the consumer takes flat out; a fresh one is then offered five times
// that. Pass: the loss shows in `patrol status` and in /metrics within 1 s, and the default
// pack's `lost` alert is raised within 2 s.
import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled } from '../bpf/helpers.js';
import { benchProduceEnabled } from '../bpf/bench-produce.js';
import {
  BPF_PRODUCE, PATROL, ROOT, agentDir, buildBenchHelpers, exited, figure, get, metric, runOut, sleep, startAgent, stats, stopAgent, waitReady, type Agent, type AgentDir,
} from './harness.js';

const BURST = 1024; // bench_produce's records per run (its .rodata default)

/** An agent whose ring bench_produce can fill; filename_cap is the token bpf-produce finds it by. */
async function overloadable(): Promise<{ d: AgentDir; agent: Agent; token: number }> {
  const token = randomInt(1000, 4096);
  const d = agentDir({ lifecycle: `{ filename_cap: ${token} }` });
  const agent = startAgent(d, ['--checks', `${ROOT}checks`], { PATROL_BENCH_PRODUCE: '1' });
  await waitReady(d, agent);
  return { d, agent, token };
}

describe.skipIf(!bpfEnabled || !benchProduceEnabled)('fault: 5× overload of the agent\'s consumer', () => {
  let agents: Agent[] = [];

  beforeAll(() => buildBenchHelpers());
  afterAll(async () => {
    for (const a of agents) await stopAgent(a);
  });

  it('loss visible in status and /metrics within 1 s, the lost alert within 2 s', async () => {
    // 1. what the consumer takes: flat out for 2 s, records captured per second
    const cal = await overloadable();
    agents.push(cal.agent);
    const c0 = (await stats(cal.d)).accounting.captured.fork as number;
    const flat = await runOut(BPF_PRODUCE, ['-t', String(cal.token), '-n', String(1e12), '-d', '2']);
    expect(flat.code, flat.err).toBe(0);
    const flatOut = JSON.parse(flat.out) as { elapsed_s: number; lost_reserve: number };
    const c1 = (await stats(cal.d)).accounting.captured.fork as number;
    const capacity = (c1 - c0) / flatOut.elapsed_s;
    expect(flatOut.lost_reserve).toBeGreaterThan(0); // flat out does overrun it
    await stopAgent(cal.agent);

    // 2. a fresh agent offered five times that
    const { d, agent, token } = await overloadable();
    agents.push(agent);
    const base = await stats(d);
    expect(base.accounting.totals.lost).toBe(0);
    const offered = 5 * capacity;
    const t0 = Date.now();
    const producer = spawn(BPF_PRODUCE, ['-t', String(token), '-n', String(1e12), '-r', String(Math.round(offered)), '-d', '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    producer.stdout!.on('data', (b) => (out += b));

    const seen: { status?: number; metrics?: number; alert?: number } = {};
    let statusLost = 0;
    let metricsLost = 0;
    for (const end = t0 + 3500; Date.now() < end && seen.alert === undefined; await sleep(50)) {
      if (seen.status === undefined) {
        const r = spawnSync(PATROL, ['status', '--json', '--socket', d.socket], { encoding: 'utf8' });
        statusLost = JSON.parse(r.stdout).accounting.totals.lost as number;
        if (statusLost > 0) seen.status = Date.now() - t0;
      }
      if (seen.metrics === undefined) {
        const m = await get(d.socket, '/v1/metrics');
        metricsLost = metric(m.text, 'patrol_events_lost_total');
        if (metricsLost > 0) seen.metrics = Date.now() - t0;
      }
      const al = await get(d.socket, '/v1/alerts');
      if ((al.body.alerts as Array<{ name: string; kind: string }>).some((a) => a.name === 'lost' && a.kind === 'firing')) seen.alert = Date.now() - t0;
    }
    await exited(producer);
    const prod = JSON.parse(out) as { runs: number; elapsed_s: number; generated: number; lost_reserve: number };
    const after = await stats(d);
    const captured = after.accounting.captured.fork - base.accounting.captured.fork;
    const ratio = (prod.runs * BURST) / prod.elapsed_s / (captured / prod.elapsed_s);
    const human = spawnSync(PATROL, ['status', '--socket', d.socket], { encoding: 'utf8' });
    figure('5x overload', {
      consumer_rec_per_s: Math.round(capacity), offered_rec_per_s: Math.round(offered), offered_over_captured: Number(ratio.toFixed(2)),
      lost: after.accounting.totals.lost, status_ms: seen.status, metrics_ms: seen.metrics, alert_ms: seen.alert, health: after.health,
    });
    expect(ratio).toBeGreaterThanOrEqual(3); // the overload was real (5× asked; the consumer's pace varies)
    expect(seen.status, 'loss in patrol status').toBeLessThanOrEqual(1000);
    expect(seen.metrics, 'loss in /metrics').toBeLessThanOrEqual(1000);
    expect(seen.alert, 'the lost alert').toBeLessThanOrEqual(2000);
    expect(human.status).toBe(2); // degraded
    expect(human.stdout).toMatch(/health\s+DEGRADED: \d+ records? lost in the last minute/);
    expect(after.health.reasons).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'loss' })]));
    expect(after.accounting.identity_holds || after.accounting.in_flight > 0).toBe(true);
    expect(agent.proc.exitCode).toBeNull();
    agents = agents.filter((a) => a !== agent);
    await stopAgent(agent);
  }, 90_000);
});
