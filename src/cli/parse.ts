// Option value parsers: a bad value becomes commander's one-line "argument ... is invalid" error.
import { InvalidArgumentError } from 'commander';

export function parseIntArg(what: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`${what} must be a whole number.`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${what} must be between ${min} and ${max}.`);
    return n;
  };
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "10s", "500ms", "2m", "1h", or plain seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('use a number of seconds or a value like 500ms, 10s, 2m, 1h.');
  const ms = Number(m[1]) * UNITS_MS[m[2] ?? 's']!;
  if (!(ms > 0)) throw new InvalidArgumentError('must be greater than zero.');
  return ms;
}

/** Byte sizes: plain bytes or with K/M/G (binary) suffix. */
export function parseBytes(what: string, min: number, max: number) {
  return (v: string): number => {
    const m = /^(\d+)([KMG]i?B?)?$/i.exec(v.trim());
    if (!m) throw new InvalidArgumentError(`${what}: use bytes, or a size like 64K, 4M.`);
    const mult = { k: 1 << 10, m: 1 << 20, g: 1 << 30 }[(m[2]?.[0] ?? '').toLowerCase()] ?? 1;
    const n = Number(m[1]) * mult;
    if (n < min || n > max) throw new InvalidArgumentError(`${what} must be between ${min} and ${max} bytes.`);
    return n;
  };
}

export function collectList(v: string, prev: string[] = []): string[] {
  return prev.concat(v.split(',').map((s) => s.trim()).filter(Boolean));
}
