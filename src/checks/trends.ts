// Trends in checks: slope(m, w), eta(m, limit, w), leak(m, w) [by key]. The line is fitted by
// least squares (src/shared/trend.ts); the rules for "unknown" and "infinite" are there and in
// docs/dsl.md. Over a windowed metric the fits come from the resource windows (WindowQuery.trend);
// over a field (disk_usage("/")) from the readings this check recorded on its earlier runs,
// kept in its memory as a fixed ring of 17 buckets per (field, window), whatever the interval.
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
import { Unavailable, type EvalContext, type EvidenceValue } from './evaluator.js';
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
    const r = windows?.trend?.(m.name, windowMs, by, cx.nowMs) ?? null;
    if (windows?.trend === undefined) none = 'no resource windows here: they need the agent';
    else if (r === null) none = `no ${m.name} samples yet`;
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
    if (fn === 'slope') return { ...slopeOf(x.fit, windowS), fit: x.fit, members: 1 };
    if (fn === 'leak') return { ...leakOf(x.fit, windowS), fit: x.fit, members: 1 };
    const early = etaWithoutLimit(x.fit, windowS);
    if (early !== null) return { ...early, fit: x.fit, members: 1 };
    // a limit is looked up only for a group that is rising on a good fit
    let limit = fixedLimit;
    if (limit === null) {
      const who: 'exec_id' | 'cgroup' | null = by === 'comm' ? 'exec_id' : by;
      limit = windows?.memoryLimit?.(who, by === 'comm' ? (x.member ?? null) : x.key) ?? null;
      if (limit === null) return { value: null, reason: `${perKeyLimit} is not known`, fit: x.fit, members: 1 };
    }
    const f = x.fit;
    const value = f.level >= limit ? 0 : (limit - f.level) / f.slope;
    return { value, fit: f, limit, members: 1 };
  };

  // members sharing a key combine: rates of growth add up; the group reaches a limit when its
  // first member does; it leaks as much as its leakiest member
  const groups = new Map<string, Verdict>();
  for (const x of members) {
    const v = verdictOf(x);
    const k = x.key ?? '';
    const prev = groups.get(k);
    if (prev === undefined) groups.set(k, v);
    else groups.set(k, combine(fn, prev, v));
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
  const order = [...groups].sort(([, a], [, b]) => rankOf(fn, a) - rankOf(fn, b));
  const first = order[0];
  cx.evidence.push({
    field,
    value: first ? json(first[1].value) : null,
    text: first ? `${fn === 'eta' ? 'soonest' : 'max'} ${text(first[1])} (${first[0]})` : `unknown (${none ?? 'no groups'})`,
    ...windowEv,
    trend: trendInfo,
    groups: order.slice(0, 20).map(([key, v]) => ({
      key, value: json(v.value), text: text(v),
      ...(v.fit !== null && v.members === 1 ? { samples: v.fit.n, ...(Number.isNaN(v.fit.r2) ? {} : { r2: ratio(v.fit.r2) }), ...(Number.isNaN(v.fit.slope) ? {} : { slope: v.fit.slope }) } : {}),
      ...(v.limit !== undefined ? { limit: v.limit } : {}),
    })),
  });
  return { groups: new Map(order.map(([k, v]) => [k, v.value])) };
}

/** Evidence order: the soonest eta first (then infinite, then unknown); the largest slope or
 *  leak score first (unknown last). */
function rankOf(fn: TrendFunction, v: Verdict): number {
  if (v.value === null) return Infinity;
  if (fn === 'eta') return v.value === Infinity ? Number.MAX_VALUE : v.value;
  return -v.value;
}

function combine(fn: TrendFunction, a: Verdict, b: Verdict): Verdict {
  if (a.value === null) return b.value === null ? a : { ...b, members: a.members + b.members };
  if (b.value === null) return { ...a, members: a.members + b.members };
  const members = a.members + b.members;
  if (fn === 'slope') return { value: a.value + b.value, fit: a.fit, members };
  const pick = fn === 'eta' ? (b.value < a.value ? b : a) : b.value > a.value ? b : a;
  return { ...pick, members };
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
