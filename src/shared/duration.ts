// Durations and byte sizes as people write them in a config file: "500ms", "30s", "5m", "2h",
// "7d" or a number of milliseconds; "64K", "4M", "1G" (binary multiples) or a number of bytes.
// Parsers return null for text they do not understand, so callers word their own errors; the
// formatters produce the shortest exact text the parsers read back (formatX(parseX(s)) ⇄ s).

const DURATION_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];
const MS_PER: Readonly<Record<string, number>> = Object.fromEntries(DURATION_UNITS);

/** Milliseconds from `500ms`, `30s`, `1.5m`, `2h`, `7d`, a number (ms) or a string of digits
 *  (ms). Null when the input is not a duration, is negative, or is not a whole number of ms. */
export function parseDurationMs(v: unknown): number | null {
  let ms: number;
  if (typeof v === 'number') {
    ms = v;
  } else if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(v.trim());
    if (!m) return null;
    ms = Number(m[1]) * MS_PER[m[2] ?? 'ms']!;
    // 1.5s is fine; 1.0005s is not a whole number of milliseconds
    const rounded = Math.round(ms);
    if (Math.abs(ms - rounded) > 1e-6) return null;
    ms = rounded;
  } else {
    return null;
  }
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : null;
}

/** The largest unit that divides `ms` exactly: 604800000 → "7d", 1500 → "1500ms", 0 → "0s". */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, n] of DURATION_UNITS) {
    if (ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['G', 1 << 30],
  ['M', 1 << 20],
  ['K', 1 << 10],
];

/** Bytes from `64K`, `4M`, `1G` (also `4MiB`, `4MB`, `4m`: all binary multiples), a number or a
 *  string of digits. Null unless it is a whole, non-negative number of bytes. */
export function parseSizeBytes(v: unknown): number | null {
  let n: number;
  if (typeof v === 'number') {
    n = v;
  } else if (typeof v === 'string') {
    const m = /^(\d+)\s*(?:([KMGkmg])(?:i?B)?|B)?$/.exec(v.trim());
    if (!m) return null;
    const mult = m[2] === undefined ? 1 : SIZE_UNITS.find(([u]) => u === m[2]!.toUpperCase())![1];
    n = Number(m[1]) * mult;
  } else {
    return null;
  }
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** The largest binary unit that divides `bytes` exactly: 4194304 → "4M", 1000 → "1000". */
export function formatSizeBytes(bytes: number): string {
  if (bytes === 0) return '0';
  for (const [unit, n] of SIZE_UNITS) {
    if (bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}
