// Rollouts with simulated members on a real three-member etcd cluster: the controller (the
// fenced leader), waves, gates, rollback, a forged signature, the incompatible share, operator
// requests and a rollback that pins a node to the bundle it ran, and bundles in etcd (chunked).
// The members run the fleet module an agent runs; SimulatedHost applies bundles as far as that
// goes without sensors. test/fleet/rollout-agents.test.ts has real agents: missing data and a
// controller killed mid-wave are tested there.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log.js';
import {
  EtcdClient, Keys, createRollout, fetchBundle, pushBundle, readHistory, requestRollout, rolloutSpec, rolloutStatus,
  type RolloutEvent, type RolloutValue,
} from '../../src/fleet/index.js';
import { kernelBtfTracepoints } from '../../src/kernel/index.js';
import { EtcdCluster, etcdReady, history, sleep, until } from './helpers.js';
import { REPO, Sim, keypair, made, makeBundle, type Keypair } from './sims.js';

const keys = new Keys('/ro/');
const log = createLogger({ level: process.env.PATROL_LOG_LEVEL ?? 'silent' });
const CHECK_OK = 'check disk_ok {\n  every 10s;\n  critical disk_usage("/") > 100%;\n}\n';

describe.skipIf(!etcdReady)('rollouts: simulated members on a three-member etcd cluster', () => {
  let cluster: EtcdCluster;
  let client: EtcdClient;
  let key: Keypair;
  let other: Keypair;
  const sims = new Map<string, Sim>();
  const web = () => ['s1', 's2', 's3', 's4', 's5', 's6'].map((n) => sims.get(n)!);

  function sim(name: string, o: { labels?: Record<string, string>; tracepoints?: ReadonlySet<string>; dir?: string } = {}): Sim {
    const s = new Sim(name, { endpoints: cluster.endpoints, prefix: keys.prefix, trusted: [key.pub], log, ...o }).start();
    sims.set(name, s);
    return s;
  }
  const connected = (s: Sim) => until(`${s.name} connected`, () => (s.node.local().state === 'connected' && s.node.local().registered ? true : null), 20_000, 50);

  async function rollout(bundle: string, o: Parameters<typeof rolloutSpec>[0] extends infer T ? Partial<T> : never = {}): Promise<RolloutValue> {
    const r = await createRollout(client, keys, rolloutSpec({ bundle, selector: { role: 'web' }, waves: ['1', '50%', '100%'], bake: '2s', ...o }), 'test');
    return r.rollout;
  }
  const state = async (id: string) => (await rolloutStatus(client, keys, id)).rollout!;
  const ended = (id: string, ms = 60_000) => until(`rollout ${id} to end`, async () => {
    const v = await state(id);
    return ['completed', 'rolled_back', 'aborted', 'failed'].includes(v.state) ? v : null;
  }, ms, 200);
  const events = async (id: string): Promise<RolloutEvent[]> => (await readHistory(client, keys, id)).events;

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
    client = new EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 5000 });
    key = keypair();
    other = keypair();
    // the controller starts on a member outside the rollouts' scope
    const ctl = sim('ctl', { labels: { role: 'ctl' } });
    await connected(ctl);
    await until('ctl leads', () => ctl.node.local().is_leader || null, 10_000, 50);
    for (const n of ['s1', 's2', 's3', 's4', 's5', 's6']) sim(n);
    await Promise.all(web().map(connected));
  }, 60_000);

  afterAll(async () => {
    const dirs = [...sims.values()].map((s) => s.dir);
    await Promise.all([...sims.values()].map((s) => s.stop()));
    client?.close();
    await cluster?.stop();
    for (const d of [...dirs, ...made(), key?.dir, other?.dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('bundles: pushed in chunks of at most 1 MiB, fetched whole; a second push writes nothing', async () => {
    // a rule file with 1.5 MiB of comments: two chunks
    const rules = readFileSync(join(REPO, 'rules/oom.yaml'), 'utf8');
    const big = makeBundle({ 'rules/oom.yaml': `${'# padding to cross one chunk\n'.repeat(56_000)}${rules}` }, key);
    expect(big.bytes.length).toBeGreaterThan(1 << 20);
    const p = await pushBundle(client, keys, big.bytes, 'test');
    expect(p).toMatchObject({ id: big.id, chunks: 2, existed: false });
    const chunks = await client.readPrefix(keys.bundle(big.id));
    for (const kv of chunks.kvs) expect(kv.value.length).toBeLessThanOrEqual(1 << 20);
    expect((await fetchBundle(client, keys, big.id)).equals(big.bytes)).toBe(true);
    expect(await pushBundle(client, keys, big.bytes, 'test')).toMatchObject({ existed: true });
    // a damaged file is refused at push, not by every agent
    const bad = Buffer.from(big.bytes);
    bad[bad.length - 10] ^= 0xff;
    await expect(pushBundle(client, keys, bad, 'test')).rejects.toMatchObject({ code: 'E_BUNDLE_CORRUPT' });
  }, 30_000);

  it('a good bundle goes through every wave; each node is told once; the selector key names it at the end', async () => {
    const g = makeBundle({ 'checks/ok.patrol': CHECK_OK }, key);
    await pushBundle(client, keys, g.bytes, 'test');
    const fromRev = (await client.get(keys.leader)).revision + 1;
    const r = await rollout(g.id);
    const v = await ended(r.id);
    expect(v.state).toBe('completed');
    expect(v.targets).toEqual([1, 3, 6]);
    for (const s of web()) expect(s.running).toBe(g.id);
    expect(sims.get('ctl')!.running).toBeNull();
    const ev = await events(r.id);
    const told = ev.filter((e) => e.kind === 'told');
    expect(told.map((e) => (e.evidence as { nodes: string[] }).nodes)).toEqual([['s1'], ['s2', 's3'], ['s4', 's5', 's6']]);
    expect(ev.filter((e) => e.kind === 'wave_passed').map((e) => e.wave)).toEqual([0, 1, 2]);
    expect(ev.at(-1)!.kind).toBe('completed');
    // the selector names the bundle; the per-node keys are gone
    const sel = await client.get(keys.desiredSelector({ role: 'web' }));
    expect(JSON.parse(sel.kv!.value.toString()).bundle).toBe(g.id);
    for (const s of web()) expect((await client.get(keys.desiredNode(s.name))).kv).toBeNull();
    // the etcd history: each node's key was written once
    const h = (await history(client, keys.desired, fromRev, await cluster.revision())).filter((x) => x.kv.key.startsWith(`${keys.desired}node/`) && x.type === 'put');
    const per = new Map<string, number>();
    for (const x of h) per.set(x.kv.key, (per.get(x.kv.key) ?? 0) + 1);
    expect([...per.values()].every((n) => n === 1)).toBe(true);
    expect(per.size).toBe(6);
  }, 90_000);

  it('a bundle that raises a canary\'s CPU halts in wave 1 and rolls back within bake × failure-limit + 10 s', async () => {
    const prev = sims.get('s1')!.running!;
    const b = makeBundle({ 'checks/ok.patrol': CHECK_OK, 'checks/burn.patrol': 'check burn {\n  every 1s;\n  critical load1 < 0;\n}\n' }, key);
    await pushBundle(client, keys, b.bytes, 'test');
    for (const s of web()) s.cpuOn.set(b.id, 60);
    const r = await rollout(b.id, { failureLimit: 2 });
    const v = await ended(r.id);
    expect(v.state).toBe('rolled_back');
    expect(v.told).toBe(1);
    const ev = await events(r.id);
    const told = ev.find((e) => e.kind === 'told')!;
    const back = ev.find((e) => e.kind === 'rolled_back')!;
    const ms = Date.parse(back.at) - Date.parse(told.at);
    expect(ms).toBeLessThan(2000 * 2 + 10_000);
    const fail = ev.filter((e) => e.kind === 'reading' && (e.evidence as { verdict: string }).verdict === 'fail');
    expect(fail.length).toBe(2);
    expect(JSON.stringify(fail[0]!.evidence)).toContain('agent_cpu');
    for (const s of web()) expect(s.running).toBe(prev);
    // the canary went back to the bundle it kept on disk
    expect(sims.get('s1')!.host.applied.slice(-2)).toEqual([b.id, prev]);
  }, 60_000);

  it('a bundle signed by an untrusted key, or with a signature that does not verify, is applied nowhere', async () => {
    const prev = sims.get('s1')!.running!;
    const u = makeBundle({ 'checks/ok.patrol': CHECK_OK, 'checks/u.patrol': 'check u { critical load1 < 0; }\n' }, other);
    await pushBundle(client, keys, u.bytes, 'test');
    const r = await rollout(u.id);
    const v = await ended(r.id);
    expect(v.state).toBe('rolled_back');
    expect(JSON.stringify(v.last_reading)).toContain('rejected: E_BUNDLE_UNTRUSTED');
    // the signature of a trusted key over other content
    const t = makeBundle({ 'checks/ok.patrol': CHECK_OK, 'checks/t.patrol': 'check t { critical load1 < 0; }\n' }, key);
    const forged = Buffer.from(t.bytes.toString('latin1').replace(/"value":"([A-Za-z0-9+/]{10})/, (_m, s: string) => `"value":"${s.split('').reverse().join('')}`), 'latin1');
    await pushBundle(client, keys, forged, 'test');
    const r2 = await rollout(t.id);
    const v2 = await ended(r2.id);
    expect(v2.state).toBe('rolled_back');
    expect(JSON.stringify(v2.last_reading)).toContain('rejected: E_BUNDLE_SIGNATURE');
    for (const s of web()) {
      expect(s.running).toBe(prev);
      expect(s.host.applied).not.toContain(u.id);
      expect(s.host.applied).not.toContain(t.id);
    }
  }, 60_000);

  it('incompatible nodes are skipped, unless more than the share of a wave is incompatible', async () => {
    // s1..s3 simulate a kernel without sched_process_fork's BTF tracepoint
    const old = new Set([...kernelBtfTracepoints()].filter((t) => t !== 'sched_process_fork'));
    for (const n of ['s1', 's2', 's3']) {
      const s = sims.get(n)!;
      const dir = s.dir;
      await s.stop();
      sim(n, { dir, tracepoints: old });
    }
    await Promise.all(['s1', 's2', 's3'].map((n) => connected(sims.get(n)!)));
    const i = makeBundle({ 'checks/ok.patrol': CHECK_OK, 'bpf/lifecycle.bpf.o': { copy: join(REPO, 'bpf/.output/lifecycle.bpf.o') } }, key);
    await pushBundle(client, keys, i.bytes, 'test');
    const r = await rollout(i.id);
    const v = await ended(r.id);
    expect(v.state).toBe('rolled_back');
    expect(v.incompatible).toBe(1);
    expect(v.rollback!.reason).toContain('incompatible share 100% > 50%');
    const r2 = await rollout(i.id, { maxIncompatible: 1 });
    const v2 = await ended(r2.id);
    expect(v2.state).toBe('completed');
    expect(v2.incompatible).toBe(3);
    const st = await rolloutStatus(client, keys, r2.id);
    expect(st.nodes.filter((n) => n.incompatible).map((n) => n.node)).toEqual(['s1', 's2', 's3']);
    for (const n of ['s4', 's5', 's6']) expect(sims.get(n)!.running).toBe(i.id);
    for (const n of ['s1', 's2', 's3']) {
      expect(sims.get(n)!.running).not.toBe(i.id);
      expect(sims.get(n)!.keeper.report()).toMatchObject({ result: 'rejected: E_SENSOR_BTF', incompatible: true });
    }
  }, 120_000);

  it('pause, resume and abort: requests the controller carries out', async () => {
    const a = makeBundle({ 'checks/ok.patrol': CHECK_OK, 'checks/a.patrol': 'check a { every 7s; critical load1 < 0; }\n' }, key);
    await pushBundle(client, keys, a.bytes, 'test');
    const r = await rollout(a.id, { bake: '2s' });
    await until('wave 1 told', async () => ((await state(r.id)).told >= 1 ? true : null), 15_000, 100);
    await requestRollout(client, keys, 'pause', r.id, 'test');
    await until('paused by the operator', async () => ((await state(r.id)).pause?.by === 'operator' ? true : null), 10_000, 100);
    await sleep(4000);
    expect(await state(r.id)).toMatchObject({ state: 'paused', wave: 0 });
    await requestRollout(client, keys, 'resume', r.id, 'test');
    await until('wave 2 told', async () => ((await state(r.id)).wave >= 1 ? true : null), 20_000, 100);
    await requestRollout(client, keys, 'abort', r.id, 'test');
    const v = await ended(r.id);
    expect(v.state).toBe('aborted');
    expect(v.result).toContain('aborted');
    for (const n of v.order.slice(0, v.told)) expect(sims.get(n)!.running).not.toBe(a.id);
  }, 90_000);
});
