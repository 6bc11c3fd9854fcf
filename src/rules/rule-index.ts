// Which rules each input is offered to, built once per rule set: the engine swaps a whole index
// in one step (RuleEngine.setRules), so a reload never leaves half a set indexed.
//   lifecycle and state rules  by event type, exits also by class (clean, code, signal), each
//                              with the gate that turns an event away before any tree run
//   line rules                 by source, log rules by file, with the RE2.Set scan that picks
//                              the pattern rules worth running (line-prefilter.ts)
import type { SourceKind } from './catalogue.js';
import { LIFECYCLE_SOURCES } from './event-fields.js';
import { prefilter, type Prefilter } from './line-prefilter.js';
import type { CompiledRule } from './tree.js';
import { EXIT_CLASSES, exitClassesOf, gateOf, type Gate } from './trigger-index.js';

export interface RuleProfile {
  rule: string;
  source: SourceKind;
  /** times the rule was considered: its gate (lifecycle, state), pattern (lines) or alert (checks) */
  evaluations: number;
  /** the pattern matched (pattern rules) */
  patternMatches: number;
  /** its decision tree was walked */
  treeRuns: number;
  /** a leaf was reached: a finding was made or merged */
  matches: number;
  /** ns spent in tree runs and pattern matching (a double: performance.now() is cheaper than
   *  hrtime.bigint()); gates are not timed, they cost a field read and a comparison */
  timeNs: number;
  maxNs: number;
}

/** A lifecycle or state rule as the index keeps it. */
export interface IndexedRule {
  rule: CompiledRule;
  gate: Gate;
  /** the gate is "true": nothing to test */
  always: boolean;
  profile: RuleProfile;
}

export class RuleIndex {
  private constructor(
    readonly rules: readonly CompiledRule[],
    readonly bySource: ReadonlyMap<SourceKind, CompiledRule[]>,
    /** lifecycle and state rules by source, then by class (exits: clean, code, signal; others: one) */
    readonly byEvent: ReadonlyMap<SourceKind, IndexedRule[][]>,
    readonly logByPath: ReadonlyMap<string, CompiledRule[]>,
    /** per line source (kmsg, log:PATH) */
    readonly prefilters: ReadonlyMap<string, Prefilter>,
  ) {}

  static readonly EMPTY = new RuleIndex([], new Map(), new Map(), new Map(), new Map());

  /** `profileOf`: the rule's profile (kept by the engine across sets); `scan`: build the line
   *  sources' set scans (false is for comparison). */
  static build(rules: readonly CompiledRule[], profileOf: (r: CompiledRule) => RuleProfile, scan: boolean): RuleIndex {
    const bySource = new Map<SourceKind, CompiledRule[]>();
    const byEvent = new Map<SourceKind, IndexedRule[][]>();
    const logByPath = new Map<string, CompiledRule[]>();
    for (const r of rules) {
      if (r.source === 'log') push(logByPath, r.path!, r);
      push(bySource, r.source, r);
      const profile = profileOf(r);
      if (!LIFECYCLE_SOURCES.has(r.source) && r.source !== 'state') continue;
      const gate = gateOf(r);
      const x: IndexedRule = { rule: r, gate, always: gate.kind === 'const' && gate.value, profile };
      let lists = byEvent.get(r.source);
      if (!lists) {
        lists = Array.from({ length: r.source === 'exit' ? EXIT_CLASSES : 1 }, () => []);
        byEvent.set(r.source, lists);
      }
      if (r.source === 'exit') {
        const classes = exitClassesOf(gate);
        for (let c = 0; c < EXIT_CLASSES; c++) if (classes[c]) lists[c]!.push(x);
      } else if (!(gate.kind === 'const' && !gate.value)) lists[0]!.push(x);
    }
    const prefilters = new Map<string, Prefilter>();
    if (scan) {
      const kmsg = bySource.get('kmsg');
      if (kmsg) prefilters.set('kmsg', prefilter(kmsg));
      for (const [path, list] of logByPath) prefilters.set(`log:${path}`, prefilter(list));
    }
    return new RuleIndex(rules, bySource, byEvent, logByPath, prefilters);
  }
}

function push<K>(m: Map<K, CompiledRule[]>, key: K, r: CompiledRule): void {
  const l = m.get(key);
  if (l) l.push(r);
  else m.set(key, [r]);
}
