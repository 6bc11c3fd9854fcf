// Checker: AST → typed, validated checks. It knows the field catalogue (names, arity, argument
// types), units and dimensions, event kinds and their fields, RE2 patterns. Each check is checked
// on its own, and an expression that already failed has type 'error', which silences follow-on
// complaints, so every independent mistake is reported once.
import { createHash } from 'node:crypto';
import RE2 from 're2';
import { DiagnosticBag, suggest, type Span } from './diagnostics.js';
import type { CheckStmt, Expr, Program } from './ast.js';
import {
  ALERT_STATES, EVENT_AGGREGATES, EVENT_KINDS, FIELD_BY_NAME, FIELDS, GATE_FIELDS, GATE_FUNCTIONS, GROUP_KEYS, TIMEOUT_ACTIONS, TREND_FUNCTIONS, TREND_LIMITS, WINDOW_AGGREGATES,
  WINDOW_METRICS, allCallableNames, type EventFieldType, type FieldSpec, type Param,
} from './catalogue.js';
import { NONE, PER_SECOND, TIME, dimDiv, dimEq, dimExample, dimMul, dimName, isNone, literal, type Dim } from './units.js';
import { printExpr } from './printer.js';
import { TREND_MIN_SAMPLES } from '../shared/trend.js';

export type Ty =
  | { k: 'num'; dim: Dim; grouped: boolean; literal: boolean }
  | { k: 'bool'; grouped: boolean }
  | { k: 'str' }
  | { k: 'null' }
  | { k: 'error' };

export type AlertState = (typeof ALERT_STATES)[number];
export type TimeoutAction = (typeof TIMEOUT_ACTIONS)[number];

export interface CompiledCondition {
  severity: 'warning' | 'critical';
  negate: boolean;
  expr: Expr;
  forMs: number;
  /** the condition as printed, for evidence */
  text: string;
}

export interface CompiledCheck {
  /** stable: 16 hex digits of sha256(file base name, check name) */
  id: string;
  name: string;
  file: string;
  line: number;
  /** the statement's position in its file */
  span: Span;
  everyMs: number;
  timeoutMs: number;
  conditions: CompiledCondition[];
  labels: Record<string, string>;
  onTimeout: TimeoutAction;
  /** states whose arrival raises an alert (a return to ok after an alert always does) */
  alertOn: ReadonlySet<AlertState>;
  /** some condition reads event counts (count, rate, exec_rate, exit_failures) */
  usesEvents: boolean;
  /** some condition reads the agent's own figures (events_lost): only the agent can run it */
  usesAgent: boolean;
}

export const DEFAULT_EVERY_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_ALERT_ON: readonly AlertState[] = ['warning', 'critical', 'unknown'];
const MAX_WINDOW_S = 7 * 86400;

const ERR: Ty = { k: 'error' };
const tyName = (t: Ty): string =>
  t.k === 'num' ? dimName(t.dim) : t.k === 'bool' ? 'a condition (true/false)' : t.k === 'str' ? 'a string' : t.k === 'null' ? 'null' : 'an error';

export function checkId(file: string, name: string): string {
  const base = file.split('/').pop() ?? file;
  return createHash('sha256').update(`${base}\0${name}`).digest('hex').slice(0, 16);
}

/** Checks every statement of a program; returns the checks that are free of errors. */
export function checkProgram(prog: Program, diags: DiagnosticBag): CompiledCheck[] {
  const fileAlert = new Set<AlertState>();
  for (const s of prog.stmts) {
    if (s.kind !== 'alert') continue;
    for (const st of s.states) {
      if ((ALERT_STATES as readonly string[]).includes(st.name)) fileAlert.add(st.name as AlertState);
      else badState(st.name, st.span, diags);
    }
  }
  const out: CompiledCheck[] = [];
  const names = new Map<string, Span>();
  for (const s of prog.stmts) {
    if (s.kind !== 'check') continue;
    const before = diags.items.filter((d) => d.severity === 'error').length;
    const c = checkOne(s, diags, fileAlert, prog.file);
    const first = names.get(c.name);
    if (first !== undefined) {
      diags.error('PD2007', s.nameSpan ?? s.span, `a check named '${c.name}' is already defined at line ${first.line}`, 'check names must be unique within a file');
    } else names.set(c.name, s.nameSpan ?? s.span);
    if (diags.items.filter((d) => d.severity === 'error').length === before) out.push(c);
  }
  return out;
}

/** A rollout gate (docs/fleet.md, "Gates"): an expression over the per-node fleet fields
 *  (GATE_FIELDS) and baseline(f) / before(f), type-checked with the same rules as a condition.
 *  It must be true or false. Returns whether it is free of errors. */
export function checkGate(e: Expr, diags: DiagnosticBag): boolean {
  const before = diags.items.filter((d) => d.severity === 'error').length;
  const cx = new Cx(diags);
  cx.gate = true;
  const t = cx.expr(e);
  if (t.k !== 'error' && t.k !== 'bool') {
    diags.error('PD2005', e.span, `a gate must be true or false, but this is ${tyName(t)}`, t.k === 'num' ? `compare it: ${printExpr(e)} <= ${dimExample(t.dim)}` : undefined);
  }
  return diags.items.filter((d) => d.severity === 'error').length === before;
}

function badState(name: string, span: Span, diags: DiagnosticBag): void {
  const s = suggest(name, ALERT_STATES);
  diags.error('PD2013', span, `'${name}' is not a state that can raise alerts${s ? `; did you mean '${s}'?` : ''}`, `states: ${ALERT_STATES.join(', ')}`);
}

function checkOne(s: CheckStmt, diags: DiagnosticBag, fileAlert: ReadonlySet<AlertState>, file: string): CompiledCheck {
  const cx = new Cx(diags);
  const name = s.name ?? (s.conditions[0] ? conditionText(s.conditions[0]) : '');
  const everyMs = s.every ? cx.durationMs(s.every, 'every', 1) : DEFAULT_EVERY_MS;
  cx.everyMs = everyMs;
  let timeoutMs = s.timeout ? cx.durationMs(s.timeout, 'timeout', 0.001) : Math.min(DEFAULT_TIMEOUT_MS, everyMs);
  if (s.timeout && s.every && timeoutMs > everyMs) {
    diags.warning('PD3001', s.timeout.span, `timeout ${timeoutMs / 1000}s is longer than the interval (every ${everyMs / 1000}s)`, 'a run still in progress when the next is due skips that run');
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) timeoutMs = DEFAULT_TIMEOUT_MS;
  if (s.conditions.length === 0) {
    diags.error('PD2008', s.nameSpan ?? s.span, `check '${name}' has no condition`, 'add `critical <condition>;` or `warning <condition>;`');
  }
  let usesEvents = false;
  let usesAgent = false;
  const conditions: CompiledCondition[] = s.conditions.map((c) => {
    const t = cx.expr(c.expr);
    if (t.k !== 'error' && t.k !== 'bool') {
      diags.error('PD2005', c.expr.span, `a condition must be true or false, but this is ${tyName(t)}`, t.k === 'num' ? `compare it: ${printExpr(c.expr)} > ${dimExample(t.dim)}` : undefined);
    }
    const x = c.expr;
    if (!c.negate && x.kind === 'binary' && x.op === '==' && x.right.kind === 'number' && x.right.value === 0 && (x.left.kind === 'call' || x.left.kind === 'ident')) {
      diags.warning('PD3003', c.span, `this ${c.severity} condition fires while ${printExpr(x.left)} is 0`, `conditions describe the problem; to assert a healthy state write: ${c.severity === 'critical' && !s.block ? 'check' : c.severity} unless ${printExpr(x)}`);
    }
    if (t.k === 'bool' && c.expr.kind === 'bool') diags.warning('PD3002', c.expr.span, `the condition is always ${String(c.expr.value)}`);
    usesEvents ||= cx.usesEvents;
    usesAgent ||= cx.usesAgent;
    return { severity: c.severity, negate: c.negate, expr: c.expr, forMs: c.for ? cx.durationMs(c.for, 'for', 0) : 0, text: conditionText(c) };
  });
  const labels: Record<string, string> = {};
  for (const l of s.labels) {
    if (l.key in labels) diags.error('PD1012', l.span, `label '${l.key}' is set twice`);
    labels[l.key] = l.value;
  }
  let onTimeout: TimeoutAction = 'alert';
  if (s.onTimeout) {
    if ((TIMEOUT_ACTIONS as readonly string[]).includes(s.onTimeout.action)) onTimeout = s.onTimeout.action as TimeoutAction;
    else {
      const sg = suggest(s.onTimeout.action, TIMEOUT_ACTIONS);
      diags.error('PD2013', s.onTimeout.span, `'${s.onTimeout.action}' is not a timeout action${sg ? `; did you mean '${sg}'?` : ''}`, `actions: ${TIMEOUT_ACTIONS.join(', ')}`);
    }
  }
  const alertOn = new Set<AlertState>([...DEFAULT_ALERT_ON, ...fileAlert]);
  if (s.alertOn) {
    for (const st of s.alertOn.states) {
      if ((ALERT_STATES as readonly string[]).includes(st)) alertOn.add(st as AlertState);
      else badState(st, s.alertOn.span, diags);
    }
  }
  return {
    id: checkId(file, name), name, file, line: s.span.line, span: s.span, everyMs, timeoutMs, conditions, labels, onTimeout, alertOn, usesEvents, usesAgent,
  };
}

function conditionText(c: { negate: boolean; expr: Expr }): string {
  return `${c.negate ? 'unless ' : ''}${printExpr(c.expr)}`;
}

/** Type-checking context for one check. */
class Cx {
  usesEvents = false;
  usesAgent = false;
  /** the check's interval: a trend over a field's readings needs several runs in its window */
  everyMs = DEFAULT_EVERY_MS;
  /** a rollout gate: names are the fleet's per-node fields, calls baseline() and before() */
  gate = false;
  /** fields of the event kind while inside `where` */
  private eventScope: Record<string, EventFieldType> | null = null;
  private eventKind = '';

  constructor(private readonly diags: DiagnosticBag) {}

  durationMs(e: Expr, what: string, minSeconds: number): number {
    if (e.kind !== 'number') return 0;
    const q = literal(e.value, e.unit, e.rate);
    if (!dimEq(q.dim, TIME)) {
      this.diags.error('PD2006', e.span, `'${what}' needs a duration, but ${e.unit === null && e.rate === null ? `${e.value} has no unit` : `${printExpr(e)} is ${dimName(q.dim)}`}`, `write it with a time unit: ${e.value}s, ${e.value}m`);
      return 0;
    }
    if (q.value < minSeconds || (minSeconds === 0 && q.value < 0)) {
      this.diags.error('PD2006', e.span, `'${what}' must be at least ${minSeconds >= 1 ? `${minSeconds}s` : minSeconds === 0 ? '0s' : '1ms'}`);
      return 0;
    }
    if (q.value > MAX_WINDOW_S * 52) {
      this.diags.error('PD2006', e.span, `'${what}' ${printExpr(e)} is longer than a year`);
      return 0;
    }
    return q.value * 1000;
  }

  expr(e: Expr): Ty {
    switch (e.kind) {
      case 'number': {
        const q = literal(e.value, e.unit, e.rate);
        return { k: 'num', dim: q.dim, grouped: false, literal: true };
      }
      case 'string':
        return { k: 'str' };
      case 'bool':
        return { k: 'bool', grouped: false };
      case 'ident':
        if (this.gate) return this.gateField(e.name, e.span);
        if (this.eventScope !== null) return this.eventField(e.name, e.span);
        return this.call(e.name, e.span, [], e.span, false);
      case 'call':
        if (this.gate) return this.gateCall(e);
        if (this.eventScope !== null) {
          this.diags.error('PD2010', e.nameSpan, `a 'where' filter tests the fields of one ${this.eventKind} event; ${e.name}(...) is not one of them`, `fields: ${Object.keys(this.eventScope).join(', ')}`);
          return ERR;
        }
        return this.call(e.name, e.nameSpan, e.args, e.span, false);
      case 'by':
        return this.by(e);
      case 'where':
        this.diags.error('PD2015', e.span, "'where' filters events only inside count(...) or rate(...)", 'count(exit where exit_code != 0, 10m)');
        return ERR;
      case 'unary': {
        const t = this.expr(e.operand);
        if (t.k === 'error') return t;
        if (e.op === 'not') {
          if (t.k !== 'bool') return this.mismatch(e.operand.span, "'not'", 'a condition', t);
          return t;
        }
        if (t.k !== 'num') return this.mismatch(e.operand.span, "'-'", 'a number', t);
        return { ...t, literal: false };
      }
      case 'binary':
        return this.binary(e);
    }
  }

  private mismatch(span: Span, op: string, want: string, got: Ty): Ty {
    this.diags.error('PD2005', span, `${op} needs ${want}, but this is ${tyName(got)}`);
    return ERR;
  }

  private binary(e: Extract<Expr, { kind: 'binary' }>): Ty {
    const l = this.expr(e.left);
    const r = this.expr(e.right);
    if (l.k === 'error' || r.k === 'error') return ERR;
    const grouped = ('grouped' in l && l.grouped) || ('grouped' in r && r.grouped);
    switch (e.op) {
      case 'and':
      case 'or':
        if (l.k !== 'bool') return this.mismatch(e.left.span, `'${e.op}'`, 'a condition on both sides', l);
        if (r.k !== 'bool') return this.mismatch(e.right.span, `'${e.op}'`, 'a condition on both sides', r);
        return { k: 'bool', grouped };
      case '==':
      case '!=':
        if (l.k === 'str' || r.k === 'str' || l.k === 'bool' || r.k === 'bool') {
          if (l.k !== r.k) this.diags.error('PD2005', e.span, `cannot compare ${tyName(l)} with ${tyName(r)}`);
          return { k: 'bool', grouped };
        }
        this.sameDim(e, l, r);
        return { k: 'bool', grouped };
      case '<':
      case '<=':
      case '>':
      case '>=':
        if (l.k !== 'num') return this.mismatch(e.left.span, `'${e.op}'`, 'numbers', l);
        if (r.k !== 'num') return this.mismatch(e.right.span, `'${e.op}'`, 'numbers', r);
        this.sameDim(e, l, r);
        return { k: 'bool', grouped };
      case '+':
      case '-':
        if (l.k !== 'num') return this.mismatch(e.left.span, `'${e.op}'`, 'numbers', l);
        if (r.k !== 'num') return this.mismatch(e.right.span, `'${e.op}'`, 'numbers', r);
        if (!this.sameDim(e, l, r)) return ERR;
        return { k: 'num', dim: isNone(l.dim) && l.literal ? r.dim : l.dim, grouped, literal: l.literal && r.literal };
      case '*':
      case '/':
        if (l.k !== 'num') return this.mismatch(e.left.span, `'${e.op}'`, 'numbers', l);
        if (r.k !== 'num') return this.mismatch(e.right.span, `'${e.op}'`, 'numbers', r);
        return { k: 'num', dim: e.op === '*' ? dimMul(l.dim, r.dim) : dimDiv(l.dim, r.dim), grouped, literal: l.literal && r.literal };
    }
  }

  /** Units must agree; a plain literal 0 goes with anything (`disk_usage > 0`). */
  private sameDim(e: Extract<Expr, { kind: 'binary' }>, l: Ty, r: Ty): boolean {
    if (l.k !== 'num' || r.k !== 'num') return true;
    if (dimEq(l.dim, r.dim)) return true;
    const zero = (x: Expr) => x.kind === 'number' && x.value === 0 && x.unit === null && x.rate === null;
    if (zero(e.left) || zero(e.right)) return true;
    const lit = r.literal && !l.literal ? e.right : l.literal && !r.literal ? e.left : null;
    const other = lit === e.right ? l : r;
    let hint: string | undefined;
    if (lit !== null && lit.kind === 'number') {
      const v = lit.value;
      hint =
        lit.unit === null && dimEq(other.dim, { b: 0, t: 0, p: 1 })
          ? `${v} is a plain number; write a percentage such as ${v <= 1 ? Math.round(v * 10000) / 100 : v}%`
          : dimEq(other.dim, TIME)
            ? `give it a time unit: ${v}s, ${v}m, ${v}h or ${v}d`
            : dimEq(other.dim, { b: 1, t: 0, p: 0 })
              ? `give it a size unit: ${v}KB, ${v}MB or ${v}GB`
              : `write it as ${dimName(other.dim)}, e.g. ${dimExample(other.dim)}`;
    }
    this.diags.error('PD2004', e.span, `unit mismatch in '${e.op}': ${printExpr(e.left)} is ${dimName(l.dim)}, ${printExpr(e.right)} is ${dimName(r.dim)}`, hint);
    return false;
  }

  private gateField(name: string, span: Span): Ty {
    const f = GATE_FIELDS[name];
    if (f === undefined) {
      const sg = suggest(name, Object.keys(GATE_FIELDS));
      this.diags.error('PD2001', span, `'${name}' is not a fleet field a gate can read${sg ? `; did you mean '${sg}'?` : ''}`, `fields: ${Object.keys(GATE_FIELDS).join(', ')}; functions: baseline(field), before(field)`);
      return ERR;
    }
    if (f.k === 'num') return { k: 'num', dim: f.dim, grouped: false, literal: false };
    if (f.k === 'bool') return { k: 'bool', grouped: false };
    return { k: 'str' };
  }

  private gateCall(e: Extract<Expr, { kind: 'call' }>): Ty {
    if (!(GATE_FUNCTIONS as readonly string[]).includes(e.name)) {
      const sg = suggest(e.name, [...GATE_FUNCTIONS]);
      this.diags.error('PD2001', e.nameSpan, `a gate calls only ${GATE_FUNCTIONS.map((f) => `${f}(field)`).join(' and ')}, not ${e.name}(...)${sg ? `; did you mean '${sg}'?` : ''}`, 'e.g. agent_cpu <= baseline(agent_cpu) * 1.5');
      return ERR;
    }
    const a = e.args[0];
    if (e.args.length !== 1 || a === undefined || a.kind !== 'ident') {
      this.diags.error('PD2002', e.span, `${e.name} takes one fleet field`, `${e.name}(agent_cpu)`);
      return ERR;
    }
    const t = this.gateField(a.name, a.span);
    if (t.k === 'error') return t;
    if (t.k !== 'num') {
      this.diags.error('PD2005', a.span, `${e.name}(...) needs a numeric field, but ${a.name} is ${tyName(t)}`);
      return ERR;
    }
    return t;
  }

  private eventField(name: string, span: Span): Ty {
    const f = this.eventScope![name];
    if (f === undefined) {
      const sg = suggest(name, Object.keys(this.eventScope!));
      this.diags.error('PD2010', span, `${this.eventKind} events have no field '${name}'${sg ? `; did you mean '${sg}'?` : ''}`, `fields: ${Object.keys(this.eventScope!).join(', ')}`);
      return ERR;
    }
    if (f.k === 'num') return { k: 'num', dim: f.dim, grouped: false, literal: false };
    if (f.k === 'bool') return { k: 'bool', grouped: false };
    return { k: 'str' };
  }

  private by(e: Extract<Expr, { kind: 'by' }>): Ty {
    const inner = e.expr;
    if (this.eventScope !== null) {
      this.diags.error('PD2010', e.span, `a 'where' filter tests the fields of one ${this.eventKind} event; a windowed aggregate is not one of them`);
      return ERR;
    }
    const trend = inner.kind === 'call' && (TREND_FUNCTIONS as readonly string[]).includes(inner.name);
    if (inner.kind !== 'call' || (!(WINDOW_AGGREGATES as readonly string[]).includes(inner.name) && !trend)) {
      this.diags.error('PD2012', e.keySpan, "'by' groups only a windowed aggregate or a trend", 'p95(cpu, 1m) by exec_id, slope(rss, 10m) by cgroup');
      this.expr(inner);
      return ERR;
    }
    const t = this.call(inner.name, inner.nameSpan, inner.args, inner.span, true);
    if (t.k === 'error') return t;
    if (!(GROUP_KEYS as readonly string[]).includes(e.key)) {
      const sg = suggest(e.key, GROUP_KEYS);
      this.diags.error('PD2012', e.keySpan, `cannot group by '${e.key}'${sg ? `; did you mean '${sg}'?` : ''}`, `keys: ${GROUP_KEYS.join(', ')}`);
      return ERR;
    }
    return t.k === 'num' ? { ...t, grouped: true } : t;
  }

  private call(name: string, nameSpan: Span, args: Expr[], span: Span, grouped: boolean): Ty {
    if ((WINDOW_AGGREGATES as readonly string[]).includes(name)) return this.windowAgg(name, args, span, grouped);
    if ((EVENT_AGGREGATES as readonly string[]).includes(name)) return this.eventAgg(name, args, span);
    if ((TREND_FUNCTIONS as readonly string[]).includes(name)) return this.trend(name, args, span, grouped);
    const f = FIELD_BY_NAME.get(name);
    if (f === undefined) {
      if (TREND_LIMITS[name] !== undefined) {
        this.diags.error('PD2001', nameSpan, `'${name}' is a limit for eta(), not a field`, `eta(rss, ${name}, 10m) by cgroup < 10m`);
        return ERR;
      }
      const sg = suggest(name, allCallableNames());
      this.diags.error('PD2001', nameSpan, `unknown field '${name}'${sg ? `; did you mean '${sg}'?` : ''}`, sg ? undefined : 'docs/dsl.md lists every field');
      for (const a of args) if (a.kind !== 'where') this.expr(a);
      return ERR;
    }
    if (f.source === 'event') this.usesEvents = true;
    if (f.source === 'agent') this.usesAgent = true;
    if (!this.arity(f.name, f.params, args, span)) return ERR;
    let ok = true;
    args.forEach((a, k) => (ok = this.param(f, f.params[k]!, a) && ok));
    if (!ok) return ERR;
    return f.result.k === 'bool' ? { k: 'bool', grouped: false } : { k: 'num', dim: f.result.dim, grouped: false, literal: false };
  }

  private arity(name: string, params: readonly Param[], args: Expr[], span: Span): boolean {
    const min = params.filter((p) => p.default === undefined).length;
    const max = params.length;
    if (args.length >= min && args.length <= max) return true;
    const sig = `${name}(${params.map((p) => (p.default === undefined ? p.name : `${p.name} = ${p.default}`)).join(', ')})`;
    const want = min === max ? `${min}` : `${min} to ${max}`;
    this.diags.error('PD2002', span, `${name} takes ${want} argument${max === 1 && min === 1 ? '' : 's'}, got ${args.length}`, `signature: ${sig}`);
    return false;
  }

  private param(f: FieldSpec, p: Param, a: Expr): boolean {
    switch (p.type) {
      case 'string': {
        if (a.kind !== 'string') {
          this.diags.error('PD2003', a.span, `${f.name}: '${p.name}' must be a quoted string`, `${f.name}(${JSON.stringify(a.kind === 'ident' ? a.name : '/path')})`);
          return false;
        }
        if (p.oneOf && !p.oneOf.includes(a.value)) {
          this.diags.error('PD2014', a.span, `${f.name}: '${p.name}' must be one of ${p.oneOf.map((x) => JSON.stringify(x)).join(', ')}`);
          return false;
        }
        const slashed = (f.name === 'process_running' || f.name === 'process_count') && a.value.length >= 2 && a.value.startsWith('/') && a.value.endsWith('/');
        if ((f.name === 'log_matches' && p.name === 'pattern') || slashed) {
          try {
            new RE2(slashed ? a.value.slice(1, -1) : a.value);
          } catch (e) {
            this.diags.error('PD2011', a.span, `invalid RE2 pattern: ${(e as Error).message}`, 'RE2 has no backreferences or lookaround');
            return false;
          }
        }
        if (p.name === 'path' || p.name === 'mount') {
          if (!a.value.startsWith('/')) {
            this.diags.error('PD2014', a.span, `${f.name}: '${p.name}' must be an absolute path`);
            return false;
          }
        }
        return true;
      }
      case 'duration': {
        if (a.kind !== 'number') {
          this.diags.error('PD2003', a.span, `${f.name}: '${p.name}' must be a duration literal such as 5m`);
          return false;
        }
        const ms = this.durationMs(a, `${f.name} ${p.name}`, 0.001);
        if (ms === 0) return false;
        if (p.oneOf && !p.oneOf.some((o) => literalMs(o) === ms)) {
          this.diags.error('PD2014', a.span, `${f.name}: '${p.name}' must be one of ${p.oneOf.join(', ')}`);
          return false;
        }
        if (ms > MAX_WINDOW_S * 1000) {
          this.diags.error('PD2014', a.span, `${f.name}: a window longer than 7d is not kept`);
          return false;
        }
        return true;
      }
      case 'port': {
        if (a.kind !== 'number' || a.unit !== null || a.rate !== null || !Number.isInteger(a.value) || a.value < 1 || a.value > 65535) {
          this.diags.error('PD2003', a.span, `${f.name}: '${p.name}' must be a port number 1..65535`);
          return false;
        }
        return true;
      }
      default:
        return false;
    }
  }

  private windowAgg(name: string, args: Expr[], span: Span, grouped: boolean): Ty {
    if (args.length !== 2) {
      this.diags.error('PD2002', span, `${name} takes 2 arguments, got ${args.length}`, `signature: ${name}(metric, window) [by exec_id|cgroup|comm]`);
      return ERR;
    }
    const [m, w] = args as [Expr, Expr];
    let ok = true;
    let dim: Dim = NONE;
    if (m.kind !== 'ident' || WINDOW_METRICS[m.name] === undefined) {
      const word = m.kind === 'ident' ? m.name : m.kind === 'call' ? m.name : printExpr(m);
      const sg = suggest(word, Object.keys(WINDOW_METRICS));
      this.diags.error('PD2001', m.span, `'${word}' is not a windowed metric${sg ? `; did you mean '${sg}'?` : ''}`, `metrics: ${Object.keys(WINDOW_METRICS).join(', ')}`);
      ok = false;
    } else dim = WINDOW_METRICS[m.name]!.dim;
    if (w.kind !== 'number' || this.durationMs(w, `${name} window`, 0.001) === 0) {
      if (w.kind !== 'number') this.diags.error('PD2003', w.span, `${name}: the window must be a duration literal such as 1m`);
      ok = false;
    }
    return ok ? { k: 'num', dim, grouped, literal: false } : ERR;
  }

  /** slope(m, w), eta(m, limit, w), leak(m, w): m is a windowed metric (groupable) or a numeric
   *  field whose readings the check records. */
  private trend(name: string, args: Expr[], span: Span, grouped: boolean): Ty {
    const want = name === 'eta' ? 3 : 2;
    const sig = name === 'eta' ? 'eta(metric, limit, window) [by exec_id|cgroup|comm]' : `${name}(metric, window) [by exec_id|cgroup|comm]`;
    if (args.length !== want) {
      this.diags.error('PD2002', span, `${name} takes ${want} arguments, got ${args.length}`, `signature: ${sig}`);
      return ERR;
    }
    const m = args[0]!;
    const w = args[want - 1]!;
    let ok = true;
    // the metric: a windowed metric, or a numeric field (bare or called)
    let dim: Dim = NONE;
    let windowed = false;
    const word = m.kind === 'ident' || m.kind === 'call' ? m.name : printExpr(m);
    if (m.kind === 'ident' && WINDOW_METRICS[m.name] !== undefined) {
      dim = WINDOW_METRICS[m.name]!.dim;
      windowed = true;
    } else if ((m.kind === 'ident' || m.kind === 'call') && FIELD_BY_NAME.get(m.name) !== undefined) {
      const t = this.expr(m);
      if (t.k === 'error') ok = false;
      else if (t.k !== 'num') {
        this.diags.error('PD2005', m.span, `${name} needs a number to follow, but ${printExpr(m)} is ${tyName(t)}`);
        ok = false;
      } else dim = t.dim;
    } else {
      const nested = m.kind === 'call' && ([...WINDOW_AGGREGATES, ...EVENT_AGGREGATES, ...TREND_FUNCTIONS] as readonly string[]).includes(m.name);
      const numeric = FIELDS.filter((f) => f.result.k === 'num').map((f) => f.name);
      const sg = nested ? undefined : suggest(word, [...Object.keys(WINDOW_METRICS), ...numeric]);
      this.diags.error(
        nested ? 'PD2003' : 'PD2001',
        m.span,
        nested ? `${name} follows a metric or a field, not ${word}(...)` : `'${word}' is not a windowed metric or a field${sg ? `; did you mean '${sg}'?` : ''}`,
        `metrics: ${Object.keys(WINDOW_METRICS).join(', ')}; or a field such as disk_usage("/")`,
      );
      ok = false;
    }
    if (ok && grouped && !windowed) {
      this.diags.error('PD2012', m.span, `'by' groups a windowed metric (${Object.keys(WINDOW_METRICS).join(', ')}); ${printExpr(m)} is one reading for the node`, `${name}(rss, …) by exec_id`);
      ok = false;
    }
    // the window
    let windowMs = 0;
    if (w.kind !== 'number') {
      this.diags.error('PD2003', w.span, `${name}: the window must be a duration literal such as 10m`);
      ok = false;
    } else {
      windowMs = this.durationMs(w, `${name} window`, 0.001);
      if (windowMs === 0) ok = false;
      else if (windowMs > MAX_WINDOW_S * 1000) {
        this.diags.error('PD2014', w.span, `${name}: a window longer than 7d is not kept`);
        ok = false;
      } else if (!windowed && ok && windowMs < TREND_MIN_SAMPLES * this.everyMs) {
        this.diags.warning(
          'PD3004',
          w.span,
          `${name}(${printExpr(m)}, …) fits the check's own readings, and a ${printExpr(w)} window holds at most ${Math.max(1, Math.floor(windowMs / this.everyMs))} of them (every ${this.everyMs / 1000}s); a trend needs ${TREND_MIN_SAMPLES}, so it stays unknown`,
          `make the window at least ${(TREND_MIN_SAMPLES * this.everyMs) / 1000}s, or run the check more often`,
        );
      }
    }
    // eta's limit: a value in the metric's unit, or a per-key limit
    if (name === 'eta' && ok) ok = this.trendLimit(args[1]!, m, dim, windowed);
    if (!ok) return ERR;
    const out = name === 'slope' ? dimDiv(dim, TIME) : name === 'eta' ? TIME : NONE;
    return { k: 'num', dim: out, grouped, literal: false };
  }

  private trendLimit(l: Expr, m: Expr, dim: Dim, windowed: boolean): boolean {
    if (l.kind === 'ident' && TREND_LIMITS[l.name] !== undefined) {
      const lim = TREND_LIMITS[l.name]!;
      if (!windowed || !dimEq(dim, lim.dim)) {
        this.diags.error(
          'PD2004',
          l.span,
          `${l.name} is ${dimName(lim.dim)} of a process, cgroup or the node; ${printExpr(m)} is ${windowed ? dimName(dim) : `a field (${dimName(dim)})`}`,
          windowed ? `give a limit in ${dimName(dim)}, e.g. ${dimExample(dim)}` : `give the limit as a value, e.g. eta(${printExpr(m)}, ${dimExample(dim)}, 1h)`,
        );
        return false;
      }
      return true;
    }
    const lit = l.kind === 'unary' && l.op === '-' && l.operand.kind === 'number' ? l.operand : l.kind === 'number' ? l : null;
    if (lit === null) {
      const sg = l.kind === 'ident' ? suggest(l.name, Object.keys(TREND_LIMITS)) : undefined;
      this.diags.error(
        l.kind === 'ident' ? 'PD2001' : 'PD2003',
        l.span,
        l.kind === 'ident' ? `'${l.name}' is not a limit${sg ? `; did you mean '${sg}'?` : ''}` : 'eta: the limit must be a value with a unit, such as 2GiB or 100%, or memory_limit',
        `limits: a value in the metric's unit, or ${Object.keys(TREND_LIMITS).join(', ')}`,
      );
      return false;
    }
    const q = literal(lit.value, lit.unit, lit.rate);
    const zero = lit.value === 0 && lit.unit === null && lit.rate === null;
    if (!zero && !dimEq(q.dim, dim)) {
      const hint = dimEq(dim, { b: 0, t: 0, p: 1 }) && lit.unit === null
        ? `${lit.value} is a plain number; write a percentage such as ${lit.value <= 1 ? Math.round(lit.value * 10000) / 100 : lit.value}%`
        : `write it as ${dimName(dim)}, e.g. ${dimExample(dim)}`;
      this.diags.error('PD2004', l.span, `unit mismatch in eta: ${printExpr(m)} is ${dimName(dim)}, the limit ${printExpr(l)} is ${dimName(q.dim)}`, hint);
      return false;
    }
    return true;
  }

  private eventAgg(name: string, args: Expr[], span: Span): Ty {
    this.usesEvents = true;
    if (args.length !== 2) {
      this.diags.error('PD2002', span, `${name} takes 2 arguments, got ${args.length}`, `signature: ${name}(kind [where condition], window)`);
      return ERR;
    }
    const [sel, w] = args as [Expr, Expr];
    let ok = true;
    const subject = sel.kind === 'where' ? sel.subject : sel;
    if (subject.kind !== 'ident' || EVENT_KINDS[subject.name] === undefined) {
      const word = subject.kind === 'ident' ? subject.name : printExpr(subject);
      const sg = suggest(word, Object.keys(EVENT_KINDS));
      this.diags.error('PD2009', subject.span, `'${word}' is not an event kind${sg ? `; did you mean '${sg}'?` : ''}`, `kinds: ${Object.keys(EVENT_KINDS).join(', ')}`);
      ok = false;
    } else if (sel.kind === 'where') {
      this.eventScope = EVENT_KINDS[subject.name]!;
      this.eventKind = subject.name;
      try {
        const t = this.expr(sel.pred);
        if (t.k !== 'error' && t.k !== 'bool') {
          this.diags.error('PD2005', sel.pred.span, `a 'where' filter must be true or false, but this is ${tyName(t)}`);
          ok = false;
        } else if (t.k === 'error') ok = false;
      } finally {
        this.eventScope = null;
      }
    }
    if (w.kind !== 'number') {
      this.diags.error('PD2003', w.span, `${name}: the window must be a duration literal such as 10m`);
      ok = false;
    } else if (this.durationMs(w, `${name} window`, 0.001) === 0) ok = false;
    return ok ? { k: 'num', dim: name === 'rate' ? PER_SECOND : NONE, grouped: false, literal: false } : ERR;
  }
}

function literalMs(text: string): number {
  const m = /^([0-9.]+)([a-z]+)$/.exec(text)!;
  return literal(Number(m[1]), m[2]!, null).value * 1000;
}
