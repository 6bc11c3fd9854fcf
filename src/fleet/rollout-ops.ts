// The operator's side of rollouts: `patrol fleet rollout BUNDLE …` writes rollouts/<id> (state
// pending; the leader's controller starts it), `rollout status|pause|resume|abort` read it or
// leave a request the controller carries out, `patrol fleet history` reads the history. Run by
// an agent's API or by the CLI against etcd directly (--endpoints).
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { EtcdClient } from './client.js';
import { FleetError } from './errors.js';
import { NodeValue, ObservedValue, SCHEMA, decode, encode, type Keys } from './keys.js';
import { readBundleMeta } from './bundle-store.js';
import { ACTIVE_STATES, RolloutEvent, RolloutNodeValue, RolloutValue, type RolloutSpec } from './rollout.js';

function who(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return hostname();
  }
}

/** Ids sort by creation: 20250101-120000-3f9a. */
export function newRolloutId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${t}-${randomBytes(2).toString('hex')}`;
}

export async function listRollouts(client: EtcdClient, keys: Keys): Promise<Array<{ value: RolloutValue; modRevision: number }>> {
  const r = await client.readPrefix(keys.rollouts);
  const out: Array<{ value: RolloutValue; modRevision: number }> = [];
  for (const kv of r.kvs) {
    const v = decode(RolloutValue, kv.value);
    if (v) out.push({ value: v, modRevision: kv.modRevision });
  }
  return out.sort((a, b) => (a.value.id < b.value.id ? -1 : 1));
}

export interface CreatedRollout {
  rollout: RolloutValue;
  revision: number;
  /** the active rollout this one waits for (rollouts run one at a time, oldest first) */
  queued_behind: string | null;
}

export async function createRollout(client: EtcdClient, keys: Keys, spec: RolloutSpec, by: string = who()): Promise<CreatedRollout> {
  const meta = await readBundleMeta(client, keys, spec.bundle);
  if (meta === null) throw new FleetError('E_FLEET_USAGE', `bundle ${spec.bundle} is not in etcd: push it first (patrol fleet bundle push FILE)`);
  const active = (await listRollouts(client, keys)).find((r) => ACTIVE_STATES.has(r.value.state));
  const now = new Date();
  const id = newRolloutId(now);
  const at = now.toISOString();
  const v: RolloutValue = {
    schema: SCHEMA, id, bundle: spec.bundle, selector: spec.selector, waves: spec.waves, bake_ms: spec.bakeMs, gates: spec.gates, failure_limit: spec.failureLimit,
    max_incompatible: spec.maxIncompatible, created_at: at, created_by: by, state: 'pending', started_at: null, order: [], targets: [], wave: -1, told: 0,
    bake_since: null, failures: 0, incompatible: 0, last_reading: null, pause: null, request: null, rollback: null, promoted_at: null, ended_at: null, result: null,
    baseline_start: {}, controller: null, seq: 1, updated_at: at,
  };
  const ev: RolloutEvent = { schema: SCHEMA, rollout: id, seq: 1, at, by, term: null, kind: 'created', wave: -1, message: `created by ${by}: ${spec.bundle}${spec.selector ? ` for ${Object.entries(spec.selector).map(([k, x]) => `${k}=${x}`).join(',')}` : ' for every node'}`, evidence: { waves: spec.waves, bake_ms: spec.bakeMs, gates: spec.gates, failure_limit: spec.failureLimit, max_incompatible: spec.maxIncompatible, bundle: { name: meta.name, parts: meta.parts, key_id: meta.key_id } } };
  const r = await client.txn([{ key: keys.rollout(id), target: 'create', op: '=', value: 0 }], [{ put: keys.rollout(id), value: encode(v) }, { put: keys.rolloutEvent(id, 1), value: encode(ev) }], [], { what: `create rollout ${id}` });
  if (!r.succeeded) throw new FleetError('E_FLEET_ETCD', `rollout id ${id} is taken; try again`);
  return { rollout: v, revision: r.revision, queued_behind: active?.value.id ?? null };
}

/** Which rollout a command means: `id`, else the active one, else the newest. */
async function pick(client: EtcdClient, keys: Keys, id?: string): Promise<{ value: RolloutValue; modRevision: number } | null> {
  const all = await listRollouts(client, keys);
  if (id !== undefined) {
    const r = all.find((x) => x.value.id === id);
    if (!r) throw new FleetError('E_FLEET_USAGE', `no rollout ${id}${all.length ? ` (newest: ${all[all.length - 1]!.value.id})` : ''}`);
    return r;
  }
  return all.find((x) => ACTIVE_STATES.has(x.value.state)) ?? all[all.length - 1] ?? null;
}

export interface RolloutNodeStatus {
  node: string;
  wave: number;
  told_at: string;
  up: boolean;
  /** what the node runs now, and the outcome of its last bundle application */
  bundle: string | null;
  result: string | null;
  incompatible: { code: string; reason: string } | null;
  restored_at: string | null;
  previous_bundle: string | null;
}

export interface RolloutStatusJson {
  rollout: RolloutValue | null;
  /** every node the rollout told, in wave order */
  nodes: RolloutNodeStatus[];
  /** rollouts waiting behind the active one */
  queued: string[];
  revision: number;
}

export async function rolloutStatus(client: EtcdClient, keys: Keys, id?: string): Promise<RolloutStatusJson> {
  const r = await pick(client, keys, id);
  const all = await listRollouts(client, keys);
  const queued = all.filter((x) => x.value.state === 'pending' && x.value.id !== r?.value.id).map((x) => x.value.id);
  if (!r) return { rollout: null, nodes: [], queued, revision: 0 };
  const v = r.value;
  const recs = await client.readPrefix(keys.rolloutNodes(v.id));
  const told = new Map<string, RolloutNodeValue>();
  for (const kv of recs.kvs) {
    const x = decode(RolloutNodeValue, kv.value);
    if (x) told.set(x.node, x);
  }
  const names = v.order.slice(0, v.told).filter((n) => told.has(n));
  // a few nodes: one get each; many: the prefixes, paged, at the same revision
  const observed = new Map<string, Buffer>();
  const registered = new Set<string>();
  if (names.length <= 50) {
    const [obs, up] = await Promise.all([
      Promise.all(names.map((n) => client.get(keys.observed(n), { revision: recs.revision }))),
      Promise.all(names.map((n) => client.get(keys.node(n), { revision: recs.revision }))),
    ]);
    names.forEach((n, i) => {
      if (obs[i]!.kv) observed.set(n, obs[i]!.kv!.value);
      if (up[i]!.kv && decode(NodeValue, up[i]!.kv!.value) !== null) registered.add(n);
    });
  } else {
    const [obs, up] = await Promise.all([client.readPrefix(keys.observedAll, { revision: recs.revision }), client.readPrefix(keys.nodes, { revision: recs.revision })]);
    for (const kv of obs.kvs) observed.set(kv.key.slice(keys.observedAll.length), kv.value);
    for (const kv of up.kvs) registered.add(kv.key.slice(keys.nodes.length));
  }
  const nodes = names.map((n): RolloutNodeStatus => {
    const rec = told.get(n)!;
    const raw = observed.get(n);
    const o = raw ? decode(ObservedValue, raw) : null;
    const alive = registered.has(n);
    return {
      node: n, wave: rec.wave, told_at: rec.told_at, up: alive, bundle: o?.bundle ?? null,
      result: o?.bundle_apply && o.bundle_apply.target === v.bundle ? o.bundle_apply.result : null,
      incompatible: rec.incompatible ? { code: rec.incompatible.code, reason: rec.incompatible.reason } : null,
      restored_at: rec.restored_at, previous_bundle: rec.previous_bundle,
    };
  });
  return { rollout: v, nodes, queued, revision: recs.revision };
}

/** pause, resume or abort: a request the controller carries out at its next tick (it is the
 *  only writer of a running rollout's state and of the desired keys it changes). */
export async function requestRollout(client: EtcdClient, keys: Keys, action: 'pause' | 'resume' | 'abort', id?: string, by: string = who()): Promise<RolloutValue> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await pick(client, keys, id);
    if (!r) throw new FleetError('E_FLEET_USAGE', 'there is no rollout');
    const v = r.value;
    if (!ACTIVE_STATES.has(v.state)) throw new FleetError('E_FLEET_USAGE', `rollout ${v.id} is ${v.state.replace('_', ' ')}: nothing to ${action}`);
    if (action === 'resume' && v.state !== 'paused' && v.pause === null && v.request?.action !== 'pause') throw new FleetError('E_FLEET_USAGE', `rollout ${v.id} is ${v.state.replace('_', ' ')}, not paused`);
    if (action === 'pause' && v.state === 'rolling_back') throw new FleetError('E_FLEET_USAGE', `rollout ${v.id} is rolling back: it cannot be paused`);
    const at = new Date().toISOString();
    const next: RolloutValue = { ...v, request: { action, at, by }, seq: v.seq + 1, updated_at: at };
    const ev: RolloutEvent = { schema: SCHEMA, rollout: v.id, seq: v.seq + 1, at, by, term: null, kind: 'request', wave: v.wave, message: `${by} asked to ${action}` };
    const t = await client.txn([{ key: keys.rollout(v.id), target: 'mod', op: '=', value: r.modRevision }], [{ put: keys.rollout(v.id), value: encode(next) }, { put: keys.rolloutEvent(v.id, v.seq + 1), value: encode(ev) }], [], { what: `${action} rollout ${v.id}` });
    if (t.succeeded) return next;
  }
  throw new FleetError('E_FLEET_ETCD', 'the rollout kept changing under the request; try again');
}

export interface HistoryJson {
  rollouts: Array<Pick<RolloutValue, 'id' | 'bundle' | 'state' | 'selector' | 'created_at' | 'created_by' | 'started_at' | 'ended_at' | 'result'>>;
  events: RolloutEvent[];
}

/** Every rollout (newest last), and the history of one (`id`), or of the newest. */
export async function readHistory(client: EtcdClient, keys: Keys, id?: string, limit = 1000): Promise<HistoryJson> {
  const all = await listRollouts(client, keys);
  const target = id !== undefined ? all.find((x) => x.value.id === id) : all[all.length - 1];
  if (id !== undefined && !target) throw new FleetError('E_FLEET_USAGE', `no rollout ${id}`);
  const events: RolloutEvent[] = [];
  if (target) {
    const p = keys.rolloutHistory(target.value.id);
    const r = await client.readPrefix(p);
    for (const kv of r.kvs) {
      const e = decode(RolloutEvent, kv.value);
      if (e) events.push(e);
    }
  }
  return {
    rollouts: all.map(({ value: v }) => ({ id: v.id, bundle: v.bundle, state: v.state, selector: v.selector, created_at: v.created_at, created_by: v.created_by, started_at: v.started_at, ended_at: v.ended_at, result: v.result })),
    events: events.slice(-limit),
  };
}

