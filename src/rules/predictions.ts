// Predictions and what became of them. A check alert whose evidence holds an eta (docs/dsl.md,
// "Trends") about memory (rss) or a disk (disk_usage, disk_free, inode_usage) is a prediction:
// "this cgroup reaches its limit in 48 s". When the event it predicted arrives within its
// horizon (an OOM kill of that process, cgroup or command; a full disk on that mount), the
// finding that explains the event gets the prediction in its evidence chain ("predicted 52 s
// before, at 12:03:04") and the prediction came true. One whose horizon passes first was a false
// alarm. Both are counted (engine stats: `patrol rules profile`), so the false-alarm rate shows.
//
// Horizon: the alert's time + the soonest eta it announced × 1.5 + 1 min (the trend is a line;
// growth that slows a little still counts as the same exhaustion).
import type { Evidence } from './evidence.js';
import type { AlertLike, ProcFact, RuleClock } from './facts.js';
import { formatMs } from './units.js';

export type PredictionKind = 'memory' | 'disk';

export interface Prediction {
  alertId: string;
  check: string;
  kind: PredictionKind;
  /** the trend as the check wrote it: `eta(rss, memory_limit, 30s) by cgroup` */
  field: string;
  by: string | null;
  /** what each group was predicted to reach its limit in, seconds (key null: not grouped) */
  subjects: { key: string | null; etaS: number }[];
  /** the mount of a disk prediction */
  mount: string | null;
  /** boottime ns of the alert */
  tNs: bigint;
  horizonNs: bigint;
  outcome: 'pending' | 'came_true' | 'false_alarm';
  /** lead time of the event it predicted, ms */
  leadMs?: number;
}

export interface PredictionStats {
  pending: number;
  came_true: number;
  false_alarms: number;
  /** came true ÷ (came true + false alarms); null before any outcome */
  precision: number | null;
  /** median lead time of the predictions that came true (the last 100), seconds */
  median_lead_s: number | null;
}

const MAX_KEPT = 1000;
const SLACK_NS = 60_000_000_000n;
/** how long a prediction that came true still links later events (a second kill) */
const KEEP_AFTER_NS = 3_600_000_000_000n;

const FIELD_MOUNT = /^(?:disk_usage|disk_free|inode_usage)\("((?:[^"\\]|\\.)*)"\)$/;

type Loose = Record<string, unknown>;
const obj = (x: unknown): Loose | null => (typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Loose) : null);

/** The eta values of an alert's evidence (a check result's `evidence.values`), with the groups
 *  that fired. Tolerant: evidence is JSON from the store. */
export function predictionsIn(evidence: unknown): { field: string; by: string | null; kind: PredictionKind; mount: string | null; subjects: { key: string | null; etaS: number }[] }[] {
  const ev = obj(evidence);
  const values = Array.isArray(ev?.values) ? (ev!.values as unknown[]) : [];
  const conditions = Array.isArray(ev?.conditions) ? (ev!.conditions as unknown[]) : [];
  // groups of the conditions that hold (what the alert is about)
  const firing = new Set<string>();
  for (const c of conditions) {
    const o = obj(c);
    if (o?.holding === true && Array.isArray(o.groups)) for (const g of o.groups) if (typeof g === 'string') firing.add(g);
  }
  const out = [];
  for (const v of values) {
    const o = obj(v);
    const tr = obj(o?.trend);
    if (!o || !tr || tr.fn !== 'eta' || typeof o.field !== 'string' || typeof tr.metric !== 'string') continue;
    const metric = tr.metric;
    const mount = FIELD_MOUNT.exec(metric);
    const kind: PredictionKind | null = metric === 'rss' ? 'memory' : mount ? 'disk' : null;
    if (kind === null) continue;
    const by = typeof tr.by === 'string' ? tr.by : null;
    const subjects: { key: string | null; etaS: number }[] = [];
    if (by === null) {
      if (typeof o.value === 'number') subjects.push({ key: null, etaS: o.value });
    } else if (Array.isArray(o.groups)) {
      for (const g of o.groups) {
        const x = obj(g);
        if (x && typeof x.key === 'string' && typeof x.value === 'number' && (firing.size === 0 || firing.has(x.key))) subjects.push({ key: x.key, etaS: x.value });
      }
    }
    if (subjects.length === 0) continue;
    out.push({ field: o.field, by, kind, mount: mount ? JSON.parse(`"${mount[1]}"`) as string : null, subjects });
  }
  return out;
}

export class PredictionLedger {
  private list: Prediction[] = [];
  private readonly seen = new Set<string>();
  private cameTrue = 0;
  private falseAlarms = 0;
  private readonly leads: number[] = [];

  constructor(private readonly clock: RuleClock) {}

  get size(): number {
    return this.list.length;
  }

  /** Notes the predictions of a firing alert (once per alert id); a stale one (its horizon
   *  already past: an old alert explained later) is not counted. */
  note(alert: AlertLike): void {
    if (this.seen.has(alert.id) || (alert.state !== 'warning' && alert.state !== 'critical')) return;
    const found = predictionsIn(alert.evidence);
    if (found.length === 0) return;
    this.seen.add(alert.id);
    if (this.seen.size > 4 * MAX_KEPT) this.seen.delete(this.seen.values().next().value!);
    const tNs = this.clock.fromEpochMs(alert.ts);
    const now = this.clock.nowNs();
    for (const p of found) {
      const soonest = Math.min(...p.subjects.map((s) => s.etaS));
      const horizonNs = tNs + BigInt(Math.round(soonest * 1.5 * 1e9)) + SLACK_NS;
      if (horizonNs < now) continue;
      this.list.push({ alertId: alert.id, check: alert.check, ...p, tNs, horizonNs, outcome: 'pending' });
    }
    while (this.list.length > MAX_KEPT) this.drop(this.list.shift()!);
  }

  /** Settles predictions whose horizon passed: pending ones were false alarms. */
  expire(nowNs: bigint = this.clock.nowNs()): void {
    if (this.list.length === 0) return;
    this.list = this.list.filter((p) => {
      if (p.outcome === 'pending' && nowNs > p.horizonNs) {
        p.outcome = 'false_alarm';
        this.falseAlarms++;
        return false;
      }
      return !(p.outcome === 'came_true' && nowNs > p.horizonNs + KEEP_AFTER_NS);
    });
  }

  private drop(p: Prediction): void {
    if (p.outcome === 'pending') {
      p.outcome = 'false_alarm';
      this.falseAlarms++;
    }
  }

  /** An event a prediction may have foreseen: an OOM kill (cause oom_*) of `proc`, or a full disk
   *  (cause disk_*). Returns the evidence items of the predictions it fulfils (each counted once). */
  confirm(cause: string, tNs: bigint, proc: ProcFact | null, hints: { memcgs?: readonly string[]; mount?: string | null; fromPrediction?: boolean }): Evidence[] {
    if (this.list.length === 0) return [];
    this.expire(tNs);
    const kind: PredictionKind | null = cause.startsWith('oom_') ? 'memory' : cause.startsWith('disk_') ? 'disk' : null;
    if (kind === null || hints.fromPrediction) return [];
    const out: Evidence[] = [];
    for (const p of this.list) {
      if (p.kind !== kind || p.tNs > tNs || tNs > p.horizonNs + (p.outcome === 'came_true' ? KEEP_AFTER_NS : 0n)) continue;
      const subject = kind === 'memory' ? memorySubject(p, cause, proc, hints.memcgs ?? []) : diskSubject(p, hints.mount ?? null);
      if (subject === undefined) continue;
      const leadMs = Number(tNs - p.tNs) / 1e6;
      if (p.outcome === 'pending') {
        p.outcome = 'came_true';
        p.leadMs = leadMs;
        this.cameTrue++;
        this.leads.push(leadMs / 1000);
        if (this.leads.length > 100) this.leads.shift();
      }
      const at = new Date(this.clock.epochMs(p.tNs)).toISOString();
      const eta = subject.etaS;
      out.push({
        kind: 'prediction',
        ts: at,
        summary: `predicted ${formatMs(leadMs)} before, at ${at.slice(11, 19)}: check ${p.check} had ${p.field} = ${formatMs(eta * 1000)}${subject.key !== null ? ` for ${subject.key}` : ''} (alert ${p.alertId})`,
        data: { alert_id: p.alertId, check: p.check, field: p.field, subject: subject.key, eta_s: eta, lead_s: Math.round(leadMs) / 1000, predicted_at: at },
      });
    }
    return out;
  }

  stats(): PredictionStats {
    this.expire();
    const settled = this.cameTrue + this.falseAlarms;
    const sorted = [...this.leads].sort((a, b) => a - b);
    return {
      pending: this.list.filter((p) => p.outcome === 'pending').length,
      came_true: this.cameTrue,
      false_alarms: this.falseAlarms,
      precision: settled > 0 ? Math.round((this.cameTrue / settled) * 1000) / 1000 : null,
      median_lead_s: sorted.length ? sorted[Math.floor(sorted.length / 2)]! : null,
    };
  }

  /** Predictions kept (pending, and those that came true within the last hour), newest last. */
  recent(): readonly Prediction[] {
    return this.list;
  }
}

/** The subject of a memory prediction that an OOM kill of `proc` fulfils. */
function memorySubject(p: Prediction, cause: string, proc: ProcFact | null, memcgs: readonly string[]): { key: string | null; etaS: number } | undefined {
  if (p.by === null) return cause === 'oom_global' ? p.subjects[0] : undefined;
  return p.subjects.find((s) => {
    if (s.key === null) return false;
    if (p.by === 'exec_id') return proc?.execId === s.key;
    if (p.by === 'comm') return proc?.comm === s.key;
    // by cgroup: the windows key cgroups by their v2 path; the kernel names the memcg (the v1
    // memory path on hybrid hosts), and the process table knows the process's
    return s.key === proc?.cgroup || memcgs.includes(s.key);
  });
}

function diskSubject(p: Prediction, mount: string | null): { key: string | null; etaS: number } | undefined {
  // a kernel ENOSPC line names a device, not a mount: it fulfils any disk prediction
  if (mount === null || p.mount === mount) return p.subjects[0];
  return undefined;
}
