// `patrol top` rows: the processes with the most CPU, memory or IO over a window, exited ones
// included (their last samples come from the exit record), and the exits beyond
// metrics.max_exited as one aggregate row per (comm, cgroup).
import { cgroupOwner } from '../host/index.js';
import type { ExitedRecord, ExitFacts } from './exited.js';
import type { AggregateCell } from './exited-aggregates.js';
import type { ProcessWindows } from './processes.js';

export type TopSort = 'cpu' | 'rss' | 'io';

export interface TopRow {
  pid: number;
  ppid: number;
  exec_id: string;
  comm: string;
  cgroup_id: string | null;
  cgroup: string | null;
  owner: string | null;
  exited: boolean;
  /** percent of one CPU over the part of the window the process was alive */
  cpu: { avg: number; p95: number; max: number; last: number };
  /** CPU time used inside the window, s: the sort key for "most CPU" */
  cpu_seconds: number;
  rss_bytes: { max: number; avg: number; last: number };
  /** bytes of storage IO inside the window */
  io_read_bytes: number;
  io_write_bytes: number;
  /** exact totals from the exit record; null while alive, and on aggregate rows */
  exit: { ktime_ns: string; duration_ns: number; cpu_ns: number; max_rss_bytes: number; read_bytes: number; write_bytes: number; exit_code: number | null; signal: number | null } | null;
  /** null for one process; on a row of exits aggregated by (comm, cgroup), what it sums */
  aggregate: TopAggregate | null;
}

/** Exited processes summed into one row: pid and ppid 0, exec_id '', exited true, exit null. */
export interface TopAggregate {
  /** processes in the row */
  count: number;
  /** Σ of their CPU time, ns (exact: each exit record's own figure) */
  cpu_ns: number;
  /** Σ of their lifetimes (the time their CPU figures cover), ns */
  duration_ns: number;
}

export interface TopGroup {
  cgroup: string | null;
  cgroup_id: string | null;
  owner: string | null;
  processes: number;
  /** avg: percent of one CPU over the whole window; max: sum of the members' maxima (an upper bound) */
  cpu: { avg: number; max: number };
  cpu_seconds: number;
  rss_bytes: { max: number };
  io_read_bytes: number;
  io_write_bytes: number;
  rows: TopRow[];
}

export interface TopQuery {
  nowMs: number;
  windowMs: number;
  sort: TopSort;
  limit: number;
  resolveCgroup?: (id: bigint) => string | undefined;
  /** include aggregate rows (default true; the Prometheus exposition wants processes only) */
  aggregates?: boolean;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export function topRows(pw: ProcessWindows, q: TopQuery): TopRow[] {
  const rows: TopRow[] = [];
  const start = q.nowMs - q.windowMs;
  for (const e of pw.windows.values()) {
    if (e.lastT <= start) continue;
    const cpu = pw.figures(e, 'cpu', q.nowMs, q.windowMs);
    const rss = pw.figures(e, 'rss', q.nowMs, q.windowMs);
    const peak = pw.figures(e, 'rss_peak', q.nowMs, q.windowMs);
    const rd = pw.figures(e, 'io_read', q.nowMs, q.windowMs);
    const wr = pw.figures(e, 'io_write', q.nowMs, q.windowMs);
    if (!cpu && !rss && !peak) continue;
    const m = e.meta;
    const x = m.exit;
    rows.push({
      pid: m.pid,
      ppid: m.ppid,
      exec_id: m.execId,
      comm: m.comm,
      ...place(m.cgroupId, q),
      exited: x !== undefined,
      cpu: { avg: round(cpu?.avg ?? 0), p95: round(cpu?.p95 ?? 0), max: round(cpu?.max ?? 0), last: round(cpu?.last ?? 0) },
      cpu_seconds: round(((cpu?.avg ?? 0) * (cpu?.weight ?? 0)) / 100, 3),
      rss_bytes: { max: Math.max(rss?.max ?? 0, peak?.max ?? 0), avg: Math.round(rss?.avg ?? 0), last: rss?.last ?? 0 },
      io_read_bytes: rd?.sum ?? 0,
      io_write_bytes: wr?.sum ?? 0,
      exit: x ? exitFields(x) : null,
      aggregate: null,
    });
  }
  for (const r of pw.exited.records(start, q.nowMs)) rows.push(recordRow(r, q));
  if (q.aggregates !== false) for (const c of pw.exited.aggregateRows(start, q.nowMs)) rows.push(aggregateRow(c, q));
  const key: Record<TopSort, (r: TopRow) => number> = {
    cpu: (r) => r.cpu_seconds,
    rss: (r) => r.rss_bytes.max,
    io: (r) => r.io_read_bytes + r.io_write_bytes,
  };
  rows.sort((a, b) => key[q.sort](b) - key[q.sort](a) || a.pid - b.pid || (a.comm < b.comm ? -1 : a.comm > b.comm ? 1 : 0));
  return rows.slice(0, q.limit);
}

function place(cgroupId: bigint | null, q: TopQuery): Pick<TopRow, 'cgroup_id' | 'cgroup' | 'owner'> {
  const path = cgroupId !== null && cgroupId !== 0n ? q.resolveCgroup?.(cgroupId) : undefined;
  return { cgroup_id: cgroupId !== null ? String(cgroupId) : null, cgroup: path ?? null, owner: path !== undefined ? cgroupOwner(path).name : null };
}

const exitFields = (x: ExitFacts): NonNullable<TopRow['exit']> => ({
  ktime_ns: String(x.exitNs), duration_ns: x.durationNs, cpu_ns: x.cpuNs, max_rss_bytes: x.maxRssBytes, read_bytes: x.readBytes, write_bytes: x.writeBytes, exit_code: x.exitCode, signal: x.signal,
});

/** An exited process kept as one record: its one sample gives every figure. */
function recordRow(r: ExitedRecord, q: TopQuery): TopRow {
  const avg = r.weightS > 0 ? r.cpuNs / 1e7 / r.weightS : 0;
  return {
    pid: r.pid,
    ppid: r.ppid,
    exec_id: r.execId,
    comm: r.comm,
    ...place(r.cgroupId, q),
    exited: true,
    cpu: { avg: round(avg), p95: round(r.cpuP95Pct), max: round(r.cpuMaxPct), last: round(r.cpuLastPct) },
    cpu_seconds: round(r.cpuNs / 1e9, 3),
    rss_bytes: { max: r.rssMaxBytes, avg: Math.round(r.rssAvgBytes), last: r.rssLastBytes },
    io_read_bytes: r.readBytes,
    io_write_bytes: r.writeBytes,
    exit: exitFields(r.exit),
    aggregate: null,
  };
}

/** Exits summed by (comm, cgroup). cpu.avg: their CPU time over their lifetimes; p95 and max:
 *  the highest of their averages (an upper bound); last: the newest one's. */
function aggregateRow(c: AggregateCell, q: TopQuery): TopRow {
  return {
    pid: 0,
    ppid: 0,
    exec_id: '',
    comm: c.comm,
    ...place(c.cgroupId, q),
    exited: true,
    cpu: { avg: round(c.weightS > 0 ? c.cpuNs / 1e7 / c.weightS : 0), p95: round(c.cpuPctMax), max: round(c.cpuPctMax), last: round(c.lastPct) },
    cpu_seconds: round(c.cpuNs / 1e9, 3),
    rss_bytes: { max: c.rssMaxBytes, avg: 0, last: 0 },
    io_read_bytes: c.readBytes,
    io_write_bytes: c.writeBytes,
    exit: null,
    aggregate: { count: c.count, cpu_ns: c.cpuNs, duration_ns: Math.round(c.weightS * 1e9) },
  };
}

/** Rows grouped by cgroup; the group figures are sums over all its processes in the window. */
export function topGroups(pw: ProcessWindows, q: TopQuery): TopGroup[] {
  const all = topRows(pw, { ...q, limit: Number.MAX_SAFE_INTEGER });
  const groups = new Map<string, TopGroup>();
  for (const r of all) {
    const k = r.cgroup_id ?? '';
    let g = groups.get(k);
    if (!g) {
      g = { cgroup: r.cgroup, cgroup_id: r.cgroup_id, owner: r.owner, processes: 0, cpu: { avg: 0, max: 0 }, cpu_seconds: 0, rss_bytes: { max: 0 }, io_read_bytes: 0, io_write_bytes: 0, rows: [] };
      groups.set(k, g);
    }
    g.processes += r.aggregate?.count ?? 1;
    g.cpu.max = round(g.cpu.max + r.cpu.max);
    g.cpu_seconds = round(g.cpu_seconds + r.cpu_seconds, 3);
    g.rss_bytes.max += r.rss_bytes.max;
    g.io_read_bytes += r.io_read_bytes;
    g.io_write_bytes += r.io_write_bytes;
    if (g.rows.length < 5) g.rows.push(r);
  }
  // The group's average is its CPU time over the whole window (members' own averages cover only
  // their lifetimes); its max and RSS max are sums of the members' peaks: upper bounds.
  for (const g of groups.values()) g.cpu.avg = round((100 * g.cpu_seconds) / (q.windowMs / 1000));
  const key: Record<TopSort, (g: TopGroup) => number> = {
    cpu: (g) => g.cpu_seconds,
    rss: (g) => g.rss_bytes.max,
    io: (g) => g.io_read_bytes + g.io_write_bytes,
  };
  return [...groups.values()].sort((a, b) => key[q.sort](b) - key[q.sort](a)).slice(0, q.limit);
}
