// The `fleet` section (issue 14, docs/fleet.md, docs/config.md): fleet state on etcd. Same rules
// as config.ts: snake_case in the file, strict keys, every problem reported at once. Node names
// and labels end up in etcd keys, so their alphabet is narrow (src/fleet/keys.ts).
import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { Bad, duration, leaf, optionalPath, path, section } from './config-schema.js';

const MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The `fleet` section; null in AgentConfig without one. */
export interface FleetConfig {
  /** etcd member URLs, http:// or https:// */
  endpoints: string[];
  node: string;
  labels: Record<string, string>;
  /** ends with '/' */
  prefix: string;
  leaseTtlMs: number;
  /** observed/<node> is written when it changed, at most once per this */
  observedIntervalMs: number;
  /** fleet-level check: a node a part's newest version has been out longer than this */
  skewBoundMs: number;
  /** linearizable read with a deadline every this long; three in a row missing: local-only */
  probeIntervalMs: number;
  /** PEM files; null: plain http, or https with the system roots */
  tls: { ca: string | null; cert: string | null; key: string | null } | null;
  /** ed25519 public keys (PEM files): bundles signed by one of them are applied, others rejected */
  trustedKeys: string[];
}

const FLEET_NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
export const fleetSection = section({
  endpoints: z
    .array(
      leaf((v) =>
        typeof v === 'string' && /^https?:\/\/[^\s/]+\/?$/.test(v) ? v.replace(/\/$/, '') : new Bad('expected an etcd member URL like http://10.0.0.1:2379'),
      ),
      { invalid_type_error: 'expected a list of etcd member URLs' },
    )
    .min(1, 'needs at least one etcd member URL'),
  node: leaf((v) => (typeof v === 'string' && FLEET_NODE_RE.test(v) ? v : new Bad("expected a node name: letters, digits, '.', '_' or '-'"))).default(() => osHostname()),
  labels: z
    .record(
      leaf((v) => (typeof v === 'string' && /^[A-Za-z0-9._-]{0,63}$/.test(v) ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : new Bad("expected a label value: letters, digits, '.', '_' or '-'"))),
      { invalid_type_error: 'expected a mapping of labels, e.g. { role: web, zone: a }' },
    )
    .superRefine((m, ctx) => {
      for (const k of Object.keys(m)) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(k)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [k], message: "label name: letters, digits, '.', '_' or '-'" });
      }
    })
    .default({}),
  prefix: leaf((v) => (typeof v === 'string' && /^\/([\x21-\x7e]*\/)?$/.test(v) ? v : new Bad("expected a key prefix that starts and ends with '/', e.g. /patrol/"))).default('/patrol/'),
  lease_ttl: duration(2 * MS.s, MS.h)
    .refine((ms) => typeof ms !== 'number' || ms % MS.s === 0, 'must be whole seconds (etcd leases count seconds)')
    .default('10s'),
  observed_interval: duration(MS.s, MS.h).default('10s'),
  skew_bound: duration(0, 30 * MS.d).default('1h'),
  probe_interval: duration(200, 10 * MS.s).default('1s'),
  tls: section({ ca: optionalPath().default(null), cert: optionalPath().default(null), key: optionalPath().default(null) })
    .superRefine((t, ctx) => {
      if ((t.cert === null) !== (t.key === null)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [t.cert === null ? 'cert' : 'key'], message: 'cert and key go together' });
    })
    .nullable()
    .default(null),
  trusted_keys: z.array(path(), { invalid_type_error: 'expected a list of paths to ed25519 public keys (PEM)' }).default([]),
}).superRefine((f, ctx) => {
  // refinements run over values that already failed (zod 3): judge only well-formed ones
  if (!f.endpoints.every((e) => typeof e === 'string')) return;
  const https = f.endpoints.filter((e) => e.startsWith('https://')).length;
  if (https !== 0 && https !== f.endpoints.length) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['endpoints'], message: 'mixes http:// and https://: use one scheme for all members' });
  if (f.tls !== null && https === 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tls'], message: 'set, but the endpoints are http://: use https:// URLs' });
});

export function fleetFromFile(f: z.output<typeof fleetSection> | null): FleetConfig | null {
  if (f === null) return null;
  return {
    endpoints: f.endpoints,
    node: f.node,
    labels: f.labels,
    prefix: f.prefix,
    leaseTtlMs: f.lease_ttl,
    observedIntervalMs: f.observed_interval,
    skewBoundMs: f.skew_bound,
    probeIntervalMs: f.probe_interval,
    tls: f.tls,
    trustedKeys: f.trusted_keys,
  };
}

/** The file form; undefined (no section) for null, so --print-config shows none. */
export function fleetToFile(fl: Partial<FleetConfig> | null | undefined, dur: (ms: number | undefined) => unknown): Record<string, unknown> | undefined {
  if (!fl) return undefined;
  return {
    endpoints: fl.endpoints,
    node: fl.node,
    labels: fl.labels,
    prefix: fl.prefix,
    lease_ttl: dur(fl.leaseTtlMs),
    observed_interval: dur(fl.observedIntervalMs),
    skew_bound: dur(fl.skewBoundMs),
    probe_interval: dur(fl.probeIntervalMs),
    tls: fl.tls,
    trusted_keys: fl.trustedKeys,
  };
}
