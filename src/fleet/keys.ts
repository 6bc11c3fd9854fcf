// The key layout under the fleet prefix (docs/fleet.md) and the JSON each key holds. Every value
// carries `schema: 1`; readers accept any value whose schema is 1 and ignore fields they do not
// know, so a newer agent can add fields without breaking an older `patrol fleet status`.
import { z } from 'zod';
import { FleetError } from './errors.js';

export const SCHEMA = 1;

/** Node names and label parts end up in keys: a conservative alphabet, no '/'. */
export const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
export const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const LABEL_VALUE_RE = /^[A-Za-z0-9._-]{0,63}$/;
/** bundle ids: content addresses (issue 15) or operator names */
export const BUNDLE_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export type Labels = Record<string, string>;

/** Key builders for one prefix (ends with '/'). */
export class Keys {
  constructor(readonly prefix: string) {}
  node(n: string) {
    return `${this.prefix}nodes/${n}`;
  }
  get nodes() {
    return `${this.prefix}nodes/`;
  }
  observed(n: string) {
    return `${this.prefix}observed/${n}`;
  }
  get observedAll() {
    return `${this.prefix}observed/`;
  }
  member(n: string) {
    return `${this.prefix}members/${n}`;
  }
  get members() {
    return `${this.prefix}members/`;
  }
  alert(n: string, id: string) {
    return `${this.prefix}alerts/${n}/${id}`;
  }
  alertsOf(n: string) {
    return `${this.prefix}alerts/${n}/`;
  }
  get alerts() {
    return `${this.prefix}alerts/`;
  }
  get desired() {
    return `${this.prefix}desired/`;
  }
  desiredNode(n: string) {
    return `${this.prefix}desired/node/${n}`;
  }
  desiredSelector(sel: Labels) {
    return `${this.prefix}desired/selector/${formatSelector(sel)}`;
  }
  get desiredAll() {
    return `${this.prefix}desired/all`;
  }
  election(n: string) {
    return `${this.prefix}election/${n}`;
  }
  get elections() {
    return `${this.prefix}election/`;
  }
  get leader() {
    return `${this.prefix}leader`;
  }
  get findings() {
    return `${this.prefix}fleet/findings`;
  }
  /** bundles/<id>/meta, then bundles/<id>/chunk/<n>: a bundle file in chunks of at most 1 MiB */
  bundleMeta(id: string) {
    return `${this.prefix}bundles/${id}/meta`;
  }
  bundleChunk(id: string, i: number) {
    return `${this.prefix}bundles/${id}/chunk/${String(i).padStart(6, '0')}`;
  }
  bundle(id: string) {
    return `${this.prefix}bundles/${id}/`;
  }
  rollout(id: string) {
    return `${this.prefix}rollouts/${id}`;
  }
  get rollouts() {
    return `${this.prefix}rollouts/`;
  }
  /** one per node a rollout told to change: its wave and what to put back on a rollback */
  rolloutNode(id: string, node: string) {
    return `${this.prefix}rollout-nodes/${id}/${node}`;
  }
  rolloutNodes(id: string) {
    return `${this.prefix}rollout-nodes/${id}/`;
  }
  rolloutEvent(id: string, seq: number) {
    return `${this.prefix}rollout-history/${id}/${String(seq).padStart(8, '0')}`;
  }
  rolloutHistory(id: string) {
    return `${this.prefix}rollout-history/${id}/`;
  }
  get rolloutHistoryAll() {
    return `${this.prefix}rollout-history/`;
  }
  /** the part of `key` after the prefix and `section` ("nodes/"), or null */
  tail(key: string, section: string): string | null {
    const head = this.prefix + section;
    return key.startsWith(head) ? key.slice(head.length) : null;
  }
}

/** `role=web,zone=a` → {role: 'web', zone: 'a'}; throws FleetError('E_FLEET_USAGE'). */
export function parseSelector(text: string): Labels {
  const out: Labels = {};
  const t = text.trim();
  if (t === '') throw new FleetError('E_FLEET_USAGE', 'empty selector: give key=value[,key=value...] (e.g. role=web)');
  for (const part of t.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new FleetError('E_FLEET_USAGE', `selector term "${part}" is not key=value`);
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (!LABEL_KEY_RE.test(k)) throw new FleetError('E_FLEET_USAGE', `selector key "${k}": letters, digits, '.', '_' or '-' (at most 63)`);
    if (!LABEL_VALUE_RE.test(v)) throw new FleetError('E_FLEET_USAGE', `selector value "${v}" of ${k}: letters, digits, '.', '_' or '-' (at most 63)`);
    if (Object.hasOwn(out, k)) throw new FleetError('E_FLEET_USAGE', `selector names ${k} twice`);
    out[k] = v;
  }
  return out;
}

/** The canonical text of a selector: keys sorted, `k=v` joined by ','. */
export function formatSelector(sel: Labels): string {
  return Object.keys(sel)
    .sort()
    .map((k) => `${k}=${sel[k]}`)
    .join(',');
}

export function selectorMatches(sel: Labels, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) return false;
  return true;
}

// ------------------------------------------------------------------ values

const iso = z.string();
const schema1 = z.literal(SCHEMA);

export const NodeValue = z
  .object({
    schema: schema1,
    node: z.string(),
    version: z.string(),
    kernel: z.string(),
    labels: z.record(z.string()),
    started_at: iso,
    registered_at: iso,
    /** the agent's TCP API (host:port) when it listens on TCP, else null */
    api: z.string().nullable(),
    pid: z.number(),
    /** random per agent installation (fleet state file): tells a restart from a name clash */
    instance: z.string(),
    /** the lease this registration is bound to, hex */
    lease: z.string(),
  })
  .passthrough();
export type NodeValue = z.infer<typeof NodeValue>;

export const PartValue = z.object({ version: z.string().nullable(), since: iso.nullable() }).passthrough();
export type PartValue = z.infer<typeof PartValue>;

export const BundleApply = z
  .object({
    target: z.string().nullable(),
    result: z.string(),
    code: z.string().nullable(),
    reason: z.string().nullable(),
    incompatible: z.boolean(),
    at: iso.nullable(),
    previous: z.string().nullable(),
  })
  .passthrough();
export type BundleApply = z.infer<typeof BundleApply>;

export const ObservedValue = z
  .object({
    schema: schema1,
    node: z.string(),
    /** when this value was written */
    at: iso,
    /** running version of each part (hot reload): sensors, rules, checks, config */
    parts: z.record(PartValue),
    generation: z.number().nullable(),
    last_reload: z.object({ at: iso.nullable(), result: z.string() }).passthrough(),
    health: z.object({ status: z.enum(['ok', 'degraded']), reasons: z.array(z.object({ kind: z.string(), message: z.string() }).passthrough()) }).passthrough(),
    /** records lost per second, over the last minute */
    lost_rate: z.number(),
    lost_total: z.number(),
    /** % of one CPU over the last refresh */
    agent_cpu: z.number(),
    /** bytes */
    agent_rss: z.number(),
    checks: z.record(z.number()),
    checks_critical: z.number(),
    alerts_firing: z.number(),
    /** the desired bundle this node saw last (issue 15 applies it) */
    desired: z.object({ bundle: z.string().nullable(), revision: z.number() }).passthrough().nullable(),
    /** the bundle the node runs; null: its own configuration */
    bundle: z.string().nullable(),
    /** the last bundle application: target, result (applied, rejected: <code>, pending, none),
     *  whether the node is incompatible with it (absent from agents before issue 15) */
    bundle_apply: BundleApply.nullable().optional(),
  })
  .passthrough();
export type ObservedValue = z.infer<typeof ObservedValue>;

export const MemberValue = z
  .object({ schema: schema1, node: z.string(), labels: z.record(z.string()), version: z.string(), registered_at: iso, stopped_at: iso.nullable() })
  .passthrough();
export type MemberValue = z.infer<typeof MemberValue>;

export const AlertValue = z
  .object({ schema: schema1, node: z.string(), id: z.string(), check_id: z.string(), name: z.string(), state: z.string(), since: iso, message: z.string(), labels: z.record(z.string()) })
  .passthrough();
export type AlertValue = z.infer<typeof AlertValue>;

export const DesiredValue = z.object({ schema: schema1, bundle: z.string(), set_at: iso, set_by: z.string() }).passthrough();
export type DesiredValue = z.infer<typeof DesiredValue>;

export const ElectionValue = z.object({ schema: schema1, node: z.string(), lease: z.string() }).passthrough();
export type ElectionValue = z.infer<typeof ElectionValue>;

export const LeaderValue = z.object({ schema: schema1, node: z.string(), term: z.number(), since: iso }).passthrough();
export type LeaderValue = z.infer<typeof LeaderValue>;

export const Finding = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('node_down'), node: z.string(), since: iso.nullable() }).passthrough(),
  z.object({ kind: z.literal('loss'), node: z.string(), lost_rate: z.number() }).passthrough(),
  z.object({ kind: z.literal('version_skew'), node: z.string(), part: z.string(), version: z.string(), newest: z.string(), newest_since: iso }).passthrough(),
]);
export type Finding = z.infer<typeof Finding>;

export const FindingsValue = z.object({ schema: schema1, leader: z.string(), term: z.number(), at: iso, findings: z.array(Finding) }).passthrough();
export type FindingsValue = z.infer<typeof FindingsValue>;

/** JSON text of a value (what is stored). */
export const encode = (v: unknown): string => JSON.stringify(v);

/** Parses a stored value; null when it is not JSON or not the schema (counted by callers). */
export function decode<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, raw: Buffer | string): T | null {
  let v: unknown;
  try {
    v = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return null;
  }
  const r = schema.safeParse(v);
  return r.success ? r.data : null;
}

/** lease ids travel as decimal strings (int64); shown as hex like etcdctl does */
export const leaseHex = (id: string): string => BigInt(id).toString(16);
