// Findings: what a rule records when a leaf is reached. Kept in a bounded list, newest last;
// the same cause about the same subject within the merge window is one finding whose count
// rises. Evidence is built here and only here, when a rule fires. Ranking turns findings into
// an alert's candidate causes.
import type { ExitEvent } from '../shared/events.js';
import { buildEvidence, exitEvidence, type Evidence } from './evidence.js';
import type { RuleClock } from './facts.js';
import { triggerField, type Scope, type ScopeHost, type Trigger } from './scope.js';
import { render, type CompiledRule, type Leaf } from './tree.js';
import { formatBytes, formatMs } from './units.js';

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
  /** version of the rule set whose rule made (or last merged into) the finding */
  version?: string;
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
  /** version of the rule set that made the finding */
  version?: string;
}

/** Repeat firings of one leaf into one finding closer than this are coalesced: counted at once,
 *  rendered (explanation, evidence) once, from the latest, when read or flushed. */
const COALESCE_NS = 1_000_000_000n;

interface FindingState {
  leaf: Leaf;
  builtNs: bigint;
  pending: { rule: CompiledRule; trigger: Trigger; scope: Scope } | null;
}

export interface FindingLimits {
  maxFindings: number;
  /** findings with the same cause and key closer than this merge */
  mergeNs: bigint;
}

export class FindingStore {
  private list: Finding[] = [];
  private readonly byKey = new Map<string, Finding>();
  /** findings by the exec_id they were made for: an exit joins its own, without a walk */
  private readonly byExec = new Map<string, Finding[]>();
  private readonly indexedAs = new WeakMap<Finding, string>();
  private readonly alertIds = new Set<string>();
  private nextId = 1;
  /** per finding: the leaf that last rendered it, when, and a firing not rendered yet */
  private readonly state = new WeakMap<Finding, FindingState>();
  /** findings with a coalesced firing to render */
  private readonly pending = new Set<Finding>();
  /** per leaf, the key of its last firing (keyOf) */
  private readonly lastKeys = new WeakMap<Leaf, { subject: string; key: string }>();
  /** evidence chains built: one per firing, never for an event that fired nothing */
  evidenceBuilds = 0;
  /** version of the running rule set, stamped on the findings it makes (RuleEngine.setRules) */
  version: string | undefined = undefined;

  constructor(
    private readonly host: ScopeHost,
    private readonly clock: RuleClock,
    private readonly limits: FindingLimits,
  ) {}

  get size(): number {
    return this.list.length;
  }

  /** The finding key of `leaf` about `subject`. A storm fires one leaf about one subject again
   *  and again: the last key is kept per leaf, so a repeat looks the finding up by a string
   *  whose hash is known, instead of joining (and, in the lookup, flattening and hashing) a new
   *  one each time. */
  private keyOf(leaf: Leaf, subject: string): string {
    const last = this.lastKeys.get(leaf);
    if (last !== undefined && last.subject === subject) return last.key;
    const key = `${leaf.cause}|${subject}`;
    if (last === undefined) this.lastKeys.set(leaf, { subject, key });
    else {
      last.subject = subject;
      last.key = key;
    }
    return key;
  }

  /** A leaf was reached: make the finding, or merge into the one about the same subject. */
  record(r: CompiledRule, leaf: Leaf, t: Trigger, scope: Scope): Finding {
    const proc = scope.proc();
    const execId = proc?.execId ?? t.execId ?? null;
    let pid = proc?.pid ?? null;
    if (pid === null) {
      const pidField = r.processField !== null ? scope.captured?.[r.processField] : triggerField(t, 'pid');
      if (typeof pidField === 'number') pid = pidField;
    }
    const subject = execId ?? (pid !== null ? `pid:${pid}` : (t.alert?.id ?? r.id));
    const key = this.keyOf(leaf, leaf.key ? render(leaf.key, scope) : subject);
    const alertId = t.alert?.id ?? null;
    const prev = this.byKey.get(key);
    if (prev && t.tNs - prev.tNs < this.limits.mergeNs && prev.alertId === alertId) {
      prev.count++;
      if (execId !== null && prev.processes.size < 1024) prev.processes.add(execId);
      if (t.tNs > prev.tNs) prev.tNs = t.tNs;
      prev.execId = execId ?? prev.execId;
      // a finding about one process is joined by that process's exit
      if (prev.execId !== null && prev.processes.size === 1) this.indexExec(prev, prev.execId);
      prev.pid = pid ?? prev.pid;
      prev.version = this.version;
      // most recent last, so eviction keeps live findings (a storm merges into the last one)
      if (this.list[this.list.length - 1] !== prev) {
        this.list.splice(this.list.indexOf(prev), 1);
        this.list.push(prev);
      }
      const st = this.state.get(prev);
      if (st && st.leaf === leaf && t.tNs >= st.builtNs && t.tNs - st.builtNs < COALESCE_NS) {
        // the same leaf again within the coalescing time (a storm, a fast crash loop): counted
        // now, rendered from this latest firing when the finding is next read or flushed
        if (st.pending === null) st.pending = { rule: r, trigger: t, scope };
        else {
          st.pending.rule = r;
          st.pending.trigger = t;
          st.pending.scope = scope;
        }
        this.pending.add(prev);
        return prev;
      }
      if (st?.pending) this.materialize(prev, st);
      this.content(prev, r, leaf, t, scope);
      return prev;
    }
    const explanation = render(leaf.explanation, scope);
    this.evidenceBuilds++;
    const evidence = buildEvidence(leaf.evidence, { engine: this.host, clock: this.clock, rule: r, trigger: t, proc, scope });
    const f: Finding = {
      id: this.nextId++, rule: r.id, cause: leaf.cause, confidence: leaf.confidence, explanation, tNs: t.tNs, firstNs: t.tNs, count: 1,
      execId, pid, key, evidence, alertId,
      processes: new Set(execId === null ? [] : [execId]),
      version: this.version,
    };
    this.list.push(f);
    this.byKey.set(key, f);
    if (execId !== null) this.indexExec(f, execId);
    this.state.set(f, { leaf, builtNs: t.tNs, pending: null });
    if (alertId !== null) this.alertIds.add(alertId);
    if (this.list.length > this.limits.maxFindings) {
      const old = this.list.shift()!;
      this.pending.delete(old);
      if (this.byKey.get(old.key) === old) this.byKey.delete(old.key);
      this.unindexExec(old);
      if (old.alertId !== null && !this.list.some((x) => x.alertId === old.alertId)) this.alertIds.delete(old.alertId);
    }
    return f;
  }

  /** Explanation and evidence of one firing merged into `f`: a figure (window, failures,
   *  children) and the explanation are replaced by an equally or more confident leaf's. */
  private content(f: Finding, r: CompiledRule, leaf: Leaf, t: Trigger, scope: Scope): void {
    const explanation = render(leaf.explanation, scope);
    this.evidenceBuilds++;
    const evidence = buildEvidence(leaf.evidence, { engine: this.host, clock: this.clock, rule: r, trigger: t, proc: scope.proc(), scope });
    const better = leaf.confidence >= f.confidence;
    if (better) {
      f.confidence = leaf.confidence;
      f.explanation = explanation;
      f.rule = r.id;
    }
    mergeEvidence(f.evidence, evidence, better);
    this.state.set(f, { leaf, builtNs: t.tNs, pending: null });
  }

  private materialize(f: Finding, st: FindingState): void {
    const p = st.pending!;
    st.pending = null;
    this.pending.delete(f);
    this.content(f, p.rule, st.leaf, p.trigger, p.scope);
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Renders every coalesced firing (before any read, and periodically: the figures then come
   *  from history that has not moved on far). */
  flush(): void {
    if (this.pending.size === 0) return;
    for (const f of [...this.pending]) {
      const st = this.state.get(f);
      if (st?.pending) this.materialize(f, st);
    }
    this.pending.clear();
  }

  /** Whether the check rules already ran for this alert. */
  hasAlert(alertId: string): boolean {
    return this.alertIds.has(alertId);
  }

  private indexExec(f: Finding, execId: string): void {
    if (this.indexedAs.get(f) === execId) return;
    this.unindexExec(f);
    this.indexedAs.set(f, execId);
    const l = this.byExec.get(execId);
    if (l) l.push(f);
    else this.byExec.set(execId, [f]);
  }

  private unindexExec(f: Finding): void {
    const id = this.indexedAs.get(f);
    if (id === undefined) return;
    this.indexedAs.delete(f);
    const l = this.byExec.get(id);
    if (!l) return;
    const i = l.indexOf(f);
    if (i >= 0) l.splice(i, 1);
    if (l.length === 0) this.byExec.delete(id);
  }

  /** An exit arrived: findings about that process made shortly before get its exit as evidence.
   *  Looks up that process's findings (usually none): no walk over the list. */
  joinExit(execId: string, ev: ExitEvent): void {
    const mine = this.byExec.get(execId);
    if (mine === undefined) return;
    // numbers, not bigint arithmetic
    const at = Number(ev.ktimeNs);
    for (let i = mine.length - 1; i >= 0; i--) {
      const f = mine[i]!;
      if (at - Number(f.tNs) > 60e9) continue;
      if (f.execId !== execId) continue;
      // A finding about many processes (a storm's children, a crash loop) is about them as a
      // group: one child's exit adds nothing, and rendering it at every exit would undo the
      // coalescing (a 200 exec/s storm would rebuild its evidence 200 times a second).
      if (f.processes.size > 1) continue;
      const st = this.state.get(f);
      if (st?.pending) this.materialize(f, st);
      if (f.evidence.some((e) => e.kind === 'exit')) continue;
      f.evidence.push(exitEvidence(ev, execId, this.clock));
      // RSS evidence made before the exit had only samples; the exit adds the max RSS.
      const rss = f.evidence.find((e) => e.kind === 'window' && e.data?.metric === 'rss');
      if (rss && rss.data && typeof rss.data.max === 'number' && ev.usage.maxRssKb * 1024 > rss.data.max) {
        const max = ev.usage.maxRssKb * 1024;
        rss.data.max = max;
        rss.data.max_at_exit = max;
        const first = typeof rss.data.first === 'number' ? rss.data.first : 0;
        rss.summary = `RSS grew from ${formatBytes(first)}${rss.data.from_start ? ' at its start' : ''} to ${formatBytes(max)} (max RSS at exit) in ${formatMs(Number(rss.data.span_ms ?? 0))}`;
      }
    }
  }

  /** Newest first. */
  recent(limit: number): Finding[] {
    this.flush();
    return this.list.slice(-limit).reverse();
  }

  get(id: number): Finding | undefined {
    this.flush();
    return this.list.find((f) => f.id === id);
  }

  filter(pred: (f: Finding) => boolean): Finding[] {
    this.flush();
    return this.list.filter(pred);
  }
}

/** Adds new items; a figure (window, failures, children) is replaced only by the one from an
 *  equally or more confident leaf, so a fallback rule does not overwrite the better figure. */
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
export function rank(fs: readonly Finding[], at: bigint, lookbackMs: number, clock: RuleClock): RankedCause[] {
  return fs
    .map((f) => {
      const ageMs = Math.abs(Number(at - f.tNs) / 1e6);
      const recurrence = Math.min(1.5, 1 + 0.25 * Math.log2(Math.max(1, f.processes.size)));
      const score = f.confidence * (1 - 0.5 * Math.min(1, ageMs / lookbackMs)) * recurrence;
      return {
        cause: f.cause, confidence: f.confidence, explanation: f.explanation, evidence: f.evidence, rule: f.rule,
        score: Math.round(score * 1000) / 1000, ts: new Date(clock.epochMs(f.tNs)).toISOString(), count: f.count, processes: f.processes.size,
        exec_id: f.execId, pid: f.pid, finding_id: f.id, ...(f.version !== undefined ? { version: f.version } : {}), _t: f.tNs,
      };
    })
    .sort((a, b) => b.score - a.score || (b._t > a._t ? 1 : b._t < a._t ? -1 : 0))
    .map(({ _t, ...c }) => c);
}
