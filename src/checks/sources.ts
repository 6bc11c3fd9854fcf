// Where checks get their data. src/checks defines these small interfaces and src/app adapts the
// real stages to them (src/host for node facts, src/metrics for resource windows, the process
// table and states for processes); tests pass fakes. Every member may throw or reject: the check
// then goes `unknown` with the message as evidence. A member that is absent means "this data is
// not available here" (e.g. windows in a standalone `patrol check`): the check goes `unknown`.

export interface FsFacts {
  usage: number;
  availableBytes: number;
  inodeUsage: number;
}

/** Node facts. Fractions are 0..1. */
export interface NodeSource {
  /** busy share of all CPUs since the previous call (the first call may sample briefly) */
  cpuUsage(): Promise<number> | number;
  memory(): { totalBytes: number; availableBytes: number; swapTotalBytes: number; swapFreeBytes: number | null };
  loadavg(): [number, number, number];
  cpuCount(): number;
  /** statfs of a mount point (any path on the file system); fractions 0..1, as df computes them */
  fsUsage(path: string): Promise<FsFacts> | FsFacts;
  /** PSI average over 10, 60 or 300 s, as a fraction; throws when the kernel has no PSI */
  psi(resource: 'cpu' | 'memory' | 'io', kind: 'some' | 'full', windowS: 10 | 60 | 300): number;
  /** allocated file handles and the system maximum */
  fileHandles(): { allocated: number; max: number };
  uptimeSeconds(): number;
  /** the vmstat oom_kill counter; null when the kernel does not count (before 4.13) */
  oomKillCounter(): number | null;
}

/** A process as process checks see it. */
export interface ProcessInfo {
  pid: number;
  comm: string;
  /** ps state letter: R S D Z T I ... */
  state: string;
}

export interface ProcessSource {
  /** live (and zombie) processes, thread-group leaders only */
  list(): Promise<readonly ProcessInfo[]> | readonly ProcessInfo[];
}

/** One group's fit for a trend: `key` is the group (null when not grouped); several members
 *  may share a key (`by comm`: its processes; the node's IO: its disks), and the evaluator
 *  combines them. Values are in the DSL's base units (fractions for %, bytes/s for IO). */
export interface TrendMember {
  key: string | null;
  /** the member's own key (an exec_id by comm, a disk for the node's IO) */
  member?: string;
  fit: import('../shared/trend.js').TrendFit;
}

/** Resource windows (src/metrics adapts to this). */
export interface WindowQuery {
  /** One value per group (group null when not grouped), or null when the metric has no data
   *  for that window yet. `windowMs` is the window asked for; `usedMs` the span actually covered. */
  aggregate(
    metric: string,
    agg: string,
    windowMs: number,
    by: 'exec_id' | 'cgroup' | 'comm' | null,
    nowMs: number,
  ): { groups: { key: string | null; value: number }[]; usedMs: number } | null;
  /** Least-squares fits of the metric over the window, per group (live processes and cgroups
   *  only: an ended one has no future), t relative to nowMs; null when it has no data yet. */
  trend?(metric: string, windowMs: number, by: 'exec_id' | 'cgroup' | 'comm' | null, nowMs: number): { groups: TrendMember[]; usedMs: number } | null;
  /** The memory limit that applies to a group, bytes: a process's cgroup limit (by exec_id),
   *  a cgroup's (by cgroup), else the node's memory; null when not even that is known. */
  memoryLimit?(by: 'exec_id' | 'cgroup' | null, key: string | null): number | null;
}

/** System facts that need the file system. Defaults in collectors.ts read the real system. */
export interface SystemSource {
  /** TCP ports in LISTEN state (IPv4 and IPv6) */
  listeningPorts(): Promise<ReadonlySet<number>> | ReadonlySet<number>;
  /** mtime in ms since the epoch, or null when the path does not exist */
  mtimeMs(path: string): Promise<number | null> | number | null;
  /** the PEM text of a certificate file */
  readText(path: string, maxBytes: number): Promise<string>;
  /** bytes of a file from `offset` (up to maxBytes), and its current size / identity */
  readFrom(path: string, offset: number, maxBytes: number): Promise<{ data: Buffer; size: number; ino: number }>;
}

/** The agent's own figures (the agent adapts its loss accounting to this). */
export interface AgentSource {
  /** lifecycle records lost so far (kernel ring full + user-space queue full), monotonic */
  lostRecords(): number;
}

export interface CheckSources {
  node?: NodeSource;
  processes?: ProcessSource;
  windows?: WindowQuery;
  system?: SystemSource;
  /** event counters for count/rate/exec_rate/exit_failures (fed by the agent's live stream, or
   *  a recording) */
  events?: import('./counters.js').EventCountSource;
  /** the running agent's own figures (absent in a standalone `patrol check` and in replay) */
  agent?: AgentSource;
}
