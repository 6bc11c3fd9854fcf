// Rollout gates (docs/fleet.md, "Gates"): expressions of the check DSL evaluated per node over the
// fleet's per-node fields (GATE_FIELDS) instead of the node facts. The lexer, parser, checker
// (types and units) and operators are the DSL's own; what differs is the evaluation context:
// a node's observed values, baseline(f) over the baseline nodes and before(f), the node's own
// value when the rollout touched it.
//
// Missing data is never a pass: a field that is not known (a node that did not report, a result
// not in yet, no baseline) makes the reading unknown, with Kleene logic for `and`/`or` (`x or
// unknown` is true when x is), so the rollout waits instead of deciding.
import type { Expr } from './ast.js';
import { DiagnosticBag, formatDiagnostic, type Diagnostic } from './diagnostics.js';
import { parseExpression } from './parser.js';
import { checkGate } from './checker.js';
import { GATE_FIELDS } from './catalogue.js';
import { binop, type Scalar } from './predicate.js';
import { formatQuantity, literal } from './units.js';
import { printExpr } from './printer.js';
import { PatrolError } from '../shared/errors.js';

export interface CompiledGate {
  /** the gate as printed (canonical form) */
  text: string;
  expr: Expr;
}

export class GateError extends PatrolError {
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[],
  ) {
    super('E_GATE', message);
  }
}

/** Parses and type-checks a gate; throws GateError with every diagnostic. */
export function compileGate(text: string): CompiledGate {
  const diags = new DiagnosticBag('gate');
  const expr = parseExpression(text, 'gate', diags);
  const ok = expr !== null && checkGate(expr, diags);
  const errors = diags.items.filter((d) => d.severity === 'error');
  if (!ok || expr === null || errors.length) {
    throw new GateError(`gate "${text}": ${errors.map((d) => formatDiagnostic(d, text).split('\n')[0]).join('; ') || 'invalid'}`, diags.items);
  }
  return { text: printExpr(expr), expr };
}

/** What a gate reads for one node; each returns base units, or null when unknown. */
export interface GateContext {
  field(name: string): Scalar;
  baseline(name: string): Scalar;
  before(name: string): Scalar;
}

export interface GateReading {
  /** true: holds; false: fails; null: unknown (missing data) */
  value: boolean | null;
  /** what it read, for evidence: `agent_cpu` → "3.2%", `baseline(agent_cpu)` → "1.1%" */
  values: Record<string, string>;
}

const UNKNOWN = Symbol('unknown');
type V = Scalar | typeof UNKNOWN;

function show(name: string, v: Scalar): string {
  if (v === null) return 'unknown';
  const f = GATE_FIELDS[name];
  if (typeof v === 'number' && f?.k === 'num') return formatQuantity(v, f.dim);
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export function evalGate(g: CompiledGate, cx: GateContext): GateReading {
  const values: Record<string, string> = {};
  const read = (key: string, name: string, v: Scalar): V => {
    values[key] = show(name, v);
    return v === null ? UNKNOWN : v;
  };
  const ev = (e: Expr): V => {
    switch (e.kind) {
      case 'number':
        return literal(e.value, e.unit, e.rate).value;
      case 'string':
      case 'bool':
        return e.value;
      case 'ident':
        return read(e.name, e.name, cx.field(e.name));
      case 'call': {
        const a = e.args[0];
        const name = a && a.kind === 'ident' ? a.name : '';
        return read(`${e.name}(${name})`, name, e.name === 'baseline' ? cx.baseline(name) : cx.before(name));
      }
      case 'unary': {
        const o = ev(e.operand);
        if (o === UNKNOWN) return UNKNOWN;
        if (e.op === 'not') return o !== true;
        return typeof o === 'number' ? -o : UNKNOWN;
      }
      case 'binary': {
        if (e.op === 'and' || e.op === 'or') {
          // Kleene: a decided side decides when it can, unknown otherwise
          const l = ev(e.left);
          const r = ev(e.right);
          const lb = l === UNKNOWN ? null : l === true;
          const rb = r === UNKNOWN ? null : r === true;
          if (e.op === 'and') return lb === false || rb === false ? false : lb === null || rb === null ? UNKNOWN : true;
          return lb === true || rb === true ? true : lb === null || rb === null ? UNKNOWN : false;
        }
        const l = ev(e.left);
        const r = ev(e.right);
        if (l === UNKNOWN || r === UNKNOWN) return UNKNOWN;
        const out = binop(e.op, l, r);
        // x / 0 has no value
        return out === null ? UNKNOWN : out;
      }
      default:
        return UNKNOWN;
    }
  };
  const v = ev(g.expr);
  return { value: v === UNKNOWN ? null : v === true, values };
}

/** The default gates (docs/fleet.md): no loss, the bundle applied, CPU and RSS within 1.5× of
 *  the baseline nodes' (with a floor: 1.5 × an idle agent's 1% is noise), no new critical check. */
export const DEFAULT_GATES: readonly string[] = [
  'lost_rate == 0',
  'reload_result == "applied"',
  'agent_cpu <= baseline(agent_cpu) * 1.5 + 5%',
  'agent_rss <= baseline(agent_rss) * 1.5 + 32MB',
  'checks_critical <= before(checks_critical)',
];
