// The config sections of issue 17 (docs/config.md, docs/alerts.md, docs/otlp.md,
// docs/redaction.md, docs/identity.md): `alerts` (delivery outputs), `export` (OTLP, argv
// redaction) and `identity` (the CRI socket for pod names and images). Same
// rules as config.ts: snake_case in the file, strict keys, every problem reported at once.
import { z } from 'zod';
import { RedactPatternError, checkPatterns } from '../export/redact.js';
import type { AlertOutputConfig, AlertsConfig } from '../export/alerts/types.js';
import type { OtlpConfig } from '../export/otlp/types.js';
import { Bad, boolean, duration, integer, leaf, oneOf, path, optionalPath, section, size } from './config-schema.js';
import type { DeepPartial } from './config.js';

export interface ExportConfig {
  /** user patterns (RE2), applied after the defaults */
  redact: string[];
  /** the built-in patterns (src/export/redact.ts DEFAULT_REDACT_PATTERNS) */
  redactDefaults: boolean;
  /** null: no OTLP export */
  otlp: OtlpConfig | null;
}

export interface IdentityConfig {
  /** the CRI socket: a path, `auto` (the usual sockets, src/host/cri.ts CRI_SOCKETS), or null: off */
  criSocket: string | null;
  /** deadline of each CRI call */
  criTimeoutMs: number;
}

export interface IntegrationsConfig {
  alerts: AlertsConfig;
  export: ExportConfig;
  identity: IdentityConfig;
}

const MS = { s: 1_000, m: 60_000, h: 3_600_000 };

const httpUrl = () =>
  leaf((v) => {
    if (typeof v !== 'string') return new Bad('expected an http:// or https:// URL');
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return new Bad('expected an http:// or https:// URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return new Bad('expected an http:// or https:// URL');
    if (u.username || u.password) return new Bad('credentials do not belong in the URL (use headers or hmac_secret_file)');
    return v;
  });

const common = {
  name: leaf((v) => (typeof v === 'string' && /^[\w.:/@-]{1,200}$/.test(v) ? v : new Bad('expected a name of letters, digits and ._:/@-'))).optional(),
  group_wait: duration(0, MS.m).default('1s'),
  max_batch: integer(1, 1000).default(64),
  rate_limit: integer(0, 1_000_000).default(60),
};

const outputSchema = z.discriminatedUnion(
  'type',
  [
    section({ type: z.literal('alertmanager'), url: httpUrl(), timeout: duration(100, MS.m).default('10s'), resend_interval: duration(MS.s, MS.h).default('1m'), ...common }),
    section({ type: z.literal('webhook'), url: httpUrl(), timeout: duration(100, MS.m).default('10s'), hmac_secret_file: optionalPath().default(null), ...common }),
    section({ type: z.literal('file'), path: path(), max_size: size(4 << 10, 1 << 30).default('10M'), max_files: integer(0, 100).default(5), ...common }),
  ],
  { errorMap: (issue, ctx) => ({ message: issue.code === 'invalid_union_discriminator' ? 'expected alertmanager, webhook or file' : ctx.defaultError }) },
);

const redactPatterns = leaf((v) => {
  if (!Array.isArray(v) || v.some((p) => typeof p !== 'string')) return new Bad('expected a list of RE2 patterns');
  try {
    checkPatterns(v as string[]);
  } catch (e) {
    // the coded error's text, with the index the loader's key path lacks
    if (e instanceof RedactPatternError) return new Bad(`[${e.index}] ${e.message.replace(/^export\.redact\[\d+\]: /, '')} (${e.code})`);
    throw e;
  }
  return v as string[];
});

const headers = leaf((v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return new Bad('expected a mapping of header names to values');
  for (const [k, x] of Object.entries(v)) {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) return new Bad(`${JSON.stringify(k)} is not a header name`);
    if (typeof x !== 'string' || /[\r\n]/.test(x)) return new Bad(`${k}: expected a one-line string`);
  }
  return v as Record<string, string>;
});

export const alertsSection = section({
  node: leaf((v) => (v === null ? null : typeof v === 'string' && v !== '' ? v : new Bad('expected a node name or null (the host name)'))).default(null),
  queue_max: integer(10, 10_000_000).default(10_000),
  retry: section({ initial: duration(10, MS.m).default('1s'), max: duration(100, 24 * MS.h).default('5m') }).default({}),
  outputs: z.array(outputSchema, { invalid_type_error: 'expected a list of outputs' }).default([]),
})
  .superRefine((a, ctx) => {
    const seen = new Set<string>();
    a.outputs.forEach((o, i) => {
      const n = outputName(o);
      if (seen.has(n)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['outputs', i], message: `two outputs named ${n}: give one a distinct name` });
      seen.add(n);
    });
  })
  .default({});

export const exportSection = section({
  redact: redactPatterns.default([]),
  redact_defaults: boolean().default(true),
  otlp: z
    .union([
      z.null(),
      section({
        endpoint: httpUrl(),
        protocol: oneOf(['http/protobuf', 'http/json'] as const).default('http/protobuf'),
        headers: headers.default({}),
        interval: duration(MS.s, MS.h).default('30s'),
        timeout: duration(100, MS.m).default('10s'),
        queue_max: integer(16, 1_000_000).default(2048),
        events: z.array(oneOf(['exec', 'fork', 'exit', 'reap', 'exec_failed'] as const)).default(['exec', 'exit', 'exec_failed']),
      }),
    ])
    .default(null),
}).default({});

export const identitySection = section({
  cri_socket: leaf((v) =>
    v === null || v === 'auto' ? v : typeof v === 'string' && v.startsWith('/') ? v : new Bad('expected auto, an absolute path of a CRI socket, or null (off)'),
  ).default('auto'),
  cri_timeout: duration(100, MS.m).default('2s'),
}).default({});

type FileOutput = z.output<typeof outputSchema>;

function outputName(o: FileOutput): string {
  return o.name ?? `${o.type}:${o.type === 'file' ? o.path : o.url}`;
}

export function integrationsFromFile(f: { alerts: z.output<typeof alertsSection>; export: z.output<typeof exportSection>; identity: z.output<typeof identitySection> }): IntegrationsConfig {
  const outputs = f.alerts.outputs.map((o): AlertOutputConfig => {
    const base = { name: outputName(o), groupWaitMs: o.group_wait, maxBatch: o.max_batch, ratePerMinute: o.rate_limit };
    switch (o.type) {
      case 'alertmanager':
        return { type: o.type, ...base, url: o.url, timeoutMs: o.timeout, resendIntervalMs: o.resend_interval };
      case 'webhook':
        return { type: o.type, ...base, url: o.url, timeoutMs: o.timeout, hmacSecretFile: o.hmac_secret_file };
      case 'file':
        return { type: o.type, ...base, path: o.path, maxBytes: o.max_size, maxFiles: o.max_files };
    }
  });
  const x = f.export.otlp;
  return {
    alerts: { node: f.alerts.node, queueMax: f.alerts.queue_max, retry: { initialMs: f.alerts.retry.initial, maxMs: f.alerts.retry.max }, outputs },
    export: {
      redact: [...f.export.redact],
      redactDefaults: f.export.redact_defaults,
      otlp: x === null ? null : { endpoint: x.endpoint, protocol: x.protocol, headers: { ...x.headers }, intervalMs: x.interval, timeoutMs: x.timeout, queueMax: x.queue_max, events: [...x.events] },
    },
    identity: { criSocket: f.identity.cri_socket, criTimeoutMs: f.identity.cri_timeout },
  };
}

/** The file form (config.ts toFile); `dur`/`bytes` format durations and sizes. */
export function integrationsToFile(c: DeepPartial<IntegrationsConfig>, dur: (ms: number | undefined) => unknown, bytes: (n: number | undefined) => unknown): Record<string, unknown> {
  const a = c.alerts;
  const e = c.export;
  const id = c.identity;
  const outputs = a?.outputs as AlertOutputConfig[] | undefined;
  const otlp = e?.otlp as OtlpConfig | null | undefined;
  return {
    alerts: a && {
      node: a.node,
      queue_max: a.queueMax,
      retry: a.retry && { initial: dur(a.retry.initialMs), max: dur(a.retry.maxMs) },
      outputs: outputs?.map((o) => {
        const base = { name: o.name, group_wait: dur(o.groupWaitMs), max_batch: o.maxBatch, rate_limit: o.ratePerMinute };
        switch (o.type) {
          case 'alertmanager':
            return { type: o.type, url: o.url, timeout: dur(o.timeoutMs), resend_interval: dur(o.resendIntervalMs), ...base };
          case 'webhook':
            return { type: o.type, url: o.url, timeout: dur(o.timeoutMs), hmac_secret_file: o.hmacSecretFile, ...base };
          case 'file':
            return { type: o.type, path: o.path, max_size: bytes(o.maxBytes), max_files: o.maxFiles, ...base };
        }
      }),
    },
    export: e && {
      redact: e.redact,
      redact_defaults: e.redactDefaults,
      otlp:
        otlp === undefined || otlp === null
          ? otlp
          : { endpoint: otlp.endpoint, protocol: otlp.protocol, headers: otlp.headers, interval: dur(otlp.intervalMs), timeout: dur(otlp.timeoutMs), queue_max: otlp.queueMax, events: otlp.events },
    },
    identity: id && { cri_socket: id.criSocket, cri_timeout: dur(id.criTimeoutMs) },
  };
}
