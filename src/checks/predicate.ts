// `where` predicates compiled once into closures, so the event feed tests an event without
// building an object of its fields: each field in the predicate becomes an accessor that reads
// the one value it needs from whatever the caller passes (a decoded event and its context live,
// an NDJSON-derived fact in a replay). Semantics are the evaluator's: null for a missing value,
// ordering comparisons with null are false, `and`/`or` short-circuit.
import type { Expr } from './ast.js';
import { literal } from './units.js';

export type Scalar = number | boolean | string | null;

/** Reads one field of an event: `x` is the event, `y` its context (unused by some callers). */
export type FieldAccessor<X, Y> = (x: X, y: Y) => Scalar;

export type Predicate<X, Y> = (x: X, y: Y) => boolean;

/** Binary operators on scalars, shared with the evaluator. */
export function binop(op: string, x: Scalar, y: Scalar): Scalar {
  switch (op) {
    case 'and':
      return x === true && y === true;
    case 'or':
      return x === true || y === true;
    case '==':
      return x === y;
    case '!=':
      return x !== y;
  }
  if (typeof x !== 'number' || typeof y !== 'number') return op === '+' || op === '-' || op === '*' || op === '/' ? null : false;
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return y === 0 ? null : x / y;
  }
  return null;
}

/** A predicate that holds when the expression evaluates to true. `field` gives the accessor of
 *  a field name (undefined: the field reads as null). */
export function compilePredicate<X, Y>(e: Expr, field: (name: string) => FieldAccessor<X, Y> | undefined): Predicate<X, Y> {
  const v = compileValue(e, field);
  return (x, y) => v(x, y) === true;
}

const NULL = () => null;

function compileValue<X, Y>(e: Expr, field: (name: string) => FieldAccessor<X, Y> | undefined): FieldAccessor<X, Y> {
  switch (e.kind) {
    case 'number': {
      const c = literal(e.value, e.unit, e.rate).value;
      return () => c;
    }
    case 'string': {
      const c = e.value;
      return () => c;
    }
    case 'bool': {
      const c = e.value;
      return () => c;
    }
    case 'ident':
      return field(e.name) ?? NULL;
    case 'unary': {
      const o = compileValue(e.operand, field);
      if (e.op === 'not') return (x, y) => o(x, y) !== true;
      return (x, y) => {
        const a = o(x, y);
        return typeof a === 'number' ? -a : null;
      };
    }
    case 'binary': {
      const l = compileValue(e.left, field);
      const r = compileValue(e.right, field);
      // the common operators get their own closure: the feed runs them per event
      switch (e.op) {
        case 'and':
          return (x, y) => l(x, y) === true && r(x, y) === true;
        case 'or':
          return (x, y) => l(x, y) === true || r(x, y) === true;
        case '==':
          return (x, y) => l(x, y) === r(x, y);
        case '!=':
          return (x, y) => l(x, y) !== r(x, y);
        default: {
          const op = e.op;
          return (x, y) => binop(op, l(x, y), r(x, y));
        }
      }
    }
    default:
      return NULL;
  }
}
