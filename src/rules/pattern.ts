// User patterns: RE2 only (linear time, no catastrophic backtracking). Backreferences and
// lookaround are found here, before RE2, so the message says what is wrong and why instead of
// RE2's "invalid escape sequence".
import RE2 from 're2';
import type { DiagnosticCode } from './diagnostics.js';

export const MAX_PATTERN_LENGTH = 4096;

export interface PatternProblem {
  code: DiagnosticCode;
  message: string;
  /** 0-based offset in the pattern */
  offset: number;
}

/** Scans for constructs RE2 does not have; outside character classes only (there `\1` is octal-ish
 *  and `(?=` is literal text). */
export function unsupportedConstructs(src: string): PatternProblem[] {
  const out: PatternProblem[] = [];
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (!inClass && n !== undefined && /[1-9]/.test(n)) {
        out.push({ code: 'E_PATTERN_BACKREF', offset: i, message: `backreference \\${n} is not supported: RE2 patterns run in linear time and cannot refer back to a group` });
      } else if (!inClass && n === 'k' && src[i + 2] === '<') {
        out.push({ code: 'E_PATTERN_BACKREF', offset: i, message: 'named backreference \\k<…> is not supported: RE2 patterns run in linear time and cannot refer back to a group' });
      }
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (src[i + 1] === '^') i++;
      if (src[i + 1] === ']') i++; // a leading ] is literal
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const a = src[i + 2];
      const b = src[i + 3];
      if (a === '=' || a === '!') {
        out.push({ code: 'E_PATTERN_LOOKAROUND', offset: i, message: `lookahead (?${a} is not supported by RE2; match the text itself or test it in the decision tree` });
      } else if (a === '<' && (b === '=' || b === '!')) {
        out.push({ code: 'E_PATTERN_LOOKAROUND', offset: i, message: `lookbehind (?<${b} is not supported by RE2; match the text itself or test it in the decision tree` });
      }
    }
  }
  return out;
}

/** Named groups in source order: `(?<name>…)` and `(?P<name>…)`. */
export function captureNames(src: string): string[] {
  const names: string[] = [];
  const re = /\\.|\[(?:\\.|[^\]\\])*\]|\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g;
  for (let m = re.exec(src); m; m = re.exec(src)) if (m[1]) names.push(m[1]);
  return names;
}

export type CompiledPattern = { ok: true; re: RE2; names: string[] } | { ok: false; problems: PatternProblem[] };

export function compilePattern(src: string, maxLength = MAX_PATTERN_LENGTH): CompiledPattern {
  if (src.length > maxLength) {
    return { ok: false, problems: [{ code: 'E_PATTERN_LENGTH', offset: 0, message: `pattern is ${src.length} characters; the bound is ${maxLength}` }] };
  }
  const problems = unsupportedConstructs(src);
  if (problems.length) return { ok: false, problems };
  try {
    // (?P<name>) is RE2's own spelling; the re2 package takes JS syntax, so translate it.
    const re = new RE2(src.replace(/\(\?P</g, '(?<'), 'u');
    return { ok: true, re, names: captureNames(src) };
  } catch (e) {
    return { ok: false, problems: [{ code: 'E_PATTERN_SYNTAX', offset: 0, message: `RE2 rejected the pattern: ${(e as Error).message}` }] };
  }
}
