// Fault: 5× overload, a producer faster than the consumer. bench_produce (loaded into the agent's
// own lifecycle object by the PATROL_BENCH_PRODUCE=1 test hook, never attached) writes
// fork-shaped records into the agent's ring from bench/build/bpf-produce, which finds it by the
// agent's lifecycle.filename_cap. A first agent measures what its consumer takes while records
// are offered far above it; a fresh one is then offered five times that. Pass: from the first
// record the kernel drops, the loss shows in `patrol status` and on the metrics listener's
// /metrics within 1 s, and the default pack's `lost` alert is raised within 2 s.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled } from '../bpf/helpers.js';
import { benchProduceEnabled } from '../bpf/bench-produce.js';
import {
  BPF_PRODUCE, PATROL, ROOT, agentDir, buildBenchHelpers, exited, figure, get, metric, runOut, sleep, startAgent, stats, stopAgent, waitReady, type Agent, type AgentDir,
} from './harness.js';

interface Produced {
  runs: number;
  burst: number;
  generated: number;
  lost_reserve: number;
  elapsed_s: number;
  offered_rate: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function httpGet(port: number, path: string): Promise<string> {
  return fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
}

/** An agent whose ring bench_produce can fill; filename_cap is the token bpf-produce finds it by. */
async function overloadable(): Promise<{ d: AgentDir; agent: Agent; token: number; port: number }> {
  const token = randomInt(1000, 4096);
  const port = await freePort();
  const d = agentDir({ lifecycle: `{ filename_cap: ${token} }`, metrics: `{ sweep_interval: 200ms, prometheus: { port: ${port} } }` });
  const agent = startAgent(d, ['--checks', `${ROOT}checks`], { PATROL_BENCH_PRODUCE: '1' });
  await waitReady(d, agent);
  return { d, agent, token, port };
}

/** Starts `probe` every `everyMs` (at most `inFlight` at once: probes that pile up on a busy
 *  agent would measure themselves) until one returns true or `ms` pass; resolves with the time
 *  the first true answer came (epoch ms), or null. So the figure is when someone asking about
 *  every 100 ms would first have seen it: the data's delay plus one answer's latency. */
async function firstTrue(probe: () => Promise<boolean>, everyMs: number, ms: number, inFlight = 4): Promise<number | null> {
  let hit: number | null = null;
  let running = 0;
  const all: Promise<void>[] = [];
  for (const end = Date.now() + ms; hit === null && Date.now() < end; await sleep(everyMs)) {
    if (running >= inFlight) continue;
    running++;
    all.push(
      probe()
        .then((ok) => {
          if (ok) hit = Math.min(hit ?? Infinity, Date.now());
        })
        .catch(() => {})
        .finally(() => running--),
    );
  }
  await Promise.all(all);
  return hit;
}

describe.skipIf(!bpfEnabled || !benchProduceEnabled)('fault: 5× overload of the agent\'s consumer', () => {
  const agents: Agent[] = [];

  beforeAll(() => buildBenchHelpers());
  afterAll(async () => {
    for (const a of agents) await stopAgent(a);
  });

  it('from the first lost record: visible in status and /metrics within 1 s, the lost alert within 2 s', async () => {
    // 1. what the consumer takes: records offered at 4M/s (paced, so the producer's own CPU use
    //    stays small, as in step 2) for 2 s; the consumer runs flat out, the rest is lost
    const cal = await overloadable();
    agents.push(cal.agent);
    const c0 = (await stats(cal.d)).accounting.captured.fork as number;
    const flat = await runOut(BPF_PRODUCE, ['-t', String(cal.token), '-n', String(1e12), '-r', '4000000', '-d', '2']);
    expect(flat.code, flat.err).toBe(0);
    const calOut = JSON.parse(flat.out) as Produced;
    const c1 = (await stats(cal.d)).accounting.captured.fork as number;
    const capacity = (c1 - c0) / calOut.elapsed_s;
    expect(calOut.lost_reserve, 'the calibration overran the consumer').toBeGreaterThan(0);
    await stopAgent(cal.agent);

    // 2. a fresh agent offered five times that
    const { d, agent, token, port } = await overloadable();
    agents.push(agent);
    const base = await stats(d);
    expect(base.accounting.totals.lost).toBe(0);
    // patrol status prints /v1/stats: its answer is what status shows (the CLI is run at the end;
    // a Node start every 100 ms would load a 2-CPU machine more than the fault does)
    const statsLost = async () => ((await get(d.socket, '/v1/stats')).body.accounting.totals.lost as number) > 0;
    const metricsLost = async () => metric(await httpGet(port, '/metrics'), 'patrol_events_lost_total') > 0;
    const alertRaised = async () => ((await get(d.socket, '/v1/alerts')).body.alerts as Array<{ name: string; kind: string }>).some((a) => a.name === 'lost' && a.kind === 'firing');
    // What the machine itself adds: the slowest of five answers before the overload (ms on a
    // quiet machine; on a shared VM under load it can be far more, and counts on top of 1 s)
    const slowest = async (probe: () => Promise<boolean>) => {
      let worst = 0;
      for (let i = 0; i < 5; i++) {
        const t = Date.now();
        expect(await probe()).toBe(false);
        worst = Math.max(worst, Date.now() - t);
      }
      return worst;
    };
    const baseline = { stats: await slowest(statsLost), metrics: await slowest(metricsLost), alerts: await slowest(alertRaised) };
    const offered = 5 * capacity;
    const producer = spawn(BPF_PRODUCE, ['-t', String(token), '-n', String(1e12), '-r', String(Math.round(offered)), '-d', '4', '-L'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    producer.stdout!.on('data', (b) => (out += b));
    producer.stderr!.on('data', (b) => (err += b));

    const [statsAt, metricsAt, alertAt] = await Promise.all([firstTrue(statsLost, 100, 6000), firstTrue(metricsLost, 100, 6000), firstTrue(alertRaised, 100, 6000)]);
    const producerCode = await exited(producer);
    expect(producerCode, `the producer: ${err}`).toBe(0);
    const prod = JSON.parse(out) as Produced;
    const onset = (JSON.parse(err.trim().split('\n').find((l) => l.includes('first_loss'))!) as { first_loss_epoch_ms: number; after_s: number });
    const after = await stats(d);
    const captured = after.accounting.captured.fork - base.accounting.captured.fork;
    const ratio = prod.offered_rate / (captured / prod.elapsed_s);
    const ms = (t: number | null) => (t === null ? null : Math.round(t - onset.first_loss_epoch_ms));
    const cliStart = Date.now();
    const human = await runOut(PATROL, ['status', '--socket', d.socket]);
    const cliMs = Date.now() - cliStart;
    figure('5x overload', {
      consumer_rec_per_s: Math.round(capacity), offered_rec_per_s: Math.round(prod.offered_rate), offered_over_captured: Number(ratio.toFixed(2)),
      first_loss_after_s: onset.after_s, lost: after.accounting.totals.lost, status_ms: ms(statsAt), status_cli_run_ms: cliMs, metrics_ms: ms(metricsAt), alert_ms: ms(alertAt),
      baseline_answer_ms: baseline, cut_drains: after.ring?.cut_drains, health: after.health.reasons,
    });
    // the producer really outran the consumer: 5× what it took in step 1 was asked; on a shared VM
    // its pace in step 2 differs (2.3–11× seen), at least half the records must have been refused
    expect(ratio, 'offered / captured').toBeGreaterThanOrEqual(2);
    expect(ms(statsAt), 'loss in /v1/stats (what patrol status shows)').not.toBeNull();
    expect(ms(statsAt)!).toBeLessThanOrEqual(1000 + baseline.stats);
    expect(ms(metricsAt), 'loss in /metrics').not.toBeNull();
    expect(ms(metricsAt)!).toBeLessThanOrEqual(1000 + baseline.metrics);
    expect(ms(alertAt), 'the lost alert').not.toBeNull();
    expect(ms(alertAt)!).toBeLessThanOrEqual(2000 + baseline.alerts);
    expect(human.code).toBe(2); // degraded
    expect(human.out).toMatch(/health\s+DEGRADED: \d+ records? lost in the last minute/);
    expect(after.health.reasons).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'loss' })]));
    expect(agent.proc.exitCode).toBeNull();
  }, 120_000);
});
