// The leaf checks of the config schema (config.ts): each accepts the file's value and turns it
// into the config's form, or rejects it with a reason the loader words with the key and value.
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from './duration.js';

/** A value a leaf check rejects, with the reason; the formatter appends what it got. */
export class Bad {
  constructor(readonly why: string) {}
}

export function leaf<T>(check: (v: unknown) => T | Bad) {
  return z.unknown().transform((v, ctx): T => {
    const r = check(v);
    if (r instanceof Bad) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: r.why });
      return z.NEVER;
    }
    return r;
  });
}

export const integer = (min: number, max: number) =>
  leaf((v) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) return new Bad('expected a whole number');
    if (v < min || v > max) {
      return new Bad(max === Number.MAX_SAFE_INTEGER ? `must be ${min} or more` : `must be between ${min} and ${max}`);
    }
    return v;
  });

export const boolean = () => leaf((v) => (typeof v === 'boolean' ? v : new Bad('expected true or false')));

export const oneOf = <T extends string>(values: readonly T[]) =>
  leaf((v) => ((values as readonly unknown[]).includes(v) ? (v as T) : new Bad(`expected one of ${values.join(', ')}`)));

export const autoBool = () =>
  leaf((v): boolean | 'auto' | Bad => {
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    if (v === 'auto') return 'auto';
    return new Bad('expected auto, true or false');
  });

export const duration = (min: number, max: number, opts: { zeroDisables?: boolean } = {}) =>
  leaf((v) => {
    const ms = parseDurationMs(v);
    if (ms === null) return new Bad('expected a duration like 30s, 5m, 7d');
    if (ms === 0 && opts.zeroDisables) return 0;
    if (ms < min || ms > max) {
      const range = `between ${formatDurationMs(min)} and ${formatDurationMs(max)}`;
      return new Bad(opts.zeroDisables ? `must be 0 (no limit) or ${range}` : `must be ${range}`);
    }
    return ms;
  });

export const size = (min: number, max: number, opts: { powerOfTwo?: boolean } = {}) =>
  leaf((v) => {
    const n = parseSizeBytes(v);
    if (n === null) return new Bad('expected a size like 64K, 4M, 1G');
    if (n < min || n > max) return new Bad(`must be between ${formatSizeBytes(min)} and ${formatSizeBytes(max)}`);
    if (opts.powerOfTwo && (n & (n - 1)) !== 0) return new Bad('must be a power of two (e.g. 4M, 8M, 16M)');
    return n;
  });

export const path = () =>
  leaf((v) => (typeof v === 'string' && isAbsolute(v) ? v : new Bad('expected an absolute path')));

export const optionalPath = () =>
  leaf((v) =>
    v === null ? null : typeof v === 'string' && isAbsolute(v) ? v : new Bad('expected an absolute path or null'),
  );

export const hostname = () =>
  leaf((v) => (typeof v === 'string' && /^[^\s/]+$/.test(v) ? v : new Bad('expected a host name or IP address')));

export const section = <S extends z.ZodRawShape>(shape: S) =>
  z.object(shape, { invalid_type_error: 'expected a mapping of settings' }).strict();
