// `patrol top` rows: the processes with the most CPU, memory or IO over a window, exited ones
// included (their last samples come from the exit record).
import { cgroupOwner } from '../host/index.js';
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
  /** exact totals from the exit record; null while alive */
  exit: { ktime_ns: string; duration_ns: number; cpu_ns: number; max_rss_bytes: number; read_bytes: number; write_bytes: number; exit_code: number | null; signal: number | null } | null;
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
    const path = m.cgroupId !== null && m.cgroupId !== 0n ? q.resolveCgroup?.(m.cgroupId) : undefined;
    const x = m.exit;
    rows.push({
      pid: m.pid,
      ppid: m.ppid,
      exec_id: m.execId,
      comm: m.comm,
      cgroup_id: m.cgroupId !== null ? String(m.cgroupId) : null,
      cgroup: path ?? null,
      owner: path !== undefined ? cgroupOwner(path).name : null,
      exited: x !== undefined,
      cpu: { avg: round(cpu?.avg ?? 0), p95: round(cpu?.p95 ?? 0), max: round(cpu?.max ?? 0), last: round(cpu?.last ?? 0) },
      cpu_seconds: round(((cpu?.avg ?? 0) * (cpu?.weight ?? 0)) / 100, 3),
      rss_bytes: { max: Math.max(rss?.max ?? 0, peak?.max ?? 0), avg: Math.round(rss?.avg ?? 0), last: rss?.last ?? 0 },
      io_read_bytes: rd?.sum ?? 0,
      io_write_bytes: wr?.sum ?? 0,
      exit: x
        ? { ktime_ns: String(x.exitNs), duration_ns: x.durationNs, cpu_ns: x.cpuNs, max_rss_bytes: x.maxRssBytes, read_bytes: x.readBytes, write_bytes: x.writeBytes, exit_code: x.exitCode, signal: x.signal }
        : null,
    });
  }
  const key: Record<TopSort, (r: TopRow) => number> = {
    cpu: (r) => r.cpu_seconds,
    rss: (r) => r.rss_bytes.max,
    io: (r) => r.io_read_bytes + r.io_write_bytes,
  };
  rows.sort((a, b) => key[q.sort](b) - key[q.sort](a) || a.pid - b.pid);
  return rows.slice(0, q.limit);
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
    g.processes++;
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
