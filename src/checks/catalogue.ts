// The field catalogue: every name a check may use, with its argument signature, result type and
// unit, where its data comes from and what it costs. The checker validates against it, the
// evaluator dispatches on it, docs/dsl.md documents it (keep them in step).
import { BYTES, BYTES_PER_SECOND, NONE, PERCENT, PER_SECOND, TIME, type Dim } from './units.js';

export type ParamType =
  /** a string literal */
  | 'string'
  /** a literal with a time unit */
  | 'duration'
  /** an integer literal 1..65535 */
  | 'port'
  /** an event kind, optionally with `where` */
  | 'events'
  /** a windowed metric name */
  | 'metric';

export interface Param {
  name: string;
  type: ParamType;
  /** omitted arguments take this value (source text, as the user would write it) */
  default?: string;
  /** allowed string values */
  oneOf?: readonly string[];
}

export type ResultType = { k: 'num'; dim: Dim } | { k: 'bool' };

/** cheap: in-memory or one small pseudo-file; moderate: a directory walk or a file read;
 *  expensive: reads that grow with the data (log scans). The executor reports it; the docs
 *  tell users to give expensive checks longer intervals. */
export type Cost = 'cheap' | 'moderate' | 'expensive';

export type Source = 'node' | 'process' | 'system' | 'window' | 'event' | 'agent';

export interface FieldSpec {
  name: string;
  params: readonly Param[];
  result: ResultType;
  source: Source;
  cost: Cost;
  doc: string;
}

const num = (dim: Dim): ResultType => ({ k: 'num', dim });
const BOOL: ResultType = { k: 'bool' };
const MOUNT: Param = { name: 'mount', type: 'string', default: '"/"' };
const PSI: readonly Param[] = [
  { name: 'resource', type: 'string', oneOf: ['cpu', 'memory', 'io'] },
  { name: 'window', type: 'duration', default: '1m', oneOf: ['10s', '1m', '5m'] },
];

const F = (name: string, params: readonly Param[], result: ResultType, source: Source, cost: Cost, doc: string): FieldSpec => ({
  name, params, result, source, cost, doc,
});

export const FIELDS: readonly FieldSpec[] = [
  // node
  F('cpu_usage', [], num(PERCENT), 'node', 'cheap', 'busy share of all CPUs since the previous reading (the first reading samples 100 ms)'),
  F('memory_usage', [], num(PERCENT), 'node', 'cheap', '1 − MemAvailable/MemTotal'),
  F('memory_available', [], num(BYTES), 'node', 'cheap', 'MemAvailable'),
  F('swap_usage', [], num(PERCENT), 'node', 'cheap', 'used swap / total swap (0% without swap)'),
  F('load1', [], num(NONE), 'node', 'cheap', '1-minute load average'),
  F('load5', [], num(NONE), 'node', 'cheap', '5-minute load average'),
  F('load15', [], num(NONE), 'node', 'cheap', '15-minute load average'),
  F('load_per_cpu', [], num(NONE), 'node', 'cheap', '1-minute load average divided by the number of CPUs'),
  F('disk_usage', [MOUNT], num(PERCENT), 'node', 'cheap', 'used blocks / blocks available to users (as df): statfs(mount)'),
  F('disk_free', [MOUNT], num(BYTES), 'node', 'cheap', 'bytes available to unprivileged users: statfs(mount)'),
  F('inode_usage', [MOUNT], num(PERCENT), 'node', 'cheap', 'used inodes / inodes: statfs(mount)'),
  F('psi_some', PSI, num(PERCENT), 'node', 'cheap', 'share of time some task stalled on the resource (/proc/pressure/<resource>, avg10/avg60/avg300)'),
  F('psi_full', PSI, num(PERCENT), 'node', 'cheap', 'share of time all non-idle tasks stalled on the resource'),
  F('open_files_usage', [], num(PERCENT), 'node', 'cheap', 'allocated file handles / fs.file-max'),
  F('uptime', [], num(TIME), 'node', 'cheap', 'time since boot'),
  F('oom_kills', [{ name: 'window', type: 'duration', default: '1h' }], num(NONE), 'node', 'cheap', 'OOM kills in the window (vmstat oom_kill counter; the window starts at the first sample)'),
  // process
  F('process_running', [{ name: 'name', type: 'string' }], BOOL, 'process', 'moderate', 'a live process whose comm is name exists; "/re/" matches comm with an RE2 pattern'),
  F('process_count', [{ name: 'filter', type: 'string' }], num(NONE), 'process', 'moderate', 'live processes whose comm is filter, or matches it when written "/re/" (RE2)'),
  F('zombie_count', [], num(NONE), 'process', 'moderate', 'processes in state Z (exited, not reaped)'),
  F('d_state_count', [], num(NONE), 'process', 'moderate', 'processes in uninterruptible sleep (state D)'),
  F('exec_rate', [{ name: 'window', type: 'duration', default: '1m' }], num(PER_SECOND), 'event', 'cheap', 'successful execs per second over the window'),
  F('exit_failures', [{ name: 'window', type: 'duration', default: '10m' }], num(NONE), 'event', 'cheap', 'non-zero exits, deaths by signal and failed execs in the window'),
  // agent
  F('events_lost', [{ name: 'window', type: 'duration', default: '1m' }], num(NONE), 'agent', 'cheap', "lifecycle records the agent lost in the window (ring full, or user-space queue full): its own loss accounting"),
  // system
  F('port_listening', [{ name: 'port', type: 'port' }], BOOL, 'system', 'moderate', 'a TCP socket listens on the port (IPv4 or IPv6): /proc/net/tcp, /proc/net/tcp6'),
  F('file_exists', [{ name: 'path', type: 'string' }], BOOL, 'system', 'cheap', 'the path exists (symlinks followed)'),
  F('file_age', [{ name: 'path', type: 'string' }], num(TIME), 'system', 'cheap', 'time since the file was last modified'),
  F('cert_expiry', [{ name: 'path', type: 'string' }], num(TIME), 'system', 'moderate', 'time left before the first PEM certificate in the file expires (negative once expired); compare with days: < 14d'),
  F('log_matches', [{ name: 'path', type: 'string' }, { name: 'pattern', type: 'string' }, { name: 'window', type: 'duration', default: '5m' }], num(NONE), 'system', 'expensive', 'lines appended to the file within the window that match the RE2 pattern'),
];

export const FIELD_BY_NAME = new Map(FIELDS.map((f) => [f.name, f]));

/** Windowed aggregates over the resource windows: agg(metric, window) [by key]. */
export const WINDOW_AGGREGATES = ['avg', 'min', 'max', 'sum', 'p50', 'p90', 'p95', 'p99'] as const;
export type WindowAggregate = (typeof WINDOW_AGGREGATES)[number];

export const WINDOW_METRICS: Record<string, { dim: Dim; doc: string }> = {
  cpu: { dim: PERCENT, doc: 'CPU use of one process or group, share of one CPU' },
  rss: { dim: BYTES, doc: 'resident memory' },
  io_read: { dim: BYTES_PER_SECOND, doc: 'bytes read from storage per second' },
  io_write: { dim: BYTES_PER_SECOND, doc: 'bytes written to storage per second' },
};

export const GROUP_KEYS = ['exec_id', 'cgroup', 'comm'] as const;

/** Trends: slope(m, w), eta(m, limit, w), leak(m, w) [by key], over a windowed metric (m as
 *  above) or over the readings of a numeric field that the check itself records. */
export const TREND_FUNCTIONS = ['slope', 'eta', 'leak'] as const;
export type TrendFunction = (typeof TREND_FUNCTIONS)[number];

/** What eta takes for its limit besides a value with a unit: per-key limits. */
export const TREND_LIMITS: Record<string, { dim: Dim; doc: string }> = {
  memory_limit: {
    dim: BYTES,
    doc: "the memory limit of the group's cgroup (v2 memory.max, or v1 memory.limit_in_bytes where the memory controller is on v1), else the node's memory",
  },
};
export type GroupKey = (typeof GROUP_KEYS)[number];

/** Event aggregates: count(kind [where pred], window) and rate(kind [where pred], window). */
export const EVENT_AGGREGATES = ['count', 'rate'] as const;

export type EventFieldType = { k: 'num'; dim: Dim } | { k: 'str' } | { k: 'bool' };

const S: EventFieldType = { k: 'str' };
const N: EventFieldType = { k: 'num', dim: NONE };
const T: EventFieldType = { k: 'num', dim: TIME };
const B: EventFieldType = { k: 'bool' };

/** Kinds of events and the fields `where` may test. exit_code is null for a death by signal
 *  (`exit_code != 0` is then true; ordering comparisons with null are false). */
export const EVENT_KINDS: Record<string, Record<string, EventFieldType>> = {
  exec: { pid: N, ppid: N, uid: N, comm: S, filename: S },
  fork: { pid: N, ppid: N, comm: S },
  exit: { pid: N, ppid: N, comm: S, exit_code: N, signal: N, core_dumped: B, failed: B, duration: T, cpu: T, max_rss: { k: 'num', dim: BYTES } },
  exec_failed: { pid: N, comm: S, filename: S, errno: N },
  reap: { pid: N, zombie: T },
  state: { pid: N, comm: S, from: S, to: S, duration: T },
};

export const ALERT_STATES = ['warning', 'critical', 'unknown', 'timeout'] as const;
export const TIMEOUT_ACTIONS = ['alert', 'critical', 'warning', 'unknown', 'ignore'] as const;

/** Every name the checker accepts in call position, for "did you mean". */
export function allCallableNames(): string[] {
  return [...FIELDS.map((f) => f.name), ...WINDOW_AGGREGATES, ...EVENT_AGGREGATES, ...TREND_FUNCTIONS];
}

/** Per-node fleet fields a rollout gate may read (docs/fleet.md, "Gates"), from each node's
 *  observed state. Base units as everywhere: agent_cpu 5% is 0.05, agent_rss bytes. */
export const GATE_FIELDS: Record<string, EventFieldType & { doc: string }> = {
  lost_rate: { k: 'num', dim: PER_SECOND, doc: 'records the agent lost per second, over the last minute' },
  agent_cpu: { k: 'num', dim: PERCENT, doc: "the agent's CPU, a share of one CPU" },
  agent_rss: { k: 'num', dim: BYTES, doc: "the agent's resident memory" },
  reload_result: { k: 'str', doc: 'the result of applying the rollout\'s bundle on the node: "applied" or "rejected: <code>"; unknown until the node reports it' },
  checks_critical: { k: 'num', dim: NONE, doc: 'checks in state critical on the node' },
  checks_warning: { k: 'num', dim: NONE, doc: 'checks in state warning on the node' },
  alerts_firing: { k: 'num', dim: NONE, doc: 'alerts firing on the node' },
  health: { k: 'str', doc: 'the agent\'s health: "ok" or "degraded"' },
};

/** Functions of a gate: `baseline(f)`, the median of f over the baseline nodes (in the
 *  rollout's scope, not touched by it), and `before(f)`, the node's own f when the rollout told
 *  it to change. */
export const GATE_FUNCTIONS = ['baseline', 'before'] as const;
