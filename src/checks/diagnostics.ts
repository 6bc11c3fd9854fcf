// Diagnostics: every problem the DSL finds in a file is a Diagnostic with a stable code, a
// position and a caret snippet. Codes are a contract (docs/dsl.md lists them): never renumber.
// PD1xxx: lexical and syntax errors; PD2xxx: checker (fields, types, units); PD3xxx: warnings.
import { PatrolError } from '../shared/errors.js';

export const CODES = {
  PD1000: 'cannot read the file',
  PD1001: 'unexpected character',
  PD1002: 'unterminated string',
  PD1003: 'invalid number',
  PD1004: 'unknown unit',
  PD1005: 'invalid escape in string',
  PD1010: 'unexpected token',
  PD1011: 'missing semicolon',
  PD1012: 'duplicate clause',
  PD1013: 'unknown clause in a check block',
  PD1014: 'expression nested too deeply',
  PD1015: 'unterminated check block',
  PD2001: 'unknown field',
  PD2002: 'wrong number of arguments',
  PD2003: 'argument of the wrong type',
  PD2004: 'unit mismatch',
  PD2005: 'type mismatch',
  PD2006: 'invalid duration',
  PD2007: 'duplicate check name',
  PD2008: 'check without a condition',
  PD2009: 'unknown event kind',
  PD2010: 'unknown event field',
  PD2011: 'invalid RE2 pattern',
  PD2012: 'invalid grouping',
  PD2013: 'invalid alert state or timeout action',
  PD2014: 'invalid argument value',
  PD2015: 'where clause outside an event aggregate',
  PD3001: 'timeout not shorter than the interval',
  PD3002: 'condition is constant',
  PD3003: 'condition fires in the healthy state',
  PD3004: 'trend window too short for the check interval',
} as const;

export type DiagnosticCode = keyof typeof CODES;

export interface Span {
  /** UTF-16 offsets into the source, end exclusive */
  start: number;
  end: number;
  /** 1-based */
  line: number;
  /** 1-based, in UTF-16 code units */
  col: number;
}

export interface Diagnostic {
  code: DiagnosticCode;
  severity: 'error' | 'warning';
  message: string;
  file: string;
  span: Span;
  hint?: string;
}

export class DslError extends PatrolError {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super('E_DSL', diagnostics.length === 1 ? formatDiagnostic(diagnostics[0]!, null) : `${diagnostics.length} problems in the checks`);
  }
}

/** Collects diagnostics for one file. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  constructor(readonly file: string) {}

  error(code: DiagnosticCode, span: Span, message: string, hint?: string): void {
    this.items.push({ code, severity: 'error', message, file: this.file, span, ...(hint === undefined ? {} : { hint }) });
  }

  warning(code: DiagnosticCode, span: Span, message: string, hint?: string): void {
    this.items.push({ code, severity: 'warning', message, file: this.file, span, ...(hint === undefined ? {} : { hint }) });
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

/** `file:line:col: error PD2001: message` then the source line with carets under the span. */
export function formatDiagnostic(d: Diagnostic, source: string | null): string {
  let text = `${d.file}:${d.span.line}:${d.span.col}: ${d.severity} ${d.code}: ${d.message}`;
  if (source !== null) {
    const lineStart = d.span.start - (d.span.col - 1);
    let lineEnd = source.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = source.length;
    const lineText = source.slice(lineStart, lineEnd).replace(/\t/g, ' ');
    const width = Math.max(1, Math.min(d.span.end, lineEnd) - d.span.start);
    const gutter = String(d.span.line);
    text += `\n ${gutter} | ${lineText}\n ${' '.repeat(gutter.length)} | ${' '.repeat(d.span.col - 1)}${'^'.repeat(width)}`;
  }
  if (d.hint !== undefined) text += `\n   = hint: ${d.hint}`;
  return text;
}

/** Damerau-free Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate within a third of the word's length (at least 2 edits), if any. */
export function suggest(word: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  const limit = Math.max(2, Math.floor(word.length / 3));
  for (const c of candidates) {
    // an abbreviation (mem_usage for memory_usage) is closer than its edit distance says
    const d = editDistance(word.toLowerCase(), c.toLowerCase()) - (isSubsequence(word.toLowerCase(), c.toLowerCase()) ? 1 : 0);
    if (d < bestD || (d === bestD && best !== null && c < best)) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= limit ? best : null;
}

function isSubsequence(a: string, b: string): boolean {
  let j = 0;
  for (let i = 0; i < b.length && j < a.length; i++) if (a[j] === b[i]) j++;
  return j === a.length;
}
