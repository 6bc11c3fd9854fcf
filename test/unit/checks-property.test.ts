// Properties of the DSL front end (fast-check):
// - any input gives diagnostics, never an exception, and every diagnostic is well formed;
// - for generated programs, parse(print(ast)) equals ast (positions aside).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CODES, KEYWORDS, RATE_SUFFIXES, TIMEOUT_ACTIONS, UNITS, compileSource, parse, printProgram, stripSpans,
  type CheckStmt, type Condition, type Expr, type Program, type Span, type Stmt,
} from '../../src/checks/index.js';

const SP: Span = { start: 0, end: 0, line: 1, col: 1 };

function wellFormed(src: string): void {
  let r: ReturnType<typeof compileSource>;
  try {
    r = compileSource(src, 'p.patrol');
  } catch (e) {
    throw new Error(`threw on ${JSON.stringify(src)}: ${(e as Error).stack}`);
  }
  for (const d of r.diagnostics) {
    expect(d.code in CODES, d.code).toBe(true);
    expect(d.message).not.toMatch(/internal error/);
    expect(d.span.line).toBeGreaterThanOrEqual(1);
    expect(d.span.col).toBeGreaterThanOrEqual(1);
    expect(d.span.start).toBeGreaterThanOrEqual(0);
    expect(d.span.start).toBeLessThanOrEqual(src.length);
  }
}

const TOKENS = [
  'check', 'alert', 'on', 'every', 'timeout', 'for', 'warning', 'critical', 'labels', 'and', 'or', 'not', 'unless', 'where', 'by', 'true', 'false',
  '(', ')', '{', '}', ',', ';', '=', '==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', ':', '"s"', '"', '90%', '5m', '1.5GB', '10MB/s', '3/s', '1e5',
  'disk_usage', 'zombie_count', 'count', 'exit', 'exit_code', 'comm', 'p95', 'cpu', 'exec_id', 'log_matches', '"(a"', '"/x"', 'x', '0', '//c\n', '\n', ' ', '@', '\\', 'é', '\u{1F600}',
];

describe('arbitrary input', () => {
  it('never throws; every diagnostic has a known code and a position', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), wellFormed), { numRuns: 2000 });
  });

  it('token soup (reaches deep into the grammar) never throws', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }), (toks) => wellFormed(toks.join(' '))),
      { numRuns: 3000 },
    );
  });
});

// ---------------------------------------------------------------- program generator

const ident = fc
  .stringMatching(/^[a-z_][a-z0-9_]{0,8}$/)
  .filter((s) => !KEYWORDS.has(s));
const anyString = fc.string({ maxLength: 12, unit: 'grapheme' });
const numberLit = fc.record({
  value: fc.oneof(fc.nat({ max: 100000 }), fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true })).filter((v) => !Object.is(v, -0)),
  unit: fc.constantFrom(null, ...Object.keys(UNITS)),
  rate: fc.constantFrom(null, ...RATE_SUFFIXES.keys()),
}).map((r): Expr => ({ kind: 'number', span: SP, ...r }));
const durationLit = fc.record({ value: fc.nat({ max: 1000 }), unit: fc.constantFrom('ms', 's', 'm', 'h', 'd') }).map(
  (r) => ({ kind: 'number', span: SP, value: r.value, unit: r.unit, rate: null }) as Extract<Expr, { kind: 'number' }>,
);

const { expr } = fc.letrec<{ expr: Expr; arg: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberLit,
    anyString.map((value): Expr => ({ kind: 'string', span: SP, value })),
    fc.boolean().map((value): Expr => ({ kind: 'bool', span: SP, value })),
    ident.map((name): Expr => ({ kind: 'ident', span: SP, name })),
    fc.record({ name: ident, args: fc.array(tie('arg'), { maxLength: 3 }) }).map((r): Expr => ({ kind: 'call', span: SP, nameSpan: SP, ...r })),
    fc.record({ op: fc.constantFrom('-' as const, 'not' as const), operand: tie('expr') }).map((r): Expr => ({ kind: 'unary', span: SP, ...r })),
    fc
      .record({ op: fc.constantFrom('or', 'and', '==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/' as const), left: tie('expr'), right: tie('expr') })
      .map((r): Expr => ({ kind: 'binary', span: SP, ...(r as { op: '+'; left: Expr; right: Expr }) })),
    fc.record({ expr: tie('expr'), key: ident }).map((r): Expr => ({ kind: 'by', span: SP, keySpan: SP, ...r })),
  ),
  arg: fc.oneof(
    { depthSize: 'small' },
    tie('expr'),
    fc.record({ subject: tie('expr'), pred: tie('expr') }).map((r): Expr => ({ kind: 'where', span: SP, ...r })),
  ),
}));

const condition = (severity: fc.Arbitrary<'warning' | 'critical'>) =>
  fc.record({ severity, negate: fc.boolean(), expr, for: fc.option(durationLit, { nil: null }) }).map((r): Condition => ({ span: SP, ...r }));

const oneLiner = condition(fc.constant('critical' as const)).map(
  (c): CheckStmt => ({ kind: 'check', span: SP, name: null, nameSpan: null, block: false, conditions: [c], every: null, timeout: null, labels: [], onTimeout: null, alertOn: null }),
);

const block = fc
  .record({
    name: fc.oneof(ident, anyString),
    conditions: fc.array(condition(fc.constantFrom('warning' as const, 'critical' as const)), { maxLength: 3 }),
    every: fc.option(durationLit, { nil: null }),
    timeout: fc.option(durationLit, { nil: null }),
    labels: fc.array(fc.record({ key: fc.oneof(ident, anyString), value: anyString }), { maxLength: 3 }),
    onTimeout: fc.option(fc.constantFrom(...TIMEOUT_ACTIONS), { nil: null }),
    alertOn: fc.option(fc.array(ident, { minLength: 1, maxLength: 3 }), { nil: null }),
  })
  .map(
    (r): CheckStmt => ({
      kind: 'check', span: SP, name: r.name, nameSpan: SP, block: true, conditions: r.conditions, every: r.every, timeout: r.timeout,
      labels: r.labels.map((l) => ({ span: SP, ...l })),
      onTimeout: r.onTimeout === null ? null : { span: SP, action: r.onTimeout },
      alertOn: r.alertOn === null ? null : { span: SP, states: r.alertOn },
    }),
  );

const alertStmt = fc.array(ident, { minLength: 1, maxLength: 3 }).map((names): Stmt => ({ kind: 'alert', span: SP, states: names.map((name) => ({ span: SP, name })) }));

const program = fc.array(fc.oneof(oneLiner, block, alertStmt), { maxLength: 4 }).map((stmts): Program => ({ file: 'g', stmts }));

describe('printer', () => {
  it('parse(print(ast)) equals ast for generated programs', () => {
    fc.assert(
      fc.property(program, (p) => {
        const text = printProgram(p);
        const back = parse(text, 'g');
        expect(stripSpans(back), text).toEqual(stripSpans(p));
      }),
      { numRuns: 1500 },
    );
  });
});
