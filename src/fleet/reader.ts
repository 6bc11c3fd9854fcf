// Fleet-wide reads and the operator's write: `patrol fleet status|alerts|desired set`, served by
// an agent's API or run by the CLI against etcd directly (--endpoints). Reads are paged
// (500 keys a page) at one revision, so a 10,000-node status is a consistent snapshot without
// one huge response.
import { hostname, userInfo } from 'node:os';
import { prefixEnd, type EtcdClient, type KV } from './client.js';
import {
  AlertValue, BUNDLE_RE, ElectionValue, FindingsValue, LeaderValue, MemberValue, NODE_RE, NodeValue, ObservedValue, SCHEMA,
  decode, encode, formatSelector, type Finding, type Keys, type Labels, type PartValue,
} from './keys.js';
import { FleetError } from './errors.js';

export interface FleetNodeStatus {
  node: string;
  up: boolean;
  labels: Labels;
  version: string | null;
  kernel: string | null;
  parts: Record<string, PartValue>;
  health: { status: 'ok' | 'degraded'; reasons: Array<{ kind: string; message: string }> } | null;
  lost_rate: number | null;
  agent_cpu: number | null;
  agent_rss: number | null;
  checks_critical: number | null;
  alerts_firing: number | null;
  /** up: when this status was read; down: when it stopped or was seen gone, if known */
  last_seen: string | null;
  /** when its observed state was last written */
  observed_at: string | null;
  registered_at: string | null;
  api: string | null;
  desired_bundle: string | null;
  /** the bundle it runs, and the outcome of its last bundle application */
  bundle: string | null;
  bundle_result: string | null;
  leader: boolean;
}

export interface FleetStatusJson {
  prefix: string;
  revision: number;
  leader: { node: string; term: number; since: string | null } | null;
  counts: { nodes: number; up: number; down: number; degraded: number; losing: number };
  nodes: FleetNodeStatus[];
  findings: Finding[];
  /** values under the prefix that are not the documented schema (skipped) */
  bad_values: number;
}

export interface FleetAlertsJson {
  revision: number;
  alerts: AlertValue[];
  /** fleet-level findings of the leader (node_down, loss, version_skew) */
  findings: Finding[];
}

export type DesiredTarget = { node: string } | { selector: Labels } | { all: true };

export async function readLeader(client: EtcdClient, keys: Keys, revision?: number): Promise<{ node: string; term: number; since: string | null } | null> {
  const r = await client.range(keys.elections, { end: prefixEnd(keys.elections), limit: 1, sort: { target: 'CREATE', order: 'ASCEND' }, ...(revision ? { revision } : {}) });
  const kv = r.kvs[0];
  if (!kv) return null;
  const ev = decode(ElectionValue, kv.value);
  const l = await client.get(keys.leader, revision ? { revision } : {});
  const lv = l.kv ? decode(LeaderValue, l.kv.value) : null;
  const node = ev?.node ?? kv.key.slice(keys.elections.length);
  return { node, term: kv.createRevision, since: lv && lv.term === kv.createRevision ? lv.since : null };
}

function byNode<T extends { node: string }>(kvs: KV[], schema: Parameters<typeof decode<T>>[0], bad: { n: number }): Map<string, T> {
  const m = new Map<string, T>();
  for (const kv of kvs) {
    const v = decode(schema, kv.value);
    if (v === null) bad.n++;
    else m.set(v.node, v);
  }
  return m;
}

export async function readFleetStatus(client: EtcdClient, keys: Keys, o: { pageSize?: number } = {}): Promise<FleetStatusJson> {
  const bad = { n: 0 };
  const nodesR = await client.readPrefix(keys.nodes, o);
  const rev = nodesR.revision;
  const [obsR, memR, leader, findR] = await Promise.all([
    client.readPrefix(keys.observedAll, { ...o, revision: rev }),
    client.readPrefix(keys.members, { ...o, revision: rev }),
    readLeader(client, keys, rev),
    client.get(keys.findings, { revision: rev }),
  ]);
  const nodes = byNode(nodesR.kvs, NodeValue, bad);
  const observed = byNode(obsR.kvs, ObservedValue, bad);
  const members = byNode(memR.kvs, MemberValue, bad);
  const fv = findR.kv ? decode(FindingsValue, findR.kv.value) : null;
  const findings = fv?.findings ?? [];
  const downSince = new Map<string, string | null>();
  for (const f of findings) if (f.kind === 'node_down') downSince.set(f.node, f.since);
  const now = new Date().toISOString();
  const names = new Set([...nodes.keys(), ...members.keys()]);
  const out: FleetNodeStatus[] = [];
  for (const name of [...names].sort()) {
    const n = nodes.get(name);
    const o2 = n ? observed.get(name) : undefined;
    const m = members.get(name);
    out.push({
      node: name,
      up: n !== undefined,
      labels: n?.labels ?? m?.labels ?? {},
      version: n?.version ?? m?.version ?? null,
      kernel: n?.kernel ?? null,
      parts: o2?.parts ?? {},
      health: o2 ? o2.health : null,
      lost_rate: o2?.lost_rate ?? null,
      agent_cpu: o2?.agent_cpu ?? null,
      agent_rss: o2?.agent_rss ?? null,
      checks_critical: o2?.checks_critical ?? null,
      alerts_firing: o2?.alerts_firing ?? null,
      last_seen: n ? now : (m?.stopped_at ?? downSince.get(name) ?? null),
      observed_at: o2?.at ?? null,
      registered_at: n?.registered_at ?? m?.registered_at ?? null,
      api: n?.api ?? null,
      desired_bundle: o2?.desired?.bundle ?? null,
      bundle: o2?.bundle ?? null,
      bundle_result: o2?.bundle_apply?.result ?? null,
      leader: leader?.node === name,
    });
  }
  const up = out.filter((x) => x.up);
  return {
    prefix: keys.prefix,
    revision: rev,
    leader,
    counts: { nodes: out.length, up: up.length, down: out.length - up.length, degraded: up.filter((x) => x.health?.status === 'degraded').length, losing: up.filter((x) => (x.lost_rate ?? 0) > 0).length },
    nodes: out,
    findings,
    bad_values: bad.n,
  };
}

export async function readFleetAlerts(client: EtcdClient, keys: Keys, o: { pageSize?: number } = {}): Promise<FleetAlertsJson> {
  const r = await client.readPrefix(keys.alerts, o);
  const alerts: AlertValue[] = [];
  for (const kv of r.kvs) {
    const v = decode(AlertValue, kv.value);
    if (v) alerts.push(v);
  }
  alerts.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.since < b.since ? -1 : a.since > b.since ? 1 : 0));
  const f = await client.get(keys.findings, { revision: r.revision });
  const fv = f.kv ? decode(FindingsValue, f.kv.value) : null;
  return { revision: r.revision, alerts, findings: fv?.findings ?? [] };
}

/** Writes desired/<target> = {schema, bundle, set_at, set_by}; the revision it landed at. */
export async function writeDesired(client: EtcdClient, keys: Keys, bundle: string, target: DesiredTarget, setBy?: string): Promise<{ key: string; revision: number; bundle: string }> {
  if (!BUNDLE_RE.test(bundle)) throw new FleetError('E_FLEET_USAGE', `bundle id "${bundle}": letters, digits, '.', '_', ':' or '-' (at most 128)`);
  let key: string;
  if ('node' in target) {
    if (!NODE_RE.test(target.node)) throw new FleetError('E_FLEET_USAGE', `node name "${target.node}": letters, digits, '.', '_' or '-'`);
    key = keys.desiredNode(target.node);
  } else if ('selector' in target) {
    if (Object.keys(target.selector).length === 0) throw new FleetError('E_FLEET_USAGE', 'empty selector');
    key = keys.desiredSelector(target.selector);
  } else key = keys.desiredAll;
  let who = setBy;
  if (who === undefined) {
    try {
      who = `${userInfo().username}@${hostname()}`;
    } catch {
      who = hostname();
    }
  }
  const revision = await client.put(key, encode({ schema: SCHEMA, bundle, set_at: new Date().toISOString(), set_by: who }));
  return { key, revision, bundle };
}

export const describeTarget = (t: DesiredTarget): string => ('node' in t ? `node ${t.node}` : 'selector' in t ? `selector ${formatSelector(t.selector)}` : 'all nodes');
