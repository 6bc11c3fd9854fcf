// Rollouts (docs/fleet.md, "Rollouts"): what `patrol fleet rollout` asks for, and the values the
// controller keeps in etcd:
//   rollouts/<id>                  the rollout: its spec and state (one value, so a controller
//                                  that takes over reads all it needs in one get);
//   rollout-nodes/<id>/<node>      each node it told to change: its wave, the readings before,
//                                  and what to put back on a rollback;
//   rollout-history/<id>/<seq>     every wave, gate reading and decision, with evidence.
// Every controller write is one fenced transaction that also compares the rollout's mod
// revision, so state, desired writes and history land together or not at all.
import { z } from 'zod';
import { compileGate, DEFAULT_GATES, GateError } from '../checks/index.js';
import { formatDurationMs, parseDurationMs } from '../shared/duration.js';
import { FleetError } from './errors.js';
import { BUNDLE_RE, DesiredValue, SCHEMA, type Labels } from './keys.js';

export const ROLLOUT_STATES = ['pending', 'running', 'paused', 'rolling_back', 'completed', 'rolled_back', 'aborted', 'failed'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];
/** A rollout in one of these is the active one: the controller works on it. */
export const ACTIVE_STATES: ReadonlySet<string> = new Set(['pending', 'running', 'paused', 'rolling_back']);

export const APPLIED_GATE = 'reload_result == "applied"';
export const DEFAULT_WAVES = ['1', '10%', '50%', '100%'];
export const DEFAULT_BAKE_MS = 60_000;
export const DEFAULT_FAILURE_LIMIT = 2;
export const DEFAULT_MAX_INCOMPATIBLE = 0.5;

const iso = z.string();
const Who = z.object({ node: z.string(), term: z.number() }).passthrough();

export const GateSummary = z
  .object({
    gate: z.string(),
    pass: z.number(),
    fail: z.number(),
    unknown: z.number(),
    /** the first failing nodes, with what the gate read */
    failing: z.array(z.object({ node: z.string(), values: z.record(z.string()) }).passthrough()),
    /** the first nodes without data */
    missing: z.array(z.object({ node: z.string(), why: z.string() }).passthrough()),
  })
  .passthrough();
export type GateSummary = z.infer<typeof GateSummary>;

export const Reading = z
  .object({
    at: iso,
    wave: z.number(),
    /** pass: every gate holds on every node; fail: one fails somewhere; missing: data missing */
    verdict: z.enum(['pass', 'fail', 'missing']),
    nodes: z.number(),
    gates: z.array(GateSummary),
    /** the wave's incompatible share and its bound, when it is over it */
    incompatible: z.object({ share: z.number(), max: z.number() }).passthrough().nullable(),
  })
  .passthrough();
export type Reading = z.infer<typeof Reading>;

export const RolloutValue = z
  .object({
    schema: z.literal(SCHEMA),
    id: z.string(),
    bundle: z.string(),
    /** null: every node */
    selector: z.record(z.string()).nullable(),
    waves: z.array(z.string()),
    bake_ms: z.number(),
    gates: z.array(z.string()),
    failure_limit: z.number(),
    /** a wave whose incompatible share is above this fails its gate */
    max_incompatible: z.number(),
    created_at: iso,
    created_by: z.string(),
    state: z.enum(ROLLOUT_STATES),
    started_at: iso.nullable(),
    /** the nodes in scope at start, in wave order (by name) */
    order: z.array(z.string()),
    /** cumulative node counts: wave k covers order[targets[k-1] .. targets[k]) */
    targets: z.array(z.number()),
    /** the current wave (0-based), -1 before the start */
    wave: z.number(),
    /** nodes told so far, all waves */
    told: z.number(),
    /** when the current wave's gates began to hold (the bake), null while they do not */
    bake_since: iso.nullable(),
    /** failing readings in a row */
    failures: z.number(),
    incompatible: z.number(),
    last_reading: Reading.nullable(),
    pause: z.object({ by: z.enum(['operator', 'missing data']), at: iso, reason: z.string() }).passthrough().nullable(),
    /** an operator's request, carried out by the controller */
    request: z.object({ action: z.enum(['pause', 'resume', 'abort']), at: iso, by: z.string() }).passthrough().nullable(),
    rollback: z.object({ reason: z.string(), at: iso, restored: z.number(), aborted: z.boolean() }).passthrough().nullable(),
    /** completion: when the rollout's selector key was set to the bundle */
    promoted_at: iso.nullable(),
    ended_at: iso.nullable(),
    result: z.string().nullable(),
    /** medians of the fields over the nodes in scope at the start (the baseline when no
     *  untouched node is left) */
    baseline_start: z.record(z.number().nullable()),
    controller: Who.nullable(),
    seq: z.number(),
    updated_at: iso,
  })
  .passthrough();
export type RolloutValue = z.infer<typeof RolloutValue>;

export const RolloutNodeValue = z
  .object({
    schema: z.literal(SCHEMA),
    node: z.string(),
    wave: z.number(),
    told_at: iso,
    /** desired/node/<node> before the rollout wrote it (null: there was none) */
    previous_key: DesiredValue.nullable(),
    /** the bundle the node ran when told (observed) */
    previous_bundle: z.string().nullable(),
    /** its gate fields when told: before(f) */
    before: z.record(z.union([z.number(), z.string(), z.null()])),
    incompatible: z.object({ code: z.string(), reason: z.string(), at: iso }).passthrough().nullable(),
    restored_at: iso.nullable(),
  })
  .passthrough();
export type RolloutNodeValue = z.infer<typeof RolloutNodeValue>;

export const RolloutEvent = z
  .object({
    schema: z.literal(SCHEMA),
    rollout: z.string(),
    seq: z.number(),
    at: iso,
    /** who wrote it: the controller (leader node and term), or an operator */
    by: z.string(),
    term: z.number().nullable(),
    kind: z.enum(['created', 'start', 'told', 'incompatible', 'reading', 'paused', 'resumed', 'wave_passed', 'rollback', 'restored', 'rolled_back', 'completed', 'aborted', 'failed', 'request']),
    wave: z.number(),
    message: z.string(),
    evidence: z.unknown().optional(),
  })
  .passthrough();
export type RolloutEvent = z.infer<typeof RolloutEvent>;

// ------------------------------------------------------------------ the operator's spec

export interface RolloutSpec {
  bundle: string;
  selector: Labels | null;
  waves: string[];
  bakeMs: number;
  gates: string[];
  failureLimit: number;
  maxIncompatible: number;
}

/** One wave: a node count ("1") or a share of the nodes in scope ("10%"). */
export function parseWave(w: string): { count: number } | { share: number } {
  const t = w.trim();
  let m = /^(\d+)$/.exec(t);
  if (m) {
    const n = Number(m[1]);
    if (n >= 1 && n <= 1_000_000) return { count: n };
  }
  m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (m) {
    const p = Number(m[1]);
    if (p > 0 && p <= 100) return { share: p / 100 };
  }
  throw new FleetError('E_FLEET_USAGE', `--waves: "${w}" is neither a node count (1) nor a share of the nodes (10%)`);
}

/** Cumulative node counts per wave for `n` nodes in scope. Each wave adds at least one node
 *  while any is left (10% of 6 is 1 node, not 0.6); waves with nothing left to add are dropped,
 *  and the last wave takes every node. */
export function waveTargets(waves: readonly string[], n: number): number[] {
  const out: number[] = [];
  let prev = 0;
  for (const w of waves) {
    if (prev >= n) break;
    const p = parseWave(w);
    const want = 'count' in p ? p.count : Math.ceil(p.share * n - 1e-9);
    const t = Math.min(n, Math.max(prev + 1, want));
    out.push(t);
    prev = t;
  }
  if (out.length && out[out.length - 1]! < n) out[out.length - 1] = n;
  return out;
}

export function parseShare(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(v.trim());
  const p = m ? Number(m[1]) : NaN;
  if (!(p >= 0 && p <= 100)) throw new FleetError('E_FLEET_USAGE', `${flag}: "${v}" is not a share such as 50%`);
  return p / 100;
}

/** Validates what the operator asked for; throws FleetError('E_FLEET_USAGE') with the reason. */
export function rolloutSpec(o: { bundle: string; selector?: Labels | null; waves?: string[]; bake?: string | number; gates?: string[]; failureLimit?: number; maxIncompatible?: number }): RolloutSpec {
  if (!BUNDLE_RE.test(o.bundle)) throw new FleetError('E_FLEET_USAGE', `bundle id "${o.bundle}": the id \`patrol fleet bundle create\` printed (sha256:…)`);
  const waves = o.waves?.length ? o.waves.map((w) => w.trim()) : DEFAULT_WAVES;
  waves.forEach(parseWave);
  if (waves[waves.length - 1] !== '100%') throw new FleetError('E_FLEET_USAGE', `--waves: the last wave must be 100% (every node in scope), not ${waves[waves.length - 1]}`);
  const bakeMs = o.bake === undefined ? DEFAULT_BAKE_MS : parseDurationMs(o.bake);
  if (bakeMs === null || bakeMs < 1000 || bakeMs > 86_400_000) throw new FleetError('E_FLEET_USAGE', `--bake: "${String(o.bake)}" is not a duration from 1s to 1d (60s, 5m)`);
  const failureLimit = o.failureLimit ?? DEFAULT_FAILURE_LIMIT;
  if (!Number.isInteger(failureLimit) || failureLimit < 1 || failureLimit > 100) throw new FleetError('E_FLEET_USAGE', `--failure-limit: ${failureLimit} is not a whole number from 1 to 100`);
  const maxIncompatible = o.maxIncompatible ?? DEFAULT_MAX_INCOMPATIBLE;
  if (!(maxIncompatible >= 0 && maxIncompatible <= 1)) throw new FleetError('E_FLEET_USAGE', '--max-incompatible: a share from 0% to 100%');
  // --gate replaces the defaults; the bundle being applied is always a gate
  const texts = o.gates?.length ? o.gates : [...DEFAULT_GATES];
  const gates: string[] = [];
  for (const t of texts) {
    try {
      const g = compileGate(t).text;
      if (!gates.includes(g)) gates.push(g);
    } catch (e) {
      throw new FleetError('E_FLEET_USAGE', `--gate: ${(e as GateError).message}`);
    }
  }
  const applied = compileGate(APPLIED_GATE).text;
  if (!gates.includes(applied)) gates.unshift(applied);
  return { bundle: o.bundle, selector: o.selector && Object.keys(o.selector).length ? o.selector : null, waves, bakeMs, gates, failureLimit, maxIncompatible };
}

/** How often the controller reads the gates: five times per bake, between 1 s and 10 s. */
export const evalIntervalMs = (bakeMs: number): number => Math.min(10_000, Math.max(1000, Math.round(bakeMs / 5)));

export function describeSpec(s: { waves: string[]; bake_ms: number; failure_limit: number; max_incompatible: number }): string {
  return `waves ${s.waves.join(',')} · bake ${formatDurationMs(s.bake_ms)} · failure limit ${s.failure_limit} · at most ${Math.round(s.max_incompatible * 100)}% incompatible per wave`;
}
