// Printer: AST → canonical source. parse(print(ast)) gives the same AST (spans aside); the
// property test checks it. Parentheses appear only where precedence needs them.
import type { CheckStmt, Condition, Expr, Program, Stmt } from './ast.js';
import { KEYWORDS } from './parser.js';

const PREC: Record<string, number> = {
  or: 1, and: 2, not: 3, '==': 4, '!=': 4, '<': 4, '<=': 4, '>': 4, '>=': 4, '+': 5, '-': 5, '*': 6, '/': 6,
};
const UNARY_MINUS = 7;
const BY = 8;
const ATOM = 9;

function prec(e: Expr): number {
  if (e.kind === 'binary') return PREC[e.op]!;
  if (e.kind === 'unary') return e.op === 'not' ? PREC.not! : UNARY_MINUS;
  if (e.kind === 'where') return 0;
  if (e.kind === 'by') return BY;
  return ATOM;
}

const quoteIfNeeded = (s: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s) && !KEYWORDS.has(s) ? s : JSON.stringify(s));

export function printNumber(e: Extract<Expr, { kind: 'number' }>): string {
  return `${String(e.value)}${e.unit ?? ''}${e.rate === null ? '' : `/${e.rate}`}`;
}

export function printExpr(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return printNumber(e);
    case 'string':
      return JSON.stringify(e.value);
    case 'bool':
      return String(e.value);
    case 'ident':
      return e.name;
    case 'call':
      return `${e.name}(${e.args.map(printExpr).join(', ')})`;
    case 'by':
      return `${wrap(e.expr, ATOM)} by ${e.key}`;
    case 'where':
      return `${printExpr(e.subject)} where ${printExpr(e.pred)}`;
    case 'unary':
      return e.op === 'not' ? `not ${wrap(e.operand, PREC.not!)}` : `-${wrap(e.operand, UNARY_MINUS)}`;
    case 'binary': {
      const p = PREC[e.op]!;
      // comparisons do not chain; arithmetic and logic are left-associative
      const leftMin = p === 4 ? p + 1 : p;
      return `${wrap(e.left, leftMin)} ${e.op} ${wrap(e.right, p + 1)}`;
    }
  }
}

function wrap(e: Expr, min: number): string {
  const s = printExpr(e);
  return prec(e) < min ? `(${s})` : s;
}

function printCondition(c: Condition): string {
  return `${c.negate ? 'unless ' : ''}${printExpr(c.expr)}${c.for === null ? '' : ` for ${printNumber(c.for)}`}`;
}

function printCheck(s: CheckStmt): string {
  if (!s.block) return `check ${printCondition(s.conditions[0]!)};`;
  const lines = [`check ${quoteIfNeeded(s.name ?? '')} {`];
  if (s.every !== null) lines.push(`  every ${printNumber(s.every)};`);
  if (s.timeout !== null) lines.push(`  timeout ${printNumber(s.timeout)};`);
  for (const c of s.conditions) lines.push(`  ${c.severity} ${printCondition(c)};`);
  if (s.labels.length > 0) lines.push(`  labels ${s.labels.map((l) => `${quoteIfNeeded(l.key)} = ${JSON.stringify(l.value)}`).join(', ')};`);
  if (s.onTimeout !== null) lines.push(`  on timeout ${s.onTimeout.action};`);
  if (s.alertOn !== null) lines.push(`  alert on ${s.alertOn.states.join(', ')};`);
  lines.push('}');
  return lines.join('\n');
}

export function printStmt(s: Stmt): string {
  return s.kind === 'alert' ? `alert on ${s.states.map((x) => x.name).join(', ')};` : printCheck(s);
}

export function printProgram(p: Program): string {
  return p.stmts.map(printStmt).join('\n') + (p.stmts.length ? '\n' : '');
}
