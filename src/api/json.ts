// JSON shapes of the API (docs/api.md) and the conversions from the agent's objects. The types
// are also what the CLI clients read, so they carry no runtime dependency on fastify.
// Like the NDJSON schema: fields are only ever added, never renamed or retyped.
import type { ProcessEntry, ProcessState } from '../process/index.js';
import type { AgentStats, AgentView, StatesView } from './view.js';
import type { TopGroup, TopRow } from '../metrics/index.js';
import type { FleetSummaryJson } from './fleet.js';

export interface ProcessJson {
  exec_id: string;
  pid: number;
  ppid: number;
  parent_exec_id: string | null;
  comm: string;
  filename: string | null;
  args: string[] | null;
  args_truncated: boolean;
  uid: number | null;
  gid: number | null;
  euid: number | null;
  /** decimal string (u64) */
  cgroup_id: string | null;
  /** ps letter: R, S, D, T, Z (X once reaped) */
  state: string;
  /** ms in that state; null when unknown */
  state_ms: number | null;
  /** lifecycle: live, zombie, dead */
  lifecycle: ProcessState;
  /** run-queue latency of the process's threads since the sensor started, µs */
  rq_p50_us: number | null;
  rq_p95_us: number | null;
  rq_max_us: number | null;
  nvcsw: number | null;
  nivcsw: number | null;
  /** ISO-8601 UTC; for processes found at start-up, precise to 10 ms (see coarse_start) */
  start_time: string;
  /** CLOCK_BOOTTIME ns of the start, decimal string */
  start_ns: string;
  coarse_start: boolean;
  /** how the agent learned of the process: bootstrap, fork, exec, inferred */
  source: string;
  exec_count: number;
  exit_code: number | null;
  signal: number | null;
  core_dumped: boolean | null;
  exit_time: string | null;
  reap_time: string | null;
  child_count: number;
  comm_raw?: string;
  filename_raw?: string;
  args_raw?: (string | null)[];
  /** export.redact masked part of args */
  args_redacted: boolean;
  /** what the cgroup path proves (null when unknown): path, systemd unit, container, pod */
  cgroup: string | null;
  unit: string | null;
  container_runtime: string | null;
  container_id: string | null;
  pod_uid: string | null;
  pod_qos: string | null;
  /** from the CRI socket (null until it answered, or without one) */
  pod_name: string | null;
  pod_namespace: string | null;
  container_name: string | null;
  image: string | null;
}

export interface ProcessListJson {
  /** processes matching the filters, before `limit` */
  total: number;
  processes: ProcessJson[];
}

export interface ProcessDetailJson {
  process: ProcessJson;
  /** parent first, up to the oldest known ancestor */
  ancestry: ProcessJson[];
  children: ProcessJson[];
  /** the states the process went through as the agent observed them, oldest first (bounded;
   *  empty without the state sensor, or once reaped) */
  states: { state: string; since: string }[];
}

export interface TreeNodeJson {
  process: ProcessJson;
  children: TreeNodeJson[];
  /** present and true when the children were cut at the depth limit */
  children_truncated?: boolean;
}

export interface TreeJson {
  /** processes in the tree */
  total: number;
  roots: TreeNodeJson[];
}

/** GET /v1/zombies: a zombie, blamed on the parent that has not reaped it */
export interface ZombieJson {
  pid: number;
  exec_id: string;
  comm: string;
  ppid: number;
  parent_exec_id: string | null;
  parent_comm: string | null;
  zombie_ms: number;
  exit_time: string;
}

/** GET /v1/zombies: a thread in D longer than state.d_threshold */
export interface StuckDJson {
  pid: number;
  tid: number;
  /** null when the thread's process is not in the table */
  exec_id: string | null;
  comm: string;
  d_ms: number;
}

export interface ZombiesJson {
  zombies: ZombieJson[];
  stuck_d: StuckDJson[];
}

/** GET /v1/top */
export interface TopJson {
  window: string;
  window_ms: number;
  sort: string;
  group: 'process' | 'cgroup';
  /** the resource sweep's own counters (camelCase, opaque) */
  sweep: unknown;
  rows: TopRow[] | TopGroup[];
}

export interface HealthJson {
  status: 'ok' | 'degraded';
  /** why degraded, each with its kind: store, consumer, loss, sensor, identity (empty when ok) */
  reasons: Array<{ kind: string; message: string }>;
  version: string;
  pid: number;
  uptime_s: number;
}

export interface AccountingJson {
  generated: Record<string, number>;
  captured: Record<string, number>;
  lost: Record<string, number>;
  lost_reserve: Record<string, number>;
  lost_userspace: Record<string, number>;
  totals: { generated: number; captured: number; lost: number };
  identity_holds: boolean;
  /** generated but not yet decoded when the snapshot was taken (the identity counts them) */
  in_flight: number;
  seq_gaps: number;
  malformed: number;
  thread_exits: number;
  thread_forks: number;
  /** records two sensor generations both captured during a reload's overlap, removed (counted
   *  in captured); absent where no reload can happen */
  duplicates?: Record<string, number>;
}

export interface StatsJson {
  version: string;
  pid: number;
  started_at: string;
  uptime_s: number;
  programs: string[];
  accounting: AccountingJson;
  table: Record<string, number>;
  ring: Record<string, unknown> | null;
  store: Record<string, unknown> | null;
  consumers: Record<string, { errors: number; last_error: string | null; last_error_at: string | null }>;
  health: { status: 'ok' | 'degraded'; reasons: Array<{ kind: string; message: string }> };
  /** per alert output: type, delivered, pending, dropped, superseded, rejected, failures, ... */
  alerts?: Record<string, Record<string, unknown>>;
  /** redaction, identity and OTLP counters */
  export?: Record<string, unknown>;
  /** this agent's fleet state; null without a fleet section */
  fleet: FleetSummaryJson | null;
}

export interface ErrorJson {
  error: string;
  message: string;
  status: number;
}

export interface Clock {
  iso(ktimeNs: bigint): string;
}

/** The ps letter and time in state: from the state machines when tracked, else from the
 *  lifecycle (a live process not scheduled since the sensor started is sleeping). */
export function stateLetter(e: ProcessEntry, st: StateInfo | null): string {
  if (e.state === 'zombie') return 'Z';
  if (e.state === 'dead') return 'X';
  return st?.state ?? 'S';
}

export type StateInfo = ReturnType<StatesView['stateOf']>;

export function processJson(e: ProcessEntry, clock: Clock, states: StatesView | null = null, nowNs = 0n): ProcessJson {
  const st = states ? states.stateOf(e.execId, nowNs) : null;
  const o: ProcessJson = {
    exec_id: e.execId,
    pid: e.pid,
    ppid: e.ppid,
    parent_exec_id: e.parentExecId,
    comm: e.comm,
    filename: e.filename,
    args: e.args,
    args_truncated: e.argsTruncated,
    uid: e.uid,
    gid: e.gid,
    euid: e.euid,
    cgroup_id: e.cgroupId === null ? null : e.cgroupId.toString(),
    state: stateLetter(e, st),
    state_ms: st ? st.stateMs : e.state === 'zombie' && e.exitNs !== null && nowNs > e.exitNs ? Number((nowNs - e.exitNs) / 1_000_000n) : null,
    lifecycle: e.state,
    rq_p50_us: st && st.rq.count ? Math.round(st.rq.p50Ns / 1000) : null,
    rq_p95_us: st && st.rq.count ? Math.round(st.rq.p95Ns / 1000) : null,
    rq_max_us: st && st.rq.count ? Math.round(st.rq.maxNs / 1000) : null,
    nvcsw: st ? st.nvcsw : null,
    nivcsw: st ? st.nivcsw : null,
    start_time: clock.iso(e.startNs),
    start_ns: e.startNs.toString(),
    coarse_start: e.coarseStart,
    source: e.source,
    exec_count: e.execCount,
    exit_code: e.exit?.exitCode ?? null,
    signal: e.exit?.signal ?? null,
    core_dumped: e.exit?.coreDumped ?? null,
    exit_time: e.exitNs === null ? null : clock.iso(e.exitNs),
    reap_time: e.reapNs === null ? null : clock.iso(e.reapNs),
    child_count: e.childCount,
    args_redacted: e.argsRedacted,
    cgroup: e.identity?.cgroup ?? null,
    unit: e.identity?.unit ?? null,
    container_runtime: e.identity?.containerRuntime ?? null,
    container_id: e.identity?.containerId ?? null,
    pod_uid: e.identity?.podUid ?? null,
    pod_qos: e.identity?.podQos ?? null,
    pod_name: e.identity?.podName ?? null,
    pod_namespace: e.identity?.podNamespace ?? null,
    container_name: e.identity?.containerName ?? null,
    image: e.identity?.image ?? null,
  };
  if (e.commRaw) o.comm_raw = e.commRaw.toString('base64');
  if (e.filenameRaw) o.filename_raw = e.filenameRaw.toString('base64');
  if (e.argv !== null && e.argv.some((a) => a.raw)) o.args_raw = e.argv.map((a) => (a.raw ? a.raw.toString('base64') : null));
  return o;
}

export function uptimeS(startedAt: number, now = Date.now()): number {
  return Math.max(0, Math.round((now - startedAt) / 1000));
}

/** fooBar → foo_bar; already snake_case keys are unchanged. */
export function snakeKey(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Deep copy with snake_case keys and bigints as numbers (exact below 2^53) — for the opaque
 *  parts of the stats (ring, store, table). */
export function snakeJson(v: unknown, depth = 0): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v === null || typeof v !== 'object' || depth > 8) return v;
  if (Array.isArray(v)) return v.map((x) => snakeJson(x, depth + 1));
  if (v instanceof Date) return v.toISOString();
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined && typeof x !== 'function') o[snakeKey(k)] = snakeJson(x, depth + 1);
  return o;
}

export function accountingJson(a: AgentStats['accounting']): AccountingJson {
  const types = Object.keys(a.perType) as (keyof typeof a.perType)[];
  const pick = (f: (t: (typeof a.perType)[keyof typeof a.perType]) => bigint): Record<string, number> =>
    Object.fromEntries(types.map((k) => [k, Number(f(a.perType[k]))]));
  const sum = (m: Record<string, number>) => Object.values(m).reduce((x, y) => x + y, 0);
  const generated = pick((t) => t.generated);
  const captured = pick((t) => t.captured);
  const lost = pick((t) => t.lostReserve + t.lostUserspace);
  return {
    generated,
    captured,
    lost,
    lost_reserve: pick((t) => t.lostReserve),
    lost_userspace: pick((t) => t.lostUserspace),
    totals: { generated: sum(generated), captured: sum(captured), lost: sum(lost) },
    identity_holds: a.identityHolds,
    in_flight: Number(a.inFlight ?? 0n),
    seq_gaps: Number(a.seqGaps),
    malformed: a.malformed,
    thread_exits: Number(a.threadExits),
    thread_forks: Number(a.threadForks),
    ...(a.duplicates ? { duplicates: Object.fromEntries(Object.entries(a.duplicates).map(([k, v]) => [k, Number(v)])) } : {}),
  };
}

export function statsJson(view: AgentView, now = Date.now()): StatsJson {
  const s = view.stats();
  return {
    version: view.version,
    pid: view.pid,
    started_at: new Date(view.startedAt).toISOString(),
    uptime_s: uptimeS(view.startedAt, now),
    programs: [...s.programs],
    accounting: accountingJson(s.accounting),
    table: snakeJson(s.table) as Record<string, number>,
    ring: s.ring === null ? null : (snakeJson(s.ring) as Record<string, unknown>),
    store: s.store === null ? null : (snakeJson(s.store) as Record<string, unknown>),
    health: s.health ?? { status: 'ok', reasons: [] },
    // keyed by output name: the names are the user's, kept as written
    ...(s.alerts ? { alerts: Object.fromEntries(Object.entries(s.alerts).map(([name, o]) => [name, snakeJson(o) as Record<string, unknown>])) } : {}),
    ...(s.export ? { export: snakeJson(s.export) as Record<string, unknown> } : {}),
    consumers: Object.fromEntries(
      Object.entries(s.consumers ?? {}).map(([k, c]) => [k, { errors: c.errors, last_error: c.lastError, last_error_at: c.lastErrorAt === null ? null : new Date(c.lastErrorAt).toISOString() }]),
    ),
    fleet: view.fleet?.summary() ?? null,
  };
}
