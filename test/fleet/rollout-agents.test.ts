// Canary rollouts with real agents (issue 15): a three-member etcd cluster, four real agents with
// BPF loaded (ctl-1, role=ctl, leads at first and is outside every rollout's scope; a1, a2, a3,
// role=web) and three simulated members (s1..s3, role=web: the fleet module without sensors,
// reporting ctl-1's CPU and RSS, so the baseline is an agent on this machine). Bundles are made,
// pushed and rolled out with the CLI. Waves 1, 50%, 100% of the six web nodes: a1, then a2 and
// a3, then s1..s3. A process workload runs throughout, so events flow while sensors swap.
// Measured times (detection, rollback, wave timelines) are printed at the end.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log.js';
import { sha256Hex, versionOf } from '../../src/shared/canonical.js';
import { EtcdClient, Keys, readHistory, rolloutStatus, type RolloutEvent, type RolloutValue } from '../../src/fleet/index.js';
import { kernelBtfTracepoints } from '../../src/kernel/index.js';
import { loadRuleFiles } from '../../src/rules/index.js';
import { BUILT, VARIANTS, buildVariants } from '../bpf/reload-helpers.js';
import { EtcdCluster, FleetAgent, PATROL, agentsReady, apiGet, history, sleep, until } from './helpers.js';
import { REPO, Sim, bundleDir, keypair, procUsage, type Keypair } from './sims.js';

const keys = new Keys('/patrol/');
const log = createLogger({ level: process.env.PATROL_LOG_LEVEL ?? 'silent' });
const BAKE = '3s';
const BAKE_MS = 3000;
const FAILURE_LIMIT = 2;
/** the bad bundle's bake: readings come every second whatever the bake; the bound scales with it */
const BAD_BAKE_MS = 5000;

describe.skipIf(!agentsReady)('canary rollouts: four real agents and three simulated members on a three-member etcd cluster', () => {
  let cluster: EtcdCluster;
  let client: EtcdClient;
  let key: Keypair;
  let other: Keypair;
  let checksDir: string;
  let workload: ChildProcess | null = null;
  const tmp: string[] = [];
  const agents: FleetAgent[] = [];
  const sims: Sim[] = [];
  const figures: Record<string, unknown> = {};
  const agent = (n: string) => agents.find((a) => a.name === n)!;
  const web = () => agents.filter((a) => a.name !== 'ctl-1');
  const ep = () => cluster.endpoints.join(',');

  // asynchronous: the simulated members live in this process, and a blocked event loop would
  // let their 2 s leases run out
  const run = promisify(execFile);
  const cli = async (...args: string[]): Promise<string> => {
    try {
      return (await run(PATROL, args, { encoding: 'utf8' })).stdout;
    } catch (e) {
      throw new Error(`patrol ${args.join(' ')}: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
    }
  };
  const stats = async (a: FleetAgent) => (await apiGet(a.socket, '/v1/stats')).body;
  const status = async (a: FleetAgent) => (await apiGet(a.socket, '/v1/status')).body;
  const runs = async (a: FleetAgent): Promise<string | null> => (await stats(a)).fleet?.bundle?.id ?? null;

  /** Packs a bundle directory with the CLI; its file and id. */
  async function bundle(files: Record<string, string | { copy: string }>, k: Keypair = key): Promise<{ file: string; id: string }> {
    const dir = bundleDir(files);
    tmp.push(dir);
    const file = `${dir}.bundle`;
    const id = (await cli('fleet', 'bundle', 'create', dir, '--key', k.priv, '-o', file)).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    return { file, id };
  }

  async function rollout(id: string, extra: string[] = []): Promise<RolloutValue> {
    const out = JSON.parse(await cli('fleet', 'rollout', id, '--selector', 'role=web', '--waves', '1,50%,100%', '--bake', BAKE, '--json', '--endpoints', ep(), ...extra));
    return out.rollout as RolloutValue;
  }
  const state = async (id: string) => (await rolloutStatus(client, keys, id)).rollout!;
  /** waits for `what`; on a timeout, the rollout's state and history say why */
  async function waitFor<T>(id: string, what: string, f: () => Promise<T | null>, ms: number, step = 250): Promise<T> {
    try {
      return await until(what, f, ms, step);
    } catch (e) {
      const st = await rolloutStatus(client, keys, id).catch(() => null);
      const h = await readHistory(client, keys, id).catch(() => null);
      throw new Error(`${(e as Error).message}\nrollout: ${JSON.stringify(st)}\nhistory: ${h?.events.map((x) => `${x.at} ${x.kind} ${x.message}`).join('\n')}`);
    }
  }
  const ended = (id: string, ms = 180_000) => waitFor(id, `rollout ${id} to end`, async () => {
    const v = await state(id);
    return ['completed', 'rolled_back', 'aborted', 'failed'].includes(v.state) ? v : null;
  }, ms);
  const events = async (id: string): Promise<RolloutEvent[]> => (await readHistory(client, keys, id)).events;

  /** told → bake start → wave passed, per wave (seconds from the rollout's start). */
  function timeline(ev: RolloutEvent[]): Array<Record<string, number | string>> {
    const t0 = Date.parse(ev.find((e) => e.kind === 'start')!.at);
    const s = (e: RolloutEvent | undefined) => (e ? Math.round((Date.parse(e.at) - t0) / 100) / 10 : -1);
    const waves = [...new Set(ev.filter((e) => e.wave >= 0 && e.kind === 'told').map((e) => e.wave))];
    return waves.map((w) => ({
      wave: w + 1,
      nodes: ev.filter((e) => e.kind === 'told' && e.wave === w).flatMap((e) => (e.evidence as { nodes: string[] }).nodes).join(','),
      told_s: s(ev.find((e) => e.kind === 'told' && e.wave === w)),
      bake_from_s: s(ev.filter((e) => e.kind === 'reading' && e.wave === w && (e.evidence as { verdict: string }).verdict === 'pass').at(-1)),
      passed_s: s(ev.find((e) => e.kind === 'wave_passed' && e.wave === w)),
    }));
  }

  async function lossless(a: FleetAgent): Promise<void> {
    const s = await stats(a);
    const acc = s.accounting;
    expect(acc.identity_holds, `${a.name}: generated = captured + lost`).toBe(true);
    expect(Object.values(acc.lost as Record<string, number>).reduce((x, y) => x + y, 0), `${a.name}: records lost`).toBe(0);
    expect(acc.seq_gaps, `${a.name}: sequence gaps`).toBe(0);
  }

  beforeAll(async () => {
    buildVariants();
    cluster = await EtcdCluster.start();
    client = new EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 5000 });
    key = keypair();
    other = keypair();
    checksDir = mkdtempSync(join(tmpdir(), 'patrol-rollout-checks-'));
    writeFileSync(join(checksDir, 'base.patrol'), 'check base_disk {\n  every 10s;\n  critical disk_usage("/") > 100%;\n}\n');
    const opts = { checksDir, rules: true, trustedKeys: [key.pub], leaseTtl: '2s' };
    const ctl = new FleetAgent('ctl-1', cluster, { ...opts, labels: { role: 'ctl' } });
    agents.push(ctl);
    ctl.start();
    await ctl.waitConnected(90_000);
    await until('ctl-1 leads', async () => (await ctl.fleet()).is_leader || null, 15_000, 100);
    for (const n of ['a1', 'a2', 'a3']) agents.push(new FleetAgent(n, cluster, { ...opts, labels: { role: 'web' } }));
    for (const a of web()) a.start();
    await Promise.all(web().map((a) => a.waitConnected(120_000)));
    // simulated members "on a newer kernel": one more BTF tracepoint than this one has
    const newer = new Set([...kernelBtfTracepoints(), 'patrol_no_such_tracepoint']);
    const usage = procUsage(() => ctl.pid);
    // (a 4 s lease: their liveness is not what these tests measure, and this process is busy)
    for (const n of ['s1', 's2', 's3']) sims.push(new Sim(n, { endpoints: cluster.endpoints, prefix: keys.prefix, trusted: [key.pub], log, tracepoints: newer, usage, refreshMs: 1000, leaseTtlMs: 4000 }).start());
    await until('every member up', async () => {
      const r = await client.readPrefix(keys.nodes);
      return r.kvs.length === 7 || null;
    }, 30_000, 200);
    // events flow throughout: ~20 short-lived processes a second
    workload = spawn('/bin/sh', ['-c', 'while :; do /bin/true; sleep 0.05; done'], { stdio: 'ignore' });
  }, 240_000);

  afterAll(async () => {
    workload?.kill('SIGKILL');
    await Promise.all(sims.map((s) => s.stop()));
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    client?.close();
    await cluster?.stop();
    for (const d of [checksDir, ...tmp, ...agents.map((a) => a.dir), ...sims.map((s) => s.dir), key?.dir, other?.dir]) if (d) rmSync(d, { recursive: true, force: true });
    for (const t of tmp) rmSync(`${t}.bundle`, { force: true });
    for (const a of agents) rmSync(`/sys/fs/bpf/patrol-fleet-${process.pid}-${a.name}`, { recursive: true, force: true });
    console.log(`rollout figures: ${JSON.stringify(figures)}`);
  }, 60_000);

  let good: { file: string; id: string };
  const goodFiles = (): Record<string, string | { copy: string }> => {
    const f: Record<string, string | { copy: string }> = {};
    for (const r of readdirSync(join(REPO, 'rules'))) f[`rules/${r}`] = { copy: join(REPO, 'rules', r) };
    f['rules/canary.yaml'] = [
      '# a rule new in this bundle',
      'rules:',
      '  - id: canary-long-zombie',
      '    description: a child stayed a zombie over a minute before its parent reaped it',
      '    source: reap',
      "    explains: ['(?i)zombie']",
      '    tree:',
      '      if: { field: zombie, gte: 60s }',
      '      then:',
      '        cause: zombie_leak',
      '        confidence: 0.4',
      "        key: '{proc.parent_exec_id}'",
      "        explanation: 'pid {pid} stayed a zombie for {zombie}'",
      '        evidence: [event, process]',
      '',
    ].join('\n');
    // a rebuilt object: the variant builds of both sensors
    f['bpf/lifecycle.bpf.o'] = { copy: join(VARIANTS, 'lifecycle-variant.bpf.o') };
    f['bpf/state.bpf.o'] = { copy: join(VARIANTS, 'state-variant.bpf.o') };
    return f;
  };

  it('a good bundle (a new rule, rebuilt objects) goes through every wave: every node ends on it, no real agent loses an event', async () => {
    good = await bundle(goodFiles());
    // pushed through an agent's API (the default), then rolled out against etcd directly
    const pushed = JSON.parse(await cli('fleet', 'bundle', 'push', good.file, '--json', '--socket', agent('a2').socket));
    expect(pushed).toMatchObject({ id: good.id, existed: false });
    const before = await Promise.all(web().map((a) => status(a)));
    const r = await rollout(good.id);
    const v = await ended(r.id);
    expect(v.state, v.result ?? '').toBe('completed');
    expect(v.targets).toEqual([1, 3, 6]);
    for (const a of web()) expect(await runs(a)).toBe(good.id);
    for (const s of sims) expect(s.running).toBe(good.id);
    expect(await runs(agent('ctl-1'))).toBeNull();
    // the real agents run the new objects (one sensor generation more) and the new rule set
    const objects = versionOf([['lifecycle', sha256Hex(readFileSync(join(VARIANTS, 'lifecycle-variant.bpf.o')))], ['state', sha256Hex(readFileSync(join(VARIANTS, 'state-variant.bpf.o')))]]);
    const rulesDir = mkdtempSync(join(tmpdir(), 'patrol-rules-'));
    tmp.push(rulesDir);
    for (const [p, c] of Object.entries(goodFiles())) if (p.startsWith('rules/')) typeof c === 'string' ? writeFileSync(join(rulesDir, p.slice(6)), c) : cpSync(c.copy, join(rulesDir, p.slice(6)));
    const rs = loadRuleFiles(rulesDir);
    expect(rs.ok).toBe(true);
    for (const [i, a] of web().entries()) {
      const st = await status(a);
      expect(st.versions.sensors).toBe(objects);
      expect(st.generation).toBe(before[i].generation + 1);
      expect(st.versions.rules).toBe(rs.ok ? rs.set.version : null);
      expect(st.last_reload.trigger).toBe('bundle');
      await lossless(a);
    }
    await lossless(agent('ctl-1'));
    // `patrol status --json` shows the bundle id
    expect(JSON.parse(await cli('status', '--json', '--socket', agent('a3').socket)).fleet.bundle).toMatchObject({ id: good.id, result: 'applied' });
    expect(await cli('fleet', 'status', '--endpoints', ep())).toMatch(new RegExp(`^a1\\s.*${good.id.slice(0, 19)}`, 'm'));
    const h = await cli('fleet', 'history', r.id, '--endpoints', ep());
    expect(h).toMatch(/wave_passed +w3/);
    expect(h).toMatch(/completed/);
    figures.good_waves = timeline(await events(r.id));
    figures.good_total_s = Math.round((Date.parse(v.ended_at!) - Date.parse(v.started_at!)) / 100) / 10;
  }, 240_000);

  it('a bundle with a bad signature is applied nowhere', async () => {
    const files = goodFiles();
    files['checks/base.patrol'] = { copy: join(checksDir, 'base.patrol') };
    files['checks/extra.patrol'] = 'check extra { every 30s; critical load1 < 0; }\n';
    const u = await bundle(files, other);
    await cli('fleet', 'bundle', 'push', u.file, '--endpoints', ep());
    const reloads = await Promise.all(web().map(async (a) => (await status(a)).reloads));
    const r = await rollout(u.id);
    const v = await ended(r.id);
    expect(v.state).toBe('rolled_back');
    expect(JSON.stringify(v.last_reading)).toContain('rejected: E_BUNDLE_UNTRUSTED');
    for (const [i, a] of web().entries()) {
      expect(await runs(a)).toBe(good.id);
      // refused before anything was reloaded
      expect((await status(a)).reloads).toBe(reloads[i]);
    }
    for (const s of sims) expect(s.host.applied).not.toContain(u.id);
  }, 120_000);

  it('an object needing a BTF type this kernel lacks marks its nodes incompatible, without a load attempt on the running sensors', async () => {
    const files = goodFiles();
    files['bpf/lifecycle.bpf.o'] = { copy: join(VARIANTS, 'lifecycle-missing-tp.bpf.o') };
    const inc = await bundle(files);
    await cli('fleet', 'bundle', 'push', inc.file, '--endpoints', ep());
    const before = await Promise.all(web().map((a) => status(a)));
    const r = await rollout(inc.id, ['--max-incompatible', '100%']);
    const v = await ended(r.id);
    expect(v.state, v.result ?? '').toBe('completed');
    expect(v.incompatible).toBe(3);
    const st = await rolloutStatus(client, keys, r.id);
    expect(st.nodes.filter((n) => n.incompatible).map((n) => n.node)).toEqual(['a1', 'a2', 'a3']);
    for (const n of st.nodes.filter((x) => x.incompatible)) expect(n.incompatible!.code).toBe('E_SENSOR_BTF');
    for (const [i, a] of web().entries()) {
      const s = await stats(a);
      expect(s.fleet.bundle).toMatchObject({ id: good.id, target: inc.id, result: 'rejected: E_SENSOR_BTF', incompatible: true });
      expect(s.fleet.bundle.reason).toContain('btf_trace_patrol_no_such_tracepoint');
      // no reload ran: the sensors were not loaded again, their generation is the same
      const now = await status(a);
      expect(now.reloads).toBe(before[i].reloads);
      expect(now.generation).toBe(before[i].generation);
      expect(a.log).not.toMatch(/sensor reload refused/);
    }
    for (const s of sims) expect(s.running).toBe(inc.id);
  }, 180_000);

  it('missing data: one canary SIGSTOPped pauses the rollout; it does not promote', async () => {
    const files = goodFiles();
    files['checks/base.patrol'] = { copy: join(checksDir, 'base.patrol') };
    files['checks/m.patrol'] = 'check m { every 20s; critical load1 < 0; }\n';
    const m = await bundle(files);
    await cli('fleet', 'bundle', 'push', m.file, '--endpoints', ep());
    const r = await rollout(m.id);
    const a1 = agent('a1');
    await until('a1 runs the bundle', async () => (await runs(a1)) === m.id || null, 60_000, 200);
    a1.signal('SIGSTOP');
    const t0 = Date.now();
    try {
      const paused = await until('the rollout to pause', async () => {
        const x = await state(r.id);
        return x.state === 'paused' ? x : null;
      }, 20_000, 100);
      figures.sigstop_to_paused_ms = Date.now() - t0;
      expect(paused.pause).toMatchObject({ by: 'missing data' });
      expect(paused.pause!.reason).toContain('a1');
      await sleep(3 * BAKE_MS);
      expect(await state(r.id)).toMatchObject({ state: 'paused', wave: 0, told: 1, promoted_at: null });
      expect(await cli('fleet', 'rollout', 'status', r.id, '--endpoints', ep())).toMatch(/paused \(missing data: not reporting: a1\)/);
    } finally {
      a1.signal('SIGCONT');
    }
    await a1.waitConnected(30_000);
    await until('resumed', async () => ((await state(r.id)).state !== 'paused' ? true : null), 30_000, 200);
    await cli('fleet', 'rollout', 'abort', r.id, '--endpoints', ep());
    const v = await ended(r.id);
    expect(v.state).toBe('aborted');
    expect(await runs(a1)).toBe(good.id);
  }, 180_000);

  it('controller killed mid-wave: another agent resumes; the etcd history shows no wave larger than asked and no node told twice', async () => {
    const files = goodFiles();
    files['checks/base.patrol'] = { copy: join(checksDir, 'base.patrol') };
    files['checks/k.patrol'] = 'check k { every 25s; critical load1 < 0; }\n';
    const k = await bundle(files);
    await cli('fleet', 'bundle', 'push', k.file, '--endpoints', ep());
    const fromRev = (await cluster.revision()) + 1;
    const r = await rollout(k.id, ['--bake', '5s']);
    await waitFor(r.id, 'wave 2 told', async () => {
      const x = await state(r.id);
      return x.wave === 1 && x.told === x.targets[1] ? true : null;
    }, 120_000, 50);
    const ctl = agent('ctl-1');
    const term0 = (await state(r.id)).controller!.term;
    expect((await state(r.id)).controller!.node).toBe('ctl-1');
    const t0 = Date.now();
    await ctl.kill('SIGKILL');
    const next = await until('another controller', async () => {
      const x = await state(r.id);
      return x.controller && x.controller.node !== 'ctl-1' ? x : null;
    }, 60_000, 100);
    figures.controller_killed_to_resumed_ms = Date.now() - t0;
    expect(next.controller!.term).toBeGreaterThan(term0);
    const v = await ended(r.id);
    expect(v.state, v.result ?? '').toBe('completed');
    for (const a of web()) expect(await runs(a)).toBe(k.id);
    for (const s of sims) expect(s.running).toBe(k.id);
    const h = await history(client, keys.prefix, fromRev, await cluster.revision());
    const states = h.filter((x) => x.kv.key === keys.rollout(r.id) && x.type === 'put').map((x) => JSON.parse(x.kv.value.toString()) as RolloutValue);
    let told = 0;
    for (const s of states) {
      expect(s.told).toBeGreaterThanOrEqual(told);
      if (s.wave >= 0 && s.targets.length) expect(s.told, `state at seq ${s.seq}`).toBeLessThanOrEqual(s.targets[s.wave]!);
      told = s.told;
    }
    // each wave's told events add up to its size, no more
    const ev = await events(r.id);
    for (let w = 0; w < v.targets.length; w++) {
      const n = ev.filter((e) => e.kind === 'told' && e.wave === w).flatMap((e) => (e.evidence as { nodes: string[] }).nodes);
      expect(n.length).toBe(v.targets[w]! - (v.targets[w - 1] ?? 0));
    }
    const puts = h.filter((x) => x.kv.key.startsWith(`${keys.desired}node/`) && x.type === 'put' && JSON.parse(x.kv.value.toString()).rollout === r.id);
    const per = new Map<string, number>();
    for (const p of puts) per.set(p.kv.key, (per.get(p.kv.key) ?? 0) + 1);
    expect([...per.entries()].filter(([, n]) => n > 1)).toEqual([]);
    expect(per.size).toBe(6);
    expect(new Set(states.map((s) => s.controller?.node ?? null))).toContain('ctl-1');
    figures.controller_kill_waves = timeline(ev);
    // ctl-1 stays down: restarted, its start-up CPU (loading the sensors) would be what the
    // simulated members report, and the next test's baseline
  }, 240_000);
  // last: a node that ran 2,000 checks keeps a larger heap for a while, which the RSS gate of a
  // later rollout would rightly hold against it
  it('a bad bundle (a check pack that is expensive by design) halts in wave 1 and rolls back within bake × failure-limit + 10 s', async () => {
    // 2,000 checks a second, each scanning every process with a pattern: the canary's CPU
    // rises several times over the baseline's
    let burn = '';
    for (let i = 0; i < 2000; i++) burn += `check burn${i} {\n  every 1s;\n  warning process_count("/^(a|b|c|d|e|f)+z${i}$/") > 100000;\n}\n`;
    const files = goodFiles();
    files['checks/base.patrol'] = { copy: join(checksDir, 'base.patrol') };
    files['checks/burn.patrol'] = burn;
    const bad = await bundle(files);
    await cli('fleet', 'bundle', 'push', bad.file, '--endpoints', ep());
    const a1Before = await status(agent('a1'));
    const prev = await runs(agent('a1'));
    expect(prev).not.toBeNull();
    const r = await rollout(bad.id, ['--failure-limit', String(FAILURE_LIMIT), '--bake', `${BAD_BAKE_MS / 1000}s`]);
    const v = await ended(r.id);
    expect(v.state, v.result ?? '').toBe('rolled_back');
    expect(v.told).toBe(1);
    const ev = await events(r.id);
    const told = Date.parse(ev.find((e) => e.kind === 'told')!.at);
    const firstFail = ev.find((e) => e.kind === 'reading' && (e.evidence as { verdict: string }).verdict === 'fail')!;
    const rollback = ev.find((e) => e.kind === 'rollback')!;
    const back = ev.find((e) => e.kind === 'rolled_back')!;
    expect(JSON.stringify(rollback.evidence)).toContain('agent_cpu');
    const ms = Date.parse(back.at) - told;
    expect(ms).toBeLessThanOrEqual(BAD_BAKE_MS * FAILURE_LIMIT + 10_000);
    // every touched node is back on the bundle before (from its own disk)
    expect(await runs(agent('a1'))).toBe(prev);
    const a1 = await status(agent('a1'));
    expect(a1.versions.checks).toBe(a1Before.versions.checks);
    for (const a of web().slice(1)) expect(await runs(a)).toBe(prev);
    for (const s of sims) expect(s.running).toBe(prev);
    figures.bad = {
      told_to_first_failing_reading_ms: Date.parse(firstFail.at) - told,
      told_to_rollback_decision_ms: Date.parse(rollback.at) - told,
      told_to_rolled_back_ms: ms,
      rollback_decision_to_confirmed_ms: Date.parse(back.at) - Date.parse(rollback.at),
      bound_ms: BAD_BAKE_MS * FAILURE_LIMIT + 10_000,
      canary_cpu: (firstFail.evidence as { gates: Array<{ failing: Array<{ values: Record<string, string> }> }> }).gates.flatMap((g) => g.failing).map((f) => f.values.agent_cpu).find(Boolean),
    };
    await lossless(agent('a1'));
  }, 180_000);
});
