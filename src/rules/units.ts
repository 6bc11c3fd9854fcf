// Typed values for rule fields: captures and literals are converted once, at match or load time.
// bytes are numbers of bytes, durations numbers of milliseconds.

export type FieldType = 'string' | 'int' | 'number' | 'bytes' | 'duration' | 'bool';
export const FIELD_TYPES: readonly FieldType[] = ['string', 'int', 'number', 'bytes', 'duration', 'bool'];

export type Value = string | number | boolean | null | readonly string[];

const SIZE: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30, t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40 };
const DUR: Record<string, number> = { '': 1, ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "64M", "2 GiB", "1234 kB", "1234" → bytes (binary multiples, as the kernel prints them). */
export function parseBytes(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) return null;
  const mult = SIZE[m[2]!.toLowerCase()];
  return mult === undefined ? null : Math.round(Number(m[1]) * mult);
}

/** "500ms", "5m", "1.5s", "30" (ms) → milliseconds. */
export function parseDuration(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)?\s*$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * DUR[m[2] ?? '']!;
}

/** A captured string as `type`; null when it does not parse (the field is then absent). */
export function convert(raw: string, type: FieldType): Value {
  switch (type) {
    case 'string':
      return raw;
    case 'int': {
      const t = raw.trim();
      if (/^[-+]?\d+$/.test(t)) return Number(t);
      if (/^0x[0-9a-fA-F]+$/.test(t)) return Number.parseInt(t.slice(2), 16);
      return null;
    }
    case 'number': {
      const n = Number(raw.trim());
      return raw.trim() !== '' && Number.isFinite(n) ? n : null;
    }
    case 'bytes':
      return parseBytes(raw);
    case 'duration':
      return parseDuration(raw);
    case 'bool':
      return /^(1|true|yes|on)$/i.test(raw.trim()) ? true : /^(0|false|no|off)$/i.test(raw.trim()) ? false : null;
  }
}

/** A YAML literal as `type`, for comparisons; undefined when it does not fit. */
export function literal(v: unknown, type: FieldType): Value | undefined {
  if (type === 'string') return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  if (type === 'bool') return typeof v === 'boolean' ? v : undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const c = convert(v, type);
  return c === null ? undefined : c;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${x} B` : `${x >= 100 ? x.toFixed(0) : x.toFixed(1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function formatValue(v: Value | undefined, type: FieldType | undefined): string {
  if (v === null || v === undefined) return '?';
  if (Array.isArray(v)) return v.join(' ← ');
  if (typeof v === 'number' && type === 'bytes') return formatBytes(v);
  if (typeof v === 'number' && type === 'duration') return formatMs(v);
  return String(v);
}
