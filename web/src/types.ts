// The parts of the agent's API (docs/api.md) the dashboard reads. Fields are only ever added to
// the API, so these stay valid; unknown fields are ignored.
export type Point = [number, number];

export interface Proc {
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
  cgroup_id: string | null;
  state: string;
  state_ms: number | null;
  lifecycle: 'live' | 'zombie' | 'dead';
  rq_p50_us: number | null;
  rq_p95_us: number | null;
  rq_max_us: number | null;
  nvcsw: number | null;
  nivcsw: number | null;
  start_time: string;
  start_ns: string;
  coarse_start: boolean;
  source: string;
  exec_count: number;
  exit_code: number | null;
  signal: number | null;
  core_dumped: boolean | null;
  exit_time: string | null;
  reap_time: string | null;
  child_count: number;
}

/** The fields the processes page asks for (`fields=` of /v1/processes): a third of the bytes. */
export const PROC_LIST_FIELDS = ['exec_id', 'pid', 'ppid', 'parent_exec_id', 'comm', 'args', 'uid', 'state', 'state_ms', 'lifecycle', 'start_time', 'exit_code', 'signal', 'core_dumped'] as const;
export type ProcListRow = Pick<Proc, (typeof PROC_LIST_FIELDS)[number]>;

/** And of /v1/top. */
export const TOP_LIST_FIELDS = ['pid', 'ppid', 'exec_id', 'comm', 'exited', 'cpu_seconds', 'rss_bytes', 'io_read_bytes', 'io_write_bytes', 'exit', 'aggregate'] as const;
export type TopListRow = Pick<TopRow, (typeof TOP_LIST_FIELDS)[number]>;

export interface ProcDetail {
  process: Proc;
  ancestry: Proc[];
  children: Proc[];
  /** absent on agents older than the dashboard */
  states?: { state: string; since: string }[];
}

export interface Fig {
  avg: number;
  p95: number;
  max: number;
  last: number;
}

export interface TopRow {
  pid: number;
  ppid: number;
  exec_id: string;
  comm: string;
  exited: boolean;
  cpu: Fig;
  cpu_seconds: number;
  rss_bytes: { max: number; avg: number; last: number };
  io_read_bytes: number;
  io_write_bytes: number;
  exit: { duration_ns: number; exit_code: number | null; signal: number | null } | null;
  aggregate: { count: number } | null;
}

export interface TopReply {
  window: string;
  window_ms: number;
  rows: TopRow[];
}

export interface NodeReply {
  window: string;
  window_ms: number;
  cpu: Fig | null;
  iowait: Fig | null;
  cpus: number | null;
  memory: Fig | null;
  memory_bytes: Fig | null;
  memory_total_bytes: number | null;
  swap: Fig | null;
  load1: Fig | null;
  load5: Fig | null;
  load15: Fig | null;
  psi: { resource: string; some: Fig | null; full: Fig | null }[];
  disk_read_bytes_per_s: number | null;
  disk_write_bytes_per_s: number | null;
  filesystems: { mount: string; usage: Fig | null }[];
  series: Record<'cpu' | 'memory' | 'load1' | 'psi_cpu' | 'psi_memory' | 'psi_io' | 'disk_read' | 'disk_write', Point[]>;
}

export interface HistoryReply {
  window: string;
  window_ms: number;
  processes: { exec_id: string; cpu: Point[]; rss: Point[]; io_read: Point[]; io_write: Point[] }[];
  missing: string[];
}

export interface ZombiesReply {
  zombies: { pid: number; exec_id: string; comm: string; ppid: number; parent_exec_id: string | null; parent_comm: string | null; zombie_ms: number; exit_time?: string }[];
  stuck_d?: { pid: number; tid: number; exec_id: string | null; comm: string; d_ms: number }[];
}

/** An NDJSON record of the event stream (docs/ndjson.md). */
export interface EventRecord {
  type: string;
  time: string;
  exec_id?: string;
  parent_exec_id?: string | null;
  pid: number;
  ppid: number;
  uid?: number | null;
  comm: string;
  filename?: string | null;
  args?: string[] | null;
  args_truncated?: boolean;
  exit_code?: number | null;
  signal?: number | null;
  core_dumped?: boolean;
  duration_ns?: number | null;
  zombie_ns?: number | null;
  thread?: boolean;
  tid?: number;
  error?: string;
  count?: number;
  programs?: string[];
  usage?: { cpu_ns: number; max_rss_kb: number };
}

export interface Evidence {
  kind: string;
  ts: string;
  summary: string;
  exec_id?: string;
}

export interface Cause {
  cause: string;
  confidence: number;
  explanation: string;
  evidence: Evidence[];
  rule?: string;
  count?: number;
  exec_id?: string | null;
  pid?: number | null;
}

export interface CheckRun {
  id: number;
  check_id: string;
  name: string;
  file: string;
  state: string;
  at: number;
  duration_ms: number;
  message: string;
}

export interface Alert {
  seq: number;
  id: string;
  check_id: string;
  name: string;
  kind: string;
  state: string;
  previous: string;
  at: number;
  message: string;
  attribution?: { causes: Cause[] } | null;
}

export interface ChecksStatus {
  dir: string;
  checks: { id: string; name: string; file: string; line: number; every_ms: number }[];
  last_reload: { at: number; ok: boolean; checks: number; files: number; errors: number; diagnostics: string[] } | null;
}

export interface Stats {
  version: string;
  pid: number;
  started_at: string;
  uptime_s: number;
  programs: string[];
  accounting: {
    generated: Record<string, number>;
    captured: Record<string, number>;
    lost: Record<string, number>;
    lost_reserve: Record<string, number>;
    lost_userspace: Record<string, number>;
    totals: { generated: number; captured: number; lost: number };
    identity_holds: boolean;
    in_flight?: number;
    seq_gaps: number;
    malformed: number;
  };
  table: Record<string, number>;
  ring: Record<string, unknown> | null;
  store: Record<string, unknown> | null;
  consumers?: Record<string, { errors: number; last_error: string | null; last_error_at: string | null }>;
  health?: Health;
}

export interface Health {
  status: 'ok' | 'degraded';
  reasons: { kind: string; message: string }[];
  version?: string;
  uptime_s?: number;
}

export interface RulesReply {
  dir: string;
  rules: number;
  diagnostics: string[];
}
