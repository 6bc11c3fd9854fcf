// Parser: tokens → AST, by hand-written recursive descent.
//
// Why hand-written rather than generated (peggy): the grammar is small (one token of lookahead
// suffices everywhere), and what matters most is the quality of the errors: "missing ';' after
// the condition" at the right spot, "did you mean", and recovery that resynchronises at the next
// ';' or '}' so one bad check never hides the errors in the others. A PEG reports only the
// farthest failure and stops; recovery would be bolted on. No build step or dependency either.
//
// Never throws: every problem becomes a diagnostic. Internally a syntax error unwinds to the
// enclosing statement or clause with a private exception, which then skips to a safe token.
import { DiagnosticBag, type Span } from './diagnostics.js';
import { lex, type Token } from './lexer.js';
import type { AlertStmt, BinaryOp, CheckStmt, Condition, Duration, Expr, Label, Program, Stmt } from './ast.js';

export const KEYWORDS = new Set([
  'check', 'alert', 'on', 'every', 'timeout', 'for', 'warning', 'critical', 'labels', 'and', 'or', 'not', 'unless', 'where', 'by', 'true', 'false',
]);

/** Deepest expression nesting accepted; deeper input is reported (PD1014), not a stack overflow. */
export const MAX_DEPTH = 64;

class Abort {}

const CMP_OPS = new Set(['==', '!=', '<', '<=', '>', '>=']);

const join = (a: Span, b: Span): Span => ({ start: a.start, end: b.end, line: a.line, col: a.col });

export function parse(src: string, file: string, diags: DiagnosticBag = new DiagnosticBag(file)): Program {
  return parseWith(src, file, diags, null);
}

/** One expression on its own (a rollout gate, docs/fleet.md): the same grammar as a condition's
 *  expression, the whole input. Null when it has a syntax error (reported in `diags`). */
export function parseExpression(src: string, file: string, diags: DiagnosticBag = new DiagnosticBag(file)): Expr | null {
  const out: { expr: Expr | null } = { expr: null };
  parseWith(src, file, diags, out);
  return out.expr;
}

function parseWith(src: string, file: string, diags: DiagnosticBag, exprOut: { expr: Expr | null } | null): Program {
  const toks = lex(src, diags);
  let pos = 0;
  let depth = 0;
  const stmts: Stmt[] = [];

  const peek = (k = 0): Token => toks[Math.min(pos + k, toks.length - 1)]!;
  const prev = (): Token => toks[Math.max(0, pos - 1)]!;
  const next = (): Token => {
    const t = peek();
    if (t.kind !== 'eof') pos++;
    return t;
  };
  const isP = (text: string, k = 0) => peek(k).kind === 'punct' && peek(k).text === text;
  const isKw = (text: string, k = 0) => peek(k).kind === 'ident' && peek(k).text === text;
  const describe = (t: Token): string =>
    t.kind === 'eof' ? 'end of file' : t.kind === 'string' ? `string ${JSON.stringify(t.text)}` : t.kind === 'number' ? `number ${t.text}` : `'${t.text}'`;

  function fail(what: string, hint?: string): never {
    diags.error('PD1010', peek().span, `expected ${what}, found ${describe(peek())}`, hint);
    throw new Abort();
  }

  function semicolon(after: string): void {
    if (isP(';')) {
      next();
      return;
    }
    const p = prev();
    // a statement that ends at a line break without ';' is the most common slip: point at it
    if (peek().kind === 'eof' || peek().span.line > p.span.line || isP('}')) {
      diags.error('PD1011', { start: p.span.end, end: p.span.end + 1, line: p.span.line, col: p.span.col + (p.span.end - p.span.start) }, `missing ';' after ${after}`);
      return;
    }
    fail(`';' after ${after}`);
  }

  function expectP(text: string, what = `'${text}'`): Token {
    if (!isP(text)) fail(what);
    return next();
  }

  function expectKw(text: string): Token {
    if (!isKw(text)) fail(`'${text}'`);
    return next();
  }

  /** Skips to just after the next ';' at this level, or to a '}' / 'check' (not consumed). */
  function recover(inBlock: boolean): void {
    let braces = 0;
    while (peek().kind !== 'eof') {
      const t = peek();
      if (t.kind === 'punct' && t.text === '{') braces++;
      if (t.kind === 'punct' && t.text === '}') {
        if (braces === 0) {
          if (!inBlock) next();
          return;
        }
        braces--;
      }
      if (braces === 0 && t.kind === 'punct' && t.text === ';') {
        next();
        return;
      }
      if (braces === 0 && !inBlock && t.kind === 'ident' && t.text === 'check' && pos > 0) return;
      next();
    }
  }

  if (exprOut !== null) {
    try {
      const e = expression();
      if (peek().kind !== 'eof') fail('the end of the expression', "one expression: join conditions with 'and' / 'or'");
      exprOut.expr = e;
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
    }
    return { file, stmts: [] };
  }

  while (peek().kind !== 'eof') {
    if (isP(';')) {
      next(); // empty statement
      continue;
    }
    const before = pos;
    try {
      stmts.push(statement());
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
      recover(false);
    }
    if (pos === before) next(); // always progress
  }
  return { file, stmts };

  // ------------------------------------------------------------------ statements

  function statement(): Stmt {
    if (isKw('check')) return checkStmt();
    if (isKw('alert')) return alertStmt();
    return fail("'check' or 'alert'", 'a statement is `check <condition>;`, `check name { ... }` or `alert on <state>;`');
  }

  function alertStmt(): AlertStmt {
    const start = next().span;
    const states = alertStates();
    const end = prev().span;
    semicolon('the alert statement');
    return { kind: 'alert', span: join(start, end), states };
  }

  function alertStates(): { span: Span; name: string }[] {
    expectKw('on');
    const states: { span: Span; name: string }[] = [];
    do {
      const t = peek();
      if (t.kind !== 'ident') fail('a state (warning, critical, unknown, timeout)');
      next();
      states.push({ span: t.span, name: t.text });
    } while (isP(',') && next());
    return states;
  }

  function checkStmt(): CheckStmt {
    const start = next().span;
    const named = (peek().kind === 'ident' && !KEYWORDS.has(peek().text)) || peek().kind === 'string';
    if (named && isP('{', 1)) return checkBlock(start);
    if (named && peek(1).kind !== 'punct' && peek(1).kind !== 'eof' && !isKw('for', 1) && !isKw('by', 1)) {
      // `check root disk { ...`: a name with a space in it
      if (peek().kind === 'ident' && peek(1).kind === 'ident' && !KEYWORDS.has(peek(1).text)) {
        fail("'{' after the check name", 'a name with spaces needs quotes: check "root disk" { ... }');
      }
    }
    const cond = condition(start, 'critical');
    const end = prev().span;
    semicolon('the condition');
    return {
      kind: 'check', span: join(start, end), name: null, nameSpan: null, block: false,
      conditions: [cond], every: null, timeout: null, labels: [], onTimeout: null, alertOn: null,
    };
  }

  function condition(start: Span, severity: 'warning' | 'critical'): Condition {
    let negate = false;
    if (isKw('unless')) {
      next();
      negate = true;
    }
    const expr = expression();
    let forDur: Duration | null = null;
    if (isKw('for')) {
      next();
      forDur = duration('for');
    }
    return { span: join(start, prev().span), severity, negate, expr, for: forDur };
  }

  function duration(after: string): Duration {
    const t = peek();
    if (t.kind !== 'number') fail(`a duration after '${after}'`, 'e.g. 30s, 5m, 1h');
    next();
    return { kind: 'number', span: t.span, value: t.value!, unit: t.unit ?? null, rate: t.rate ?? null };
  }

  function checkBlock(start: Span): CheckStmt {
    const nameTok = next();
    const s: CheckStmt = {
      kind: 'check', span: start, name: nameTok.text, nameSpan: nameTok.span, block: true,
      conditions: [], every: null, timeout: null, labels: [], onTimeout: null, alertOn: null,
    };
    expectP('{');
    const seen = new Map<string, Span>();
    const once = (clause: string, span: Span) => {
      const first = seen.get(clause);
      if (first !== undefined) diags.error('PD1012', span, `'${clause}' appears twice in check '${s.name}'`, `the first is at line ${first.line}`);
      seen.set(clause, span);
    };
    while (!isP('}')) {
      if (peek().kind === 'eof') {
        diags.error('PD1015', nameTok.span, `check '${s.name}' is missing its closing '}'`);
        s.span = join(start, prev().span);
        return s;
      }
      const before = pos;
      try {
        clause(s, once);
      } catch (e) {
        if (!(e instanceof Abort)) throw e;
        recover(true);
      }
      if (pos === before) next();
    }
    const end = next().span;
    if (isP(';')) next();
    s.span = join(start, end);
    return s;
  }

  function clause(s: CheckStmt, once: (clause: string, span: Span) => void): void {
    const t = peek();
    if (isP(';')) {
      next();
      return;
    }
    if (t.kind !== 'ident') fail('a clause (every, timeout, warning, critical, labels, on timeout, alert on)');
    switch (t.text) {
      case 'every':
      case 'timeout': {
        next();
        once(t.text, t.span);
        const d = duration(t.text);
        // a duplicate keeps the first value (its own problems are still reported)
        if (t.text === 'every') s.every ??= d;
        else s.timeout ??= d;
        semicolon(`'${t.text} ${d.value}${d.unit ?? ''}'`);
        return;
      }
      case 'warning':
      case 'critical': {
        next();
        s.conditions.push(condition(t.span, t.text));
        semicolon(`the ${t.text} condition`);
        return;
      }
      case 'labels': {
        next();
        once('labels', t.span);
        do s.labels.push(label());
        while (isP(',') && next());
        semicolon('the labels');
        return;
      }
      case 'on': {
        next();
        once('on timeout', t.span);
        expectKw('timeout');
        const a = peek();
        if (a.kind !== 'ident') fail('an action after on timeout (alert, critical, warning, unknown, ignore)');
        next();
        s.onTimeout ??= { span: a.span, action: a.text };
        semicolon("'on timeout'");
        return;
      }
      case 'alert': {
        next();
        once('alert on', t.span);
        const states = alertStates();
        if (s.alertOn === null) s.alertOn = { span: join(states[0]!.span, states[states.length - 1]!.span), states: states.map((x) => x.name) };
        semicolon("'alert on'");
        return;
      }
      default:
        diags.error(
          'PD1013',
          t.span,
          `unknown clause '${t.text}' in check '${s.name}'`,
          'clauses: every 30s; timeout 5s; warning <cond> [for 5m]; critical <cond> [for 5m]; labels k = "v"; on timeout <action>; alert on <states>;',
        );
        throw new Abort();
    }
  }

  function label(): Label {
    const k = peek();
    if (k.kind !== 'ident' && k.kind !== 'string') fail('a label name');
    next();
    expectP('=', "'=' after the label name");
    const v = peek();
    if (v.kind !== 'string') fail('a quoted label value', `labels ${k.text} = "value"`);
    next();
    return { span: join(k.span, v.span), key: k.text, value: v.text };
  }

  // ------------------------------------------------------------------ expressions

  function expression(): Expr {
    if (++depth > MAX_DEPTH) {
      diags.error('PD1014', peek().span, `expression nested deeper than ${MAX_DEPTH} levels`);
      depth = 0;
      throw new Abort();
    }
    try {
      return orExpr();
    } finally {
      depth--;
    }
  }

  function binaryLevel(ops: readonly string[], sub: () => Expr, keyword: boolean): Expr {
    let left = sub();
    for (;;) {
      const t = peek();
      const hit = keyword ? t.kind === 'ident' && ops.includes(t.text) : t.kind === 'punct' && ops.includes(t.text);
      if (!hit) return left;
      next();
      const right = sub();
      left = { kind: 'binary', span: join(left.span, right.span), op: t.text as BinaryOp, left, right };
    }
  }

  function orExpr(): Expr {
    return binaryLevel(['or'], andExpr, true);
  }

  function andExpr(): Expr {
    return binaryLevel(['and'], notExpr, true);
  }

  function notExpr(): Expr {
    if (isKw('not')) {
      const t = next();
      if (++depth > MAX_DEPTH) return expression(); // reports PD1014
      try {
        const operand = notExpr();
        return { kind: 'unary', span: join(t.span, operand.span), op: 'not', operand };
      } finally {
        depth--;
      }
    }
    return cmpExpr();
  }

  function cmpExpr(): Expr {
    const left = addExpr();
    const t = peek();
    if (t.kind === 'punct' && CMP_OPS.has(t.text)) {
      next();
      const right = addExpr();
      const e: Expr = { kind: 'binary', span: join(left.span, right.span), op: t.text as BinaryOp, left, right };
      if (peek().kind === 'punct' && CMP_OPS.has(peek().text)) fail("'and' between comparisons", 'write a < x and x < b, not a < x < b');
      return e;
    }
    if (t.kind === 'punct' && t.text === '=') fail('a comparison', "use '==' to compare");
    return left;
  }

  function addExpr(): Expr {
    return binaryLevel(['+', '-'], mulExpr, false);
  }

  function mulExpr(): Expr {
    return binaryLevel(['*', '/'], unaryExpr, false);
  }

  function unaryExpr(): Expr {
    if (isP('-')) {
      const t = next();
      if (++depth > MAX_DEPTH) return expression();
      try {
        const operand = unaryExpr();
        return { kind: 'unary', span: join(t.span, operand.span), op: '-', operand };
      } finally {
        depth--;
      }
    }
    return postfix();
  }

  function postfix(): Expr {
    const e = primary();
    if (isKw('by')) {
      next();
      const k = peek();
      if (k.kind !== 'ident') fail('a grouping key after by (exec_id, cgroup, comm)');
      next();
      return { kind: 'by', span: join(e.span, k.span), expr: e, key: k.text, keySpan: k.span };
    }
    return e;
  }

  function primary(): Expr {
    const t = peek();
    switch (t.kind) {
      case 'number':
        next();
        return { kind: 'number', span: t.span, value: t.value!, unit: t.unit ?? null, rate: t.rate ?? null };
      case 'string':
        next();
        return { kind: 'string', span: t.span, value: t.text };
      case 'ident': {
        if (t.text === 'true' || t.text === 'false') {
          next();
          return { kind: 'bool', span: t.span, value: t.text === 'true' };
        }
        if (KEYWORDS.has(t.text)) fail('a value or a field');
        next();
        if (!isP('(')) return { kind: 'ident', span: t.span, name: t.text };
        next();
        const args: Expr[] = [];
        if (!isP(')')) {
          do args.push(argument());
          while (isP(',') && next());
        }
        const close = expectP(')', `')' or ',' in the arguments of ${t.text}()`);
        return { kind: 'call', span: join(t.span, close.span), name: t.text, nameSpan: t.span, args };
      }
      case 'punct':
        if (t.text === '(') {
          next();
          const e = expression();
          expectP(')', "')'");
          return e;
        }
        return fail('a value or a field');
      default:
        return fail('a value or a field');
    }
  }

  function argument(): Expr {
    const e = expression();
    if (isKw('where')) {
      next();
      const pred = expression();
      return { kind: 'where', span: join(e.span, pred.span), subject: e, pred };
    }
    return e;
  }
}
