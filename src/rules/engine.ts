// The attribution engine: feeds every source's records through the rules indexed by source,
// walks each matching rule's decision tree, and keeps the findings (cause, confidence, evidence
// chain) in a bounded, deduplicated list. explain() ranks the findings that can explain an alert.
import RE2 from 're2';
import type { LifecycleEvent, StateEvent } from '../shared/events.js';
import { PROCESS_SOURCES, type EvidenceKind, type FieldRef, type SourceKind } from './catalogue.js';
import type { AlertLike, NodeStateFacts, ProcFact, ProcessFacts, RuleClock, WindowFacts, WriterFigure } from './facts.js';
import { History, commandKey, type HistoryLimits } from './history.js';
import type { RuleSet } from './loader.js';
import { decide, render, type CompiledRule, type EvalScope, type Leaf } from './tree.js';
import { convert, formatBytes, formatMs, type Value } from './units.js';
import { buildEvidence, exitEvidence, type Evidence, type EvidenceInput } from './evidence.js';

/** What the process table tells about an event's process (a subset of src/process's Enriched). */
export interface EventContext {
  execId: string;
  parentExecId: string | null;
  ppid: number;
  comm: string;
  durationNs?: bigint;
  zombieNs?: bigint;
}

export interface Finding {
  id: number;
  rule: string;
  cause: string;
  confidence: number;
  explanation: string;
  /** boottime ns of the latest occurrence */
  tNs: bigint;
  firstNs: bigint;
  count: number;
  execId: string | null;
  pid: number | null;
  key: string;
  /** distinct processes (exec_ids) the finding was made for: a crash loop has many, one crash one */
  processes: Set<string>;
  evidence: Evidence[];
  /** the alert a check-source rule was evaluated for */
  alertId: string | null;
}

export interface RankedCause {
  cause: string;
  confidence: number;
  explanation: string;
  evidence: Evidence[];
  rule: string;
  /** confidence weighted by recency and recurrence: the sort key */
  score: number;
  ts: string;
  count: number;
  /** distinct processes behind the finding */
  processes: number;
  exec_id: string | null;
  pid: number | null;
  finding_id: number;
}

export interface RuleProfile {
  rule: string;
  source: SourceKind;
  evaluations: number;
  /** the pattern matched (pattern rules) */
  patternMatches: number;
  /** a leaf was reached: a finding was made or merged */
  matches: number;
  /** ns (a double: performance.now() is cheaper than hrtime.bigint() on this hot path) */
  timeNs: number;
  maxNs: number;
}

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

interface Trigger {
  source: SourceKind;
  tNs: bigint;
  fields: Record<string, Value>;
  line?: string;
  execId?: string | null;
  /** the event's parent, for execs_by_parent */
  parentExecId?: string | null;
  command?: string;
  alert?: AlertLike;
  summary: string;
  /** set when a deferred evaluation is retried: no second deferral */
  retried?: boolean;
}

/** A kernel line about a pid the process table does not know yet (the line can be read before
 *  the ring delivers the process's exec): evaluated again when that pid's event arrives. */
interface Deferred {
  rule: CompiledRule;
  trigger: Trigger;
  pid: number;
  /** boottime ns after which it is evaluated without the process */
  deadlineNs: bigint;
}

const DEFER_NS = 2_000_000_000n;
const MAX_DEFERRED = 1024;

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS' };
export const signalName = (n: number | null) => (n === null ? null : (SIGNALS[n] ?? `signal ${n}`));

const ms = (ns: bigint) => Number(ns / 1_000_000n);

export class RuleEngine {
  private rules: readonly CompiledRule[] = [];
  private bySource = new Map<SourceKind, CompiledRule[]>();
  private logByPath = new Map<string, CompiledRule[]>();
  /** per line source (kmsg, log:PATH): one RE2.Set over every pattern, so a line costs one scan
   *  plus the rules whose pattern matched, not one scan per rule */
  private prefilters = new Map<string, Prefilter>();
  /** time in the set scans, which no single rule owns */
  prefilterNs = 0;
  private readonly profiles = new Map<string, RuleProfile>();
  private findings: Finding[] = [];
  private readonly byKey = new Map<string, Finding>();
  private nextId = 1;
  readonly history: History;
  private readonly maxFindings: number;
  private readonly mergeNs: bigint;
  /** evaluation errors (a throwing fact provider): counted, never propagated to the event path */
  errors = 0;
  private deferred: Deferred[] = [];
  /** deferred evaluations: retried with the process, expired without it, dropped over the bound */
  readonly deferStats = { deferred: 0, joined: 0, expired: 0, dropped: 0 };

  constructor(private readonly opts: EngineOptions) {
    this.history = new History(opts.history);
    this.maxFindings = opts.maxFindings ?? 2000;
    this.mergeNs = BigInt(opts.mergeMs ?? 600_000) * 1_000_000n;
  }

  /** Swaps the active rules in one step (the loader already compiled all of them). */
  setRules(set: RuleSet): void {
    const bySource = new Map<SourceKind, CompiledRule[]>();
    const logByPath = new Map<string, CompiledRule[]>();
    for (const r of set.rules) {
      if (r.source === 'log') {
        const l = logByPath.get(r.path!) ?? [];
        l.push(r);
        logByPath.set(r.path!, l);
      }
      const l = bySource.get(r.source) ?? [];
      l.push(r);
      bySource.set(r.source, l);
      if (!this.profiles.has(r.id)) this.profiles.set(r.id, { rule: r.id, source: r.source, evaluations: 0, patternMatches: 0, matches: 0, timeNs: 0, maxNs: 0 });
    }
    const prefilters = new Map<string, Prefilter>();
    if (this.opts.prefilter !== false) {
      const kmsg = bySource.get('kmsg');
      if (kmsg) prefilters.set('kmsg', prefilter(kmsg));
      for (const [path, rules] of logByPath) prefilters.set(`log:${path}`, prefilter(rules));
    }
    this.rules = set.rules;
    this.bySource = bySource;
    this.logByPath = logByPath;
    this.prefilters = prefilters;
  }

  /** Line sources: the set scan picks the pattern rules worth running. */
  private runLine(key: string, rules: readonly CompiledRule[], t: Trigger): void {
    const pf = this.prefilters.get(key);
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

  get ruleCount(): number {
    return this.rules.length;
  }

  /** Files the log rules tail. */
  logPaths(): string[] {
    return [...this.logByPath.keys()];
  }

  // ------------------------------------------------------------------ sources

  onKmsg(rec: { tNs: bigint; level: number; facility: number; seq: bigint; message: string }): void {
    const rules = this.bySource.get('kmsg');
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
    const rules = this.logByPath.get(file);
    if (!rules) return;
    this.runLine(`log:${file}`, rules, { source: 'log', tNs, line, fields: { line, file }, summary: `${file}: ${line}` });
  }

  onLifecycle(ev: LifecycleEvent, en: EventContext): void {
    const tMs = ms(ev.ktimeNs);
    if (this.deferred.length > 0 && (ev.type === 'exec' || ev.type === 'exit' || ev.type === 'fork')) this.retryDeferred(ev.pid, ev.ktimeNs);
    switch (ev.type) {
      case 'exec': {
        if (en.parentExecId) this.history.recordExec(en.parentExecId, { tMs, execId: en.execId, comm: en.comm, pid: ev.pid });
        const rules = this.bySource.get('exec');
        if (rules)
          this.run(rules, {
            source: 'exec',
            tNs: ev.ktimeNs,
            execId: en.execId,
            parentExecId: en.parentExecId,
            fields: { pid: ev.pid, ppid: ev.ppid, comm: ev.comm.text, filename: ev.filename.text, args: ev.args.map((a) => a.text).join(' ') },
            summary: `exec pid ${ev.pid} (${ev.comm.text}) ${ev.args.map((a) => a.text).join(' ').slice(0, 200)}`,
          });
        return;
      }
      case 'exit': {
        const failed = ev.signal !== null || ev.exitCode !== 0;
        const filename = this.opts.processes?.get(en.execId)?.filename ?? null;
        const command = commandKey(ev.comm.text, filename);
        this.history.recordExit({
          tMs, execId: en.execId, pid: ev.pid, ppid: ev.ppid, comm: ev.comm.text, command, exitCode: ev.exitCode, signal: ev.signal, failed,
          writeBytes: Number(ev.usage.writeBytes), readBytes: Number(ev.usage.readBytes), maxRssBytes: ev.usage.maxRssKb * 1024,
        });
        this.joinExit(en.execId, ev);
        const rules = this.bySource.get('exit');
        if (rules)
          this.run(rules, {
            source: 'exit',
            tNs: ev.ktimeNs,
            execId: en.execId,
            parentExecId: en.parentExecId,
            command,
            fields: {
              pid: ev.pid, ppid: ev.ppid, comm: ev.comm.text, exit_code: ev.exitCode, signal: ev.signal, signal_name: signalName(ev.signal),
              core_dumped: ev.coreDumped, failed, max_rss: ev.usage.maxRssKb * 1024, duration: en.durationNs === undefined ? null : Number(en.durationNs) / 1e6,
              write_bytes: Number(ev.usage.writeBytes), read_bytes: Number(ev.usage.readBytes),
            },
            summary: `exit pid ${ev.pid} (${ev.comm.text}) ${ev.signal !== null ? `killed by ${signalName(ev.signal)}` : `code ${ev.exitCode}`}`,
          });
        return;
      }
      case 'exec_failed': {
        const rules = this.bySource.get('exec_failed');
        if (rules)
          this.run(rules, {
            source: 'exec_failed', tNs: ev.ktimeNs, execId: en.execId, parentExecId: en.parentExecId,
            fields: { pid: ev.pid, comm: ev.comm.text, filename: ev.filename.text, errno: ev.errno },
            summary: `exec of ${ev.filename.text} by pid ${ev.pid} failed (errno ${ev.errno})`,
          });
        return;
      }
      case 'reap': {
        const rules = this.bySource.get('reap');
        if (rules)
          this.run(rules, {
            source: 'reap', tNs: ev.ktimeNs, execId: en.execId, parentExecId: en.parentExecId,
            fields: { pid: ev.pid, zombie: en.zombieNs === undefined ? null : Number(en.zombieNs) / 1e6 },
            summary: `reap pid ${ev.pid} after ${en.zombieNs === undefined ? '?' : formatMs(Number(en.zombieNs) / 1e6)} as a zombie`,
          });
        return;
      }
      default:
        return;
    }
  }

  onState(ev: StateEvent, execId: string | null): void {
    const rules = this.bySource.get('state');
    if (!rules) return;
    const dMs = Number(ev.durationNs) / 1e6;
    this.run(rules, {
      source: 'state', tNs: ev.ktimeNs, execId,
      fields: { pid: ev.pid, tid: ev.tid, comm: ev.comm.text, from: ev.from, to: ev.to, state_duration: dMs, reason: ev.reason },
      summary: `pid ${ev.pid} tid ${ev.tid} (${ev.comm.text}) ${ev.from}→${ev.to} after ${formatMs(dMs)} in ${ev.from}`,
    });
  }

  /** Evaluates the check rules for an alert (once per alert id; later calls reuse the findings). */
  onAlert(alert: AlertLike): void {
    if (this.findings.some((f) => f.alertId === alert.id)) return;
    const rules = this.bySource.get('check');
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

  // ------------------------------------------------------------------ evaluation

  private run(rules: readonly CompiledRule[], t: Trigger): void {
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const p = this.profiles.get(r.id)!;
      const t0 = performance.now();
      p.evaluations++;
      try {
        this.evaluate(r, t, p);
      } catch {
        this.errors++;
      }
      const dt = (performance.now() - t0) * 1e6;
      p.timeNs += dt;
      if (dt > p.maxNs) p.maxNs = dt;
    }
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
        this.defer({ rule: r, trigger: t, pid, deadlineNs: t.tNs + DEFER_NS });
        return;
      }
    }
    const leaf = decide(r.tree, scope);
    if (!leaf) return;
    p.matches++;
    this.record(r, leaf, t, scope);
  }

  private record(r: CompiledRule, leaf: Leaf, t: Trigger, scope: Scope): void {
    const proc = scope.proc();
    const execId = proc?.execId ?? t.execId ?? null;
    const pidField = r.processField !== null ? scope.captured?.[r.processField] : t.fields.pid;
    const pid = proc?.pid ?? (typeof pidField === 'number' ? pidField : null);
    const subject = execId ?? (pid !== null ? `pid:${pid}` : (t.alert?.id ?? r.id));
    const key = `${leaf.cause}|${leaf.key ? render(leaf.key, scope) : subject}`;
    const explanation = render(leaf.explanation, scope);
    const input: EvidenceInput = { engine: this, clock: this.opts.clock, rule: r, trigger: t, proc, scope };
    const evidence = buildEvidence(leaf.evidence, input);
    const prev = this.byKey.get(key);
    if (prev && t.tNs - prev.tNs < this.mergeNs && prev.alertId === (t.alert?.id ?? null)) {
      prev.count++;
      if (execId !== null && prev.processes.size < 1024) prev.processes.add(execId);
      if (t.tNs > prev.tNs) prev.tNs = t.tNs;
      const better = leaf.confidence >= prev.confidence;
      if (better) {
        prev.confidence = leaf.confidence;
        prev.explanation = explanation;
        prev.rule = r.id;
      }
      mergeEvidence(prev.evidence, evidence, better);
      prev.execId = execId ?? prev.execId;
      prev.pid = pid ?? prev.pid;
      // most recent last, so eviction keeps live findings
      this.findings.splice(this.findings.indexOf(prev), 1);
      this.findings.push(prev);
      return;
    }
    const f: Finding = {
      id: this.nextId++, rule: r.id, cause: leaf.cause, confidence: leaf.confidence, explanation, tNs: t.tNs, firstNs: t.tNs, count: 1,
      execId, pid, key, evidence, alertId: t.alert?.id ?? null,
      processes: new Set(execId === null ? [] : [execId]),
    };
    this.findings.push(f);
    this.byKey.set(key, f);
    if (this.findings.length > this.maxFindings) {
      const old = this.findings.shift()!;
      if (this.byKey.get(old.key) === old) this.byKey.delete(old.key);
    }
  }

  private defer(d: Deferred): void {
    this.deferStats.deferred++;
    this.deferred.push(d);
    if (this.deferred.length > MAX_DEFERRED) {
      this.deferred.shift();
      this.deferStats.dropped++;
    }
  }

  private retryDeferred(pid: number, nowNs: bigint): void {
    const due: Deferred[] = [];
    this.deferred = this.deferred.filter((d) => {
      if (d.pid === pid) {
        this.deferStats.joined++;
        due.push(d);
        return false;
      }
      return true;
    });
    for (const d of due) this.run([d.rule], { ...d.trigger, retried: true });
    this.expireDeferred(nowNs);
  }

  /** Evaluates, without the process, deferred lines whose wait is over. Call periodically. */
  expireDeferred(nowNs: bigint = this.opts.clock.nowNs()): void {
    if (this.deferred.length === 0) return;
    const due: Deferred[] = [];
    this.deferred = this.deferred.filter((d) => {
      if (d.deadlineNs <= nowNs) {
        this.deferStats.expired++;
        due.push(d);
        return false;
      }
      return true;
    });
    for (const d of due) this.run([d.rule], { ...d.trigger, retried: true });
  }

  /** An exit arrived: findings about that process made shortly before get its exit as evidence. */
  private joinExit(execId: string, ev: Extract<LifecycleEvent, { type: 'exit' }>): void {
    const since = ev.ktimeNs - 60_000_000_000n;
    for (let i = this.findings.length - 1; i >= 0; i--) {
      const f = this.findings[i]!;
      if (f.tNs < since) break;
      if (f.execId !== execId || f.evidence.some((e) => e.kind === 'exit')) continue;
      f.evidence.push(exitEvidence(ev, execId, this.opts.clock));
      // RSS evidence made before the exit had only samples; the exit adds the max RSS.
      const rss = f.evidence.find((e) => e.kind === 'window' && e.data?.metric === 'rss');
      if (rss && rss.data && typeof rss.data.max === 'number' && ev.usage.maxRssKb * 1024 > rss.data.max) {
        const max = ev.usage.maxRssKb * 1024;
        rss.data.max = max;
        rss.data.max_at_exit = max;
        const first = typeof rss.data.first === 'number' ? rss.data.first : 0;
        rss.summary = `RSS grew from ${formatBytes(first)}${rss.data.from_start ? " at its start" : ""} to ${formatBytes(max)} (max RSS at exit) in ${formatMs(Number(rss.data.span_ms ?? 0))}`;
      }
    }
  }

  // ------------------------------------------------------------------ facts for scopes

  facts(): { processes?: ProcessFacts; windows?: WindowFacts; states?: NodeStateFacts; clock: RuleClock } {
    return this.opts;
  }

  // ------------------------------------------------------------------ queries

  /** Newest first. */
  recentFindings(limit = 50): Finding[] {
    return this.findings.slice(-limit).reverse();
  }

  finding(id: number): Finding | undefined {
    return this.findings.find((f) => f.id === id);
  }

  /** Candidate causes of an alert, best first: findings the alert's check can be explained by
   *  in [ts − lookback, ts + 1 min], plus what the check rules found for this alert. */
  explain(alert: AlertLike, lookbackMs = 900_000): RankedCause[] {
    this.onAlert(alert);
    const at = this.opts.clock.fromEpochMs(alert.ts);
    const from = at - BigInt(lookbackMs) * 1_000_000n;
    const to = at + 60_000_000_000n;
    const ruleById = new Map(this.rules.map((r) => [r.id, r]));
    const hits = this.findings.filter((f) => {
      if (f.alertId !== null) return f.alertId === alert.id;
      if (f.tNs < from || f.tNs > to) return false;
      const r = ruleById.get(f.rule);
      return r !== undefined && r.explains.some((re: RE2) => re.test(alert.check));
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
    const active = new Set(this.rules.map((r) => r.id));
    return [...this.profiles.values()].filter((p) => active.has(p.rule)).sort((a, b) => b.timeNs - a.timeNs);
  }

  stats() {
    return { rules: this.rules.length, findings: this.findings.length, errors: this.errors, pending: this.deferred.length, ...this.deferStats, history: this.history.stats() };
  }
}

/** Adds new items; a figure (window, failures, children) is replaced only by the one from an
 *  equally or more confident leaf, so a fallback rule does not overwrite the better figure. */
interface Prefilter {
  /** null when the set could not be built (RE2's set memory bound): rules then run one by one */
  set: InstanceType<typeof RE2.Set> | null;
  /** rules with a pattern, in set index order */
  patterned: CompiledRule[];
  /** rules without a pattern: always evaluated */
  others: CompiledRule[];
}

function prefilter(rules: readonly CompiledRule[]): Prefilter {
  const patterned = rules.filter((r) => r.pattern !== null);
  const others = rules.filter((r) => r.pattern === null);
  let set: Prefilter['set'] = null;
  if (patterned.length > 1) {
    try {
      set = new RE2.Set(patterned.map((r) => r.pattern!.source), 'u');
    } catch {
      set = null;
    }
  }
  return { set, patterned, others: set === null ? [...others, ...patterned] : others };
}

function mergeEvidence(into: Evidence[], add: readonly Evidence[], better: boolean): void {
  for (const e of add) {
    const figure = e.kind === 'window' || e.kind === 'failures' || e.kind === 'children';
    const i = into.findIndex((x) => x.kind === e.kind && (figure || x.summary === e.summary));
    if (i >= 0 && figure && better) into[i] = e;
    else if (i < 0) into.push(e);
  }
  if (into.length > 40) into.splice(0, into.length - 40);
}

/** Confidence weighted by recency (full weight at `at`, half at the edge of the lookback) and by
 *  recurrence (×1.25 per doubling of the processes behind it, at most ×1.5): a cause that keeps happening is
 *  the likelier explanation, as an operator would rank it. */
function rank(fs: readonly Finding[], at: bigint, lookbackMs: number, clock: RuleClock): RankedCause[] {
  return fs
    .map((f) => {
      const ageMs = Math.abs(Number(at - f.tNs) / 1e6);
      const recurrence = Math.min(1.5, 1 + 0.25 * Math.log2(Math.max(1, f.processes.size)));
      const score = f.confidence * (1 - 0.5 * Math.min(1, ageMs / lookbackMs)) * recurrence;
      return {
        cause: f.cause, confidence: f.confidence, explanation: f.explanation, evidence: f.evidence, rule: f.rule,
        score: Math.round(score * 1000) / 1000, ts: new Date(clock.epochMs(f.tNs)).toISOString(), count: f.count, processes: f.processes.size,
        exec_id: f.execId, pid: f.pid, finding_id: f.id, _t: f.tNs,
      };
    })
    .sort((a, b) => b.score - a.score || (b._t > a._t ? 1 : b._t < a._t ? -1 : 0))
    .map(({ _t, ...c }) => c);
}

/** Per-evaluation view of one event for one rule: values computed on first use. */
export class Scope implements EvalScope {
  private cache: Map<string, Value | undefined> | null = null;
  private procDone = false;
  private procVal: ProcFact | null = null;
  /** largest window asked of each figure family, for evidence (allocated on first use) */
  private windows: Map<string, number> | null = null;

  windowFor(fn: string): number | undefined {
    return this.windows?.get(fn);
  }

  constructor(
    private readonly engine: RuleEngine,
    readonly rule: CompiledRule,
    readonly trigger: Trigger,
    readonly captured: Record<string, Value> | null,
  ) {}

  proc(): ProcFact | null {
    if (this.procDone) return this.procVal;
    this.procDone = true;
    const pf = this.engine.facts().processes;
    if (!pf) return null;
    const t = this.trigger;
    if (t.execId) this.procVal = pf.get(t.execId);
    else if (this.rule.processField) {
      const pid = this.captured?.[this.rule.processField] ?? null;
      if (typeof pid === 'number') this.procVal = pf.byPid(pid, t.tNs);
    } else if (PROCESS_SOURCES.has(t.source) && typeof t.fields.pid === 'number') this.procVal = pf.byPid(t.fields.pid, t.tNs);
    return this.procVal;
  }

  value(ref: FieldRef): Value | undefined {
    // captures and event fields are plain lookups: no cache needed
    if (this.captured !== null && ref.name in this.captured) return this.captured[ref.name];
    if (ref.name in this.trigger.fields) return this.trigger.fields[ref.name];
    if (this.cache === null) this.cache = new Map();
    else if (this.cache.has(ref.name)) return this.cache.get(ref.name);
    const v = this.compute(ref);
    this.cache.set(ref.name, v);
    return v;
  }

  private compute(ref: FieldRef): Value | undefined {
    const name = ref.name;
    if (this.captured && name in this.captured) return this.captured[name];
    if (name in this.trigger.fields) return this.trigger.fields[name];
    const f = this.engine.facts();
    if (name === 'exec_id' || name.startsWith('proc.')) return procField(name, this.proc(), f.processes, this.trigger.tNs);
    if (ref.fn) {
      this.windows ??= new Map();
      this.windows.set(ref.fn, Math.max(this.windows.get(ref.fn) ?? 0, ref.windowMs!));
      return this.figure(ref.fn, ref.windowMs!);
    }
    const now = f.clock.nowNs();
    if (name.startsWith('zombies.')) {
      const z = f.states?.zombies(now);
      if (!z) return undefined;
      if (name === 'zombies.count') return z.length;
      const top = topParent(z);
      return name === 'zombies.top_parent_count' ? (top?.count ?? 0) : (top?.comm ?? null);
    }
    if (name.startsWith('stuck_d.')) {
      const d = f.states?.stuckD(now);
      if (!d) return undefined;
      return name === 'stuck_d.count' ? d.length : d.reduce((m, x) => Math.max(m, x.dMs), 0);
    }
    return undefined;
  }

  private figure(fn: string, windowMs: number): Value | undefined {
    const t = this.trigger;
    const toMs = ms(t.tNs);
    const fromMs = toMs - windowMs;
    const h = this.engine.history;
    switch (fn) {
      case 'history.failures': {
        const cmd = t.command ?? this.commandOfProc();
        return cmd === null ? undefined : h.failures(cmd, fromMs, toMs).length;
      }
      case 'history.execs_by_parent': {
        const parent = t.parentExecId ?? this.proc()?.parentExecId ?? null;
        return parent === null ? undefined : h.execsBy(parent, fromMs, toMs).length;
      }
      case 'history.top_writer_bytes':
        return topWriters(this.engine, windowMs, t.tNs, 1)[0]?.bytes ?? 0;
      default: {
        const w = rssWindow(this.engine.facts(), this.proc(), windowMs, t.tNs);
        if (!w) return undefined;
        return fn === 'window.rss_growth' ? w.last - w.first : fn === 'window.rss_first' ? w.first : w.max;
      }
    }
  }

  private commandOfProc(): string | null {
    const p = this.proc();
    return p ? commandKey(p.comm, p.filename) : null;
  }
}

/** Heaviest writers in the window: the resource windows' figures (live and exited processes)
 *  when there are any, merged with the exits the engine saw (exact totals at exit). */
export function topWriters(engine: RuleEngine, windowMs: number, atNs: bigint, limit: number): WriterFigure[] {
  const toMs = ms(atNs);
  const by = new Map<string, WriterFigure>();
  for (const w of engine.facts().windows?.topWriters?.(windowMs, atNs, limit * 2) ?? []) by.set(w.execId, w);
  for (const x of engine.history.exitsWithin(toMs - windowMs, toMs)) {
    if (x.writeBytes <= 0) continue;
    const prev = by.get(x.execId);
    if (!prev || prev.bytes < x.writeBytes) by.set(x.execId, { execId: x.execId, pid: x.pid, comm: x.comm, bytes: x.writeBytes });
  }
  return [...by.values()].sort((a, b) => b.bytes - a.bytes).slice(0, limit);
}

export interface RssFigures {
  first: number;
  last: number;
  max: number;
  samples: number;
  spanMs: number;
  fromExit: boolean;
  /** the process started inside the window: growth counts from its start (RSS 0) */
  fromStart: boolean;
}

/** RSS over the window: samples when a sampler runs; else the exit's max RSS, growing from zero
 *  when the process started inside the window. */
export function rssWindow(f: { windows?: WindowFacts }, p: ProcFact | null, windowMs: number, atNs: bigint): RssFigures | null {
  if (!p) return null;
  const s = f.windows?.rss(p.execId, windowMs, atNs) ?? [];
  if (s.length > 0) {
    let max = 0;
    for (const x of s) if (x.bytes > max) max = x.bytes;
    if (p.maxRssBytes !== null && p.maxRssBytes > max) max = p.maxRssBytes;
    const startedInside = p.startNs >= atNs - BigInt(windowMs) * 1_000_000n;
    const first = startedInside ? Math.min(s[0]!.bytes, 0) : s[0]!.bytes;
    const last = Math.max(s[s.length - 1]!.bytes, p.maxRssBytes ?? 0);
    const spanFrom = startedInside ? p.startNs : s[0]!.tNs;
    const spanTo = p.exitNs ?? s[s.length - 1]!.tNs;
    return { first, last, max, samples: s.length, spanMs: Number(spanTo - spanFrom) / 1e6, fromExit: false, fromStart: startedInside };
  }
  if (p.maxRssBytes === null) return null;
  const startedInside = p.startNs >= atNs - BigInt(windowMs) * 1_000_000n;
  if (!startedInside) return null;
  const end = p.exitNs ?? atNs;
  return { first: 0, last: p.maxRssBytes, max: p.maxRssBytes, samples: 0, spanMs: Number(end - p.startNs) / 1e6, fromExit: true, fromStart: true };
}

function procField(name: string, p: ProcFact | null, pf: ProcessFacts | undefined, atNs: bigint): Value | undefined {
  if (!p) return undefined;
  switch (name) {
    case 'exec_id':
    case 'proc.exec_id':
      return p.execId;
    case 'proc.pid':
      return p.pid;
    case 'proc.ppid':
      return p.ppid;
    case 'proc.comm':
      return p.comm;
    case 'proc.args':
      return p.args ? p.args.join(' ') : null;
    case 'proc.cgroup':
      return p.cgroup;
    case 'proc.exit_code':
      return p.exitCode;
    case 'proc.signal':
      return p.signal;
    case 'proc.max_rss':
      return p.maxRssBytes;
    case 'proc.parent_exec_id':
      return p.parentExecId;
    case 'proc.parent_comm':
      return p.parentExecId ? (pf?.get(p.parentExecId)?.comm ?? null) : null;
    case 'proc.ancestry':
      return (pf?.ancestry(p.execId) ?? []).map((a) => a.comm).join(' ← ');
    case 'proc.age': {
      return Number((p.exitNs ?? atNs) - p.startNs) / 1e6;
    }
    default:
      return undefined;
  }
}

function topParent(z: ReturnType<NodeStateFacts['zombies']>): { count: number; comm: string | null } | null {
  const by = new Map<string, { count: number; comm: string | null }>();
  for (const x of z) {
    const k = x.parentExecId ?? `pid:${x.ppid}`;
    const e = by.get(k) ?? { count: 0, comm: x.parentComm };
    e.count++;
    by.set(k, e);
  }
  let best: { count: number; comm: string | null } | null = null;
  for (const e of by.values()) if (!best || e.count > best.count) best = e;
  return best;
}

export type { EvidenceKind };
