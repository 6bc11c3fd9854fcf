// The attribution engine: takes every source's records, hands each to the rules that can fire on
// it, walks those rules' decision trees, and keeps what they find. The pieces:
//   rule-index.ts     which rules each input is offered to, built once per rule set
//   trigger-index.ts  the gates: which events can fire a rule (exit classes, field tests)
//   event-fields.ts   an event's fields, read one at a time or as a record
//   event-view.ts     the event as gates read it (no allocation) and as a tree run gets it
//   scope.ts          a tree run's view of the event: process facts, windows, history figures
//   findings.ts       recording, merging and ranking findings; evidence is built there
//   kernel-join.ts    kernel lines waiting for the process they name
//   line-prefilter.ts one RE2.Set scan per line
//   history.ts        counters and rings of recent exits and execs
import type { LifecycleEvent, StateEvent } from '../shared/events.js';
import type { SourceKind } from './catalogue.js';
import type { EventContext } from './event-fields.js';
import { EventReader, lifecycleTrigger, plainTrigger, stateTrigger } from './event-view.js';
import type { AlertLike, NodeStateFacts, ProcessFacts, RuleClock, WindowFacts } from './facts.js';
import { FindingStore, rank, type Finding, type RankedCause } from './findings.js';
import { History, commandKey, type HistoryLimits } from './history.js';
import { DEFER_NS, DeferredLines } from './kernel-join.js';
import type { RuleSet } from './loader.js';
import { Scope, msOf, type EngineFacts, type ScopeHost, type Trigger } from './scope.js';
import { decide, type CompiledRule } from './tree.js';
import { evalGate, exitClass, type Gate } from './trigger-index.js';
import { RuleIndex, type RuleProfile } from './rule-index.js';
import { convert, type Value } from './units.js';
import { PredictionLedger, predictionsIn } from './predictions.js';
import { DOUBLE_ZERO } from '../shared/numbers.js';

export interface EngineOptions {
  clock: RuleClock;
  processes?: ProcessFacts;
  windows?: WindowFacts;
  states?: NodeStateFacts;
  maxFindings?: number;
  /** findings with the same cause and key closer than this merge (default 10 min) */
  mergeMs?: number;
  history?: HistoryLimits;
  /** scan lines with one RE2.Set before the rules (default true; false is for comparison) */
  prefilter?: boolean;
}

export class RuleEngine implements ScopeHost {
  /** the running set's rules, by the inputs that can fire them (swapped whole by setRules) */
  private index = RuleIndex.EMPTY;
  /** time in the set scans, which no single rule owns */
  prefilterNs = 0;
  /** decision trees walked, all rules */
  treeRuns = 0;
  /** rule evaluations a gate turned away before any tree run */
  gateSkips = 0;
  private readonly profiles = new Map<string, RuleProfile>();
  private readonly findings: FindingStore;
  readonly history: History;
  /** evaluation errors (a throwing fact provider): counted, never propagated to the event path */
  errors = 0;
  private readonly deferred = new DeferredLines();
  private readonly reader = new EventReader(this);
  /** eta alerts of the checks, and whether the OOM kill or full disk they foresaw came */
  readonly predictions: PredictionLedger;

  constructor(private readonly opts: EngineOptions) {
    this.history = new History(opts.history);
    this.predictions = new PredictionLedger(opts.clock);
    this.findings = new FindingStore(this, opts.clock, { maxFindings: opts.maxFindings ?? 2000, mergeNs: BigInt(opts.mergeMs ?? 600_000) * 1_000_000n });
  }

  /** deferred evaluations: retried with the process, expired without it, dropped over the bound */
  get deferStats() {
    return this.deferred.stats;
  }

  /** Swaps the active rules in one step (the loader already compiled all of them). */
  setRules(set: RuleSet): void {
    this.index = RuleIndex.build(set.rules, (r) => this.profileOf(r), this.opts.prefilter !== false);
    this.findings.version = set.version;
  }

  /** A rule's profile, kept across sets by id: a reload does not reset its counters. */
  private profileOf(r: CompiledRule): RuleProfile {
    let p = this.profiles.get(r.id);
    if (!p) {
      // ns sums pass 2^30 within hours: doubles from the start (src/shared/numbers.ts)
      p = { rule: r.id, source: r.source, evaluations: 0, patternMatches: 0, treeRuns: 0, matches: 0, timeNs: DOUBLE_ZERO, maxNs: DOUBLE_ZERO };
      this.profiles.set(r.id, p);
    }
    return p;
  }

  get ruleCount(): number {
    return this.index.rules.length;
  }

  /** Files the log rules tail. */
  logPaths(): string[] {
    return [...this.index.logByPath.keys()];
  }

  /** The rules an event of `source` (and exit class) is offered to, for tests and profiles. */
  indexed(source: SourceKind, cls = 0): string[] {
    return (this.index.byEvent.get(source)?.[cls] ?? []).map((x) => x.rule.id);
  }

  // ------------------------------------------------------------------ sources

  onKmsg(rec: { tNs: bigint; level: number; facility: number; seq: bigint; message: string }): void {
    const rules = this.index.bySource.get('kmsg');
    if (!rules) return;
    this.runLine('kmsg', rules, {
      source: 'kmsg',
      tNs: rec.tNs,
      line: rec.message,
      fields: { line: rec.message, level: rec.level, facility: rec.facility, seq: Number(rec.seq) },
      summary: rec.message,
    });
  }

  onLogLine(file: string, line: string, tNs: bigint = this.opts.clock.nowNs()): void {
    const rules = this.index.logByPath.get(file);
    if (!rules) return;
    this.runLine(`log:${file}`, rules, { source: 'log', tNs, line, fields: { line, file }, summary: `${file}: ${line}` });
  }

  /** A lifecycle event: history counters first, then the rules the index offers it to. Nothing
   *  here allocates for an event no rule can fire on. */
  onLifecycle(ev: LifecycleEvent, en: EventContext): void {
    if (this.deferred.pending > 0 && (ev.type === 'exec' || ev.type === 'exit' || ev.type === 'fork')) this.retryDeferred(ev.pid, ev.ktimeNs);
    if (ev.type === 'fork') return;
    const tMs = msOf(ev.ktimeNs);
    const reader = this.reader;
    reader.lifecycle(ev, en, tMs);
    let cls = 0;
    if (ev.type === 'exec') {
      if (en.parentExecId) this.history.recordExec(en.parentExecId, tMs, en.execId, ev.comm.text, ev.pid);
    } else if (ev.type === 'exit') {
      this.history.recordWriter(tMs, en.execId, ev.pid, ev.comm.text, Number(ev.usage.writeBytes));
      cls = exitClass(ev.exitCode, ev.signal);
      if (ev.signal !== null || ev.exitCode !== 0) this.history.recordFailure(reader.command(), tMs, en.execId, ev.pid, ev.comm.text, ev.exitCode, ev.signal);
      this.findings.joinExit(en.execId, ev);
    }
    const list = this.index.byEvent.get(ev.type)?.[cls];
    if (list === undefined || list.length === 0) return;
    let t: Trigger | null = null;
    for (let i = 0; i < list.length; i++) {
      const x = list[i]!;
      x.profile.evaluations++;
      if (!x.always && !this.gate(x.gate)) continue;
      t ??= lifecycleTrigger(ev, en, this.reader);
      this.runRule(x.rule, t, x.profile);
    }
  }

  onState(ev: StateEvent, execId: string | null): void {
    const list = this.index.byEvent.get('state')?.[0];
    if (list === undefined || list.length === 0) return;
    this.reader.state(ev);
    let t: Trigger | null = null;
    for (let i = 0; i < list.length; i++) {
      const x = list[i]!;
      x.profile.evaluations++;
      if (!x.always && !this.gate(x.gate)) continue;
      t ??= stateTrigger(ev, execId);
      this.runRule(x.rule, t, x.profile);
    }
  }

  /** Evaluates the check rules for an alert (once per alert id; later calls reuse the findings). */
  onAlert(alert: AlertLike): void {
    this.predictions.note(alert);
    if (this.findings.hasAlert(alert.id)) return;
    const rules = this.index.bySource.get('check');
    if (!rules) return;
    const applicable = rules.filter((r) => r.checkRe === null || r.checkRe.test(alert.check));
    this.run(applicable, {
      source: 'check',
      tNs: this.opts.clock.fromEpochMs(alert.ts),
      alert,
      fields: { check: alert.check, state: alert.state, alert_id: alert.id },
      line: typeof alert.evidence === 'string' ? alert.evidence : JSON.stringify(alert.evidence ?? null),
      summary: `check ${alert.check} went ${alert.state}`,
    });
  }

  /** The command (comm + executable) of an exit, for crash-loop history. */
  commandOf(ev: LifecycleEvent, en: EventContext): string {
    const comm = ev.type === 'fork' || ev.type === 'reap' ? en.comm : ev.comm.text;
    return commandKey(comm, this.opts.processes?.get(en.execId)?.filename ?? null);
  }

  private gate(g: Gate): boolean {
    let pass = false;
    try {
      pass = evalGate(g, this.reader);
    } catch {
      this.errors++;
    }
    if (!pass) this.gateSkips++;
    return pass;
  }

  // ------------------------------------------------------------------ evaluation

  /** Line sources: the set scan picks the pattern rules worth running. */
  private runLine(key: string, rules: readonly CompiledRule[], t: Trigger): void {
    const pf = this.index.prefilters.get(key);
    if (!pf || pf.set === null) {
      this.run(rules, t);
      return;
    }
    const t0 = performance.now();
    const hits = pf.set.match(t.line!);
    this.prefilterNs += (performance.now() - t0) * 1e6;
    if (pf.others.length) this.run(pf.others, t);
    if (hits.length === 0) return;
    const chosen = hits.length === 1 ? [pf.patterned[hits[0]!]!] : hits.sort((a, b) => a - b).map((i) => pf.patterned[i]!);
    this.run(chosen, t);
  }

  private run(rules: readonly CompiledRule[], t: Trigger): void {
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const p = this.profiles.get(r.id)!;
      p.evaluations++;
      this.runRule(r, t, p);
    }
  }

  private runRule(r: CompiledRule, t: Trigger, p: RuleProfile): void {
    const t0 = performance.now();
    try {
      this.evaluate(r, t, p);
    } catch {
      this.errors++;
    }
    const dt = (performance.now() - t0) * 1e6;
    p.timeNs += dt;
    if (dt > p.maxNs) p.maxNs = dt;
  }

  private evaluate(r: CompiledRule, t: Trigger, p: RuleProfile): void {
    let captured: Record<string, Value> | null = null;
    if (r.pattern) {
      if (t.line === undefined) return;
      const m = r.pattern.exec(t.line);
      if (!m) return;
      p.patternMatches++;
      captured = {};
      const groups = m.groups;
      if (groups)
        for (const [name, type] of r.captures) {
          const raw = groups[name];
          if (raw !== undefined) captured[name] = convert(raw, type);
        }
    }
    const scope = new Scope(this, r, t, captured);
    if (r.processField !== null && !t.retried && this.opts.processes && scope.proc() === null) {
      const pid = captured?.[r.processField];
      if (typeof pid === 'number') {
        this.deferred.add({ rule: r, trigger: t, pid, deadlineNs: t.tNs + DEFER_NS });
        return;
      }
    }
    p.treeRuns++;
    this.treeRuns++;
    const leaf = decide(r.tree, scope);
    if (!leaf) return;
    p.matches++;
    const f = this.findings.record(r, leaf, t, scope);
    // an OOM kill or a full disk: did a check predict it? (few findings have these causes)
    if (this.predictions.size > 0 && (leaf.cause.startsWith('oom_') || leaf.cause.startsWith('disk_'))) this.linkPredictions(f, leaf.cause, t, scope, captured);
  }

  private linkPredictions(f: Finding, cause: string, t: Trigger, scope: Scope, captured: Record<string, Value> | null): void {
    const memcgs: string[] = [];
    for (const k of ['oom_memcg', 'task_memcg']) {
      const v = captured?.[k];
      if (typeof v === 'string' && v !== '') memcgs.push(v);
    }
    let mount: string | null = null;
    const fromAlert = t.alert !== undefined;
    if (fromAlert) {
      const values = (t.alert!.evidence as { values?: { field?: unknown }[] } | null)?.values ?? [];
      for (const v of Array.isArray(values) ? values : []) {
        const m = typeof v?.field === 'string' ? /^(?:disk_usage|disk_free|inode_usage)\("((?:[^"\\]|\\.)*)"\)/.exec(v.field) : null;
        if (m) mount = JSON.parse(`"${m[1]}"`) as string;
      }
    }
    const items = this.predictions.confirm(cause, t.tNs, scope.proc(), {
      memcgs, mount, fromPrediction: fromAlert && predictionsIn(t.alert!.evidence).length > 0,
    });
    for (const e of items) {
      if (!f.evidence.some((x) => x.kind === 'prediction' && x.data?.alert_id === e.data?.alert_id)) f.evidence.push(e);
    }
  }

  private retryDeferred(pid: number, nowNs: bigint): void {
    for (const d of this.deferred.takePid(pid)) this.run([d.rule], plainTrigger(d.trigger, { retried: true }));
    for (const d of this.deferred.takeExpired(nowNs)) this.run([d.rule], plainTrigger(d.trigger, { retried: true }));
  }

  /** Whether expireDeferred() has anything to do: deferred lines or coalesced firings. */
  hasPendingWork(): boolean {
    return this.deferred.pending > 0 || this.findings.hasPending;
  }

  /** Kernel or log lines wait for the process they name (they expire on a deadline). */
  hasDeferredLines(): boolean {
    return this.deferred.pending > 0;
  }

  /** Renders coalesced firings now (a periodic owner that already woke calls this: no deadline
   *  depends on it, readers render what they read). */
  flushFindings(): void {
    this.findings.flush();
  }

  /** Evaluates, without the process, deferred lines whose wait is over, and renders coalesced
   *  firings. Call periodically (the agent: every 500 ms while lines wait; it renders coalesced
   *  firings with flushFindings() in its once-a-second sweeps). */
  expireDeferred(nowNs: bigint = this.opts.clock.nowNs()): void {
    for (const d of this.deferred.takeExpired(nowNs)) this.run([d.rule], plainTrigger(d.trigger, { retried: true }));
    this.findings.flush();
  }

  // ------------------------------------------------------------------ facts for scopes

  facts(): EngineFacts {
    return this.opts;
  }

  // ------------------------------------------------------------------ queries

  /** Newest first. */
  recentFindings(limit = 50): Finding[] {
    return this.findings.recent(limit);
  }

  finding(id: number): Finding | undefined {
    return this.findings.get(id);
  }

  /** Candidate causes of an alert, best first: findings the alert's check can be explained by
   *  in [ts − lookback, ts + 1 min], plus what the check rules found for this alert. */
  explain(alert: AlertLike, lookbackMs = 900_000): RankedCause[] {
    this.onAlert(alert);
    const at = this.opts.clock.fromEpochMs(alert.ts);
    const from = at - BigInt(lookbackMs) * 1_000_000n;
    const to = at + 60_000_000_000n;
    const ruleById = new Map(this.index.rules.map((r) => [r.id, r]));
    const hits = this.findings.filter((f) => {
      if (f.alertId !== null) return f.alertId === alert.id;
      if (f.tNs < from || f.tNs > to) return false;
      const r = ruleById.get(f.rule);
      return r !== undefined && r.explains.some((re) => re.test(alert.check));
    });
    return rank(hits, at, lookbackMs, this.opts.clock);
  }

  /** Recent findings ranked, for `explain --recent`. */
  rankRecent(limit = 20, lookbackMs = 3_600_000): RankedCause[] {
    const now = this.opts.clock.nowNs();
    const from = now - BigInt(lookbackMs) * 1_000_000n;
    return rank(this.findings.filter((f) => f.tNs >= from && f.alertId === null), now, lookbackMs, this.opts.clock).slice(0, limit);
  }

  profile(): RuleProfile[] {
    const active = new Set(this.index.rules.map((r) => r.id));
    return [...this.profiles.values()].filter((p) => active.has(p.rule)).sort((a, b) => b.timeNs - a.timeNs);
  }

  stats() {
    return {
      rules: this.index.rules.length, findings: this.findings.size, errors: this.errors, treeRuns: this.treeRuns, gateSkips: this.gateSkips,
      evidenceBuilds: this.findings.evidenceBuilds,
      pending: this.deferred.pending, ...this.deferred.stats, history: this.history.stats(), predictions: this.predictions.stats(),
    };
  }
}
