// The rollout controller (docs/fleet.md, "Rollouts"), run by the fenced leader on its refresh
// tick over its mirror of the fleet. One rollout at a time, oldest first. Its whole state is in
// etcd (rollout.ts), and each step is one transaction that is fenced (the leader's term) and
// compares the rollout's mod revision: the rollout's new state, the desired writes that tell
// nodes to change, their per-node records and the history entries land together or not at all.
// A controller that takes over therefore neither repeats nor skips a step, tells no node twice,
// and never tells more nodes than the current wave holds.
//
// A wave: tell its nodes (desired/node/<node> = the bundle), then read the gates every
// evalIntervalMs over every node told so far (incompatible nodes aside). The wave passes when
// they held on every reading for the whole bake; a reading that fails counts, and
// failure_limit in a row roll back every node told. A node that does not report pauses the
// rollout (missing data is never a pass); a node not yet done applying holds the bake back.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../shared/log.js';
import { compileGate, evalGate, type CompiledGate, type Scalar } from '../checks/index.js';
import type { Compare, EtcdClient, Op } from './client.js';
import { effectiveDesired, type DesiredEntries } from './desired.js';
import { describeEtcdError } from './errors.js';
import { DesiredValue, SCHEMA, decode, encode, formatSelector, selectorMatches, type Keys, type ObservedValue } from './keys.js';
import type { FleetMirror } from './mirror.js';
import { readBundleMeta } from './bundle-store.js';
import { evalIntervalMs, waveTargets, RolloutNodeValue, type GateSummary, type Reading, type RolloutEvent, type RolloutValue } from './rollout.js';

export type TxnOutcome = 'ok' | 'stale' | 'fenced';

export interface ControllerHost {
  node: string;
  term(): number | null;
  /** a fenced transaction with compares of the caller's: 'stale' when one of those failed */
  txn(cmp: Compare[], ops: Op[], what: string): Promise<{ outcome: TxnOutcome; revision: number }>;
  log: Logger;
}

/** Nodes per transaction: two ops each (desired key, node record) under etcd's default limit of
 *  128 operations per transaction, with room for the rollout and its history. */
const CHUNK = 50;
const NUMERIC_FIELDS = ['lost_rate', 'agent_cpu', 'agent_rss', 'checks_critical', 'checks_warning', 'alerts_firing'] as const;
/** evidence lists are cut to this many nodes */
const EVIDENCE_NODES = 10;

/** A node's gate fields from its observed state, in base units. */
export function gateFields(o: ObservedValue, bundle: string): Record<string, Scalar> {
  const ba = o.bundle_apply ?? null;
  return {
    lost_rate: o.lost_rate,
    agent_cpu: o.agent_cpu / 100,
    agent_rss: o.agent_rss,
    reload_result: ba && ba.target === bundle && ba.result !== 'pending' && ba.result !== 'none' ? ba.result : null,
    checks_critical: o.checks_critical,
    checks_warning: o.checks.warning ?? 0,
    alerts_firing: o.alerts_firing,
    health: o.health.status,
  };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface EventIn {
  kind: RolloutEvent['kind'];
  wave: number;
  message: string;
  evidence?: unknown;
  at?: string;
}

interface Cached {
  id: string;
  term: number;
  records: Map<string, RolloutNodeValue>;
}

export class RolloutController {
  private cache: Cached | null = null;
  private gates = new Map<string, CompiledGate[]>();
  private lastEval = new Map<string, number>();
  private busy = false;
  lastError: string | null = null;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: Keys,
    private readonly mirror: FleetMirror,
    private readonly h: ControllerHost,
  ) {}

  async tick(): Promise<void> {
    if (this.busy || !this.mirror.ready) return;
    this.busy = true;
    try {
      const active = [...this.mirror.rollouts.values()].filter((r) => ['pending', 'running', 'paused', 'rolling_back'].includes(r.value.state)).sort((a, b) => (a.value.id < b.value.id ? -1 : 1))[0];
      if (active) await this.step(active.value, active.modRevision);
      this.lastError = null;
    } catch (e) {
      this.lastError = describeEtcdError(e);
      this.h.log.warn({ err: this.lastError }, 'fleet: rollout step failed; retrying at the next tick');
    } finally {
      this.busy = false;
    }
  }

  // ---------------------------------------------------------------- writes

  /** The rollout's next state with `events` appended to its history, plus `ops`, in one fenced
   *  transaction that holds only if nobody changed the rollout since `mod`. */
  private async write(v: RolloutValue, mod: number, patch: Partial<RolloutValue>, events: EventIn[], ops: Op[] = [], what = 'rollout'): Promise<boolean> {
    const now = new Date().toISOString();
    const term = this.h.term();
    const next: RolloutValue = { ...v, ...patch, seq: v.seq + events.length, controller: term === null ? null : { node: this.h.node, term }, updated_at: now };
    const all: Op[] = [...ops, { put: this.keys.rollout(v.id), value: encode(next) }];
    events.forEach((e, i) => {
      const ev: RolloutEvent = { schema: SCHEMA, rollout: v.id, seq: v.seq + i + 1, by: this.h.node, term, kind: e.kind, wave: e.wave, message: e.message, at: e.at ?? now, ...(e.evidence !== undefined ? { evidence: e.evidence } : {}) };
      all.push({ put: this.keys.rolloutEvent(v.id, ev.seq), value: encode(ev) });
    });
    const r = await this.h.txn([{ key: this.keys.rollout(v.id), target: 'mod', op: '=', value: mod }], all, `${what} ${v.id}`);
    if (r.outcome !== 'ok') {
      // someone (an operator's request, an earlier term) wrote it: start from etcd again
      this.cache = null;
      return false;
    }
    this.mirror.rollouts.set(v.id, { value: next, modRevision: r.revision });
    for (const e of events) this.h.log.info({ rollout: v.id, kind: e.kind, wave: e.wave }, `rollout: ${e.message}`);
    return true;
  }

  private async records(v: RolloutValue): Promise<Map<string, RolloutNodeValue>> {
    const term = this.h.term() ?? -1;
    if (this.cache && this.cache.id === v.id && this.cache.term === term) return this.cache.records;
    const r = await this.client.readPrefix(this.keys.rolloutNodes(v.id));
    const m = new Map<string, RolloutNodeValue>();
    for (const kv of r.kvs) {
      const x = decode(RolloutNodeValue, kv.value);
      if (x) m.set(x.node, x);
    }
    this.cache = { id: v.id, term, records: m };
    return m;
  }

  private compiled(v: RolloutValue): CompiledGate[] {
    let g = this.gates.get(v.id);
    if (!g) {
      g = v.gates.map((t) => compileGate(t));
      this.gates.set(v.id, g);
    }
    return g;
  }

  // ---------------------------------------------------------------- steps

  private async step(v: RolloutValue, mod: number): Promise<void> {
    if (v.request) return this.request(v, mod);
    switch (v.state) {
      case 'pending':
        return this.start(v, mod);
      case 'running':
      case 'paused':
        if (v.promoted_at) return this.complete(v, mod);
        // an operator's pause holds everything, telling the next wave too
        if (v.state === 'paused' && v.pause?.by === 'operator') return;
        if (v.told < (v.targets[v.wave] ?? 0)) return this.tell(v, mod);
        return this.evaluate(v, mod);
      case 'rolling_back':
        return this.rollBack(v, mod);
    }
  }

  private async request(v: RolloutValue, mod: number): Promise<void> {
    const rq = v.request!;
    const ev = (kind: RolloutEvent['kind'], message: string) => [{ kind, wave: v.wave, message, evidence: { request: rq } }];
    if (rq.action === 'abort') {
      if (v.state === 'pending' || v.told === 0) {
        await this.write(v, mod, { request: null, state: 'aborted', ended_at: new Date().toISOString(), result: `aborted by ${rq.by} before any node was told` }, ev('aborted', `aborted by ${rq.by}`));
      } else {
        await this.write(v, mod, { request: null, state: 'rolling_back', rollback: { reason: `aborted by ${rq.by}`, at: new Date().toISOString(), restored: 0, aborted: true } }, ev('rollback', `aborted by ${rq.by}: rolling back the ${v.told} node(s) told`));
      }
    } else if (rq.action === 'pause') {
      const state = v.state === 'pending' ? 'pending' : 'paused';
      await this.write(v, mod, { request: null, state, pause: { by: 'operator', at: rq.at, reason: `paused by ${rq.by}` }, bake_since: null }, ev('paused', `paused by ${rq.by}`));
    } else {
      const state = v.state === 'paused' ? 'running' : v.state;
      await this.write(v, mod, { request: null, state, pause: null, bake_since: null }, ev('resumed', `resumed by ${rq.by}`));
    }
  }

  private async start(v: RolloutValue, mod: number): Promise<void> {
    const fail = (result: string) => this.write(v, mod, { state: 'failed', ended_at: new Date().toISOString(), result }, [{ kind: 'failed', wave: -1, message: result }]);
    if (v.pause?.by === 'operator') return;
    if ((await readBundleMeta(this.client, this.keys, v.bundle)) === null) return void (await fail(`bundle ${v.bundle} is not in etcd: push it first (patrol fleet bundle push FILE)`));
    const sel = v.selector ?? {};
    const order = [...this.mirror.nodes.values()].filter((n) => selectorMatches(sel, n.labels)).map((n) => n.node).sort();
    if (order.length === 0) return void (await fail(`no node is up that matches ${v.selector ? formatSelector(v.selector) : 'the fleet'}`));
    const targets = waveTargets(v.waves, order.length);
    const baseline: Record<string, number | null> = {};
    for (const f of NUMERIC_FIELDS) {
      baseline[f] = median(order.map((n) => this.mirror.observed.get(n)).filter((o): o is ObservedValue => !!o).map((o) => gateFields(o, v.bundle)[f]).filter((x): x is number => typeof x === 'number'));
    }
    const down = [...this.mirror.members.keys()].filter((n) => !this.mirror.nodes.has(n) && selectorMatches(sel, this.mirror.members.get(n)!.labels));
    const sizes = targets.map((t, i) => t - (targets[i - 1] ?? 0));
    await this.write(
      v, mod,
      { state: v.state === 'paused' ? 'paused' : 'running', started_at: new Date().toISOString(), order, targets, wave: 0, told: 0, baseline_start: baseline },
      [{
        kind: 'start', wave: 0,
        message: `started: ${order.length} node(s) in scope, waves of ${sizes.join(', ')}${targets.length < v.waves.length ? ` (${v.waves.length - targets.length} empty wave(s) dropped)` : ''}`,
        evidence: { order, targets, sizes, baseline_start: baseline, down_at_start: down },
      }],
    );
  }

  /** Tells the current wave's next nodes (at most CHUNK per transaction, never past the wave). */
  private async tell(v: RolloutValue, mod: number): Promise<void> {
    const end = v.targets[v.wave]!;
    const nodes = v.order.slice(v.told, Math.min(end, v.told + CHUNK));
    const records = await this.records(v);
    const now = new Date().toISOString();
    const prev = await Promise.all(nodes.map((n) => this.client.get(this.keys.desiredNode(n))));
    const ops: Op[] = [];
    const made: RolloutNodeValue[] = [];
    nodes.forEach((n, i) => {
      const kv = prev[i]!.kv;
      const o = this.mirror.observed.get(n);
      const f = o ? gateFields(o, v.bundle) : {};
      const rec: RolloutNodeValue = {
        schema: SCHEMA, node: n, wave: v.wave, told_at: now,
        previous_key: kv ? decode(DesiredValue, kv.value) : null,
        previous_bundle: o?.bundle ?? null,
        before: Object.fromEntries(NUMERIC_FIELDS.map((k) => [k, (f[k] as number | undefined) ?? null])),
        incompatible: null, restored_at: null,
      };
      made.push(rec);
      ops.push({ put: this.keys.desiredNode(n), value: encode({ schema: SCHEMA, bundle: v.bundle, set_at: now, set_by: `rollout ${v.id}`, rollout: v.id }) });
      ops.push({ put: this.keys.rolloutNode(v.id, n), value: encode(rec) });
    });
    const ok = await this.write(v, mod, { told: v.told + nodes.length, bake_since: null }, [
      { kind: 'told', wave: v.wave, message: `wave ${v.wave + 1}/${v.targets.length}: told ${nodes.join(', ')} to run ${v.bundle}`, evidence: { nodes, wave_size: end - (v.targets[v.wave - 1] ?? 0) } },
    ], ops, 'rollout: tell');
    if (ok) for (const r of made) records.set(r.node, r);
  }

  /** Reads the gates over every node told so far and decides. */
  private async evaluate(v: RolloutValue, mod: number): Promise<void> {
    const records = await this.records(v);
    const touched = v.order.slice(0, v.told);
    const now = Date.now();
    // newly incompatible nodes: recorded once, and left out of the gates from then on
    const newly: Array<{ node: string; code: string; reason: string }> = [];
    for (const n of touched) {
      const r = records.get(n);
      const ba = this.mirror.observed.get(n)?.bundle_apply;
      if (r && r.incompatible === null && ba && ba.target === v.bundle && ba.incompatible && ba.result.startsWith('rejected')) newly.push({ node: n, code: ba.code ?? 'E_BUNDLE', reason: ba.reason ?? '' });
    }
    if (newly.length) {
      const at = new Date().toISOString();
      const ops: Op[] = newly.map((x) => ({ put: this.keys.rolloutNode(v.id, x.node), value: encode({ ...records.get(x.node)!, incompatible: { code: x.code, reason: x.reason, at } }) }));
      const ok = await this.write(v, mod, { incompatible: v.incompatible + newly.length }, newly.map((x) => ({ kind: 'incompatible' as const, wave: v.wave, message: `${x.node} cannot run the bundle (${x.code}): skipped`, evidence: x })), ops, 'rollout: incompatible');
      if (ok) for (const x of newly) records.set(x.node, { ...records.get(x.node)!, incompatible: { code: x.code, reason: x.reason, at } });
      return;
    }
    const last = this.lastEval.get(v.id) ?? -Infinity;
    if (performance.now() - last < evalIntervalMs(v.bake_ms)) return;
    this.lastEval.set(v.id, performance.now());

    const reading = this.read(v, records, touched);
    const at = new Date(now).toISOString();
    if (reading.verdict === 'fail') {
      const failures = v.failures + 1;
      const failing = reading.gates.filter((g) => g.fail > 0).map((g) => g.gate);
      if (reading.incompatible) failing.push(`incompatible share ${Math.round(reading.incompatible.share * 100)}% > ${Math.round(reading.incompatible.max * 100)}%`);
      const ev = { kind: 'reading' as const, wave: v.wave, message: `wave ${v.wave + 1}: failing (${failures}/${v.failure_limit}): ${failing.join('; ')}`, evidence: reading };
      if (failures >= v.failure_limit) {
        const reason = `${failing.join('; ')} failed ${failures} time(s) in a row in wave ${v.wave + 1}`;
        await this.write(v, mod, { failures, last_reading: reading, bake_since: null, state: 'rolling_back', pause: null, rollback: { reason, at, restored: 0, aborted: false } }, [
          ev,
          { kind: 'rollback', wave: v.wave, message: `rolling back the ${v.told} node(s) told: ${reason}`, evidence: { failing: reading.gates.filter((g) => g.fail > 0), incompatible: reading.incompatible } },
        ]);
      } else {
        await this.write(v, mod, { failures, last_reading: reading, bake_since: null }, [ev]);
      }
      return;
    }
    if (reading.verdict === 'missing') {
      const silent = reading.gates.flatMap((g) => g.missing).filter((m) => m.why === 'not reporting').map((m) => m.node);
      const nodes = [...new Set(silent)];
      if (nodes.length && v.pause === null) {
        await this.write(v, mod, { state: 'paused', pause: { by: 'missing data', at, reason: `not reporting: ${nodes.slice(0, EVIDENCE_NODES).join(', ')}` }, bake_since: null, last_reading: reading }, [
          { kind: 'paused', wave: v.wave, message: `paused: missing data from ${nodes.slice(0, EVIDENCE_NODES).join(', ')} (never taken as a pass)`, evidence: reading },
        ]);
      } else if (v.bake_since !== null || sig(v.last_reading) !== sig(reading)) {
        await this.write(v, mod, { bake_since: null, last_reading: reading }, [{ kind: 'reading', wave: v.wave, message: `wave ${v.wave + 1}: waiting for ${reading.gates.flatMap((g) => g.missing).map((m) => `${m.node} (${m.why})`).filter((x, i, a) => a.indexOf(x) === i).slice(0, EVIDENCE_NODES).join(', ')}`, evidence: reading }]);
      }
      return;
    }
    // pass
    const events: EventIn[] = [];
    const patch: Partial<RolloutValue> = { failures: 0, last_reading: reading };
    if (v.pause?.by === 'missing data') {
      patch.state = 'running';
      patch.pause = null;
      events.push({ kind: 'resumed', wave: v.wave, message: 'resumed: every node reports again' });
    }
    if (v.bake_since === null) {
      patch.bake_since = at;
      events.push({ kind: 'reading', wave: v.wave, message: `wave ${v.wave + 1}: every gate holds on ${reading.nodes} node(s); baking for ${v.bake_ms / 1000}s`, evidence: reading });
      await this.write(v, mod, patch, events);
      return;
    }
    const baked = now - Date.parse(v.bake_since);
    if (baked >= v.bake_ms) {
      const lastWave = v.wave === v.targets.length - 1;
      events.push({ kind: 'wave_passed', wave: v.wave, message: `wave ${v.wave + 1}/${v.targets.length} passed: the gates held for ${Math.round(baked / 100) / 10}s on ${reading.nodes} node(s)`, evidence: reading });
      if (lastWave) {
        await this.write(v, mod, { ...patch, promoted_at: at }, events);
        return;
      }
      await this.write(v, mod, { ...patch, wave: v.wave + 1, bake_since: null }, events);
      return;
    }
    if (events.length || v.failures !== 0 || sig(v.last_reading) !== sig(reading)) await this.write(v, mod, patch, events);
  }

  /** One reading of every gate over the nodes told (incompatible ones aside). */
  private read(v: RolloutValue, records: Map<string, RolloutNodeValue>, touched: string[]): Reading {
    const gates = this.compiled(v);
    const touchedSet = new Set(touched);
    // the baseline: nodes in scope the rollout has not touched, else the scope at the start
    const base = v.order.filter((n) => !touchedSet.has(n) && this.mirror.nodes.has(n)).map((n) => this.mirror.observed.get(n)).filter((o): o is ObservedValue => !!o).map((o) => gateFields(o, v.bundle));
    const baseline = new Map<string, Scalar>();
    for (const f of NUMERIC_FIELDS) {
      const m = median(base.map((x) => x[f]).filter((x): x is number => typeof x === 'number'));
      baseline.set(f, m ?? v.baseline_start[f] ?? null);
    }
    const sums: GateSummary[] = gates.map((g) => ({ gate: g.text, pass: 0, fail: 0, unknown: 0, failing: [], missing: [] }));
    const active = touched.filter((n) => records.get(n)?.incompatible == null);
    for (const n of active) {
      const o = this.mirror.nodes.has(n) ? this.mirror.observed.get(n) : undefined;
      if (!o) {
        for (const s of sums) {
          s.unknown++;
          if (s.missing.length < EVIDENCE_NODES) s.missing.push({ node: n, why: 'not reporting' });
        }
        continue;
      }
      const f = gateFields(o, v.bundle);
      const rec = records.get(n);
      const cx = { field: (k: string) => f[k] ?? null, baseline: (k: string) => baseline.get(k) ?? null, before: (k: string) => (rec?.before[k] as Scalar | undefined) ?? null };
      gates.forEach((g, i) => {
        const r = evalGate(g, cx);
        const s = sums[i]!;
        if (r.value === true) s.pass++;
        else if (r.value === false) {
          s.fail++;
          if (s.failing.length < EVIDENCE_NODES) s.failing.push({ node: n, values: r.values });
        } else {
          s.unknown++;
          if (s.missing.length < EVIDENCE_NODES) s.missing.push({ node: n, why: f.reload_result === null ? 'bundle not applied yet' : `unknown: ${Object.entries(r.values).filter(([, x]) => x === 'unknown').map(([k]) => k).join(', ')}` });
        }
      });
    }
    const waveNodes = v.order.slice(v.targets[v.wave - 1] ?? 0, v.targets[v.wave]);
    const inc = waveNodes.filter((n) => records.get(n)?.incompatible != null).length;
    const share = waveNodes.length ? inc / waveNodes.length : 0;
    const over = share > v.max_incompatible + 1e-9 ? { share, max: v.max_incompatible } : null;
    const verdict: Reading['verdict'] = over || sums.some((s) => s.fail > 0) ? 'fail' : sums.some((s) => s.unknown > 0) ? 'missing' : 'pass';
    return { at: new Date().toISOString(), wave: v.wave, verdict, nodes: active.length, gates: sums, incompatible: over };
  }

  /** Puts back what every told node had, CHUNK at a time: desired/node/<node> as it was when
   *  that gives the node the bundle it ran before, else a key naming that bundle (a node can run
   *  another bundle than its desired one: it rejected that one). Then waits until each one
   *  reports it no longer runs the bundle (or a bound passes). */
  private async rollBack(v: RolloutValue, mod: number): Promise<void> {
    const records = await this.records(v);
    const told = v.order.slice(0, v.told);
    const todo = told.filter((n) => records.get(n) && records.get(n)!.restored_at === null).slice(0, CHUNK);
    if (todo.length) {
      const at = new Date().toISOString();
      const snap = await this.client.readPrefix(this.keys.desired);
      const entries: DesiredEntries = {};
      for (const kv of snap.kvs) entries[kv.key] = { bundle: decode(DesiredValue, kv.value)?.bundle ?? null, mod_revision: kv.modRevision };
      const ops: Op[] = [];
      const how: Array<{ node: string; previous_bundle: string | null; restored: string }> = [];
      for (const n of todo) {
        const r = records.get(n)!;
        const nk = this.keys.desiredNode(n);
        const labels = this.mirror.nodes.get(n)?.labels ?? this.mirror.members.get(n)?.labels ?? null;
        const restored = { ...entries };
        if (r.previous_key) restored[nk] = { bundle: r.previous_key.bundle, mod_revision: 0 };
        else delete restored[nk];
        const gives = labels ? effectiveDesired(restored, this.keys, n, labels).bundle : r.previous_bundle;
        if (gives === r.previous_bundle || r.previous_bundle === null) {
          ops.push(r.previous_key ? { put: nk, value: encode(r.previous_key) } : { del: nk });
          how.push({ node: n, previous_bundle: r.previous_bundle, restored: r.previous_key ? `desired/node/${n} as it was (${r.previous_key.bundle})` : `desired/node/${n} removed` });
        } else {
          ops.push({ put: nk, value: encode({ schema: SCHEMA, bundle: r.previous_bundle, set_at: at, set_by: `rollout ${v.id} (rollback)`, rollout: v.id }) });
          how.push({ node: n, previous_bundle: r.previous_bundle, restored: `desired/node/${n} = ${r.previous_bundle} (its desired state named another bundle)` });
        }
        ops.push({ put: this.keys.rolloutNode(v.id, n), value: encode({ ...r, restored_at: at }) });
      }
      const ok = await this.write(v, mod, { rollback: { ...v.rollback!, restored: v.rollback!.restored + todo.length } }, [
        { kind: 'restored', wave: v.wave, message: `restored the desired state of ${todo.join(', ')}`, evidence: { nodes: how } },
      ], ops, 'rollout: restore');
      if (ok) for (const n of todo) records.set(n, { ...records.get(n)!, restored_at: at });
      return;
    }
    // every node told has its desired state back: wait until each runs what it ran before
    const waiting = told.filter((n) => {
      const o = this.mirror.nodes.has(n) ? this.mirror.observed.get(n) : undefined;
      if (!o) return true;
      return o.bundle === v.bundle || o.bundle_apply?.result === 'pending';
    });
    const since = Date.parse(v.rollback!.at);
    const bound = Math.max(60_000, 2 * v.bake_ms);
    if (waiting.length && Date.now() - since < bound) return;
    const final = v.rollback!.aborted ? 'aborted' : 'rolled_back';
    const result = `${v.rollback!.aborted ? 'aborted' : 'rolled back'}: ${v.rollback!.reason}; ${told.length - waiting.length}/${told.length} node(s) back on their previous bundle${waiting.length ? ` (not confirmed within ${bound / 1000}s: ${waiting.slice(0, EVIDENCE_NODES).join(', ')})` : ''}`;
    await this.write(v, mod, { state: final, ended_at: new Date().toISOString(), result }, [
      { kind: 'rolled_back', wave: v.wave, message: result, evidence: { back: told.filter((n) => !waiting.includes(n)).map((n) => ({ node: n, bundle: this.mirror.observed.get(n)?.bundle ?? null })), unconfirmed: waiting } },
    ]);
  }

  /** The last wave passed: the rollout's selector key (or desired/all) names the bundle, so
   *  nodes that join later get it too, and the per-node keys the rollout wrote go where they
   *  are no longer needed (where the node's effective bundle stays the same without them). */
  private async complete(v: RolloutValue, mod: number): Promise<void> {
    const key = v.selector ? this.keys.desiredSelector(v.selector) : this.keys.desiredAll;
    const snap = await this.client.readPrefix(this.keys.desired);
    const cur = snap.kvs.find((kv) => kv.key === key);
    const curV = cur ? decode(DesiredValue, cur.value) : null;
    if (!curV || curV.bundle !== v.bundle) {
      const now = new Date().toISOString();
      const ok = await this.write(v, mod, {}, [], [{ put: key, value: encode({ schema: SCHEMA, bundle: v.bundle, set_at: now, set_by: `rollout ${v.id}`, rollout: v.id }) }], 'rollout: promote');
      if (!ok) return;
      return;
    }
    const entries: DesiredEntries = {};
    for (const kv of snap.kvs) {
      const d = decode(DesiredValue, kv.value);
      entries[kv.key] = { bundle: d?.bundle ?? null, mod_revision: kv.modRevision };
    }
    const dels: string[] = [];
    for (const n of v.order.slice(0, v.told)) {
      const nk = this.keys.desiredNode(n);
      const kv = snap.kvs.find((x) => x.key === nk);
      const d = kv ? (decode(DesiredValue, kv.value) as (DesiredValue & { rollout?: string }) | null) : null;
      if (!d || d.rollout !== v.id) continue;
      const labels = this.mirror.nodes.get(n)?.labels ?? this.mirror.members.get(n)?.labels;
      if (!labels) continue;
      const without = { ...entries };
      delete without[nk];
      if (effectiveDesired(without, this.keys, n, labels).bundle === v.bundle) dels.push(nk);
    }
    if (dels.length > CHUNK) {
      await this.write(v, mod, {}, [], dels.slice(0, CHUNK).map((k) => ({ del: k })), 'rollout: promote');
      return;
    }
    const on = v.order.slice(0, v.told).length - v.incompatible;
    const result = `completed: ${on} node(s) run ${v.bundle}${v.incompatible ? `, ${v.incompatible} incompatible skipped` : ''}; ${key.slice(this.keys.prefix.length)} names it`;
    await this.write(v, mod, { state: 'completed', ended_at: new Date().toISOString(), result }, [{ kind: 'completed', wave: v.wave, message: result, evidence: { key: key.slice(this.keys.prefix.length), node_keys_removed: dels.length } }], dels.map((k) => ({ del: k })), 'rollout: complete');
  }
}

/** What makes two readings worth recording apart (not their time). */
function sig(r: Reading | null): string {
  if (!r) return '';
  return JSON.stringify([r.verdict, r.wave, r.nodes, r.incompatible, r.gates.map((g) => [g.fail, g.unknown, g.failing.map((x) => x.node), g.missing.map((x) => `${x.node}:${x.why}`)])]);
}
