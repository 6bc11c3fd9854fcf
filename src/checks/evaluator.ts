// Evaluator: one condition of a compiled check → true / false, with the evidence (every field's
// observed value and the window it covered). Field values come from CheckSources; a missing
// source or a failing collector raises Unavailable, which makes the check `unknown`.
//
// Values: number (base units), boolean, string, null (an event field without a value), or a
// grouped map (a windowed aggregate `by` a key). Operators apply per group; a grouped condition
// fires when it holds for any group, and the evidence names those groups.
import { X509Certificate } from 'node:crypto';
import RE2 from 're2';
import { Unavailable } from './unavailable.js';
import type { Expr } from './ast.js';
import { FIELD_BY_NAME, TREND_FUNCTIONS, WINDOW_METRICS, type FieldSpec, type TrendFunction } from './catalogue.js';
import type { CompiledCondition } from './checker.js';
import { eventReads, type EventAggregate } from './aggregates.js';
import { binop, type Scalar } from './predicate.js';
import type { CheckSources } from './sources.js';
import { PERCENT, formatQuantity, literal, type Dim } from './units.js';
import { printExpr } from './printer.js';
import { parse } from './parser.js';
import { evalTrend, type TrendReadings } from './trends.js';

export { Unavailable };

interface Grouped {
  groups: Map<string, Scalar>;
}
type Value = Scalar | Grouped;

const isGrouped = (v: Value): v is Grouped => typeof v === 'object' && v !== null;

export interface EvidenceValue {
  /** the field as written, e.g. `disk_usage("/")` */
  field: string;
  value: Scalar;
  /** the value for people, with its unit: "91.2%" */
  text: string;
  /** window asked for and the span actually covered, seconds */
  window_s?: number;
  window_used_s?: number;
  /** per-group values of a grouped aggregate (the first 20 by value) */
  groups?: { key: string; value: Scalar; text?: string; samples?: number; r2?: number; slope?: number; limit?: number }[];
  /** a trend (slope, eta, leak): what was fitted, and how well (docs/dsl.md, "Trends") */
  trend?: {
    fn: string;
    metric: string;
    by: string | null;
    /** eta's limit: a value in base units, or the per-key limit's name */
    limit?: number | string | null;
    samples?: number;
    span_s?: number;
    r2?: number | null;
    slope?: number | null;
    level?: number;
    limit_value?: number;
    /** eta never reaches the limit at this trend (value is null in JSON) */
    infinite?: boolean;
    /** why the value is unknown */
    reason?: string;
  };
}

/** State a check keeps between runs (counter samples, log read offsets, CPU baseline). */
export interface CheckMemory {
  counters: Map<string, { t: number; v: number }[]>;
  logs: Map<string, { ino: number; offset: number; samples: { t: number; n: number }[] }>;
  /** readings of fields followed by a trend, per (field, window) */
  trends?: Map<string, TrendReadings>;
}

export const newMemory = (): CheckMemory => ({ counters: new Map(), logs: new Map() });

export interface EvalContext {
  sources: CheckSources;
  /** wall clock, ms since the epoch */
  nowMs: number;
  /** "now" on the event counters' clock */
  eventNowMs: number;
  memory: CheckMemory;
  evidence: EvidenceValue[];
  signal?: AbortSignal;
  /** values read in this run, by field text: every condition of a check sees the same reading,
   *  and each field is read (and shown in the evidence) once */
  cache?: Map<string, Promise<Value>>;
}

const re2Cache = new Map<string, RE2>();
function re2(pattern: string): RE2 {
  let r = re2Cache.get(pattern);
  if (r === undefined) {
    r = new RE2(pattern);
    if (re2Cache.size > 256) re2Cache.clear();
    re2Cache.set(pattern, r);
  }
  return r;
}

/** Evaluates a condition; returns whether it fires (after `unless`) and, for grouped conditions,
 *  the groups that fire. */
export async function evalCondition(c: CompiledCondition, cx: EvalContext): Promise<{ fired: boolean; groups?: string[] }> {
  const v = await evalExpr(c.expr, cx);
  const fire = (s: Scalar) => (c.negate ? s !== true : s === true);
  if (isGrouped(v)) {
    // one pass, no intermediate arrays: a grouped value may have thousands of groups
    const groups: string[] = [];
    let fired = false;
    for (const [k, s] of v.groups) {
      if (!fire(s)) continue;
      fired = true;
      groups.push(k);
      if (groups.length === 20) break;
    }
    return { fired, groups };
  }
  return { fired: fire(v) };
}

function lift(a: Value, b: Value, f: (x: Scalar, y: Scalar) => Scalar): Value {
  if (isGrouped(a) && isGrouped(b)) {
    const out = new Map<string, Scalar>();
    for (const [k, x] of a.groups) if (b.groups.has(k)) out.set(k, f(x, b.groups.get(k)!));
    return { groups: out };
  }
  if (isGrouped(a) || isGrouped(b)) {
    const out = new Map<string, Scalar>();
    if (isGrouped(a)) for (const [k, x] of a.groups) out.set(k, f(x, b as Scalar));
    else for (const [k, y] of (b as Grouped).groups) out.set(k, f(a, y));
    return { groups: out };
  }
  return f(a, b);
}

export async function evalExpr(e: Expr, cx: EvalContext): Promise<Value> {
  switch (e.kind) {
    case 'number':
      return literal(e.value, e.unit, e.rate).value;
    case 'string':
      return e.value;
    case 'bool':
      return e.value;
    case 'ident':
      return field(e.name, [], e, cx);
    case 'call':
      return field(e.name, e.args, e, cx);
    case 'by':
      return field((e.expr as Extract<Expr, { kind: 'call' }>).name, (e.expr as Extract<Expr, { kind: 'call' }>).args, e.expr, cx, e.key);
    case 'where':
      throw new Unavailable('where outside an event aggregate');
    case 'unary': {
      const v = await evalExpr(e.operand, cx);
      const f = (s: Scalar): Scalar => (e.op === 'not' ? s !== true : typeof s === 'number' ? -s : null);
      return isGrouped(v) ? { groups: new Map([...v.groups].map(([k, s]) => [k, f(s)])) } : f(v);
    }
    case 'binary': {
      const l = await evalExpr(e.left, cx);
      // short-circuit, so a guard like `file_exists(p) and cert_expiry(p) < 7d` never reads p
      if (e.op === 'and' && l === false) return false;
      if (e.op === 'or' && l === true) return true;
      const r = await evalExpr(e.right, cx);
      return lift(l, r, (x, y) => binop(e.op, x, y));
    }
  }
}

/** Argument `k` of a call as a literal (string, or a number in base units), defaults applied. */
function arg(spec: FieldSpec, args: Expr[], k: number): string | number {
  const a = args[k] ?? defaultArg(spec, k);
  if (a.kind === 'string') return a.value;
  if (a.kind === 'number') return literal(a.value, a.unit, a.rate).value;
  throw new Unavailable(`${spec.name}: argument ${k + 1} is not a literal`);
}

const defaults = new Map<string, Expr>();
function defaultArg(spec: FieldSpec, k: number): Expr {
  const p = spec.params[k]!;
  const key = `${spec.name}/${k}`;
  let e = defaults.get(key);
  if (e === undefined) {
    const prog = parse(`check ${p.default} == 0;`, '<default>');
    const c = prog.stmts[0]!;
    e = c.kind === 'check' ? (c.conditions[0]!.expr as Extract<Expr, { kind: 'binary' }>).left : undefined;
    if (e === undefined) throw new Unavailable(`${spec.name}: bad default`);
    defaults.set(key, e);
  }
  return e;
}

function record(cx: EvalContext, node: Expr, value: Scalar, dim: Dim | null, extra: Partial<EvidenceValue> = {}): void {
  const text = typeof value === 'number' && dim !== null ? formatQuantity(value, dim) : String(value);
  cx.evidence.push({ field: printExpr(node), value, text, ...extra });
}

const events = (cx: EvalContext) => need(cx.sources.events, 'event counters (they need the agent, or patrol check --replay)');

/** Events of one aggregate in its window; the counters exist for every aggregate of the loaded
 *  checks (the service configures them with the set), so a missing one is a wiring defect. */
function countEvents(cx: EvalContext, a: EventAggregate): { n: number; usedMs: number } {
  const r = events(cx).count(a, cx.eventNowMs);
  if (r === null) throw new Unavailable(`events of ${a.kind}${a.predText ? ` where ${a.predText}` : ''} over ${a.windowMs / 1000}s are not being counted`);
  return r;
}

const windowUsed = (w: number, usedMs: number): Partial<EvidenceValue> => ({ window_s: w / 1000, window_used_s: Math.round(usedMs) / 1000 });

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Unavailable(`${what} are not available here`);
  return v;
}

function field(name: string, args: Expr[], node: Expr, cx: EvalContext, by?: string): Promise<Value> {
  if (cx.cache === undefined) return readField(name, args, node, cx, by);
  const key = printExpr(node) + (by === undefined ? '' : ` by ${by}`);
  let v = cx.cache.get(key);
  if (v === undefined) cx.cache.set(key, (v = readField(name, args, node, cx, by)));
  return v;
}

async function readField(name: string, args: Expr[], node: Expr, cx: EvalContext, by?: string): Promise<Value> {
  cx.signal?.throwIfAborted();
  if (WINDOW_METRICS[name] === undefined && ['avg', 'min', 'max', 'sum', 'p50', 'p90', 'p95', 'p99'].includes(name)) return windowAgg(name, args, node, cx, by ?? null);
  if (name === 'count' || name === 'rate') return eventAgg(name, args, node, cx);
  if ((TREND_FUNCTIONS as readonly string[]).includes(name)) {
    return evalTrend(name as TrendFunction, args, node, cx, (by ?? null) as 'exec_id' | 'cgroup' | 'comm' | null, (e) => evalExpr(e, cx));
  }
  const spec = FIELD_BY_NAME.get(name);
  if (spec === undefined) throw new Unavailable(`unknown field ${name}`);
  const dim = spec.result.k === 'num' ? spec.result.dim : null;
  const v = await collect(spec, args, cx, node);
  record(cx, node, v.value, dim, v.extra);
  return v.value;
}

async function collect(spec: FieldSpec, args: Expr[], cx: EvalContext, node: Expr): Promise<{ value: Scalar; extra?: Partial<EvidenceValue> }> {
  const s = cx.sources;
  const node_ = () => need(s.node, 'node facts');
  const procs = async () => need(s.processes, 'process lists').list();
  const sys = () => need(s.system, 'system facts');
  switch (spec.name) {
    case 'cpu_usage':
      return { value: await node_().cpuUsage() };
    case 'memory_usage': {
      const m = node_().memory();
      return { value: m.totalBytes > 0 ? 1 - m.availableBytes / m.totalBytes : 0 };
    }
    case 'memory_available':
      return { value: node_().memory().availableBytes };
    case 'swap_usage': {
      const m = node_().memory();
      if (m.swapTotalBytes === 0) return { value: 0 };
      if (m.swapFreeBytes === null) throw new Unavailable('free swap is not known');
      return { value: 1 - m.swapFreeBytes / m.swapTotalBytes };
    }
    case 'load1':
    case 'load5':
    case 'load15':
      return { value: node_().loadavg()[spec.name === 'load1' ? 0 : spec.name === 'load5' ? 1 : 2] };
    case 'load_per_cpu':
      return { value: node_().loadavg()[0] / Math.max(1, node_().cpuCount()) };
    case 'disk_usage':
    case 'disk_free':
    case 'inode_usage': {
      const path = arg(spec, args, 0) as string;
      let st;
      try {
        st = await node_().fsUsage(path);
      } catch (e) {
        if (e instanceof Unavailable) throw e;
        throw new Unavailable((e as Error).message);
      }
      if (spec.name === 'disk_free') return { value: st.availableBytes };
      return { value: spec.name === 'inode_usage' ? st.inodeUsage : st.usage };
    }
    case 'psi_some':
    case 'psi_full': {
      const res = arg(spec, args, 0) as 'cpu' | 'memory' | 'io';
      const w = arg(spec, args, 1) as number;
      try {
        return { value: node_().psi(res, spec.name === 'psi_some' ? 'some' : 'full', w as 10 | 60 | 300), extra: { window_s: w } };
      } catch (e) {
        if (e instanceof Unavailable) throw e;
        throw new Unavailable(`PSI ${res}: ${(e as Error).message}`);
      }
    }
    case 'open_files_usage': {
      const f = node_().fileHandles();
      return { value: f.max > 0 ? f.allocated / f.max : 0 };
    }
    case 'uptime':
      return { value: node_().uptimeSeconds() };
    case 'oom_kills': {
      const c = node_().oomKillCounter();
      if (c === null) throw new Unavailable('this kernel does not count OOM kills (vmstat oom_kill)');
      return counterDelta(cx, printExpr(node), c, (arg(spec, args, 0) as number) * 1000);
    }
    case 'process_running':
    case 'process_count': {
      const want = arg(spec, args, 0) as string;
      const re = want.length >= 2 && want.startsWith('/') && want.endsWith('/') ? re2(want.slice(1, -1)) : null;
      const n = (await procs()).filter((p) => (re === null ? p.comm === want : re.test(p.comm)) && p.state !== 'Z' && p.state !== 'X').length;
      return { value: spec.name === 'process_running' ? n > 0 : n };
    }
    case 'zombie_count':
      return { value: (await procs()).filter((p) => p.state === 'Z').length };
    case 'd_state_count':
      return { value: (await procs()).filter((p) => p.state === 'D').length };
    case 'exec_rate': {
      const [a] = eventReads(spec.name, args)!;
      const { n, usedMs } = countEvents(cx, a!);
      return { value: n / (a!.windowMs / 1000), extra: windowUsed(a!.windowMs, usedMs) };
    }
    case 'exit_failures': {
      const [exits, failedExecs] = eventReads(spec.name, args)!;
      const x = countEvents(cx, exits!);
      const y = countEvents(cx, failedExecs!);
      return { value: x.n + y.n, extra: windowUsed(exits!.windowMs, Math.min(x.usedMs, y.usedMs)) };
    }
    case 'events_lost': {
      const lost = need(s.agent, "the agent's loss counters (they need the agent)").lostRecords();
      return counterDelta(cx, printExpr(node), lost, (arg(spec, args, 0) as number) * 1000);
    }
    case 'port_listening':
      return { value: (await sys().listeningPorts()).has(arg(spec, args, 0) as number) };
    case 'file_exists':
      return { value: (await sys().mtimeMs(arg(spec, args, 0) as string)) !== null };
    case 'file_age': {
      const path = arg(spec, args, 0) as string;
      const m = await sys().mtimeMs(path);
      if (m === null) throw new Unavailable(`${path}: no such file`);
      return { value: (cx.nowMs - m) / 1000 };
    }
    case 'cert_expiry':
      return { value: await certExpiry(sys().readText.bind(sys()), arg(spec, args, 0) as string, cx.nowMs) };
    case 'log_matches':
      return logMatches(cx, arg(spec, args, 0) as string, arg(spec, args, 1) as string, (arg(spec, args, 2) as number) * 1000);
  }
  throw new Unavailable(`no collector for ${spec.name}`);
}

/** Increase of a monotonic counter over the window, from samples this check took earlier. The
 *  first run has nothing to compare with: 0 over a window of 0 s (the evidence says so). */
function counterDelta(cx: EvalContext, key: string, v: number, windowMs: number): { value: number; extra: Partial<EvidenceValue> } {
  let samples = cx.memory.counters.get(key);
  if (samples === undefined) cx.memory.counters.set(key, (samples = []));
  samples.push({ t: cx.nowMs, v });
  while (samples.length > 1 && samples[1]!.t <= cx.nowMs - windowMs) samples.shift();
  const base = samples[0]!;
  return { value: Math.max(0, v - base.v), extra: { window_s: windowMs / 1000, window_used_s: (cx.nowMs - base.t) / 1000 } };
}

export async function certExpiry(read: (path: string, max: number) => Promise<string>, path: string, nowMs: number): Promise<number> {
  let text: string;
  try {
    text = await read(path, 1 << 20);
  } catch (e) {
    throw new Unavailable(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  if (m === null) throw new Unavailable(`${path}: no PEM certificate in the file`);
  try {
    const cert = new X509Certificate(m[0]);
    return (Date.parse(cert.validTo) - nowMs) / 1000;
  } catch (e) {
    throw new Unavailable(`${path}: not a valid certificate: ${(e as Error).message}`);
  }
}

const LOG_MAX_READ = 4 << 20;

/** Lines appended since the previous run that match; summed over the runs within the window.
 *  The first run reads the last 1 MiB when the file changed within the window. Rotation (new
 *  inode, or the file shrank) restarts at the beginning. */
async function logMatches(cx: EvalContext, path: string, pattern: string, windowMs: number): Promise<{ value: number; extra: Partial<EvidenceValue> }> {
  const sys = need(cx.sources.system, 'system facts');
  const key = `${path}\0${pattern}`;
  let st = cx.memory.logs.get(key);
  const mtime = await sys.mtimeMs(path);
  if (mtime === null) throw new Unavailable(`${path}: no such file`);
  let probe;
  try {
    probe = await sys.readFrom(path, 0, 0);
  } catch (e) {
    throw new Unavailable(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (st === undefined) {
    const fresh = cx.nowMs - mtime <= windowMs;
    st = { ino: probe.ino, offset: fresh ? Math.max(0, probe.size - (1 << 20)) : probe.size, samples: [] };
    cx.memory.logs.set(key, st);
  }
  if (probe.ino !== st.ino || probe.size < st.offset) {
    st.ino = probe.ino;
    st.offset = 0;
  }
  if (probe.size - st.offset > LOG_MAX_READ) st.offset = probe.size - LOG_MAX_READ;
  let n = 0;
  if (probe.size > st.offset) {
    const { data } = await sys.readFrom(path, st.offset, probe.size - st.offset);
    const lastNl = data.lastIndexOf(0x0a);
    if (lastNl >= 0) {
      const r = re2(pattern);
      for (const line of data.subarray(0, lastNl).toString('utf8').split('\n')) if (r.test(line)) n++;
      st.offset += lastNl + 1;
    }
  }
  st.samples.push({ t: cx.nowMs, n });
  while (st.samples.length > 0 && st.samples[0]!.t <= cx.nowMs - windowMs) st.samples.shift();
  const total = st.samples.reduce((a, x) => a + x.n, 0);
  return { value: total, extra: { window_s: windowMs / 1000, window_used_s: Math.min(windowMs, cx.nowMs - st.samples[0]!.t) / 1000 } };
}

function windowAgg(agg: string, args: Expr[], node: Expr, cx: EvalContext, by: string | null): Value {
  const w = need(cx.sources.windows, 'resource windows (they need the agent)');
  const metric = (args[0] as Extract<Expr, { kind: 'ident' }>).name;
  const a1 = args[1] as Extract<Expr, { kind: 'number' }>;
  const windowMs = literal(a1.value, a1.unit, a1.rate).value * 1000;
  const r = w.aggregate(metric, agg, windowMs, by as 'exec_id' | 'cgroup' | 'comm' | null, cx.nowMs);
  if (r === null) throw new Unavailable(`no ${metric} data for ${printExpr(a1)} yet`);
  const dim = WINDOW_METRICS[metric]?.dim ?? PERCENT;
  const extra = { window_s: windowMs / 1000, window_used_s: r.usedMs / 1000 };
  const text = printExpr(node) + (by === null ? '' : ` by ${by}`);
  if (by === null) {
    const v = r.groups[0]?.value ?? null;
    cx.evidence.push({ field: text, value: v, text: v === null ? 'null' : formatQuantity(v, dim), ...extra });
    return v;
  }
  const sorted = [...r.groups].sort((x, y) => y.value - x.value);
  cx.evidence.push({
    field: text, value: sorted[0]?.value ?? null, text: sorted[0] ? `max ${formatQuantity(sorted[0].value, dim)} (${sorted[0].key})` : 'no groups', ...extra,
    groups: sorted.slice(0, 20).map((g) => ({ key: g.key ?? '', value: g.value })),
  });
  return { groups: new Map(r.groups.map((g) => [g.key ?? '', g.value])) };
}

function eventAgg(name: string, args: Expr[], node: Expr, cx: EvalContext): number {
  const [a] = eventReads(name, args)!;
  const { n, usedMs } = countEvents(cx, a!);
  const v = name === 'rate' ? n / (a!.windowMs / 1000) : n;
  cx.evidence.push({ field: printExpr(node), value: v, text: name === 'rate' ? `${Math.round(v * 100) / 100}/s` : String(v), ...windowUsed(a!.windowMs, usedMs) });
  return v;
}
