// Which rules an event can fire. At load, each lifecycle/state rule's decision tree is turned into
// its firing condition (the disjunction, over the leaves, of the tests on the way), and that is
// weakened to a *gate*: a necessary condition that reads only what an event carries for free
// (its own fields) and the history counters. An event first picks the rules of its source and,
// for exits, of its class (clean, non-zero code, signal) decided at load; then each rule's gate
// runs; only a rule whose gate holds gets a tree run, with a Scope and the event's field record.
//
// Weakening is sound because the condition is in negation normal form: replacing any test by
// "true" can only let more events through. A rule the index cannot reason about (its tree tests
// only process facts or windows) gets the gate "true" and runs on every event of its source and
// class, as before: correct over clever.
import type { SourceKind } from './catalogue.js';
import { LIFECYCLE_SOURCES, isEventField } from './event-fields.js';
import type { Cond, CompiledRule, EvalScope, Test, TreeNode } from './tree.js';
import type { FieldRef } from './catalogue.js';
import type { Value } from './units.js';

/** A necessary condition for a rule to fire. `counter` atoms read a history figure, which the
 *  reader may not be able to give (no parent known): such an atom then holds. */
export type Gate =
  | { kind: 'const'; value: boolean }
  | { kind: 'atom'; ref: FieldRef; test: Test; negated: boolean; counter: boolean }
  | { kind: 'and' | 'or'; items: readonly Gate[] };

const TRUE: Gate = { kind: 'const', value: true };
const FALSE: Gate = { kind: 'const', value: false };

function and(items: Gate[]): Gate {
  const out: Gate[] = [];
  for (const g of items) {
    if (g.kind === 'const') {
      if (!g.value) return FALSE;
      continue;
    }
    if (g.kind === 'and') out.push(...g.items);
    else out.push(g);
  }
  return out.length === 0 ? TRUE : out.length === 1 ? out[0]! : { kind: 'and', items: out };
}

function or(items: Gate[]): Gate {
  const out: Gate[] = [];
  for (const g of items) {
    if (g.kind === 'const') {
      if (g.value) return TRUE;
      continue;
    }
    if (g.kind === 'or') out.push(...g.items);
    else out.push(g);
  }
  return out.length === 0 ? FALSE : out.length === 1 ? out[0]! : { kind: 'or', items: out };
}

/** History figures a gate may read: kept as counters, so reading one walks numbers only. */
const COUNTERS: Partial<Record<SourceKind, ReadonlySet<string>>> = {
  // an exit knows its command; any lifecycle event knows its parent (when the table does)
  exit: new Set(['history.failures', 'history.execs_by_parent']),
  exec: new Set(['history.execs_by_parent']),
  exec_failed: new Set(['history.execs_by_parent']),
  reap: new Set(['history.execs_by_parent']),
};

/** A condition in negation normal form with the tests the index cannot read weakened to true. */
function gateOfCond(c: Cond, negate: boolean, source: SourceKind): Gate {
  switch (c.kind) {
    case 'not':
      return gateOfCond(c.item, !negate, source);
    case 'all':
    case 'any': {
      const items = c.items.map((x) => gateOfCond(x, negate, source));
      // De Morgan: a negated all is an any of negations
      return (c.kind === 'all') !== negate ? and(items) : or(items);
    }
    case 'cmp': {
      const counter = c.ref.fn !== undefined && (COUNTERS[source]?.has(c.ref.fn) ?? false);
      if (!counter && !isEventField(source, c.ref.name)) return TRUE;
      return { kind: 'atom', ref: c.ref, test: c.test, negated: negate, counter };
    }
  }
}

/** The rule fires iff some leaf is reached: for a branch, (test ∧ then) ∨ (¬test ∧ else). */
function gateOfNode(n: TreeNode | null, source: SourceKind): Gate {
  if (n === null) return FALSE;
  if (n.kind === 'leaf') return TRUE;
  return or([and([gateOfCond(n.cond, false, source), gateOfNode(n.then, source)]), and([gateOfCond(n.cond, true, source), gateOfNode(n.else, source)])]);
}

export function gateOf(rule: CompiledRule): Gate {
  if (!LIFECYCLE_SOURCES.has(rule.source) && rule.source !== 'state') return TRUE;
  return gateOfNode(rule.tree, rule.source);
}

/** What a gate reads: event fields and counters, without allocating. */
export interface GateReader extends EvalScope {
  /** whether the counter `ref` can be read for this event */
  hasCounter(ref: FieldRef): boolean;
}

export function evalGate(g: Gate, r: GateReader): boolean {
  switch (g.kind) {
    case 'const':
      return g.value;
    case 'atom': {
      if (g.counter && !r.hasCounter(g.ref)) return true;
      return g.test(r) !== g.negated;
    }
    case 'and':
      for (let i = 0; i < g.items.length; i++) if (!evalGate(g.items[i]!, r)) return false;
      return true;
    case 'or':
      for (let i = 0; i < g.items.length; i++) if (evalGate(g.items[i]!, r)) return true;
      return false;
  }
}

/** Exit classes: what is known of an exit before reading anything but its code and signal. */
export const EXIT_CLEAN = 0;
export const EXIT_CODE = 1;
export const EXIT_SIGNAL = 2;
export const EXIT_CLASSES = 3;

export const exitClass = (exitCode: number | null, signal: number | null) => (signal !== null ? EXIT_SIGNAL : exitCode === 0 ? EXIT_CLEAN : EXIT_CODE);

/** Fields each exit class fixes (only what follows from exitClass and `failed`'s definition). */
const CLASS_FACTS: ReadonlyArray<Readonly<Record<string, Value>>> = [
  { exit_code: 0, signal: null, signal_name: null, failed: false },
  { signal: null, signal_name: null, failed: true },
  { failed: true },
];

/** Three-valued: can `g` hold when only `known` is known? (false = certainly not) */
function mayHold(g: Gate, known: Readonly<Record<string, Value>>): boolean | null {
  switch (g.kind) {
    case 'const':
      return g.value;
    case 'atom': {
      if (g.counter || !(g.ref.name in known)) return null;
      const scope: EvalScope = { value: (ref) => known[ref.name] };
      return g.test(scope) !== g.negated;
    }
    case 'and': {
      let unknown = false;
      for (const x of g.items) {
        const v = mayHold(x, known);
        if (v === false) return false;
        if (v === null) unknown = true;
      }
      return unknown ? null : true;
    }
    case 'or': {
      let unknown = false;
      for (const x of g.items) {
        const v = mayHold(x, known);
        if (v === true) return true;
        if (v === null) unknown = true;
      }
      return unknown ? null : false;
    }
  }
}

/** An exit rule's classes: those in which its gate is not certainly false. */
export function exitClassesOf(g: Gate): boolean[] {
  return CLASS_FACTS.map((known) => mayHold(g, known) !== false);
}
