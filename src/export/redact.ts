// argv redaction (export.redact): RE2 patterns applied to a process's argv when it enters the
// process table, so nothing downstream (NDJSON, API, store, OTLP, alerts, dashboard) ever holds
// the secret. The OTel conventions say command arguments SHOULD NOT be collected unsanitized.
//
// Matching: the arguments joined by single spaces, so one pattern can see a flag and its value
// in the next argument (`--password hunter2`). What a match covers is replaced by `****`, except
// its capturing groups, which are kept: `(--password[= ])\S+` turns `--password=hunter2` into
// `--password=****`. A replacement never crosses an argument: each argument keeps its place, with
// its covered parts masked.
//
// Cost per exec: the arguments' bytes into a reused buffer, then either a lookup among the recent
// lines that matched nothing or one RE2::Set scan (all patterns at once); the patterns run one by
// one only on a hit, and only then is the joined text built.
import RE2 from 're2';
import { PatrolError } from '../shared/errors.js';
import type { KText } from '../shared/events.js';

export const MASK = '****';

/** Built-in patterns (export.redact_defaults), each with what it is for. */
export const DEFAULT_REDACT_PATTERNS: ReadonlyArray<{ pattern: string; covers: string }> = [
  {
    covers: '--password=…, --token …, --api-key=…, --secret …: a secret-named option and its value',
    pattern: '(?i)(--?[a-z0-9_-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)[= ])\\S+',
  },
  {
    covers: 'token=…, PASSWORD=…, db_password:…, ?api_key=… (assignments and query parameters)',
    pattern: '(?i)((?:^|[\\s,;&?=])[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)[=:])[^\\s&]+',
  },
  { covers: 'AWS access key ids (AKIA…, ASIA…)', pattern: '\\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\\b' },
  { covers: 'URLs with credentials: scheme://user:password@host', pattern: '([a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s:@]*:)[^/\\s@]+(@)' },
  {
    covers: 'HTTP authorization headers: "Authorization: Bearer …", X-Api-Key: …',
    pattern: '(?i)((?:authorization|proxy-authorization|x-api-key|x-auth-token|private-token)\\s*[:=]\\s*(?:(?:bearer|basic|token)\\s+)?)\\S+',
  },
];

export class RedactPatternError extends PatrolError {
  constructor(
    readonly index: number,
    readonly pattern: string,
    why: string,
  ) {
    super('E_REDACT_PATTERN', `export.redact[${index}]: ${JSON.stringify(pattern)} is not a valid RE2 pattern: ${why}`);
  }
}

/** Compiles one pattern; throws RedactPatternError. */
function compile(pattern: string, index: number): RE2 {
  if (pattern === '') throw new RedactPatternError(index, pattern, 'empty');
  let re: RE2;
  try {
    re = new RE2(pattern, 'gd');
  } catch (e) {
    throw new RedactPatternError(index, pattern, (e as Error).message);
  }
  if (re.test('')) throw new RedactPatternError(index, pattern, 'matches the empty string (it would mask nothing or everything)');
  return re;
}

/** Checks the user's patterns (config load): the first bad one throws RedactPatternError. */
export function checkPatterns(patterns: readonly string[]): void {
  patterns.forEach((p, i) => compile(p, i));
}

/** Command lines that matched nothing are remembered in this many slots of this many bytes
 *  (256 KiB in all); a longer line is scanned every time. */
const CLEAN_SLOTS = 1024;
const CLEAN_SLOT_BYTES = 256;

/** FNV-1a of the first `len` bytes, as an int32 (what an Int32Array slot holds); 0 is taken by
 *  "not remembered", so a line that hashes to 0 is simply scanned every time. */
function fnv1a(buf: Buffer, len: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h;
}

export class Redactor {
  private readonly set: InstanceType<typeof RE2.Set> | null;
  private readonly res: RE2[];
  /** argv lists that had something masked */
  redacted = 0;
  /** RE2 scans of a command line (a remembered clean line is not scanned again) */
  scans = 0;
  private scratch = Buffer.allocUnsafe(16 << 10);
  /** argv lines (their UTF-8 bytes) that matched no pattern, one per slot, the slot chosen by a
   *  hash of the bytes: the patterns of a Redactor never change. Made at the first clean line. */
  private cleanBytes: Buffer | null = null;
  private readonly cleanLen = new Int32Array(CLEAN_SLOTS);
  private readonly cleanHash = new Int32Array(CLEAN_SLOTS);

  constructor(readonly patterns: readonly string[]) {
    this.res = patterns.map((p, i) => compile(p, i));
    this.set = patterns.length ? new RE2.Set([...patterns]) : null;
  }

  /** The user's patterns after the defaults (unless turned off). */
  static fromConfig(c: { redact: readonly string[]; redactDefaults: boolean }): Redactor {
    return new Redactor([...(c.redactDefaults ? DEFAULT_REDACT_PATTERNS.map((d) => d.pattern) : []), ...c.redact]);
  }

  /** The masked copy of argv, or null when no pattern matched (the common case: no allocation
   *  beyond the joined text). Masked arguments lose their raw bytes. */
  argv(args: readonly KText[]): KText[] | null {
    const set = this.set;
    const n = args.length;
    if (set === null || n === 0) return null;
    // The scan reads UTF-8 bytes written into a reused buffer: RE2 converts a JS string to
    // UTF-8 on every call, which costs more than the scan itself (bench/README.md, redaction).
    let buf = this.scratch;
    let len = 0;
    for (let i = 0; i < n; i++) {
      const t = args[i]!.text;
      if (len + 1 + t.length * 3 > buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, len + 1 + t.length * 3));
        buf.copy(grown, 0, 0, len);
        buf = this.scratch = grown;
      }
      if (i > 0) buf[len++] = 0x20;
      len += buf.write(t, len);
    }
    // Most execs repeat a command line seen moments ago (a loop, a probe, a cron job): a line
    // that matched nothing is remembered, and seen again costs a hash and a compare of its bytes
    // instead of a scan. A direct-mapped table of fixed slots: nothing allocated per exec, and
    // two lines in one slot only cost each other a scan.
    const hash = len > 0 && len <= CLEAN_SLOT_BYTES ? fnv1a(buf, len) : 0;
    const slot = hash === 0 ? -1 : (hash >>> 0) & (CLEAN_SLOTS - 1);
    if (slot >= 0) {
      const base = slot * CLEAN_SLOT_BYTES;
      const arena = this.cleanBytes;
      if (arena !== null && this.cleanLen[slot] === len && this.cleanHash[slot] === hash) {
        let i = 0;
        while (i < len && arena[base + i] === buf[i]) i++;
        if (i === len) return null;
      }
    }
    this.scans++;
    if (!set.test(buf.subarray(0, len))) {
      if (slot >= 0) {
        const arena = (this.cleanBytes ??= Buffer.alloc(CLEAN_SLOTS * CLEAN_SLOT_BYTES));
        const base = slot * CLEAN_SLOT_BYTES;
        for (let i = 0; i < len; i++) arena[base + i] = buf[i]!;
        this.cleanLen[slot] = len;
        this.cleanHash[slot] = hash;
      }
      return null;
    }
    let joined = args[0]!.text;
    for (let i = 1; i < n; i++) joined += ' ' + args[i]!.text;
    const ranges = this.ranges(joined, set.match(joined));
    if (ranges.length === 0) return null;
    const out: KText[] = new Array<KText>(n);
    let off = 0;
    let r = 0;
    let changed = false;
    for (let i = 0; i < n; i++) {
      const a = args[i]!;
      const end = off + a.text.length;
      while (r < ranges.length && ranges[r]![1] <= off) r++;
      let text = '';
      let pos = off;
      for (let k = r; k < ranges.length && ranges[k]![0] < end; k++) {
        const s = Math.max(ranges[k]![0], off);
        const e = Math.min(ranges[k]![1], end);
        if (e <= s) continue;
        text += joined.slice(pos, s) + MASK;
        pos = e;
      }
      if (pos === off) out[i] = a;
      else {
        out[i] = { text: text + joined.slice(pos, end) };
        changed = true;
      }
      off = end + 1;
    }
    if (!changed) return null;
    this.redacted++;
    return out;
  }

  /** One string with its covered parts masked (alert messages, evidence). */
  text(s: string): string {
    if (this.set === null || s === '' || !this.set.test(s)) return s;
    const ranges = this.ranges(s, this.set.match(s));
    let out = '';
    let pos = 0;
    for (const [a, b] of ranges) {
      out += s.slice(pos, a) + MASK;
      pos = b;
    }
    return out + s.slice(pos);
  }

  /** The covered spans of `s` (match minus its groups) of the patterns that hit, merged, sorted. */
  private ranges(s: string, hits: readonly number[]): Array<[number, number]> {
    const spans: Array<[number, number]> = [];
    for (const h of hits) {
      const re = this.res[h]!;
      re.lastIndex = 0;
      for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        const idx = (m as unknown as { indices: Array<[number, number] | undefined> }).indices;
        const [ms, me] = idx[0]!;
        if (me === ms) {
          re.lastIndex = me + 1;
          continue;
        }
        const keep = idx.slice(1).filter((g): g is [number, number] => g !== undefined && g[1] > g[0]).sort((x, y) => x[0] - y[0]);
        let pos = ms;
        for (const [gs, ge] of keep) {
          if (gs > pos) spans.push([pos, gs]);
          if (ge > pos) pos = ge;
        }
        if (me > pos) spans.push([pos, me]);
      }
    }
    spans.sort((x, y) => x[0] - y[0]);
    const merged: Array<[number, number]> = [];
    for (const sp of spans) {
      const last = merged[merged.length - 1];
      if (last !== undefined && sp[0] <= last[1]) last[1] = Math.max(last[1], sp[1]);
      else merged.push([sp[0], sp[1]]);
    }
    return merged;
  }
}
