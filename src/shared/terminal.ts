// Text from processes (comm, filenames, argv, cgroup paths, unit names, log lines, evidence)
// made safe for a terminal. Any process can name itself `\e[2J...` or put escape sequences in
// its arguments: printed raw, they clear the operator's screen, retitle the window, or worse.
// Human output escapes them; JSON output stays lossless (JSON escapes controls itself).
//
// Escaped: C0 controls and DEL (\xNN, with \t \n \r as such), C1 controls (\u{80}..\u{9f}),
// Unicode line/paragraph separators and bidirectional overrides (they reorder what the
// operator reads), lone surrogates, and the replacement character standing for invalid UTF-8
// (when the raw bytes are known, termBytes shows them as \xNN instead). A backslash is doubled
// only when escaping happened, so ordinary paths read as they are.

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// eslint-disable-next-line no-control-regex
const UNSAFE_G = /[\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Every character term() escapes except the backslash (for callers with their own quoting). */
// eslint-disable-next-line no-control-regex
export const TERM_UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '\\':
      return '\\\\';
    case '\t':
      return '\\t';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
  }
  const cp = c.charCodeAt(0);
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/** `s` as a terminal may show it: unchanged when safe (the common case, one regex test). */
export function term(s: string | null | undefined): string {
  if (s === null || s === undefined) return '';
  return UNSAFE.test(s) ? s.replace(UNSAFE_G, escapeChar) : s;
}

/** Raw bytes (not necessarily UTF-8) for a terminal: valid UTF-8 as text (escaped by term()),
 *  each byte of an invalid sequence as \xNN. */
export function termBytes(b: Uint8Array): string {
  let out = '';
  let i = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  while (i < b.length) {
    const n = utf8SeqLen(b, i);
    if (n === 0) {
      out += `\\x${b[i]!.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    let j = i + n;
    while (j < b.length) {
      const m = utf8SeqLen(b, j);
      if (m === 0) break;
      j += m;
    }
    out += term(dec.decode(b.subarray(i, j)));
    i = j;
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at i, or 0 if the byte there starts none. */
export function utf8SeqLen(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 > 0x9f) return 0; // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 > 0x8f) return 0;
    return 4;
  }
  return 0;
}

/** A KText-like value ({text, raw?}) for a terminal: the raw bytes when they differ. */
export function termText(t: { text: string; raw?: Uint8Array } | null | undefined): string {
  if (!t) return '';
  return t.raw ? termBytes(t.raw) : term(t.text);
}
