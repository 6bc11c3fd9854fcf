// Units and dimensions. A quantity is a number in base units (bytes, seconds, fraction for %)
// with a dimension: exponents of bytes and seconds, plus a ratio flag for percentages. The
// checker compares dimensions; the evaluator only ever sees base units.
//
// KB/MB/GB/TB are powers of 1024, as in /proc/meminfo and df -h; KiB... are accepted as synonyms.

export interface Dim {
  /** exponent of bytes */
  b: number;
  /** exponent of seconds */
  t: number;
  /** exponent of "percent" (a fraction of a whole); 90% is 0.9 with p = 1 */
  p: number;
}

export const NONE: Dim = { b: 0, t: 0, p: 0 };
export const BYTES: Dim = { b: 1, t: 0, p: 0 };
export const TIME: Dim = { b: 0, t: 1, p: 0 };
export const PERCENT: Dim = { b: 0, t: 0, p: 1 };
export const PER_SECOND: Dim = { b: 0, t: -1, p: 0 };
export const BYTES_PER_SECOND: Dim = { b: 1, t: -1, p: 0 };

export const UNITS: Record<string, { factor: number; dim: Dim }> = {
  '%': { factor: 0.01, dim: PERCENT },
  B: { factor: 1, dim: BYTES },
  KB: { factor: 1024, dim: BYTES },
  MB: { factor: 1024 ** 2, dim: BYTES },
  GB: { factor: 1024 ** 3, dim: BYTES },
  TB: { factor: 1024 ** 4, dim: BYTES },
  KiB: { factor: 1024, dim: BYTES },
  MiB: { factor: 1024 ** 2, dim: BYTES },
  GiB: { factor: 1024 ** 3, dim: BYTES },
  TiB: { factor: 1024 ** 4, dim: BYTES },
  ms: { factor: 0.001, dim: TIME },
  s: { factor: 1, dim: TIME },
  m: { factor: 60, dim: TIME },
  h: { factor: 3600, dim: TIME },
  d: { factor: 86400, dim: TIME },
};

/** `/s`, `/m`, `/h` after a literal: per second, minute, hour. */
export const RATE_SUFFIXES = new Map<string, number>([
  ['s', 1],
  ['m', 60],
  ['h', 3600],
]);

export const dimEq = (a: Dim, b: Dim): boolean => a.b === b.b && a.t === b.t && a.p === b.p;
export const dimMul = (a: Dim, b: Dim): Dim => ({ b: a.b + b.b, t: a.t + b.t, p: a.p + b.p });
export const dimDiv = (a: Dim, b: Dim): Dim => ({ b: a.b - b.b, t: a.t - b.t, p: a.p - b.p });
export const isNone = (d: Dim): boolean => dimEq(d, NONE);

/** A literal's value in base units and its dimension. */
export function literal(value: number, unit: string | null, rate: string | null): { value: number; dim: Dim } {
  let v = value;
  let dim = NONE;
  if (unit !== null) {
    const u = UNITS[unit];
    if (u !== undefined) {
      v *= u.factor;
      dim = u.dim;
    }
  }
  if (rate !== null) {
    v /= RATE_SUFFIXES.get(rate) ?? 1;
    dim = dimDiv(dim, TIME);
  }
  return { value: v, dim };
}

/** Human name of a dimension: "percent", "bytes", "duration", "bytes/s", "count/s", "number". */
export function dimName(d: Dim): string {
  if (isNone(d)) return 'a plain number';
  if (dimEq(d, PERCENT)) return 'a percentage';
  if (dimEq(d, BYTES)) return 'bytes';
  if (dimEq(d, TIME)) return 'a duration';
  if (dimEq(d, PER_SECOND)) return 'a rate (per second)';
  if (dimEq(d, BYTES_PER_SECOND)) return 'a byte rate (bytes/s)';
  const parts: string[] = [];
  if (d.b) parts.push(`bytes^${d.b}`);
  if (d.t) parts.push(`s^${d.t}`);
  if (d.p) parts.push(`%^${d.p}`);
  return parts.join('·');
}

/** An example literal of a dimension, for hints. */
export function dimExample(d: Dim): string {
  if (dimEq(d, PERCENT)) return '90%';
  if (dimEq(d, BYTES)) return '512MB';
  if (dimEq(d, TIME)) return '5m';
  if (dimEq(d, PER_SECOND)) return '10/s';
  if (dimEq(d, BYTES_PER_SECOND)) return '10MB/s';
  return '5';
}

/** Formats a value in base units for people: 0.912 % → "91.2%", 1536 B → "1.5KB". */
export function formatQuantity(v: number, d: Dim): string {
  const r = (x: number) => String(Math.round(x * 100) / 100);
  if (!Number.isFinite(v)) return String(v);
  if (dimEq(d, PERCENT)) return `${r(v * 100)}%`;
  if (dimEq(d, BYTES) || dimEq(d, BYTES_PER_SECOND)) {
    const suffix = dimEq(d, BYTES) ? '' : '/s';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let x = v;
    let k = 0;
    while (Math.abs(x) >= 1024 && k < units.length - 1) {
      x /= 1024;
      k++;
    }
    return `${r(x)}${units[k]}${suffix}`;
  }
  if (dimEq(d, TIME)) {
    const a = Math.abs(v);
    if (a >= 86400) return `${r(v / 86400)}d`;
    if (a >= 3600) return `${r(v / 3600)}h`;
    if (a >= 60) return `${r(v / 60)}m`;
    if (a >= 1 || a === 0) return `${r(v)}s`;
    return `${r(v * 1000)}ms`;
  }
  if (dimEq(d, PER_SECOND)) return `${r(v)}/s`;
  // other rates (a trend's slope: %/s, bytes/s per second): the quantity, per second
  if (d.t < 0) {
    const base = { ...d, t: d.t + 1 };
    // a slow trend reads better per minute or per hour (1%/h, not 0%/s)
    for (const [k, u] of [[1, 's'], [60, 'm'], [3600, 'h']] as const) {
      const text = formatQuantity(v * k, base);
      if (v === 0 || !/^-?0(?![.\d])/.test(text) || u === 'h') return `${text}/${u}`;
    }
  }
  return r(v);
}
