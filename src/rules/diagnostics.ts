// Rule-set diagnostics: every problem the loader finds, with a stable code and a position, so a
// bad rule set is reported at once and the running set stays active.
import { PatrolError } from '../shared/errors.js';

/** Stable codes; docs/rules.md lists them. Never renumber or reuse one. */
export type DiagnosticCode =
  | 'E_RULE_FILE' // cannot read the file
  | 'E_RULE_FILE_SIZE' // file larger than the bound
  | 'E_RULE_YAML' // YAML syntax
  | 'E_RULE_SHAPE' // a key is missing, unknown or of the wrong type
  | 'E_RULE_DUPLICATE' // two rules share an id
  | 'E_RULE_COUNT' // more rules than the bound
  | 'E_PATTERN_LENGTH' // pattern longer than the bound
  | 'E_PATTERN_BACKREF' // \1, \k<name>: not linear-time, RE2 has none
  | 'E_PATTERN_LOOKAROUND' // (?=, (?!, (?<=, (?<!
  | 'E_PATTERN_SYNTAX' // RE2 rejected the pattern
  | 'E_FIELD_TYPE' // unknown field type
  | 'E_FIELD_UNKNOWN' // a field that no capture, event or fact provides
  | 'E_FACT_UNKNOWN' // an unknown fact function or argument
  | 'E_CONDITION' // a malformed condition
  | 'E_VALUE' // a literal that does not fit the field's type
  | 'E_TEMPLATE' // a placeholder naming an unknown field
  | 'E_EVIDENCE' // unknown evidence kind
  | 'E_TREE_DEPTH'; // tree nested deeper than the bound

export interface Diagnostic {
  code: DiagnosticCode;
  message: string;
  file: string;
  /** 1-based; 0 when the problem is about the whole file */
  line: number;
  col: number;
}

export function formatDiagnostic(d: Diagnostic): string {
  const at = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  return `${at}: ${d.code}: ${d.message}`;
}

/** Thrown only by callers that want an exception (the CLI); the loader itself returns diagnostics. */
export class RuleSetError extends PatrolError {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super('E_RULES', diagnostics.map(formatDiagnostic).join('\n'));
  }
}
