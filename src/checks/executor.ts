// Executor: runs compiled checks on their schedules with a concurrency limit and a per-check
// timeout, turns condition outcomes into states (with `for` hysteresis), and raises alerts on
// state changes, deduplicated and guarded against flapping.
//
// Timeouts: a run races its evaluation against a timer on the injected clock. When the timer
// wins the run ends `timeout` at once, whatever the collector is doing; the collector's promise
// is abandoned (its AbortSignal fires so well-behaved collectors stop early), and its late result
// is ignored. A run still in progress when its next turn comes skips that turn.
import { createHash } from 'node:crypto';
import type { AlertState, CompiledCheck } from './checker.js';
import { evalCondition, newMemory, Unavailable, type CheckMemory, type EvidenceValue } from './evaluator.js';
import type { CheckSources } from './sources.js';
import { realClock, type Clock } from './clock.js';

export type CheckState = 'ok' | 'warning' | 'critical' | 'unknown' | 'timeout';

export const STATE_EXIT_CODES: Record<CheckState, number> = { ok: 0, warning: 1, critical: 2, unknown: 3, timeout: 3 };

export interface ConditionEvidence {
  severity: 'warning' | 'critical';
  condition: string;
  /** the raw outcome this run; null when a value was unavailable */
  fired: boolean | null;
  /** fired and held for its `for` duration: this is what sets the state */
  holding: boolean;
  for_s: number;
  /** fired, but not yet for long enough: seconds it has held so far */
  pending_s?: number;
  /** grouped conditions: the groups that fired */
  groups?: string[];
  error?: string;
}

export interface CheckResult {
  check_id: string;
  name: string;
  file: string;
  state: CheckState;
  /** ms since the epoch, start of the run */
  at: number;
  duration_ms: number;
  labels: Record<string, string>;
  message: string;
  evidence: { conditions: ConditionEvidence[]; values: EvidenceValue[]; error?: string };
  /** version of the check set this run was started under (setChecks); absent when the caller
   *  gave none (patrol check, replays) */
  version?: string;
}

export type AlertKind = 'firing' | 'resolved' | 'flapping' | 'flapping_end';

export interface Alert {
  /** stable: 16 hex digits of sha256(check_id, at, kind, state) */
  id: string;
  check_id: string;
  name: string;
  kind: AlertKind;
  state: CheckState;
  /** the state the previous alert announced ('ok' before any) */
  previous: CheckState;
  at: number;
  message: string;
  labels: Record<string, string>;
  evidence: CheckResult['evidence'];
  /** version of the check set whose run raised it */
  version?: string;
}

export interface FlapOptions {
  /** results considered */
  window: number;
  /** state changes within the window that mean flapping */
  enter: number;
  /** flapping ends when changes within the window fall to this */
  exit: number;
}

export interface ExecutorOptions {
  sources: CheckSources;
  clock?: Clock;
  /** checks evaluated at the same time (default 4) */
  concurrency?: number;
  /** "now" on the event counters' clock (default: the clock's now) */
  eventNow?: () => number;
  onResult?: (r: CheckResult) => void;
  onAlert?: (a: Alert) => void;
  flap?: Partial<FlapOptions>;
  /** runs before queued checks start (the agent hands its consumers what the kernel has
   *  written, so event counters and the process list are current); a throw is ignored */
  beforeRun?: () => void;
}

interface Runtime {
  check: CompiledCheck;
  memory: CheckMemory;
  since: (number | null)[];
  nextDue: number;
  running: boolean;
  states: CheckState[];
  alerted: CheckState;
  flapping: boolean;
  last: CheckResult | null;
}

const alertId = (checkId: string, at: number, kind: string, state: string) =>
  createHash('sha256').update(`${checkId}\0${at}\0${kind}\0${state}`).digest('hex').slice(0, 16);

export class Executor {
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly flap: FlapOptions;
  private runtimes = new Map<string, Runtime>();
  private queue: Runtime[] = [];
  private active = 0;
  private timer: unknown = null;
  private started = false;
  private idleWaiters: (() => void)[] = [];
  private seed = new Map<string, CheckState>();
  /** runs skipped because the previous run of the same check was still going */
  skipped = 0;
  runs = 0;
  /** version of the running set (setChecks) */
  version: string | undefined = undefined;

  constructor(private readonly opts: ExecutorOptions) {
    this.clock = opts.clock ?? realClock;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.flap = { window: 10, enter: 4, exit: 1, ...opts.flap };
  }

  /** The state each check's last alert announced (from the store), so that a restart does not
   *  alert again about a state already announced. Call before setChecks. */
  seedAlerted(states: ReadonlyMap<string, string>): void {
    for (const [id, st] of states) if (['ok', 'warning', 'critical', 'unknown', 'timeout'].includes(st)) this.seed.set(id, st as CheckState);
  }

  /** Replaces the check set at once. A check whose id and definition are unchanged keeps its
   *  state (hysteresis, alerts, schedule); others start fresh. Runs started from here on carry
   *  `version`. */
  setChecks(checks: readonly CompiledCheck[], version?: string): void {
    this.version = version;
    const next = new Map<string, Runtime>();
    const now = this.clock.now();
    for (const c of checks) {
      const old = this.runtimes.get(c.id);
      if (old !== undefined && sameDefinition(old.check, c)) {
        old.check = c;
        next.set(c.id, old);
      } else {
        next.set(c.id, {
          check: c, memory: newMemory(), since: c.conditions.map(() => null), nextDue: now, running: false, states: [], alerted: old?.alerted ?? this.seed.get(c.id) ?? 'ok', flapping: false, last: null,
        });
      }
    }
    this.runtimes = next;
    this.queue = this.queue.filter((r) => next.get(r.check.id) === r);
    if (this.started) this.arm();
  }

  get checks(): CompiledCheck[] {
    return [...this.runtimes.values()].map((r) => r.check);
  }

  /** Latest result of every check that has run. */
  latest(): CheckResult[] {
    return [...this.runtimes.values()].flatMap((r) => (r.last ? [r.last] : []));
  }

  start(): void {
    this.started = true;
    this.arm();
  }

  stop(): void {
    this.started = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
  }

  /** Runs every check once now (concurrency-limited) and resolves with the results in check
   *  order. For `patrol check` and replays; independent of start(). */
  async runAll(): Promise<CheckResult[]> {
    const rts = [...this.runtimes.values()];
    const out: CheckResult[] = new Array(rts.length);
    let k = 0;
    const worker = async () => {
      while (k < rts.length) {
        const i = k++;
        out[i] = await this.runOne(rts[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, rts.length) }, worker));
    return out;
  }

  /** Runs the checks matching `pred` now, off their schedule (which stays as it was): for
   *  checks whose data changes at a moment the caller sees (the agent's loss counter). A check
   *  already running or queued is left alone. */
  runNow(pred: (c: CompiledCheck) => boolean): void {
    if (!this.started) return;
    for (const r of this.runtimes.values()) if (pred(r.check) && !r.running && !this.queue.includes(r)) this.queue.push(r);
    this.pump();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private arm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (!this.started || this.runtimes.size === 0) return;
    let due = Infinity;
    for (const r of this.runtimes.values()) due = Math.min(due, r.nextDue);
    this.timer = this.clock.setTimeout(() => this.tick(), Math.max(0, due - this.clock.now()));
  }

  private tick(): void {
    this.timer = null;
    const now = this.clock.now();
    for (const r of this.runtimes.values()) {
      if (r.nextDue > now) continue;
      // next turn on the grid; turns missed while busy or asleep are skipped, not queued
      const every = r.check.everyMs;
      r.nextDue += Math.max(1, Math.ceil((now - r.nextDue + 1) / every)) * every;
      if (r.running || this.queue.includes(r)) {
        this.skipped++;
        continue;
      }
      this.queue.push(r);
    }
    this.pump();
    this.arm();
  }

  private pump(): void {
    if (this.opts.beforeRun && this.active < this.concurrency && this.queue.length > 0) {
      try {
        this.opts.beforeRun();
      } catch {
        // stale inputs for this run rather than no run
      }
    }
    while (this.active < this.concurrency && this.queue.length > 0) {
      const r = this.queue.shift()!;
      this.active++;
      void this.runOne(r).finally(() => {
        this.active--;
        this.pump();
        if (this.active === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async runOne(rt: Runtime): Promise<CheckResult> {
    rt.running = true;
    const c = rt.check;
    const at = this.clock.now();
    // the set this run belongs to: a swap while it runs does not change whose result it is
    const version = this.version;
    const ac = new AbortController();
    let timer: unknown = null;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('timeout'), c.timeoutMs);
    });
    let result: CheckResult;
    try {
      const outcome = await Promise.race([this.evaluate(rt, at, ac.signal), timedOut]);
      if (outcome === 'timeout') {
        ac.abort();
        result = this.timeoutResult(rt, at);
      } else result = outcome;
    } catch (e) {
      result = this.baseResult(rt, at, 'unknown', `internal error: ${(e as Error).message}`, { conditions: [], values: [], error: (e as Error).message });
    } finally {
      this.clock.clearTimeout(timer);
      rt.running = false;
    }
    if (version !== undefined) result.version = version;
    this.runs++;
    // a check replaced while it ran: its result belongs to a set that is gone
    if (this.runtimes.get(c.id) !== rt) return result;
    rt.last = result;
    this.opts.onResult?.(result);
    this.transition(rt, result);
    return result;
  }

  private baseResult(rt: Runtime, at: number, state: CheckState, message: string, evidence: CheckResult['evidence']): CheckResult {
    const c = rt.check;
    return { check_id: c.id, name: c.name, file: c.file, state, at, duration_ms: this.clock.now() - at, labels: c.labels, message, evidence };
  }

  private timeoutResult(rt: Runtime, at: number): CheckResult {
    const c = rt.check;
    const action = c.onTimeout;
    const state: CheckState = action === 'critical' || action === 'warning' || action === 'unknown' ? action : 'timeout';
    const msg = `no result within ${c.timeoutMs / 1000}s`;
    return this.baseResult(rt, at, state, msg, { conditions: [], values: [], error: msg });
  }

  private async evaluate(rt: Runtime, at: number, signal: AbortSignal): Promise<CheckResult> {
    const c = rt.check;
    const values: EvidenceValue[] = [];
    const conds: ConditionEvidence[] = [];
    const eventNowMs = this.opts.eventNow ? this.opts.eventNow() : at;
    const cache = new Map();
    for (let i = 0; i < c.conditions.length; i++) {
      const cond = c.conditions[i]!;
      const ev: ConditionEvidence = { severity: cond.severity, condition: cond.text, fired: null, holding: false, for_s: cond.forMs / 1000 };
      try {
        const r = await evalCondition(cond, { sources: this.opts.sources, nowMs: at, eventNowMs, memory: rt.memory, evidence: values, signal, cache });
        ev.fired = r.fired;
        if (r.groups && r.groups.length) ev.groups = r.groups;
        if (r.fired) {
          rt.since[i] ??= at;
          const held = at - rt.since[i]!;
          ev.holding = held >= cond.forMs;
          if (!ev.holding) ev.pending_s = held / 1000;
        } else rt.since[i] = null;
      } catch (e) {
        if (signal.aborted) throw e;
        // unknown: the hysteresis clock neither starts nor resets
        ev.error = e instanceof Unavailable ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
      }
      conds.push(ev);
    }
    const state: CheckState = conds.some((x) => x.holding && x.severity === 'critical')
      ? 'critical'
      : conds.some((x) => x.holding && x.severity === 'warning')
        ? 'warning'
        : conds.some((x) => x.fired === null)
          ? 'unknown'
          : 'ok';
    return this.baseResult(rt, at, state, message(state, conds, values), { conditions: conds, values });
  }

  private transition(rt: Runtime, r: CheckResult): void {
    const c = rt.check;
    if (r.state === 'timeout' && c.onTimeout === 'ignore') return;
    rt.states.push(r.state);
    if (rt.states.length > this.flap.window + 1) rt.states.shift();
    let changes = 0;
    for (let i = 1; i < rt.states.length; i++) if (rt.states[i] !== rt.states[i - 1]) changes++;
    const emit = (kind: AlertKind, state: CheckState) => {
      const a: Alert = {
        id: alertId(c.id, r.at, kind, state), check_id: c.id, name: c.name, kind, state, previous: rt.alerted, at: r.at, message: r.message, labels: c.labels, evidence: r.evidence,
        ...(r.version !== undefined ? { version: r.version } : {}),
      };
      this.opts.onAlert?.(a);
    };
    if (!rt.flapping && changes >= this.flap.enter) {
      rt.flapping = true;
      emit('flapping', r.state);
      return;
    }
    if (rt.flapping) {
      if (changes > this.flap.exit) return;
      rt.flapping = false;
      emit('flapping_end', r.state);
    }
    if (r.state === rt.alerted) return;
    if (r.state === 'ok') {
      emit('resolved', 'ok');
      rt.alerted = 'ok';
    } else if (c.alertOn.has(r.state as AlertState)) {
      emit('firing', r.state);
      rt.alerted = r.state;
    }
  }
}

function message(state: CheckState, conds: ConditionEvidence[], values: EvidenceValue[]): string {
  const shown = values.slice(0, 4).map((v) => `${v.field} = ${v.text}`).join(', ');
  if (state === 'ok') {
    const pending = conds.find((c) => c.fired && !c.holding);
    return pending ? `ok (${pending.severity} pending ${pending.pending_s}s of ${pending.for_s}s): ${shown}` : `ok: ${shown}`;
  }
  if (state === 'unknown') return `unknown: ${conds.find((c) => c.error)?.error ?? 'no value'}`;
  const c = conds.find((x) => x.holding && x.severity === state)!;
  return `${state}: ${c.condition}${c.groups ? ` [${c.groups.slice(0, 5).join(', ')}]` : ''}${shown ? ` (${shown})` : ''}`;
}

function sameDefinition(a: CompiledCheck, b: CompiledCheck): boolean {
  const key = (c: CompiledCheck) =>
    JSON.stringify([c.everyMs, c.timeoutMs, c.onTimeout, [...c.alertOn].sort(), c.labels, c.conditions.map((x) => [x.severity, x.text, x.forMs])]);
  return key(a) === key(b);
}
