// The AST. Every node has a span (file positions for diagnostics). Nodes are plain data, so two
// ASTs can be compared structurally once spans are stripped (stripSpans), which the round-trip
// property test does.
import type { Span } from './diagnostics.js';

export type BinaryOp = 'or' | 'and' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '+' | '-' | '*' | '/';

export type Expr =
  | { kind: 'number'; span: Span; value: number; unit: string | null; rate: string | null }
  | { kind: 'string'; span: Span; value: string }
  | { kind: 'bool'; span: Span; value: boolean }
  /** a bare name: a field without arguments (`disk_usage`), or an event field inside `where` */
  | { kind: 'ident'; span: Span; name: string }
  | { kind: 'call'; span: Span; name: string; nameSpan: Span; args: Expr[] }
  | { kind: 'unary'; span: Span; op: '-' | 'not'; operand: Expr }
  | { kind: 'binary'; span: Span; op: BinaryOp; left: Expr; right: Expr }
  /** `p95(cpu, 1m) by exec_id` */
  | { kind: 'by'; span: Span; expr: Expr; key: string; keySpan: Span }
  /** `exit where exit_code != 0`: only as the first argument of an event aggregate */
  | { kind: 'where'; span: Span; subject: Expr; pred: Expr };

export type Severity = 'warning' | 'critical';

export interface Condition {
  span: Span;
  severity: Severity;
  /** `unless`: the condition describes the healthy state, so it fires when it is false */
  negate: boolean;
  expr: Expr;
  /** hysteresis: the condition must hold this long before the state changes */
  for: Extract<Expr, { kind: 'number' }> | null;
}

export interface Label {
  span: Span;
  key: string;
  value: string;
}

export type Duration = Extract<Expr, { kind: 'number' }>;

export interface CheckStmt {
  kind: 'check';
  span: Span;
  /** null for one-liners (`check disk_usage > 90%;`): the name is the printed condition */
  name: string | null;
  nameSpan: Span | null;
  /** true: written as a block `check name { ... }` */
  block: boolean;
  conditions: Condition[];
  every: Duration | null;
  timeout: Duration | null;
  labels: Label[];
  /** `on timeout critical;` */
  onTimeout: { span: Span; action: string } | null;
  /** `alert on timeout, unknown;` inside the block */
  alertOn: { span: Span; states: string[] } | null;
}

/** `alert on timeout;` at file level: these states raise alerts for every check in the file. */
export interface AlertStmt {
  kind: 'alert';
  span: Span;
  states: { span: Span; name: string }[];
}

export type Stmt = CheckStmt | AlertStmt;

export interface Program {
  file: string;
  stmts: Stmt[];
}

/** A deep copy without positions, for structural comparison. */
export function stripSpans<T>(node: T): T {
  return JSON.parse(JSON.stringify(node, (k, v: unknown) => (k === 'span' || k === 'nameSpan' || k === 'keySpan' ? undefined : v))) as T;
}
