import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_CONFIG_PATH,
  configToYaml,
  defaultConfig,
  editDistance,
  loadConfig,
  suggestKey,
  type AgentConfig,
} from '../../src/app/config.js';
import { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from '../../src/app/duration.js';
import { DEFAULT_LIFECYCLE } from '../../src/app/lifecycle.js';
import { DEFAULT_STATE } from '../../src/app/states.js';
import { DEFAULT_SOCKET, DEFAULT_TCP_HOST } from '../../src/api/defaults.js';
import { PatrolError } from '../../src/shared/errors.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** the ConfigError's lines, or a failure if loading succeeded */
function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toBeInstanceOf(PatrolError);
    expect((e as ConfigError).code).toBe('E_CONFIG');
    expect((e as Error).message).toBe((e as ConfigError).problems.join('\n'));
    return [...(e as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

const DEFAULTS: AgentConfig = {
  log: { level: 'info', format: 'auto' },
  lifecycle: {
    argsCap: 4096,
    filenameCap: 1024,
    ringBytes: 4 << 20,
    emitThreads: false,
    execFailed: 'auto',
    tableMaxEntries: 65536,
    tableGraceMs: 30_000,
    tableDeadMax: 4096,
    queueBytes: 16 << 20,
    consumerRealtimePriority: 0,
    batchDelayUs: 'auto',
    delivery: 'efficient',
    deliveryIntervalMs: 15,
    unwatchedIntervalMs: 1000,
  },
  state: { dThresholdMs: 1000, budgetPerSec: 2000, sweepMs: 2000 },
  store: { path: '/var/lib/patrol/patrol.db', flushIntervalMs: 1000, retention: { maxAgeMs: 7 * 86_400_000, maxRows: 1_000_000 } },
  api: { socket: '/run/patrol/patrol.sock', tcp: { enabled: false, host: '127.0.0.1', port: 9465, tokenFile: '/etc/patrol/token' } },
  agent: { lockFile: '/run/patrol/patrol.pid', pinDir: '/sys/fs/bpf/patrol', bpfDir: null },
  checks: { dir: null, concurrency: 4, retention: { maxAgeMs: 30 * 86_400_000, maxRows: 500_000 } },
  metrics: {
    enabled: true,
    sweepMs: 1000,
    source: 'auto',
    windowsMs: [10_000, 60_000, 300_000],
    maxProcesses: 10_000,
    maxExited: 10_000,
    cgroupsMax: 256,
    prometheus: { enabled: true, host: '127.0.0.1', port: 9464, topN: 20, windowMs: 60_000 },
  },
  rules: { enabled: true, dir: null, kmsg: true, batchIntervalMs: 250 },
  fleet: null,
  alerts: { node: null, queueMax: 10_000, retry: { initialMs: 1000, maxMs: 300_000 }, outputs: [] },
  export: { redact: [], redactDefaults: true, otlp: null },
  identity: { criSocket: 'auto', criTimeoutMs: 2000 },
};

/** every setting different from its default */
const CUSTOM: AgentConfig = {
  log: { level: 'debug', format: 'json' },
  lifecycle: {
    argsCap: 8192,
    filenameCap: 512,
    ringBytes: 16 << 20,
    emitThreads: true,
    execFailed: false,
    tableMaxEntries: 131072,
    tableGraceMs: 90_000,
    tableDeadMax: 8192,
    queueBytes: 64 << 20,
    consumerRealtimePriority: 1,
    batchDelayUs: 250,
    delivery: 'low_latency',
    deliveryIntervalMs: 20,
    unwatchedIntervalMs: 2000,
  },
  state: { dThresholdMs: 500, budgetPerSec: 100, sweepMs: 1000 },
  store: { path: '/data/patrol.db', flushIntervalMs: 1500, retention: { maxAgeMs: 36 * 3_600_000, maxRows: 5000 } },
  api: { socket: '/tmp/p.sock', tcp: { enabled: true, host: '0.0.0.0', port: 19465, tokenFile: '/etc/patrol/tcp.token' } },
  agent: { lockFile: '/tmp/p.pid', pinDir: '/sys/fs/bpf/p2', bpfDir: '/opt/patrol/bpf' },
  checks: { dir: '/etc/patrol/checks', concurrency: 8, retention: { maxAgeMs: 2 * 86_400_000, maxRows: 1000 } },
  metrics: {
    enabled: false,
    sweepMs: 100,
    source: 'proc',
    windowsMs: [5_000, 120_000],
    maxProcesses: 500,
    maxExited: 2000,
    cgroupsMax: 16,
    prometheus: { enabled: false, host: '0.0.0.0', port: 9100, topN: 5, windowMs: 5_000 },
  },
  rules: { enabled: false, dir: '/etc/patrol/rules', kmsg: false, batchIntervalMs: 0 },
  fleet: {
    endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
    node: 'web-1',
    labels: { role: 'web', zone: 'a' },
    prefix: '/prod/patrol/',
    leaseTtlMs: 15_000,
    observedIntervalMs: 30_000,
    skewBoundMs: 2 * 3_600_000,
    probeIntervalMs: 2000,
    tls: { ca: '/etc/patrol/etcd-ca.pem', cert: '/etc/patrol/etcd.pem', key: '/etc/patrol/etcd-key.pem' },
    trustedKeys: ['/etc/patrol/release.pub.pem'],
  },
  alerts: {
    node: 'node-7',
    queueMax: 500,
    retry: { initialMs: 250, maxMs: 60_000 },
    outputs: [
      { type: 'alertmanager', name: 'alertmanager:http://127.0.0.1:9093', url: 'http://127.0.0.1:9093', timeoutMs: 5000, resendIntervalMs: 30_000, groupWaitMs: 0, maxBatch: 10, ratePerMinute: 0 },
      { type: 'webhook', name: 'hook', url: 'https://hooks.example.com/patrol', timeoutMs: 3000, hmacSecretFile: '/etc/patrol/hook.key', groupWaitMs: 2000, maxBatch: 64, ratePerMinute: 30 },
      { type: 'file', name: 'file:/var/log/patrol/alerts.ndjson', path: '/var/log/patrol/alerts.ndjson', maxBytes: 1 << 20, maxFiles: 3, groupWaitMs: 1000, maxBatch: 64, ratePerMinute: 60 },
    ],
  },
  export: {
    redact: ['(?i)(--password[= ])\\S+'],
    redactDefaults: false,
    otlp: { endpoint: 'http://127.0.0.1:4318', protocol: 'http/json', headers: { 'x-tenant': 'a' }, intervalMs: 10_000, timeoutMs: 2000, queueMax: 100, events: ['exec', 'exit'] },
  },
  identity: { criSocket: '/run/containerd/containerd.sock', criTimeoutMs: 500 },
};

const CUSTOM_YAML = `
log: { level: debug, format: json }
lifecycle:
  args_cap: 8192
  filename_cap: 512
  ring_size: 16M
  threads: true
  exec_failed: false
  table_max_entries: 131072
  table_grace: 1.5m
  table_dead_max: 8192
  queue_size: 64M
  realtime_priority: 1
  batch_delay_us: 250
  delivery: low_latency
  delivery_interval: 20ms
  unwatched_interval: 2s
state: { d_threshold: 500ms, budget_per_sec: 100, sweep_interval: 1s }
store:
  path: /data/patrol.db
  flush_interval: 1500        # a number is milliseconds
  retention:
    max_age: 36h
    max_rows: 5000
api:
  socket: /tmp/p.sock
  tcp:
    enabled: true
    host: 0.0.0.0
    port: 19465
    token_file: /etc/patrol/tcp.token
agent:
  lock_file: /tmp/p.pid
  pin_dir: /sys/fs/bpf/p2
  bpf_dir: /opt/patrol/bpf
checks:
  dir: /etc/patrol/checks
  concurrency: 8
  retention: { max_age: 2d, max_rows: 1000 }
metrics:
  enabled: false
  sweep_interval: 100ms
  source: proc
  windows: [2m, 5s]
  max_processes: 500
  max_exited: 2000
  cgroups_max: 16
  prometheus: { enabled: false, host: 0.0.0.0, port: 9100, top_n: 5, window: 5s }
rules: { enabled: false, dir: /etc/patrol/rules, kmsg: false, batch_interval: 0 }
fleet:
  endpoints: [https://10.0.0.1:2379/, https://10.0.0.2:2379]
  node: web-1
  labels: { role: web, zone: a }
  prefix: /prod/patrol/
  lease_ttl: 15s
  observed_interval: 30s
  skew_bound: 2h
  probe_interval: 2s
  tls: { ca: /etc/patrol/etcd-ca.pem, cert: /etc/patrol/etcd.pem, key: /etc/patrol/etcd-key.pem }
  trusted_keys: [/etc/patrol/release.pub.pem]
alerts:
  node: node-7
  queue_max: 500
  retry: { initial: 250ms, max: 1m }
  outputs:
    - { type: alertmanager, url: "http://127.0.0.1:9093", timeout: 5s, resend_interval: 30s, group_wait: 0s, max_batch: 10, rate_limit: 0 }
    - { type: webhook, name: hook, url: "https://hooks.example.com/patrol", timeout: 3s, hmac_secret_file: /etc/patrol/hook.key, group_wait: 2s, rate_limit: 30 }
    - { type: file, path: /var/log/patrol/alerts.ndjson, max_size: 1M, max_files: 3 }
export:
  redact: ['(?i)(--password[= ])\\S+']
  redact_defaults: false
  otlp: { endpoint: "http://127.0.0.1:4318", protocol: http/json, headers: { x-tenant: a }, interval: 10s, timeout: 2s, queue_max: 100, events: [exec, exit] }
identity: { cri_socket: /run/containerd/containerd.sock, cri_timeout: 500ms }
`;

describe('metrics section', () => {
  it('rejects a Prometheus window longer than every kept window, and bad window lists', () => {
    expect(problems(() => loadConfig({ path: file('a.yaml', 'metrics: { windows: [10s], prometheus: { window: 1m } }') }))).toEqual([
      expect.stringMatching(/metrics\.prometheus\.window.*longest of metrics\.windows/),
    ]);
    expect(problems(() => loadConfig({ path: file('b.yaml', 'metrics: { windows: [], sweep_interval: 10ms }') }))).toEqual([
      expect.stringMatching(/metrics\.sweep_interval: must be between 100ms and 1m/),
      expect.stringMatching(/metrics\.windows: needs at least one window/),
    ]);
  });
});

describe('durations and sizes', () => {
  it('parses durations', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('5m')).toBe(300_000);
    expect(parseDurationMs('2h')).toBe(7_200_000);
    expect(parseDurationMs('7d')).toBe(604_800_000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs(' 10 s ')).toBe(10_000);
    expect(parseDurationMs(250)).toBe(250);
    expect(parseDurationMs('250')).toBe(250);
    for (const bad of ['soon', '', '5 minutes', '-1s', '1.0005s', '1e3', 1.5, -3, null, true, [], '5M']) {
      expect(parseDurationMs(bad), String(bad)).toBeNull();
    }
  });

  it('parses sizes', () => {
    expect(parseSizeBytes('64K')).toBe(65536);
    expect(parseSizeBytes('4M')).toBe(4 << 20);
    expect(parseSizeBytes('1G')).toBe(1 << 30);
    expect(parseSizeBytes('4MiB')).toBe(4 << 20);
    expect(parseSizeBytes('4mb')).toBeNull(); // only the unit letter may be lower case
    expect(parseSizeBytes('4m')).toBe(4 << 20);
    expect(parseSizeBytes('4096')).toBe(4096);
    expect(parseSizeBytes('4096B')).toBe(4096);
    expect(parseSizeBytes(8192)).toBe(8192);
    for (const bad of ['4T', 'lots', '1.5M', -1, 0.5, null, '']) expect(parseSizeBytes(bad), String(bad)).toBeNull();
  });

  it('formats back to the shortest exact text', () => {
    expect(formatDurationMs(604_800_000)).toBe('7d');
    expect(formatDurationMs(90_000)).toBe('90s');
    expect(formatDurationMs(200)).toBe('200ms');
    expect(formatDurationMs(0)).toBe('0s');
    expect(formatSizeBytes(4 << 20)).toBe('4M');
    expect(formatSizeBytes(65536)).toBe('64K');
    expect(formatSizeBytes(1000)).toBe('1000');
    fc.assert(fc.property(fc.nat({ max: 2 ** 45 }), (n) => parseDurationMs(formatDurationMs(n)) === n && parseSizeBytes(formatSizeBytes(n)) === n));
  });
});

describe('loadConfig: files', () => {
  it('a missing default file gives the defaults; a missing explicit file is an error', () => {
    expect(DEFAULT_CONFIG_PATH).toBe('/etc/patrol/patrol.yaml');
    expect(loadConfig({ path: join(dir, 'none.yaml'), requireFile: false })).toEqual(DEFAULTS);
    expect(defaultConfig()).toEqual(DEFAULTS);
    const p = join(dir, 'none.yaml');
    expect(problems(() => loadConfig({ path: p }))).toEqual([`${p}: cannot read: no such file`]);
    expect(problems(() => loadConfig({ path: join(dir, 'none.yml'), requireFile: true }))).toHaveLength(1);
  });

  it('defaults agree with the lifecycle pipeline and the API', () => {
    const d = defaultConfig();
    // but the unwatched interval: the agent's, which drains before every read; a pipeline on
    // its own hands every event to its sink, so it keeps the latency bound (0: off)
    for (const [k, v] of Object.entries(d.lifecycle)) if (k !== 'unwatchedIntervalMs') expect(v, k).toEqual(DEFAULT_LIFECYCLE[k as keyof typeof DEFAULT_LIFECYCLE]);
    expect([d.lifecycle.unwatchedIntervalMs, DEFAULT_LIFECYCLE.unwatchedIntervalMs]).toEqual([1000, 0]);
    expect(d.state).toEqual(DEFAULT_STATE);
    expect(d.api.socket).toBe(DEFAULT_SOCKET);
    expect(d.api.tcp.host).toBe(DEFAULT_TCP_HOST);
  });

  it('reads YAML (.yaml, .yml) and JSON into camelCase with units', () => {
    expect(loadConfig({ path: file('a.yaml', CUSTOM_YAML) })).toEqual(CUSTOM);
    expect(loadConfig({ path: file('a.yml', CUSTOM_YAML) })).toEqual(CUSTOM);
    const json = JSON.stringify(parseYaml(CUSTOM_YAML), null, 2);
    expect(loadConfig({ path: file('a.json', json) })).toEqual(CUSTOM);
  });

  it('an empty file or a partial file fills in the defaults', () => {
    expect(loadConfig({ path: file('e.yaml', '') })).toEqual(DEFAULTS);
    expect(loadConfig({ path: file('c.yaml', '# nothing set\n') })).toEqual(DEFAULTS);
    const c = loadConfig({ path: file('p.yaml', 'store:\n  retention:\n    max_rows: 10\n') });
    expect(c).toEqual({ ...DEFAULTS, store: { ...DEFAULTS.store, retention: { maxAgeMs: DEFAULTS.store.retention.maxAgeMs, maxRows: 10 } } });
  });

  it('rejects other extensions, unreadable files and non-mapping documents', () => {
    const t = file('patrol.toml', 'x = 1');
    expect(problems(() => loadConfig({ path: t }))).toEqual([`${t}: unsupported file type ".toml": use .yaml, .yml or .json`]);
    const d = join(dir, 'd.yaml');
    mkdirSync(d);
    expect(problems(() => loadConfig({ path: d }))).toEqual([`${d}: cannot read: is a directory`]);
    const l = file('l.yaml', '- a\n- b\n');
    expect(problems(() => loadConfig({ path: l }))).toEqual([`${l}: expected a mapping of settings at the top level (got a list)`]);
    if (process.getuid?.() !== 0) {
      const u = file('u.yaml', 'log: {}\n');
      chmodSync(u, 0);
      expect(problems(() => loadConfig({ path: u }))).toEqual([`${u}: cannot read: permission denied`]);
    }
  });

  it('reports YAML syntax errors with line:col', () => {
    const p = file('bad.yaml', 'log:\n  level: info\nlifecycle:\n  args_cap: [1, 2\nstore: {}\n');
    const lines = problems(() => loadConfig({ path: p }));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(new RegExp(`^${p.replace(/[.]/g, '\\.')}:\\d+:\\d+: \\S`));
    expect(lines[0]).toMatch(/:5:1: /);
    const dup = file('dup.yaml', 'log:\n  level: info\n  level: debug\n');
    expect(problems(() => loadConfig({ path: dup }))).toEqual([`${dup}:3:3: Map keys must be unique`]);
  });

  it('reports JSON syntax errors', () => {
    const p = file('bad.json', '{\n  "log": {"level": "info"\n}');
    const [line, ...rest] = problems(() => loadConfig({ path: p }));
    expect(rest).toEqual([]);
    expect(line).toMatch(new RegExp(`^${p.replace(/[.]/g, '\\.')}(:\\d+:\\d+)?: invalid JSON: `));
    expect(line).not.toContain('\n');
  });
});

describe('loadConfig: validation', () => {
  it('lists every problem, one per line, as <file>: <key.path>: <what>', () => {
    const p = file(
      'patrol.yaml',
      [
        'log: { level: verbose, format: auto }',
        'lifecycle:',
        '  arg_cap: 4096',
        '  filename_cap: 10',
        '  ring_size: 3M',
        '  threads: yes',
        '  exec_failed: maybe',
        '  table_grace: 2h',
        '  table_dead_max: 64',
        'store:',
        '  path: relative/patrol.db',
        '  flush_interval: 1m',
        '  retention: { max_age: soon, max_rows: -1 }',
        'api:',
        '  tcp: { enabled: true, token_file: null, port: 70000 }',
        'agentt: {}',
      ].join('\n'),
    );
    expect(problems(() => loadConfig({ path: p }))).toEqual([
      `${p}: log.level: expected one of trace, debug, info, warn, error (got "verbose")`,
      `${p}: lifecycle.filename_cap: must be between 64 and 4096 (got 10)`,
      `${p}: lifecycle.ring_size: must be a power of two (e.g. 4M, 8M, 16M) (got "3M")`,
      `${p}: lifecycle.threads: expected true or false (got "yes")`,
      `${p}: lifecycle.exec_failed: expected auto, true or false (got "maybe")`,
      `${p}: lifecycle.table_grace: must be between 0s and 1h (got "2h")`,
      `${p}: lifecycle.table_dead_max: must be between 1024 and 16777216 (got 64)`,
      `${p}: lifecycle.arg_cap: unknown key (did you mean args_cap?)`,
      `${p}: store.path: expected an absolute path (got "relative/patrol.db")`,
      `${p}: store.flush_interval: must be between 10ms and 10s (got "1m")`,
      `${p}: store.retention.max_age: expected a duration like 30s, 5m, 7d (got "soon")`,
      `${p}: store.retention.max_rows: must be 0 or more (got -1)`,
      `${p}: api.tcp.port: must be between 0 and 65535 (got 70000)`,
      `${p}: api.tcp.token_file: required when api.tcp.enabled is true (TCP clients must present the token) (got null)`,
      `${p}: agentt: unknown key (did you mean agent?)`,
    ]);
  });

  it('checks cross-field rules: TCP needs a token file', () => {
    const p = file('t.yaml', 'api:\n  tcp:\n    enabled: true\n    token_file: null\n');
    expect(problems(() => loadConfig({ path: p }))).toEqual([
      `${p}: api.tcp.token_file: required when api.tcp.enabled is true (TCP clients must present the token) (got null)`,
    ]);
    expect(loadConfig({ path: file('t2.yaml', 'api:\n  tcp:\n    enabled: true\n') }).api.tcp).toEqual({
      enabled: true,
      host: '127.0.0.1',
      port: 9465,
      tokenFile: '/etc/patrol/token',
    });
    expect(loadConfig({ path: file('t3.yaml', 'api:\n  tcp:\n    token_file: null\n') }).api.tcp.tokenFile).toBeNull();
  });

  it('ring_size: a power of two between 64K and 1G', () => {
    const at = (v: string) => () => loadConfig({ path: file('r.yaml', `lifecycle:\n  ring_size: ${v}\n`) });
    expect(at('64K')().lifecycle.ringBytes).toBe(65536);
    expect(at('1G')().lifecycle.ringBytes).toBe(1 << 30);
    expect(at('8388608')().lifecycle.ringBytes).toBe(8 << 20);
    expect(problems(at('32K'))[0]).toMatch(/ring_size: must be between 64K and 1G \(got "32K"\)$/);
    expect(problems(at('2G'))[0]).toMatch(/must be between 64K and 1G/);
    expect(problems(at('100000'))[0]).toMatch(/must be a power of two/);
    expect(problems(at('big'))[0]).toMatch(/ring_size: expected a size like 64K, 4M, 1G \(got "big"\)$/);
  });

  it('wrong types and sections name what was expected and what was found', () => {
    const p = file('w.yaml', 'log: info\nlifecycle:\n  args_cap: "4096"\n  threads: 1\nstore: [a]\n');
    expect(problems(() => loadConfig({ path: p }))).toEqual([
      `${p}: log: expected a mapping of settings (got "info")`,
      `${p}: lifecycle.args_cap: expected a whole number (got "4096")`,
      `${p}: lifecycle.threads: expected true or false (got 1)`,
      `${p}: store: expected a mapping of settings (got a list)`,
    ]);
  });

  it('0 disables a retention limit; exec_failed accepts auto, true, false', () => {
    const c = loadConfig({ path: file('z.yaml', 'store:\n  retention: { max_age: 0, max_rows: 0 }\nlifecycle: { exec_failed: true }\n') });
    expect(c.store.retention).toEqual({ maxAgeMs: 0, maxRows: 0 });
    expect(c.lifecycle.execFailed).toBe(true);
    expect(problems(() => loadConfig({ path: file('z2.yaml', 'store:\n  retention: { max_age: 10s }\n') }))[0]).toMatch(
      /max_age: must be 0 \(no limit\) or between 1m and 3650d \(got "10s"\)$/,
    );
  });
});

describe('unknown keys', () => {
  it('suggests the nearest key, the snake_case spelling, or lists the known keys', () => {
    const p = file('k.yaml', 'lifecycle:\n  argsCap: 1024\n  ring-size: 8M\n  tableGrace: 1s\nstore:\n  retension: {}\n  colour: red\n');
    expect(problems(() => loadConfig({ path: p }))).toEqual([
      `${p}: lifecycle.argsCap: unknown key (did you mean args_cap?)`,
      `${p}: lifecycle.ring-size: unknown key (did you mean ring_size?)`,
      `${p}: lifecycle.tableGrace: unknown key (did you mean table_grace?)`,
      `${p}: store.retension: unknown key (did you mean retention?)`,
      `${p}: store.colour: unknown key (known keys: path, flush_interval, retention)`,
    ]);
  });

  it('edit distance and suggestions', () => {
    expect(editDistance('arg_cap', 'args_cap')).toBe(1);
    expect(editDistance('pin_dri', 'pin_dir')).toBe(1); // transposition
    expect(editDistance('', 'abc')).toBe(3);
    expect(suggestKey('flush_intreval', ['path', 'flush_interval', 'retention'])).toBe('flush_interval');
    expect(suggestKey('tls', ['socket', 'tcp'])).toBeUndefined();
    expect(suggestKey('xyz', [])).toBeUndefined();
  });
});

describe('overrides (flags)', () => {
  it('win over the file, key by key; undefined leaves are ignored', () => {
    const p = file('o.yaml', 'lifecycle:\n  args_cap: 8192\n  threads: true\nstore:\n  flush_interval: 2s\n');
    const c = loadConfig({
      path: p,
      overrides: { lifecycle: { argsCap: 2048, emitThreads: undefined }, store: { retention: { maxRows: 7 } }, log: { level: 'warn' } },
    });
    expect(c.lifecycle.argsCap).toBe(2048);
    expect(c.lifecycle.emitThreads).toBe(true);
    expect(c.store.flushIntervalMs).toBe(2000);
    expect(c.store.retention).toEqual({ maxAgeMs: DEFAULTS.store.retention.maxAgeMs, maxRows: 7 });
    expect(c.log.level).toBe('warn');
  });

  it('apply without a file, and every setting can be overridden', () => {
    expect(loadConfig({ path: join(dir, 'none.yaml'), requireFile: false, overrides: CUSTOM })).toEqual(CUSTOM);
  });

  it('a bad override is reported against the command line, a bad file value against the file', () => {
    const p = file('o2.yaml', 'lifecycle:\n  filename_cap: 1\n');
    expect(
      problems(() => loadConfig({ path: p, overrides: { lifecycle: { argsCap: 10, ringBytes: 3000 } } })),
    ).toEqual([
      'command line: lifecycle.args_cap: must be between 64 and 32768 (got 10)',
      `${p}: lifecycle.filename_cap: must be between 64 and 4096 (got 1)`,
      'command line: lifecycle.ring_size: must be between 64K and 1G (got 3000)',
    ]);
    expect(
      problems(() => loadConfig({ path: p, overridesSource: '--flags', overrides: { lifecycle: { filenameCap: 5 } } })),
    ).toEqual(['--flags: lifecycle.filename_cap: must be between 64 and 4096 (got 5)']);
  });

  it('an override can fix a bad file value', () => {
    const p = file('o3.yaml', 'api:\n  tcp: { enabled: true, token_file: null }\n');
    expect(loadConfig({ path: p, overrides: { api: { tcp: { enabled: false } } } }).api.tcp.enabled).toBe(false);
  });
});

describe('configToYaml', () => {
  it('prints the effective config in the file format, and loading it gives it back', () => {
    for (const cfg of [DEFAULTS, CUSTOM]) {
      const text = configToYaml(cfg);
      expect(loadConfig({ path: file('printed.yaml', text) })).toEqual(cfg);
    }
    const doc = parseYaml(configToYaml(CUSTOM)) as Record<string, Record<string, unknown>>;
    expect(doc.lifecycle).toMatchObject({ args_cap: 8192, ring_size: '16M', table_grace: '90s', threads: true });
    expect(doc.store).toMatchObject({ flush_interval: '1500ms', retention: { max_age: '36h', max_rows: 5000 } });
    expect(configToYaml(DEFAULTS)).toContain('  max_age: 7d\n');
  });
});

describe('shipped files', () => {
  it('packaging/patrol.example.yaml lists every default: uncommented, it equals the defaults', () => {
    const text = readFileSync(join(ROOT, 'packaging/patrol.example.yaml'), 'utf8');
    expect(loadConfig({ path: file('example.yaml', text) })).toEqual(DEFAULTS); // all commented out
    const uncommented = text
      .split('\n')
      .map((l) => /^# ( *[a-z_]+:.*)$/.exec(l)?.[1] ?? '')
      .join('\n');
    const parsed = parseYaml(uncommented) as unknown;
    expect(parsed).toEqual(parseYaml(configToYaml(DEFAULTS)));
    expect(loadConfig({ path: file('example2.yaml', uncommented) })).toEqual(DEFAULTS);
  });

  it('docs/config.md documents every key', () => {
    const md = readFileSync(join(ROOT, 'docs/config.md'), 'utf8');
    const paths: string[] = [];
    const walk = (o: unknown, pre: string) => {
      for (const [k, v] of Object.entries(o as object)) {
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) walk(v, `${pre}${k}.`);
        else paths.push(`${pre}${k}`);
      }
    };
    walk(parseYaml(configToYaml(DEFAULTS)), '');

    expect(paths).toHaveLength(61);
    for (const p of paths) expect(md, p).toContain(`\`${p}\``);
  });
});

describe('alerts and export sections (issue 17)', () => {
  it('takes the issue\'s example as written', () => {
    const c = loadConfig({
      path: file('issue17.yaml', `alerts:
  outputs:
    - { type: alertmanager, url: "http://127.0.0.1:9093" }
    - { type: webhook, url: "http://127.0.0.1:8080/hook", hmac_secret_file: /etc/patrol/hook.key }
    - { type: file, path: /var/log/patrol/alerts.ndjson }
export:
  otlp: { endpoint: "http://127.0.0.1:4318", protocol: http/protobuf }
  redact: ['(?i)(--password[= ])\\S+']
`),
    });
    expect(c.alerts.outputs.map((o) => [o.type, o.name])).toEqual([
      ['alertmanager', 'alertmanager:http://127.0.0.1:9093'],
      ['webhook', 'webhook:http://127.0.0.1:8080/hook'],
      ['file', 'file:/var/log/patrol/alerts.ndjson'],
    ]);
    expect(c.export.otlp).toMatchObject({ endpoint: 'http://127.0.0.1:4318', protocol: 'http/protobuf' });
    expect(c.export.redact).toEqual(['(?i)(--password[= ])\\S+']);
  });

  it('a bad RE2 pattern is refused at load with its coded error; so are bad outputs and protocols', () => {
    const p = file('bad17.yaml', `alerts:
  outputs:
    - { type: pagerduty, url: "http://x" }
    - { type: webhook, url: "ftp://x" }
    - { type: webhook, url: "http://user:pw@x/hook" }
    - { type: file, path: relative.ndjson }
export:
  redact: ['ok', '(?<=x)y', 'a(']
  otlp: { endpoint: "http://127.0.0.1:4318", protocol: grpc }
identity: { cri_socket: run/containerd.sock, cri_timeout: 0s }
`);
    expect(problems(() => loadConfig({ path: p }))).toEqual([
      `${p}: alerts.outputs.0.type: expected alertmanager, webhook or file (got "pagerduty")`,
      `${p}: alerts.outputs.1.url: expected an http:// or https:// URL (got "ftp://x")`,
      `${p}: alerts.outputs.2.url: credentials do not belong in the URL (use headers or hmac_secret_file) (got "http://user:pw@x/hook")`,
      `${p}: alerts.outputs.3.path: expected an absolute path (got "relative.ndjson")`,
      `${p}: export.redact: [1] "(?<=x)y" is not a valid RE2 pattern: invalid perl operator: (?<= (E_REDACT_PATTERN) (got a list)`,
      `${p}: export.otlp.protocol: expected one of http/protobuf, http/json (got "grpc")`,
      `${p}: identity.cri_socket: expected auto, an absolute path of a CRI socket, or null (off) (got "run/containerd.sock")`,
      `${p}: identity.cri_timeout: must be between 100ms and 1m (got "0s")`,
    ]);
    expect(loadConfig({ path: file('cri-off.yaml', 'identity: { cri_socket: null }') }).identity).toEqual({ criSocket: null, criTimeoutMs: 2000 });
  });

  it('two outputs with one name are refused', () => {
    const p = file('dup17.yaml', 'alerts:\n  outputs:\n    - { type: webhook, url: "http://a/x" }\n    - { type: webhook, url: "http://a/x" }\n');
    expect(problems(() => loadConfig({ path: p }))).toEqual([`${p}: alerts.outputs.1: two outputs named webhook:http://a/x: give one a distinct name (got a mapping)`]);
  });
});
