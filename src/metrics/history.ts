// The windows as pictures need them: per-window figures and the samples themselves as points,
// for the node strip (GET /v1/node) and per-process charts and sparklines (GET /v1/history).
// Rows are snake_case and JSON-ready, like TopRow. Times are converted by the caller's clock
// (the windows run on CLOCK_BOOTTIME ms; clients want wall time).
import type { NodeMetric, NodeWindows } from './node.js';
import type { ProcessWindows } from './processes.js';
import type { WindowFigures } from './series.js';
import type { KeyEntry } from './keyed.js';

/** [wall ms, value] */
export type Point = [number, number];

export interface Fig {
  avg: number;
  p95: number;
  max: number;
  last: number;
}

export interface NodeStrip {
  /** busy CPU, % of all CPUs */
  cpu: Fig | null;
  iowait: Fig | null;
  steal: Fig | null;
  /** CPUs of the node (from /proc/stat) */
  cpus: number | null;
  /** (total − available) / total, % */
  memory: Fig | null;
  memory_bytes: Fig | null;
  memory_total_bytes: number | null;
  swap: Fig | null;
  load1: Fig | null;
  load5: Fig | null;
  load15: Fig | null;
  /** pressure stall, % of time (the kernel's avg10, sampled) */
  psi: { resource: string; some: Fig | null; full: Fig | null }[];
  /** whole disks together, bytes/s over the window */
  disk_read_bytes_per_s: number | null;
  disk_write_bytes_per_s: number | null;
  disks: { device: string; read_bytes_per_s: number; write_bytes_per_s: number; busy: Fig | null }[];
  filesystems: { mount: string; usage: Fig | null; inode_usage: Fig | null }[];
  net: { interface: string; rx_bytes_per_s: number; tx_bytes_per_s: number }[];
  /** the samples in the window, oldest first (rates in bytes/s) */
  series: {
    cpu: Point[];
    memory: Point[];
    load1: Point[];
    psi_cpu: Point[];
    psi_memory: Point[];
    psi_io: Point[];
    disk_read: Point[];
    disk_write: Point[];
  };
}

export interface ProcessHistory {
  exec_id: string;
  /** % of one CPU per sample */
  cpu: Point[];
  rss: Point[];
  /** storage IO, bytes/s per sample */
  io_read: Point[];
  io_write: Point[];
}

const r2 = (x: number) => Math.round(x * 100) / 100;

function fig(f: WindowFigures | undefined): Fig | null {
  return f === undefined ? null : { avg: r2(f.avg), p95: r2(f.p95), max: r2(f.max), last: r2(f.last) };
}

type AnyEntry = KeyEntry<string, unknown>;

function pts(e: AnyEntry | undefined, metric: string, nowMs: number, windowMs: number, toWall: (bootMs: number) => number, perSecond = false): Point[] {
  const s = e?.series[metric];
  if (s === undefined) return [];
  return s.points(nowMs, windowMs, perSecond).map((p) => [Math.round(toWall(p.t)), r2(p.v)] as Point);
}

export function nodeStrip(node: NodeWindows, nowMs: number, windowMs: number, toWall: (bootMs: number) => number): NodeStrip {
  const w = node.windows;
  const n = w.get('node');
  const f = (key: string, m: NodeMetric) => {
    const e = w.get(key);
    return e === undefined ? undefined : w.figures(e, m, nowMs, windowMs);
  };
  const rate = (key: string, m: NodeMetric) => {
    const x = f(key, m);
    return x === undefined || x.weight <= 0 ? null : r2(x.sum / x.weight);
  };
  const psi: NodeStrip['psi'] = [];
  const disks: NodeStrip['disks'] = [];
  const filesystems: NodeStrip['filesystems'] = [];
  const net: NodeStrip['net'] = [];
  for (const e of w.values()) {
    const { kind, name } = e.meta;
    if (kind === 'psi') psi.push({ resource: name, some: fig(f(e.key, 'psi_some')), full: fig(f(e.key, 'psi_full')) });
    else if (kind === 'disk') disks.push({ device: name, read_bytes_per_s: rate(e.key, 'read_bytes') ?? 0, write_bytes_per_s: rate(e.key, 'write_bytes') ?? 0, busy: fig(f(e.key, 'busy')) });
    else if (kind === 'fs') filesystems.push({ mount: name, usage: fig(f(e.key, 'usage')), inode_usage: fig(f(e.key, 'inode_usage')) });
    else if (kind === 'net') net.push({ interface: name, rx_bytes_per_s: rate(e.key, 'rx_bytes') ?? 0, tx_bytes_per_s: rate(e.key, 'tx_bytes') ?? 0 });
  }
  const order = ['cpu', 'memory', 'io', 'irq'];
  psi.sort((a, b) => order.indexOf(a.resource) - order.indexOf(b.resource));
  const last = node.last;
  const p = (key: string, m: NodeMetric, perSecond = false) => pts(w.get(key) as AnyEntry | undefined, m, nowMs, windowMs, toWall, perSecond);
  return {
    cpu: fig(f('node', 'cpu')),
    iowait: fig(f('node', 'iowait')),
    steal: fig(f('node', 'steal')),
    cpus: last ? last.cpu.perCpu.length : null,
    memory: fig(f('node', 'memory')),
    memory_bytes: fig(f('node', 'memory_bytes')),
    memory_total_bytes: last ? last.memory.totalBytes : null,
    swap: fig(f('node', 'swap')),
    load1: fig(f('node', 'load1')),
    load5: fig(f('node', 'load5')),
    load15: fig(f('node', 'load15')),
    psi,
    disk_read_bytes_per_s: n ? rate('node', 'disk_read_bytes') : null,
    disk_write_bytes_per_s: n ? rate('node', 'disk_write_bytes') : null,
    disks,
    filesystems,
    net,
    series: {
      cpu: p('node', 'cpu'),
      memory: p('node', 'memory'),
      load1: p('node', 'load1'),
      psi_cpu: p('psi:cpu', 'psi_some'),
      psi_memory: p('psi:memory', 'psi_some'),
      psi_io: p('psi:io', 'psi_some'),
      disk_read: p('node', 'disk_read_bytes', true),
      disk_write: p('node', 'disk_write_bytes', true),
    },
  };
}

/** The samples of one process in the window; null when the windows do not hold it (never
 *  swept, or exited and kept only as a record). */
export function processHistory(pw: ProcessWindows, execId: string, nowMs: number, windowMs: number, toWall: (bootMs: number) => number): ProcessHistory | null {
  const e = pw.windows.get(execId) as AnyEntry | undefined;
  if (e === undefined) return null;
  return {
    exec_id: execId,
    cpu: pts(e, 'cpu', nowMs, windowMs, toWall),
    rss: pts(e, 'rss', nowMs, windowMs, toWall),
    io_read: pts(e, 'io_read', nowMs, windowMs, toWall, true),
    io_write: pts(e, 'io_write', nowMs, windowMs, toWall, true),
  };
}
