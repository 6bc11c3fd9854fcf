// Decision trees: compiled conditions (closures over field references) and leaves naming a cause.
import type RE2 from 're2';
import type { EvidenceKind, FieldRef, SourceKind } from './catalogue.js';
import { formatValue, type Value } from './units.js';

/** What a test reads: a field's value for the event under evaluation (undefined when absent). */
export interface EvalScope {
  value(ref: FieldRef): Value | undefined;
}

export type Test = (s: EvalScope) => boolean;

export interface Template {
  source: string;
  parts: ReadonlyArray<string | FieldRef>;
}

export interface Leaf {
  kind: 'leaf';
  cause: string;
  confidence: number;
  explanation: Template;
  evidence: readonly EvidenceKind[];
  /** dedup subject: findings with the same cause and key merge (default: the exec_id) */
  key: Template | null;
}

/** A condition as written, kept next to its compiled test so the trigger index can reason about
 *  which events could pass it (src/rules/trigger-index.ts). */
export type Cond =
  | { kind: 'cmp'; ref: FieldRef; op: Op; test: Test }
  | { kind: 'all' | 'any'; items: readonly Cond[]; test: Test }
  | { kind: 'not'; item: Cond; test: Test };

export interface Branch {
  kind: 'if';
  test: Test;
  cond: Cond;
  then: TreeNode;
  else: TreeNode | null;
}

export type TreeNode = Leaf | Branch;

export interface CompiledRule {
  id: string;
  description: string;
  source: SourceKind;
  file: string;
  line: number;
  /** log source: the file tailed */
  path: string | null;
  /** check source: which checks (by name) it applies to; null = all */
  checkRe: RE2 | null;
  pattern: RE2 | null;
  /** named captures and their types */
  captures: ReadonlyMap<string, import('./units.js').FieldType>;
  /** capture holding a pid to join the process on (kmsg, log, check) */
  processField: string | null;
  /** checks whose alerts this rule's findings can explain (names matched with RE2) */
  explains: readonly RE2[];
  tree: TreeNode;
}

export type Op = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'matches' | 'exists' | 'contains';
export const OPS: readonly Op[] = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'matches', 'exists', 'contains'];

/** History counts a comparison with a constant can stop counting at: min(count, ⌊N⌋ + 1) gives
 *  every comparison of an integer count with N the same result as the full count. */
const LIMITED_COUNTS: ReadonlySet<string> = new Set(['history.failures', 'history.execs_by_parent']);
const LIMITED_OPS: ReadonlySet<Op> = new Set(['eq', 'ne', 'gt', 'gte', 'lt', 'lte']);

export function compareTest(ref: FieldRef, op: Op, arg: Value | readonly Value[] | RE2 | boolean): Test {
  if (ref.fn !== undefined && LIMITED_COUNTS.has(ref.fn) && LIMITED_OPS.has(op) && typeof arg === 'number' && Number.isFinite(arg)) {
    ref = { ...ref, countLimit: Math.max(0, Math.floor(arg)) + 1 };
  }
  switch (op) {
    case 'exists':
      return (s) => (s.value(ref) !== undefined && s.value(ref) !== null) === arg;
    case 'eq':
      return (s) => s.value(ref) === arg;
    case 'ne':
      return (s) => {
        const v = s.value(ref);
        return v !== undefined && v !== null && v !== arg;
      };
    case 'gt':
      return (s) => num(s.value(ref)) > (arg as number);
    case 'gte':
      return (s) => num(s.value(ref)) >= (arg as number);
    case 'lt':
      return (s) => num(s.value(ref)) < (arg as number);
    case 'lte':
      return (s) => num(s.value(ref)) <= (arg as number);
    case 'in': {
      const set = new Set(arg as readonly Value[]);
      return (s) => set.has(s.value(ref) as Value);
    }
    case 'matches': {
      const re = arg as RE2;
      return (s) => {
        const v = s.value(ref);
        return typeof v === 'string' && re.test(v);
      };
    }
    case 'contains': {
      const needle = String(arg);
      return (s) => {
        const v = s.value(ref);
        return typeof v === 'string' && (ref.name === 'proc.ancestry' ? v.split(' ← ').includes(needle) : v.includes(needle));
      };
    }
  }
}

/** NaN for absent or non-numeric values: every comparison with it is false. */
function num(v: Value | undefined): number {
  return typeof v === 'number' ? v : Number.NaN;
}

/** Walks the tree to the leaf this event reaches; null when a branch without else is not taken. */
export function decide(node: TreeNode, s: EvalScope): Leaf | null {
  let n: TreeNode | null = node;
  while (n !== null && n.kind === 'if') n = n.test(s) ? n.then : n.else;
  return n;
}

export function render(t: Template, s: EvalScope): string {
  let out = '';
  for (const p of t.parts) out += typeof p === 'string' ? p : formatValue(s.value(p), p.type);
  return out;
}
