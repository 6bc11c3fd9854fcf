// Event aggregates: every way a check reads events, reduced to counts of (kind, predicate,
// window). `count(k where p, w)` and `rate(k where p, w)` are one each; the catalogue's
// event-backed fields are shorthands: exec_rate(w) = count(exec, w) / w and exit_failures(w) =
// count(exit where failed, w) + count(exec_failed, w). The compiler collects them so the event
// feed keeps one counter per key, and the evaluator derives the same keys to read them.
import type { Expr } from './ast.js';
import { FIELD_BY_NAME } from './catalogue.js';
import type { CompiledCheck } from './checker.js';
import type { EventKind } from './event-fields.js';
import { printExpr } from './printer.js';
import { literal } from './units.js';

export interface EventAggregate {
  /** equal keys count the same events: kind, window and predicate text */
  key: string;
  kind: EventKind;
  /** the `where` predicate; null counts every event of the kind */
  pred: Expr | null;
  /** the predicate as printed ('' without one) */
  predText: string;
  /** whole ms */
  windowMs: number;
}

const NOWHERE = { start: 0, end: 0, line: 0, col: 0 };
/** `failed`, the predicate behind exit_failures */
const FAILED: Expr = { kind: 'ident', span: NOWHERE, name: 'failed' };

export function eventAggregate(kind: EventKind, pred: Expr | null, windowMs: number): EventAggregate {
  // a window such as 1.1s is 1100.0000000000002 ms after the unit conversion
  const w = Math.max(1, Math.round(windowMs));
  const predText = pred === null ? '' : printExpr(pred);
  return { key: `${kind}/${w}/${predText}`, kind, pred, predText, windowMs: w };
}

const durationMs = (e: Expr): number => (e.kind === 'number' ? literal(e.value, e.unit, e.rate).value * 1000 : NaN);

/** The window argument `k` of a catalogue field, its default when omitted. */
function windowArg(name: string, args: readonly Expr[], k: number): number {
  const a = args[k];
  if (a !== undefined) return durationMs(a);
  const text = FIELD_BY_NAME.get(name)?.params[k]?.default ?? '';
  const m = /^([0-9.]+)([a-z]+)$/.exec(text);
  return m === null ? NaN : literal(Number(m[1]), m[2]!, null).value * 1000;
}

/** The aggregates a call reads, or null when it reads no events. The checker has validated the
 *  call, so its shape is trusted. */
export function eventReads(name: string, args: readonly Expr[]): EventAggregate[] | null {
  switch (name) {
    case 'count':
    case 'rate': {
      const sel = args[0]!;
      const subject = (sel.kind === 'where' ? sel.subject : sel) as Extract<Expr, { kind: 'ident' }>;
      return [eventAggregate(subject.name as EventKind, sel.kind === 'where' ? sel.pred : null, durationMs(args[1]!))];
    }
    case 'exec_rate':
      return [eventAggregate('exec', null, windowArg(name, args, 0))];
    case 'exit_failures': {
      const w = windowArg(name, args, 0);
      return [eventAggregate('exit', FAILED, w), eventAggregate('exec_failed', null, w)];
    }
  }
  return null;
}

/** Every aggregate the checks read, once per key. */
export function collectAggregates(checks: readonly CompiledCheck[]): EventAggregate[] {
  const out = new Map<string, EventAggregate>();
  const visit = (e: Expr): void => {
    switch (e.kind) {
      case 'ident':
      case 'call': {
        const args = e.kind === 'call' ? e.args : [];
        const event = (e.kind === 'call' && (e.name === 'count' || e.name === 'rate')) || FIELD_BY_NAME.get(e.name)?.source === 'event';
        const reads = event ? eventReads(e.name, args) : null;
        for (const a of reads ?? []) if (!out.has(a.key)) out.set(a.key, a);
        // no aggregate nests inside another's arguments, but a field's arguments are expressions
        if (reads === null) for (const x of args) visit(x);
        return;
      }
      case 'unary':
        return visit(e.operand);
      case 'binary':
        visit(e.left);
        return visit(e.right);
      case 'by':
        return visit(e.expr);
      default:
        return;
    }
  };
  for (const c of checks) for (const cond of c.conditions) visit(cond.expr);
  return [...out.values()];
}
