// Versions of what the agent runs (config, rules, checks, sensors): the sha256 of a canonical
// form, so the same content gives the same version whatever the key order, file order or
// formatting it was read in.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; undefined members are left out (as JSON does),
 *  bigints are written as decimal strings. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'bigint') return JSON.stringify(v.toString());
    return JSON.stringify(v) ?? 'null';
  }
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (v instanceof Map) return canonicalJson(Object.fromEntries(v));
  if (v instanceof Set) return canonicalJson([...v]);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The version of a set of named parts: sha256 over the parts sorted by name, each as
 *  name NUL content NUL, so renaming, adding or removing a part changes it. */
export function versionOf(parts: Iterable<readonly [string, string | Buffer]>): string {
  const h = createHash('sha256');
  for (const [name, content] of [...parts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    h.update(name);
    h.update('\0');
    h.update(content);
    h.update('\0');
  }
  return h.digest('hex');
}
