// Trends in checks: slope(m, w), eta(m, limit, w), leak(m, w) [by key]. The line is fitted by
// least squares (src/shared/trend.ts); the rules for "unknown" and "infinite" are there and in
// docs/dsl.md. Over a windowed metric the fits come from the resource windows (WindowQuery.trend);
// over a field (disk_usage("/")) from the readings this check recorded on its earlier runs,
// kept in its memory as a fixed ring of 13 buckets per (field, window), whatever the interval.
//
// Unknown is null, which every comparison treats as false: a check whose trend is not known yet
// stays ok and its evidence says why; it never fires on a number it cannot stand behind.
import type { Expr } from './ast.js';
import { FIELD_BY_NAME, WINDOW_METRICS, type TrendFunction } from './catalogue.js';
import type { TrendMember } from './sources.js';
import { dimDiv, formatQuantity, literal, NONE, TIME, type Dim } from './units.js';
import { printExpr } from './printer.js';
import {
  Moments, TREND_BUCKETS, TrendBuckets, bucketMsFor, etaWithoutLimit, fitOf, leakOf, slopeOf, type TrendFit, type TrendVerdict,
} from '../shared/trend.js';
import type { EvalContext, EvidenceValue } from './evaluator.js';
import { Unavailable } from './unavailable.js';
import type { Scalar } from './predicate.js';

type By = 'exec_id' | 'cgroup' | 'comm' | null;

/** What one trend reading keeps in the check's memory: the field's readings, bucketed. */
export interface TrendReadings {
  buckets: TrendBuckets;
  firstMs: number;
  lastMs: number;
}

interface Verdict extends TrendVerdict {
  fit: TrendFit | null;
  limit?: number;
  /** members combined into the group (by comm: processes) */
  members: number;
}

const ratio = (x: number) => Math.round(x * 1000) / 1000;

/** Evaluates a trend; `read` reads a field (through the run's cache, into the evidence). */
export async function evalTrend(
  fn: TrendFunction,
  args: Expr[],
  node: Expr,
  cx: EvalContext,
  by: By,
  read: (e: Expr) => Promise<Scalar | { groups: Map<string, Scalar> }>,
): Promise<Scalar | { groups: Map<string, Scalar> }> {
  const m = args[0]!;
  const w = args[args.length - 1] as Extract<Expr, { kind: 'number' }>;
  const windowMs = literal(w.value, w.unit, w.rate).value * 1000;
  const windowS = windowMs / 1000;
  const limitArg = fn === 'eta' ? args[1]! : null;
  const perKeyLimit = limitArg?.kind === 'ident' ? limitArg.name : null;
  const fixedLimit = limitArg === null || perKeyLimit !== null ? null : literalValue(limitArg);
  let members: TrendMember[];
  let usedMs: number;
  let dim: Dim;
  const windows = cx.sources.windows;
  let none: string | null = null;
  if (m.kind === 'ident' && WINDOW_METRICS[m.name] !== undefined) {
    dim = WINDOW_METRICS[m.name]!.dim;
    // no windows, or no data yet: no samples, so unknown (the check stays ok and says why);
    // a trend never makes a check `unknown` for want of history
    let r: { groups: TrendMember[]; usedMs: number } | null = null;
    try {
      r = windows?.trend?.(m.name, windowMs, by, cx.nowMs) ?? null;
      if (windows?.trend === undefined) none = 'no resource windows here: they need the agent';
      else if (r === null) none = `no ${m.name} samples yet`;
    } catch (e) {
      // the agent's windows not running (metrics disabled, or starting): no samples either
      if (!(e instanceof Unavailable)) throw e;
      none = e.message;
    }
    members = r?.groups ?? [];
    usedMs = r?.usedMs ?? 0;
  } else {
    const spec = FIELD_BY_NAME.get((m as Extract<Expr, { kind: 'ident' | 'call' }>).name);
    dim = spec?.result.k === 'num' ? spec.result.dim : NONE;
    const v = await read(m);
    if (typeof v !== 'number') throw new Unavailable(`${printExpr(m)} has no value to follow`);
    const st = readings(cx, `${printExpr(m)}\u0000${windowMs}`, windowMs);
    // two trends of one field and window in a check (slope and eta) record the reading once
    if (cx.nowMs > st.lastMs) {
      st.buckets.record(cx.nowMs, v);
      st.lastMs = cx.nowMs;
    }
    members = [{ key: null, fit: fitOf(st.buckets.sums(cx.nowMs, windowMs, new Moments(), cx.nowMs), 0) }];
    usedMs = Math.min(windowMs, cx.nowMs - st.firstMs);
  }

  const verdictOf = (x: TrendMember): Verdict => {
    const f = x.fit;
    const v = fn === 'slope' ? slopeOf(f, windowS) : fn === 'leak' ? leakOf(f, windowS) : etaWithoutLimit(f, windowS);
    if (v !== null) return { value: v.value, reason: v.reason, fit: f, members: 1 };
    // eta of a group rising on a good fit: only now is a limit looked up
    let limit = fixedLimit;
    if (limit === null) {
      const who: 'exec_id' | 'cgroup' | null = by === 'comm' ? 'exec_id' : by;
      limit = windows?.memoryLimit?.(who, by === 'comm' ? (x.member ?? null) : x.key) ?? null;
      if (limit === null) return { value: null, reason: `${perKeyLimit} is not known`, fit: f, members: 1 };
    }
    return { value: f.level >= limit ? 0 : (limit - f.level) / f.slope, fit: f, limit, members: 1 };
  };

  // members sharing a key combine: rates of growth add up; the group reaches a limit when its
  // first member does; it leaks as much as its leakiest member. One pass, one map: a check over
  // every process of a node has a thousand groups.
  const groups = new Map<string, Verdict>();
  for (let i = 0; i < members.length; i++) {
    const x = members[i]!;
    const v = verdictOf(x);
    const k = x.key ?? '';
    const prev = groups.get(k);
    groups.set(k, prev === undefined ? v : combine(fn, prev, v));
  }

  const outDim = fn === 'slope' ? dimDiv(dim, TIME) : fn === 'eta' ? TIME : NONE;
  const text = (v: Verdict) => (v.value === null ? `unknown (${v.reason ?? 'no trend'})` : v.value === Infinity ? 'infinite' : formatQuantity(v.value, outDim));
  const field = printExpr(node) + (by === null ? '' : ` by ${by}`);
  const trendInfo = {
    fn, metric: printExpr(m), by, ...(limitArg !== null ? { limit: perKeyLimit ?? fixedLimit } : {}),
  };
  const windowEv = { window_s: windowS, window_used_s: Math.round(usedMs) / 1000 };
  const json = (v: number | null) => (v === null || !Number.isFinite(v) ? null : v);
  if (by === null) {
    const v = groups.get('') ?? { value: null, reason: none ?? 'no samples', fit: null, members: 0 };
    const f = v.fit;
    const ev: EvidenceValue = {
      field, value: json(v.value), text: text(v), ...windowEv,
      trend: {
        ...trendInfo,
        ...(f !== null ? { samples: f.n, span_s: Math.round(f.spanS * 10) / 10, r2: Number.isNaN(f.r2) ? null : ratio(f.r2), slope: Number.isNaN(f.slope) ? null : f.slope, level: f.level } : {}),
        ...(v.limit !== undefined ? { limit_value: v.limit } : {}),
        ...(v.value === Infinity ? { infinite: true } : {}),
        ...(v.reason !== undefined && v.value === null ? { reason: v.reason } : {}),
      },
    };
    cx.evidence.push(ev);
    return v.value;
  }
  const top = topGroups(fn, groups, 20);
  // the soonest (largest) first, so a condition's first 20 firing groups are the most urgent
  const values = new Map<string, Scalar>();
  for (const [k, v] of top) values.set(k, v.value);
  for (const [k, v] of groups) values.set(k, v.value);
  const first = top[0];
  cx.evidence.push({
    field,
    value: first ? json(first[1].value) : null,
    text: first ? `${fn === 'eta' ? 'soonest' : 'max'} ${text(first[1])} (${first[0]})` : `unknown (${none ?? 'no groups'})`,
    ...windowEv,
    trend: trendInfo,
    groups: top.map(([key, v]) => ({
      key, value: json(v.value), text: text(v),
      ...(v.fit !== null && v.members === 1 ? { samples: v.fit.n, ...(Number.isNaN(v.fit.r2) ? {} : { r2: ratio(v.fit.r2) }), ...(Number.isNaN(v.fit.slope) ? {} : { slope: v.fit.slope }) } : {}),
      ...(v.limit !== undefined ? { limit: v.limit } : {}),
    })),
  });
  return { groups: values };
}

/** The first `k` groups in evidence order, without sorting them all. */
function topGroups(fn: TrendFunction, groups: Map<string, Verdict>, k: number): [string, Verdict][] {
  const out: [string, Verdict][] = [];
  let worst = -Infinity; // rank of out's last entry once full
  for (const [key, v] of groups) {
    const r = rankOf(fn, v);
    if (out.length === k && r >= worst) continue;
    let i = out.length;
    while (i > 0 && rankOf(fn, out[i - 1]![1]) > r) i--;
    out.splice(i, 0, [key, v]);
    if (out.length > k) out.pop();
    if (out.length === k) worst = rankOf(fn, out[k - 1]![1]);
  }
  return out;
}

/** Evidence order: the soonest eta first (then infinite, then unknown); the largest slope or
 *  leak score first (unknown last). */
function rankOf(fn: TrendFunction, v: Verdict): number {
  if (v.value === null) return Infinity;
  if (fn === 'eta') return v.value === Infinity ? Number.MAX_VALUE : v.value;
  return -v.value;
}

/** Combines two verdicts of one group (`a` is the group's so far, and may be updated). */
function combine(fn: TrendFunction, a: Verdict, b: Verdict): Verdict {
  const members = a.members + b.members;
  let out: Verdict;
  if (a.value === null) out = b.value === null ? a : b;
  else if (b.value === null) out = a;
  else if (fn === 'slope') out = { value: a.value + b.value, fit: a.fit, members };
  else out = (fn === 'eta' ? b.value < a.value : b.value > a.value) ? b : a;
  return out.members === members ? out : { value: out.value, reason: out.reason, fit: out.fit, limit: out.limit, members };
}

function readings(cx: EvalContext, key: string, windowMs: number): TrendReadings {
  const map = (cx.memory.trends ??= new Map());
  let st = map.get(key);
  if (st === undefined) {
    st = { buckets: new TrendBuckets(bucketMsFor(windowMs), TREND_BUCKETS + 1), firstMs: cx.nowMs, lastMs: -Infinity };
    map.set(key, st);
  }
  return st;
}

function literalValue(e: Expr): number {
  if (e.kind === 'unary' && e.op === '-') return -literalValue(e.operand);
  if (e.kind === 'number') return literal(e.value, e.unit, e.rate).value;
  throw new Unavailable(`eta: the limit ${printExpr(e)} is not a value`);
}
