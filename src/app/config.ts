// Agent configuration: a YAML or JSON file (chosen by extension) in snake_case, validated by a
// strict zod schema, with defaults for every key; command-line flags override the file.
//
// Every problem is reported at once, one per line, as `<source>: <key.path>: <what is wrong>`,
// where <source> is the file (or "command line" for a bad override). Keys documented in
// docs/config.md; packaging/patrol.example.yaml lists every default.
//
// The TypeScript form (AgentConfig) is camelCase and carries units in names where the file has
// suffixed strings: `ring_size: 4M` → `ringBytes: 4194304`, `flush_interval: 200ms` →
// `flushIntervalMs: 200`. `lifecycle` and `state` use LifecycleConfig's and StateConfig's names
// so they can be handed to the pipelines as they are, and `store` has the shape Store.open takes.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { PatrolError } from '../shared/errors.js';
import { canonicalJson, sha256Hex } from '../shared/canonical.js';
import { formatDurationMs, formatSizeBytes } from './duration.js';
import { Bad, autoBool, boolean, duration, hostname, integer, leaf, oneOf, optionalPath, path, section, size } from './config-schema.js';
import { DELIVERY_POLICIES, type LifecycleConfig } from './lifecycle.js';
import { DEFAULT_DEAD_MAX, MIN_DEAD_MAX } from '../process/index.js';
import type { StateConfig } from './states.js';
import { alertsSection, exportSection, identitySection, integrationsFromFile, integrationsToFile, type IntegrationsConfig } from './config-integrations.js';
import { fleetFromFile, fleetSection, fleetToFile, type FleetConfig } from './config-fleet.js';

export type { FleetConfig } from './config-fleet.js';

export const DEFAULT_CONFIG_PATH = '/etc/patrol/patrol.yaml';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** auto: pretty when the log goes to a terminal, else JSON lines */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `alerts`, `export` and `identity` (issue 17) are declared in config-integrations.ts. */
export interface AgentConfig extends IntegrationsConfig {
  log: { level: LogLevel; format: LogFormat };
  lifecycle: Pick<
    LifecycleConfig,
    'argsCap' | 'filenameCap' | 'ringBytes' | 'emitThreads' | 'execFailed' | 'tableMaxEntries' | 'tableGraceMs' | 'tableDeadMax' | 'queueBytes' | 'consumerRealtimePriority' | 'batchDelayUs' | 'delivery' | 'deliveryIntervalMs' | 'unwatchedIntervalMs'
  >;
  state: Pick<StateConfig, 'dThresholdMs' | 'budgetPerSec' | 'sweepMs'>;
  store: {
    path: string;
    flushIntervalMs: number;
    /** 0 disables a limit */
    retention: { maxAgeMs: number; maxRows: number };
  };
  api: {
    socket: string;
    /** tokenFile: null only while TCP is disabled */
    tcp: { enabled: boolean; host: string; port: number; tokenFile: string | null };
  };
  /** bpfDir: the directory of the sensors' objects (lifecycle.bpf.o, state.bpf.o); null = the
   *  ones built with patrol. A reload loads them again when they changed there. */
  agent: { lockFile: string; pinDir: string; bpfDir: string | null };
  /** attribution: rule file or directory (null = the built-in pack in rules/), kernel log on/off */
  rules: { enabled: boolean; dir: string | null; kmsg: boolean; batchIntervalMs: number };
  /** inspection checks (docs/dsl.md); dir null: none */
  checks: { dir: string | null; concurrency: number; retention: { maxAgeMs: number; maxRows: number } };
  metrics: MetricsConfig;
  /** fleet state on etcd (docs/fleet.md); null: no fleet section, the agent runs alone */
  fleet: FleetConfig | null;
}

/** Resource windows (issue 5): the live sweep, windows, and the Prometheus listener. */
export interface MetricsConfig {
  enabled: boolean;
  sweepMs: number;
  /** auto: the BPF task iterator, else /proc */
  source: 'auto' | 'bpf' | 'proc';
  windowsMs: number[];
  maxProcesses: number;
  /** exited processes kept individually; beyond, aggregated by comm and cgroup */
  maxExited: number;
  cgroupsMax: number;
  prometheus: { enabled: boolean; host: string; port: number; topN: number; windowMs: number };
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface LoadConfigOptions {
  /** default DEFAULT_CONFIG_PATH */
  path?: string;
  /** values that win over the file (flags); undefined leaves are ignored */
  overrides?: DeepPartial<AgentConfig>;
  /** a missing file is an error; default: true when `path` was given, false for the default path */
  requireFile?: boolean;
  /** names the overrides in error messages (default "command line") */
  overridesSource?: string;
  /** a layer over everything else (file form), read at each load: the fleet bundle the agent
   *  runs (docs/fleet.md, "Applying a bundle"); null: none */
  overlay?: () => ConfigOverlay | null;
}

/** A configuration layer in the file form, named in error messages by `source`. */
export interface ConfigOverlay {
  source: string;
  values: Record<string, unknown>;
}

/** Every problem found, one per line. `problems` holds the same lines. */
export class ConfigError extends PatrolError {
  constructor(readonly problems: readonly string[]) {
    super('E_CONFIG', problems.join('\n'));
  }
}

// ------------------------------------------------------------------ schema (file form)

// the leaf checks (Bad, leaf, integer, duration, ...) live in config-schema.ts

const tcpSection = section({
  enabled: boolean().default(false),
  host: hostname().default('127.0.0.1'),
  port: integer(0, 65535).default(9465),
  token_file: optionalPath().default('/etc/patrol/token'),
}).superRefine((t, ctx) => {
  if (t.enabled && t.token_file === null) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['token_file'],
      message: 'required when api.tcp.enabled is true (TCP clients must present the token)',
    });
  }
});

const MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const FileSchema = section({
  log: section({
    level: oneOf(LOG_LEVELS).default('info'),
    format: oneOf(LOG_FORMATS).default('auto'),
  }).default({}),
  lifecycle: section({
    args_cap: integer(64, 32768).default(4096),
    filename_cap: integer(64, 4096).default(1024),
    ring_size: size(64 << 10, 1 << 30, { powerOfTwo: true }).default('4M'),
    threads: boolean().default(false),
    exec_failed: autoBool().default('auto'),
    table_max_entries: integer(1024, 16 << 20).default(65536),
    table_grace: duration(0, MS.h).default('30s'),
    table_dead_max: integer(MIN_DEAD_MAX, 16 << 20).default(DEFAULT_DEAD_MAX),
    delivery: oneOf(DELIVERY_POLICIES).default('efficient'),
    delivery_interval: duration(1, 1000).default('15ms'),
    unwatched_interval: duration(0, 10 * MS.s).default('1s'),
    queue_size: size(1 << 20, 1 << 30).default('16M'),
    realtime_priority: integer(0, 99).default(0),
    batch_delay_us: leaf((v): number | 'auto' | Bad => {
      if (v === 'auto') return 'auto';
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100_000) return v;
      return new Bad('expected auto or microseconds, 0..100000');
    }).default('auto'),
  }).default({}),
  state: section({
    d_threshold: duration(10, 10 * MS.m).default('1s'),
    budget_per_sec: integer(1, 1_000_000).default(2000),
    sweep_interval: duration(10, 10 * MS.s).default('2s'),
  }).default({}),
  store: section({
    path: path().default('/var/lib/patrol/patrol.db'),
    flush_interval: duration(10, 10 * MS.s).default('1s'),
    retention: section({
      max_age: duration(MS.m, 3650 * MS.d, { zeroDisables: true }).default('7d'),
      max_rows: integer(0, Number.MAX_SAFE_INTEGER).default(1_000_000),
    }).default({}),
  }).default({}),
  api: section({
    socket: path().default('/run/patrol/patrol.sock'),
    tcp: tcpSection.default({}),
  }).default({}),
  agent: section({
    lock_file: path().default('/run/patrol/patrol.pid'),
    pin_dir: path().default('/sys/fs/bpf/patrol'),
    bpf_dir: optionalPath().default(null),
  }).default({}),
  rules: section({
    enabled: boolean().default(true),
    dir: optionalPath().default(null),
    kmsg: boolean().default(true),
    batch_interval: duration(0, 1000).default('250ms'),
  }).default({}),
  checks: section({
    dir: optionalPath().default(null),
    concurrency: integer(1, 64).default(4),
    retention: section({
      max_age: duration(MS.m, 3650 * MS.d, { zeroDisables: true }).default('30d'),
      max_rows: integer(0, Number.MAX_SAFE_INTEGER).default(500_000),
    }).default({}),
  }).default({}),
  metrics: section({
    enabled: boolean().default(true),
    sweep_interval: duration(100, MS.m).default('1s'),
    source: oneOf(['auto', 'bpf', 'proc'] as const).default('auto'),
    windows: z
      .array(duration(MS.s, MS.h), { invalid_type_error: 'expected a list of durations, e.g. [10s, 1m, 5m]' })
      .min(1, 'needs at least one window')
      .max(8, 'at most 8 windows')
      .default(['10s', '1m', '5m']),
    max_processes: integer(64, 1_000_000).default(10_000),
    max_exited: integer(64, 1_000_000).default(10_000),
    cgroups_max: integer(1, 100_000).default(256),
    prometheus: section({
      enabled: boolean().default(true),
      host: hostname().default('127.0.0.1'),
      port: integer(0, 65535).default(9464),
      top_n: integer(0, 1000).default(20),
      window: duration(MS.s, MS.h).default('1m'),
    }).default({}),
  })
    .superRefine((m, ctx) => {
      if (m.windows.length > 0 && m.prometheus.window > Math.max(...m.windows)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['prometheus', 'window'], message: 'must not be longer than the longest of metrics.windows' });
      }
    })
    .default({}),
  fleet: fleetSection.nullable().default(null),
  alerts: alertsSection,
  export: exportSection,
  identity: identitySection,
});

type FileConfig = z.output<typeof FileSchema>;

function fromFile(f: FileConfig): AgentConfig {
  return {
    log: { level: f.log.level, format: f.log.format },
    lifecycle: {
      argsCap: f.lifecycle.args_cap,
      filenameCap: f.lifecycle.filename_cap,
      ringBytes: f.lifecycle.ring_size,
      emitThreads: f.lifecycle.threads,
      execFailed: f.lifecycle.exec_failed,
      tableMaxEntries: f.lifecycle.table_max_entries,
      tableGraceMs: f.lifecycle.table_grace,
      tableDeadMax: f.lifecycle.table_dead_max,
      queueBytes: f.lifecycle.queue_size,
      consumerRealtimePriority: f.lifecycle.realtime_priority,
      batchDelayUs: f.lifecycle.batch_delay_us,
      delivery: f.lifecycle.delivery,
      deliveryIntervalMs: f.lifecycle.delivery_interval,
      unwatchedIntervalMs: f.lifecycle.unwatched_interval,
    },
    state: {
      dThresholdMs: f.state.d_threshold,
      budgetPerSec: f.state.budget_per_sec,
      sweepMs: f.state.sweep_interval,
    },
    store: {
      path: f.store.path,
      flushIntervalMs: f.store.flush_interval,
      retention: { maxAgeMs: f.store.retention.max_age, maxRows: f.store.retention.max_rows },
    },
    api: {
      socket: f.api.socket,
      tcp: { enabled: f.api.tcp.enabled, host: f.api.tcp.host, port: f.api.tcp.port, tokenFile: f.api.tcp.token_file },
    },
    agent: { lockFile: f.agent.lock_file, pinDir: f.agent.pin_dir, bpfDir: f.agent.bpf_dir },
    rules: { enabled: f.rules.enabled, dir: f.rules.dir, kmsg: f.rules.kmsg, batchIntervalMs: f.rules.batch_interval },
    checks: {
      dir: f.checks.dir,
      concurrency: f.checks.concurrency,
      retention: { maxAgeMs: f.checks.retention.max_age, maxRows: f.checks.retention.max_rows },
    },
    metrics: {
      enabled: f.metrics.enabled,
      sweepMs: f.metrics.sweep_interval,
      source: f.metrics.source,
      windowsMs: [...f.metrics.windows].sort((a, b) => a - b),
      maxProcesses: f.metrics.max_processes,
      maxExited: f.metrics.max_exited,
      cgroupsMax: f.metrics.cgroups_max,
      prometheus: {
        enabled: f.metrics.prometheus.enabled,
        host: f.metrics.prometheus.host,
        port: f.metrics.prometheus.port,
        topN: f.metrics.prometheus.top_n,
        windowMs: f.metrics.prometheus.window,
      },
    },
    fleet: fleetFromFile(f.fleet),
    ...integrationsFromFile(f),
  };
}

/** The file form of a (partial) config. `human`: durations and sizes as text ("7d", "4M"). */
function toFile(c: DeepPartial<AgentConfig>, human: boolean): Record<string, unknown> {
  const dur = (ms: number | undefined) => (ms === undefined || !human ? ms : formatDurationMs(ms));
  const bytes = (n: number | undefined) => (n === undefined || !human ? n : formatSizeBytes(n));
  const { log, lifecycle: lc, state, store, api, agent, rules, checks, metrics: mx, fleet: fl } = c;
  return dropUndefined({
    log: log && { level: log.level, format: log.format },
    lifecycle: lc && {
      args_cap: lc.argsCap,
      filename_cap: lc.filenameCap,
      ring_size: bytes(lc.ringBytes),
      threads: lc.emitThreads,
      exec_failed: lc.execFailed,
      table_max_entries: lc.tableMaxEntries,
      table_grace: dur(lc.tableGraceMs),
      table_dead_max: lc.tableDeadMax,
      queue_size: bytes(lc.queueBytes),
      realtime_priority: lc.consumerRealtimePriority,
      batch_delay_us: lc.batchDelayUs,
      delivery: lc.delivery,
      delivery_interval: dur(lc.deliveryIntervalMs),
      unwatched_interval: dur(lc.unwatchedIntervalMs),
    },
    state: state && {
      d_threshold: dur(state.dThresholdMs),
      budget_per_sec: state.budgetPerSec,
      sweep_interval: dur(state.sweepMs),
    },
    store: store && {
      path: store.path,
      flush_interval: dur(store.flushIntervalMs),
      retention: store.retention && { max_age: dur(store.retention.maxAgeMs), max_rows: store.retention.maxRows },
    },
    api: api && {
      socket: api.socket,
      tcp: api.tcp && { enabled: api.tcp.enabled, host: api.tcp.host, port: api.tcp.port, token_file: api.tcp.tokenFile },
    },
    agent: agent && { lock_file: agent.lockFile, pin_dir: agent.pinDir, bpf_dir: agent.bpfDir },
    rules: rules && { enabled: rules.enabled, dir: rules.dir, kmsg: rules.kmsg, batch_interval: dur(rules.batchIntervalMs) },
    checks: checks && {
      dir: checks.dir,
      concurrency: checks.concurrency,
      retention: checks.retention && { max_age: dur(checks.retention.maxAgeMs), max_rows: checks.retention.maxRows },
    },
    metrics: mx && {
      enabled: mx.enabled,
      sweep_interval: dur(mx.sweepMs),
      source: mx.source,
      windows: mx.windowsMs?.map((w) => dur(w)),
      max_processes: mx.maxProcesses,
      max_exited: mx.maxExited,
      cgroups_max: mx.cgroupsMax,
      prometheus: mx.prometheus && {
        enabled: mx.prometheus.enabled,
        host: mx.prometheus.host,
        port: mx.prometheus.port,
        top_n: mx.prometheus.topN,
        window: dur(mx.prometheus.windowMs),
      },
    },
    fleet: fleetToFile(fl, dur),
    ...integrationsToFile(c, dur, bytes),
  }) as Record<string, unknown>;
}

// ------------------------------------------------------------------ helpers

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** Removes undefined leaves and the objects they leave empty (null is kept: it is a value). */
function dropUndefined(v: unknown): unknown {
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const y = dropUndefined(x);
    if (y === undefined || (isPlainObject(y) && Object.keys(y).length === 0)) continue;
    out[k] = y;
  }
  return out;
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

function getPath(v: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let cur = v;
  for (const k of path) {
    if (Array.isArray(cur) && typeof k === 'number' && k < cur.length) {
      cur = cur[k] as unknown;
      continue;
    }
    if (!isPlainObject(cur) || !Object.hasOwn(cur, k as string)) return { found: false, value: undefined };
    cur = cur[k as string];
  }
  return { found: true, value: cur };
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let x = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) x = Math.min(x, d[i - 2]![j - 2]! + 1);
      d[i]![j] = x;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key an unknown one most likely meant: same key in snake_case (argsCap, args-cap),
 *  else the nearest within a third of its length (at least 1 edit). */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const norm = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
  if (known.includes(norm)) return norm;
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(norm.length / 3)) + 1;
  for (const k of known) {
    const dist = editDistance(norm, k);
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  return best;
}

/** Keys of the object schema found at `path` (through defaults and refinements). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let s: z.ZodTypeAny = FileSchema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodEffects) t = t._def.schema;
      else if (t instanceof z.ZodNullable || t instanceof z.ZodOptional) t = t._def.innerType;
      else return t;
    }
  };
  for (const k of path) {
    s = unwrap(s);
    if (!(s instanceof z.ZodObject)) return [];
    const next = (s.shape as Record<string, z.ZodTypeAny>)[k as string];
    if (next === undefined) return [];
    s = next;
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

function show(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'a mapping';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

// ------------------------------------------------------------------ reading the file

const EXTENSIONS = ['.yaml', '.yml', '.json'];

function parseFileText(file: string, text: string, json: boolean): unknown {
  if (json) {
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      const msg = (e as Error).message;
      let at = '';
      const pos = /at position (\d+)/.exec(msg);
      if (pos) {
        const before = text.slice(0, Number(pos[1]));
        const line = before.split('\n').length;
        at = `:${line}:${before.length - before.lastIndexOf('\n')}`;
      }
      const what = msg.replace(/\s*in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '');
      throw new ConfigError([`${file}${at}: invalid JSON: ${what}`]);
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `${file}:${line}:${col}: ${e.message}`;
      }),
    );
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}

function readConfigFile(file: string, required: boolean): unknown {
  const ext = extname(file).toLowerCase();
  if (!EXTENSIONS.includes(ext)) {
    throw new ConfigError([`${file}: unsupported file type "${ext || '(none)'}": use .yaml, .yml or .json`]);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && !required) return undefined;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EISDIR'
            ? 'is a directory'
            : err.message;
    throw new ConfigError([`${file}: cannot read: ${why}`]);
  }
  const data = parseFileText(file, text, ext === '.json');
  if (data === null || data === undefined) return {}; // empty file: all defaults
  if (!isPlainObject(data)) throw new ConfigError([`${file}: expected a mapping of settings at the top level (got ${show(data)})`]);
  return data;
}

// ------------------------------------------------------------------ public API

/** Validates the file-form input; throws ConfigError listing every problem. */
function validate(input: unknown, sourceOf: (path: readonly PropertyKey[]) => string): AgentConfig {
  const r = FileSchema.safeParse(input);
  if (r.success) return fromFile(r.data);
  const lines: string[] = [];
  for (const issue of r.error.issues) {
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      const known = knownKeysAt(issue.path);
      for (const key of issue.keys) {
        const guess = suggestKey(key, known);
        const hint = guess !== undefined ? `did you mean ${guess}?` : `known keys: ${known.join(', ')}`;
        const p = [...issue.path, key];
        lines.push(`${sourceOf(p)}: ${p.join('.')}: unknown key (${hint})`);
      }
      continue;
    }
    const got = getPath(input, issue.path);
    const suffix = got.found ? ` (got ${show(got.value)})` : '';
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    lines.push(`${sourceOf(issue.path)}: ${where}${issue.message}${suffix}`);
  }
  throw new ConfigError(lines);
}

/** Loads the agent configuration: defaults ← file ← overrides. Throws ConfigError. */
export function loadConfig(opts: LoadConfigOptions = {}): AgentConfig {
  const file = opts.path ?? DEFAULT_CONFIG_PATH;
  const required = opts.requireFile ?? opts.path !== undefined;
  const fromDisk = readConfigFile(file, required);
  const over = opts.overrides === undefined ? {} : toFile(opts.overrides, false);
  const overSource = opts.overridesSource ?? 'command line';
  const layer = opts.overlay?.() ?? null;
  const input = deepMerge(deepMerge(fromDisk ?? {}, over), layer?.values ?? {});
  return validate(input, (p) => (layer && getPath(layer.values, p).found ? layer.source : getPath(over, p).found || fromDisk === undefined ? overSource : file));
}

/** The built-in defaults (what an empty file gives). */
export function defaultConfig(): AgentConfig {
  return validate({}, () => 'defaults');
}

/** The effective configuration in the file format (snake_case, durations and sizes as text), for
 *  `patrol agent --print-config`; loading the output gives the same configuration back. */
export function configToYaml(cfg: AgentConfig): string {
  return `# patrol agent configuration (effective values; keys: docs/config.md)\n${stringify(toFile(cfg, true), { lineWidth: 0 })}`;
}

// ------------------------------------------------------------------ reload support

/** The top-level sections, in the order a reload reports them. */
export const CONFIG_SECTIONS = ['log', 'lifecycle', 'state', 'store', 'api', 'agent', 'rules', 'checks', 'metrics', 'alerts', 'export', 'identity', 'fleet'] as const;
export type ConfigSection = (typeof CONFIG_SECTIONS)[number];

/** sha256 of the configuration's canonical content (the file form, keys sorted): the same
 *  settings give the same version whatever file, order or units they were written with. */
export function configVersion(cfg: AgentConfig): string {
  return sha256Hex(canonicalJson(toFile(cfg, false)));
}

function leaves(v: unknown, prefix: string, out: Map<string, string>): void {
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, canonicalJson(v));
}

/** The keys (file form, dotted: `lifecycle.args_cap`) whose values differ, in file order. */
export function changedKeys(a: AgentConfig, b: AgentConfig): string[] {
  const la = new Map<string, string>();
  const lb = new Map<string, string>();
  leaves(toFile(a, false), '', la);
  leaves(toFile(b, false), '', lb);
  const keys = new Set([...la.keys(), ...lb.keys()]);
  return [...keys].filter((k) => la.get(k) !== lb.get(k));
}

/** `base` with the given keys (as changedKeys names them) taken from `from`: the running config
 *  after a reload that applied only some of the changes. */
export function withKeys(base: AgentConfig, from: AgentConfig, keys: readonly string[]): AgentConfig {
  const out = toFile(base, false);
  const src = toFile(from, false);
  for (const k of keys) {
    const path = k.split('.');
    const got = getPath(src, path);
    let cur = out as Record<string, unknown>;
    for (const p of path.slice(0, -1)) {
      if (!isPlainObject(cur[p])) cur[p] = {};
      cur = cur[p] as Record<string, unknown>;
    }
    if (got.found) cur[path[path.length - 1]!] = got.value;
    else delete cur[path[path.length - 1]!];
  }
  return validate(out, () => 'reload');
}
