// Line sources (the kernel log, each tailed file): one RE2.Set over every pattern rule of the
// source, so a line costs one scan plus the rules whose pattern matched, not one scan per rule.
import RE2 from 're2';
import type { CompiledRule } from './tree.js';

export interface Prefilter {
  /** null when the set could not be built (RE2's set memory bound): rules then run one by one */
  set: InstanceType<typeof RE2.Set> | null;
  /** rules with a pattern, in set index order */
  patterned: CompiledRule[];
  /** rules without a pattern: always evaluated */
  others: CompiledRule[];
}

export function prefilter(rules: readonly CompiledRule[]): Prefilter {
  const patterned = rules.filter((r) => r.pattern !== null);
  const others = rules.filter((r) => r.pattern === null);
  let set: Prefilter['set'] = null;
  if (patterned.length > 1) {
    try {
      set = new RE2.Set(patterned.map((r) => r.pattern!.source), 'u');
    } catch {
      set = null;
    }
  }
  return { set, patterned, others: set === null ? [...others, ...patterned] : others };
}
