#!/usr/bin/env node
// Issue 15: canary rollouts, timed. N simulated members (default 100, FLEET_ROLLOUT_N) run the
// fleet module an agent runs (FleetNode, the bundle keeper, the rollout controller when they
// lead) against a three-member etcd cluster on loopback (test/fleet/etcd-cluster.mjs), with the
// agent's defaults: lease_ttl 10 s, observed_interval 10 s, probe_interval 1 s. Each applies a
// bundle with SimulatedHost (rules and checks compiled) after FLEET_ROLLOUT_APPLY_MS (default
// 2000: about what a real agent's sensor swap took in test/fleet/rollout-agents.test.ts).
//
//   1. a good bundle, waves 1,10%,50%,100%, bake FLEET_ROLLOUT_BAKE_S (default 20): per wave,
//      told → every node applied → bake started → wave passed;
//   2. a bad bundle (the canary reports 60% CPU while it runs it; the others 2%), default gates
//      and failure limit, FLEET_ROLLOUT_BAD_RUNS times (default 3): told → canary applied →
//      first failing reading → rollback decided → canary back on the good bundle → rolled back.
// The controller runs on an extra member outside the scope. Real-agent figures (2 s lease, 1 s
// observed interval, 3 s bake) are printed by test/fleet/rollout-agents.test.ts.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dist, nowMs, report, round, sleep, waitQuiet } from './lib.mjs';
import { EtcdCluster, etcdAvailable } from '../test/fleet/etcd-cluster.mjs';

const N = Number(process.env.FLEET_ROLLOUT_N ?? 100);
const BAKE_S = Number(process.env.FLEET_ROLLOUT_BAKE_S ?? 20);
const APPLY_MS = Number(process.env.FLEET_ROLLOUT_APPLY_MS ?? 2000);
const BAD_RUNS = Number(process.env.FLEET_ROLLOUT_BAD_RUNS ?? 3);
const PER_CLIENT = 25;
const PREFIX = '/patrol/';

if (!etcdAvailable()) {
  console.error('fleet-rollout: etcd is not installed (bash scripts/etcd-server.sh)');
  process.exit(1);
}

const fleet = await dist('fleet/index.js');
const { SimulatedHost } = await dist('fleet/sim-host.js');
const { createLogger } = await dist('shared/log.js');
const log = createLogger({ level: process.env.PATROL_LOG_LEVEL ?? 'silent' });
const quiet = await waitQuiet();

const base = mkdtempSync(path.join(tmpdir(), 'patrol-rollout-bench-'));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const pub = path.join(base, 'release.pub.pem');
writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
const trusted = fleet.loadTrustedKeys([pub]);

function makeBundle(name, checks) {
  const d = path.join(base, name);
  mkdirSync(path.join(d, 'checks'), { recursive: true });
  writeFileSync(path.join(d, 'checks', `${name}.patrol`), checks);
  return fleet.createBundle(d, privateKey);
}

const cluster = await EtcdCluster.start();
const admin = new fleet.EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 5000 });
const keys = new fleet.Keys(PREFIX);
const clients = [];
const members = [];

function member(name, labels, i) {
  if (i % PER_CLIENT === 0) clients.push(new fleet.EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 5000 }));
  const client = clients[clients.length - 1];
  const m = { name, cpuOn: new Map(), applied: [], keeper: null };
  const running = () => m.keeper?.report().id ?? '';
  const dir = path.join(base, 'members', name);
  const node = new fleet.FleetNode({
    endpoints: cluster.endpoints, node: name, labels, prefix: PREFIX, leaseTtlMs: 10_000, observedIntervalMs: 10_000, skewBoundMs: 3_600_000, tls: null,
    stateFile: path.join(dir, 'fleet-state.json'), version: '1.0.0', startedAt: Date.now(), pid: process.pid, client,
    inputs: { ...fleet.quietInputs, usage: () => ({ cpuPct: m.cpuOn.get(running()) ?? 2, rssBytes: 130 << 20 }), bundle: () => m.keeper?.report() ?? null },
    log, onDesired: (e) => m.keeper?.want(e.bundle),
  });
  const host = new SimulatedHost({ applyMs: APPLY_MS });
  m.keeper = new fleet.BundleKeeper({ dir: path.join(dir, 'bundles'), client, keys, trusted, host, log, onChange: (applied) => node.bundleChanged(applied) });
  const orig = m.keeper.applies;
  m.applies = orig;
  m.node = node;
  node.start();
  m.keeper.want(node.local().desired.bundle);
  members.push(m);
  return m;
}

const ctl = member('ctl', { role: 'ctl' }, 0);
for (let i = 0; i < 200 && !ctl.node.local().is_leader; i++) await sleep(100);
for (let i = 0; i < N; i++) member(`web-${String(i + 1).padStart(4, '0')}`, { role: 'web' }, i + 1);
const web = members.filter((m) => m.name !== 'ctl');
for (let i = 0; i < 600; i++) {
  const r = await admin.readPrefix(keys.nodes);
  if (r.kvs.length === N + 1) break;
  await sleep(200);
}

async function ended(id) {
  for (;;) {
    const v = (await fleet.rolloutStatus(admin, keys, id)).rollout;
    if (['completed', 'rolled_back', 'aborted', 'failed'].includes(v.state)) return v;
    await sleep(250);
  }
}
const at = (e) => Date.parse(e.at);

// ---- 1. a good bundle
const good = makeBundle('good', 'check good { every 30s; critical disk_usage("/") > 100%; }\n');
await fleet.pushBundle(admin, keys, good.bytes, 'bench');
const t0 = Date.now();
const r1 = (await fleet.createRollout(admin, keys, fleet.rolloutSpec({ bundle: good.id, selector: { role: 'web' }, bake: `${BAKE_S}s` }), 'bench')).rollout;
const v1 = await ended(r1.id);
const ev1 = (await fleet.readHistory(admin, keys, r1.id)).events;
const start1 = at(ev1.find((e) => e.kind === 'start'));
const waves = v1.targets.map((t, w) => {
  const nodes = v1.order.slice(v1.targets[w - 1] ?? 0, t);
  const told = at(ev1.find((e) => e.kind === 'told' && e.wave === w));
  const appliedAt = Math.max(...nodes.map((n) => members.find((m) => m.name === n).applies.find((a) => a.target === good.id)?.at ?? NaN));
  const bake = ev1.filter((e) => e.kind === 'reading' && e.wave === w && e.evidence?.verdict === 'pass').at(-1);
  const passed = at(ev1.find((e) => e.kind === 'wave_passed' && e.wave === w));
  return {
    wave: w + 1, nodes: nodes.length,
    told_s: round((told - start1) / 1000, 1),
    all_applied_s: round((appliedAt - start1) / 1000, 1),
    bake_from_s: bake ? round((at(bake) - start1) / 1000, 1) : null,
    passed_s: round((passed - start1) / 1000, 1),
  };
});
const good_result = { state: v1.state, total_s: round((Date.parse(v1.ended_at) - t0) / 1000, 1), waves };

// ---- 2. a bad bundle, several times
const bad = [];
for (let run = 0; run < BAD_RUNS; run++) {
  const b = makeBundle(`bad${run}`, `check bad${run} { every 30s; critical disk_usage("/") > 100%; }\n`);
  await fleet.pushBundle(admin, keys, b.bytes, 'bench');
  for (const m of web) m.cpuOn.set(b.id, 60);
  const r = (await fleet.createRollout(admin, keys, fleet.rolloutSpec({ bundle: b.id, selector: { role: 'web' }, bake: `${BAKE_S}s` }), 'bench')).rollout;
  const v = await ended(r.id);
  const ev = (await fleet.readHistory(admin, keys, r.id)).events;
  const told = at(ev.find((e) => e.kind === 'told'));
  const canary = members.find((m) => m.name === v.order[0]);
  const applied = canary.applies.find((a) => a.target === b.id)?.at;
  const back = canary.applies.filter((a) => a.target !== b.id && a.at > told).at(0)?.at;
  const fail = ev.find((e) => e.kind === 'reading' && e.evidence?.verdict === 'fail');
  const decided = ev.find((e) => e.kind === 'rollback');
  const done = ev.find((e) => e.kind === 'rolled_back');
  bad.push({
    state: v.state, told_nodes: v.told,
    canary_applied_ms: applied - told,
    first_failing_reading_ms: at(fail) - told,
    detect_after_apply_ms: at(fail) - applied,
    rollback_decided_ms: at(decided) - told,
    canary_back_ms: back - told,
    rolled_back_ms: at(done) - told,
    bound_ms: BAKE_S * 1000 * v.failure_limit + 10_000,
  });
  await sleep(2000);
}

const med = (k) => [...bad.map((x) => x[k])].sort((a, b) => a - b)[Math.floor(bad.length / 2)];
const result = {
  members: N, lease_ttl_s: 10, observed_interval_s: 10, bake_s: BAKE_S, apply_ms: APPLY_MS, waves: v1.waves, gates: v1.gates,
  quiet, good: good_result, bad,
  bad_median_ms: Object.fromEntries(['canary_applied_ms', 'first_failing_reading_ms', 'detect_after_apply_ms', 'rollback_decided_ms', 'canary_back_ms', 'rolled_back_ms'].map((k) => [k, med(k)])),
};
await Promise.all(members.map((m) => (m.keeper.close(), m.node.stop())));
for (const c of clients) c.close();
admin.close();
await cluster.stop();
rmSync(base, { recursive: true, force: true });
report('fleet-rollout', result, [
  `${N} simulated members, bake ${BAKE_S}s, apply ${APPLY_MS} ms, lease 10s, observed interval 10s`,
  `good bundle: ${good_result.state} in ${good_result.total_s}s; waves ${waves.map((w) => `${w.wave}: ${w.nodes} node(s) told ${w.told_s}s, applied ${w.all_applied_s}s, passed ${w.passed_s}s`).join('; ')}`,
  `bad bundle (×${bad.length}, medians from told): canary applied ${result.bad_median_ms.canary_applied_ms} ms, first failing reading ${result.bad_median_ms.first_failing_reading_ms} ms, rollback decided ${result.bad_median_ms.rollback_decided_ms} ms, canary back ${result.bad_median_ms.canary_back_ms} ms, rolled back ${result.bad_median_ms.rolled_back_ms} ms (bound ${bad[0]?.bound_ms} ms)`,
]);
process.exit(0);
