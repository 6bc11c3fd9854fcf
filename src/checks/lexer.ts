// Lexer: source text → tokens with spans. Never throws: a bad character or literal becomes a
// diagnostic and lexing goes on, so one typo does not hide the problems after it.
//
// Numbers carry their unit as written (`90%`, `5m`, `1.5GB`, `10MB/s`, `3/s`): a unit must
// follow its digits without a space, and a `/s`-style rate suffix must follow directly too, so
// `a / s` stays a division.
import { DiagnosticBag, type Span } from './diagnostics.js';
import { UNITS, RATE_SUFFIXES } from './units.js';

export type TokenKind = 'ident' | 'number' | 'string' | 'punct' | 'eof';

export interface Token {
  kind: TokenKind;
  /** ident name, punctuation text, string value (unescaped) or number text */
  text: string;
  span: Span;
  /** numbers only */
  value?: number;
  unit?: string | null;
  rate?: string | null;
}

const PUNCT2 = ['==', '!=', '<=', '>='];
const PUNCT1 = '(){},;=<>+-*/:';

const isDigit = (c: string) => c >= '0' && c <= '9';
const isIdentStart = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isIdentChar = (c: string) => isIdentStart(c) || isDigit(c);

export function lex(src: string, diags: DiagnosticBag): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const span = (start: number, end: number): Span => ({ start, end, line, col: start - lineStart + 1 });

  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const start = i;
    if (isIdentStart(c)) {
      while (i < src.length && isIdentChar(src[i]!)) i++;
      tokens.push({ kind: 'ident', text: src.slice(start, i), span: span(start, i) });
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(src[i + 1] ?? ''))) {
      tokens.push(lexNumber());
      continue;
    }
    if (c === '"') {
      const t = lexString();
      if (t !== null) tokens.push(t);
      continue;
    }
    const two = src.slice(i, i + 2);
    if (PUNCT2.includes(two)) {
      i += 2;
      tokens.push({ kind: 'punct', text: two, span: span(start, i) });
      continue;
    }
    if (PUNCT1.includes(c)) {
      i++;
      tokens.push({ kind: 'punct', text: c, span: span(start, i) });
      continue;
    }
    // one whole code point, so the caret sits under one character
    const cp = src.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    const shown = c === '!' ? "'!' (write != for 'not equal', or 'not')" : c === '&' || c === '|' ? `'${c}' (write 'and' / 'or')` : `'${String.fromCodePoint(cp)}'`;
    diags.error('PD1001', span(start, i), `unexpected character ${shown}`);
  }
  tokens.push({ kind: 'eof', text: '', span: span(src.length, src.length) });
  return tokens;

  function lexNumber(): Token {
    const start = i;
    while (isDigit(src[i] ?? '')) i++;
    if (src[i] === '.' && isDigit(src[i + 1] ?? '')) {
      i++;
      while (isDigit(src[i] ?? '')) i++;
    }
    // exponent only when digits follow: `1e5`, `2.5e-3`
    if ((src[i] === 'e' || src[i] === 'E') && (isDigit(src[i + 1] ?? '') || ((src[i + 1] === '+' || src[i + 1] === '-') && isDigit(src[i + 2] ?? '')))) {
      i += 2;
      while (isDigit(src[i] ?? '')) i++;
    }
    const text = src.slice(start, i);
    const value = Number(text);
    let unit: string | null = null;
    let rate: string | null = null;
    if (src[i] === '%') {
      unit = '%';
      i++;
    } else if (isIdentStart(src[i] ?? '')) {
      const us = i;
      while (i < src.length && isIdentChar(src[i]!)) i++;
      unit = src.slice(us, i);
      if (!(unit in UNITS)) {
        diags.error('PD1004', span(us, i), `unknown unit '${unit}'`, `units: ${Object.keys(UNITS).join(' ')}; rates add /s, e.g. 10MB/s`);
      }
    }
    if (src[i] === '/' && src[i + 1] !== '/' && isIdentStart(src[i + 1] ?? '')) {
      let j = i + 1;
      while (j < src.length && isIdentChar(src[j]!)) j++;
      const r = src.slice(i + 1, j);
      if (RATE_SUFFIXES.has(r)) {
        rate = r;
        i = j;
      }
    }
    if (!Number.isFinite(value)) diags.error('PD1003', span(start, i), `invalid number '${text}'`);
    return { kind: 'number', text: src.slice(start, i), span: span(start, i), value: Number.isFinite(value) ? value : 0, unit, rate };
  }

  function lexString(): Token | null {
    const start = i;
    i++;
    let out = '';
    while (i < src.length) {
      const ch = src[i]!;
      if (ch === '"') {
        i++;
        return { kind: 'string', text: out, span: span(start, i) };
      }
      if (ch === '\n') break;
      if (ch === '\\') {
        const e = src[i + 1] ?? '';
        const simple: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', r: '\r', '/': '/', b: '\b', f: '\f' };
        if (e in simple) {
          out += simple[e];
          i += 2;
          continue;
        }
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
          out += String.fromCharCode(Number.parseInt(src.slice(i + 2, i + 6), 16));
          i += 6;
          continue;
        }
        diags.error('PD1005', span(i, Math.min(src.length, i + 2)), `invalid escape '\\${e}' in string`, 'escapes: \\" \\\\ \\n \\t \\uXXXX');
        i += e === '' ? 1 : 2;
        continue;
      }
      out += ch;
      i++;
    }
    diags.error('PD1002', span(start, i), 'unterminated string', 'close it with " on the same line');
    return { kind: 'string', text: out, span: span(start, i) };
  }
}
