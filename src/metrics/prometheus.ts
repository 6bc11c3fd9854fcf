// /metrics in the Prometheus text format (prom-client). Cardinality is bounded by construction:
// node series are fixed, cgroups are capped (metrics.cgroups_max), processes are only the top N
// by CPU plus the top N by memory, and per-key window figures are exported for one window.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CgroupWindows } from './cgroups.js';
import { MAX_DISKS, MAX_INTERFACES, MAX_MOUNTS, type NodeWindows } from './node.js';
import type { ProcessWindows } from './processes.js';
import { topRows } from './top.js';

export interface AgentHealth {
  /** captured events per type */
  events: Record<string, bigint>;
  lostKernel: Record<string, bigint>;
  lostUserspace: Record<string, bigint>;
  tableEntries: number;
  /** throws caught per event consumer (absent: none tracked) */
  consumerErrors?: Record<string, number>;
  /** kinds of the current degradation reasons (store, consumer, loss, sensor, identity); empty when ok */
  degraded?: string[];
}

export interface PrometheusSources {
  node: NodeWindows;
  cgroups: CgroupWindows;
  processes: ProcessWindows;
  health: () => AgentHealth;
  nowMs: () => number;
  /** windows of the node figures, ms → label ("10s") */
  windows: Array<{ ms: number; label: string }>;
  /** the one window of per-cgroup and per-process figures */
  keyWindow: { ms: number; label: string };
  topN: number;
}

const STATS = ['avg', 'p95', 'max'] as const;

export class PatrolMetrics {
  readonly registry = new Registry();
  readonly sweepSeconds: Histogram<'source'>;

  constructor(private readonly src: PrometheusSources) {
    const r = this.registry;
    // The event-loop lag monitor samples on a timer of this resolution: prom-client's default
    // (10 ms) woke the agent 100 times a second, most of its idle CPU. One sample a second
    // still shows a stalled loop.
    collectDefaultMetrics({ register: r, prefix: 'patrol_agent_', eventLoopMonitoringPrecision: 1000 });
    const self = this;
    const g = <L extends string>(name: string, help: string, labelNames: L[], collect: (this: Gauge<L>) => void) =>
      new Gauge<L>({ name, help, labelNames, registers: [r], collect() { this.reset(); collect.call(this); } });
    // Kernel counters exported as Prometheus counters: reset and set to the kernel's total on
    // every scrape (the kernel keeps the monotonic value; rate() works on it).
    const counter = (name: string, help: string, labelNames: string[], collect: (this: Counter<string>) => void) =>
      new Counter({ name, help, labelNames, registers: [r], collect() { this.reset(); collect.call(this); } });

    g('patrol_node_cpu_percent', 'Busy CPU, percent of all CPUs, over a window', ['window', 'stat'], function () {
      self.windowed(this, 'node', 'cpu');
    });
    g('patrol_node_memory_used_percent', 'Memory in use ((total - available) / total), percent, over a window', ['window', 'stat'], function () {
      self.windowed(this, 'node', 'memory');
    });
    g('patrol_node_memory_bytes', 'Memory, bytes', ['kind'], function () {
      const m = src.node.last?.memory;
      if (!m) return;
      this.set({ kind: 'total' }, m.totalBytes);
      this.set({ kind: 'available' }, m.availableBytes);
      this.set({ kind: 'used' }, m.usedBytes);
      this.set({ kind: 'swap_total' }, m.swapTotalBytes);
      this.set({ kind: 'swap_free' }, m.swapFreeBytes);
    });
    g('patrol_node_load', 'Load average', ['period'], function () {
      const l = src.node.last?.load;
      if (!l) return;
      this.set({ period: '1m' }, l.load1);
      this.set({ period: '5m' }, l.load5);
      this.set({ period: '15m' }, l.load15);
    });
    g('patrol_node_pressure_percent', 'PSI: share of time stalled, percent, kernel averages', ['resource', 'kind', 'period'], function () {
      for (const [res, p] of Object.entries(src.node.last?.psi ?? {})) {
        for (const kind of ['some', 'full'] as const) {
          const line = p[kind];
          if (!line) continue;
          this.set({ resource: res, kind, period: '10s' }, line.avg10);
          this.set({ resource: res, kind, period: '60s' }, line.avg60);
          this.set({ resource: res, kind, period: '300s' }, line.avg300);
        }
      }
    });
    counter('patrol_node_disk_bytes_total', 'Bytes read and written per block device', ['device', 'direction'], function () {
      for (const d of src.node.last?.disks ?? []) {
        this.inc({ device: d.device, direction: 'read' }, d.readBytes);
        this.inc({ device: d.device, direction: 'write' }, d.writeBytes);
      }
    });
    g('patrol_node_filesystem_used_percent', 'Filesystem space in use, percent (as df)', ['mount'], function () {
      for (const f of src.node.last?.filesystems ?? []) this.set({ mount: f.mountPoint }, f.usagePct);
    });
    g('patrol_node_filesystem_inodes_used_percent', 'Filesystem inodes in use, percent', ['mount'], function () {
      for (const f of src.node.last?.filesystems ?? []) this.set({ mount: f.mountPoint }, f.inodeUsagePct);
    });
    g('patrol_node_filesystem_size_bytes', 'Filesystem size, bytes', ['mount'], function () {
      for (const f of src.node.last?.filesystems ?? []) this.set({ mount: f.mountPoint }, f.totalBytes);
    });
    counter('patrol_node_network_bytes_total', 'Bytes received and sent per interface', ['interface', 'direction'], function () {
      for (const n of src.node.last?.net ?? []) {
        this.inc({ interface: n.iface, direction: 'receive' }, n.rxBytes);
        this.inc({ interface: n.iface, direction: 'transmit' }, n.txBytes);
      }
    });
    g('patrol_node_file_handles', 'Allocated and maximum file handles', ['kind'], function () {
      const f = src.node.last?.files;
      if (!f) return;
      this.set({ kind: 'allocated' }, f.allocated);
      this.set({ kind: 'max' }, f.max);
    });

    const kw = src.keyWindow;
    g('patrol_cgroup_cpu_percent', `CPU of a cgroup, percent of one CPU, over ${kw.label}`, ['cgroup', 'owner', 'stat'], function () {
      for (const e of src.cgroups.windows.values()) {
        if (e.endedT !== undefined) continue; // removed cgroups leave the exposition at once
        const f = e.series.cpu?.figures(src.nowMs(), kw.ms);
        if (!f) continue;
        for (const s of STATS) this.set({ cgroup: e.meta.path, owner: e.meta.owner.name, stat: s }, f[s]);
      }
    });
    g('patrol_cgroup_memory_bytes', 'Memory of a cgroup, bytes (memory.current, else the RSS sum of its processes)', ['cgroup', 'owner'], function () {
      for (const e of src.cgroups.windows.values()) {
        if (e.endedT !== undefined) continue; // removed cgroups leave the exposition at once
        const v = e.series.memory?.lastValue;
        if (v !== undefined && !Number.isNaN(v)) this.set({ cgroup: e.meta.path, owner: e.meta.owner.name }, v);
      }
    });
    counter('patrol_cgroup_io_bytes_total', 'Storage IO of a cgroup (io.stat), bytes', ['cgroup', 'owner', 'direction'], function () {
      for (const e of src.cgroups.windows.values()) {
        if (e.endedT !== undefined) continue; // removed cgroups leave the exposition at once
        const st = e.meta.last;
        if (st?.ioReadBytes !== undefined) this.inc({ cgroup: e.meta.path, owner: e.meta.owner.name, direction: 'read' }, st.ioReadBytes);
        if (st?.ioWriteBytes !== undefined) this.inc({ cgroup: e.meta.path, owner: e.meta.owner.name, direction: 'write' }, st.ioWriteBytes);
      }
    });
    g('patrol_cgroup_processes', 'Processes in a cgroup', ['cgroup', 'owner'], function () {
      for (const e of src.cgroups.windows.values()) {
        if (e.endedT !== undefined) continue; // removed cgroups leave the exposition at once
        const v = e.series.procs?.lastValue;
        if (v !== undefined && !Number.isNaN(v)) this.set({ cgroup: e.meta.path, owner: e.meta.owner.name }, v);
      }
    });

    g('patrol_process_cpu_percent', `CPU of the top processes, percent of one CPU, over ${kw.label}`, ['pid', 'comm', 'exec_id', 'stat'], function () {
      for (const row of self.topProcesses()) for (const s of STATS) this.set({ pid: String(row.pid), comm: row.comm, exec_id: row.exec_id, stat: s }, row.cpu[s]);
    });
    g('patrol_process_rss_max_bytes', `Peak RSS of the top processes over ${kw.label}`, ['pid', 'comm', 'exec_id'], function () {
      for (const row of self.topProcesses()) this.set({ pid: String(row.pid), comm: row.comm, exec_id: row.exec_id }, row.rss_bytes.max);
    });
    g('patrol_process_io_bytes', `Storage IO of the top processes over ${kw.label}`, ['pid', 'comm', 'exec_id', 'direction'], function () {
      for (const row of self.topProcesses()) {
        this.set({ pid: String(row.pid), comm: row.comm, exec_id: row.exec_id, direction: 'read' }, row.io_read_bytes);
        this.set({ pid: String(row.pid), comm: row.comm, exec_id: row.exec_id, direction: 'write' }, row.io_write_bytes);
      }
    });

    counter('patrol_events_total', 'Lifecycle events captured, by type', ['type'], function () {
      for (const [t, n] of Object.entries(src.health().events)) this.inc({ type: t }, Number(n));
    });
    counter('patrol_events_lost_total', 'Lifecycle events lost, by type and where (kernel: ring full; userspace: queue full)', ['type', 'where'], function () {
      const h = src.health();
      for (const [t, n] of Object.entries(h.lostKernel)) this.inc({ type: t, where: 'kernel' }, Number(n));
      for (const [t, n] of Object.entries(h.lostUserspace)) this.inc({ type: t, where: 'userspace' }, Number(n));
    });
    counter('patrol_consumer_errors_total', 'Throws caught at an event consumer boundary (the event went on to the others)', ['consumer'], function () {
      for (const [c, n] of Object.entries(src.health().consumerErrors ?? {})) this.inc({ consumer: c }, n);
    });
    g('patrol_health_degraded', '1 while the agent is degraded for this kind of reason (store, consumer, loss, sensor, identity)', ['kind'], function () {
      const kinds = new Set(src.health().degraded ?? []);
      for (const k of ['store', 'consumer', 'loss', 'sensor', 'identity']) this.set({ kind: k }, kinds.has(k) ? 1 : 0);
    });
    g('patrol_process_table_entries', 'Entries in the process table (live, zombie and recently dead)', [], function () {
      this.set(src.health().tableEntries);
    });
    g('patrol_windows_keys', 'Keys held by the resource windows', ['kind'], function () {
      this.set({ kind: 'process' }, src.processes.windows.size);
      this.set({ kind: 'exited' }, src.processes.exited.size + src.processes.exited.aggregates.keptCount);
      this.set({ kind: 'exited_aggregate' }, src.processes.exited.aggregates.cellCount);
      this.set({ kind: 'cgroup' }, src.cgroups.windows.size);
      this.set({ kind: 'node' }, src.node.windows.size);
    });
    counter('patrol_windows_refused_total', 'Processes not tracked because metrics.max_processes live ones already were', [], function () {
      this.inc(src.processes.windows.refused);
    });
    counter('patrol_windows_exited_aggregated_total', 'Exited processes summed into a (comm, cgroup) aggregate because metrics.max_exited were kept', [], function () {
      this.inc(src.processes.exited.aggregated);
    });
    g('patrol_windows_bytes', 'Approximate heap held by the resource windows', [], function () {
      this.set(src.processes.approxBytes() + src.cgroups.windows.approxBytes() + src.node.windows.approxBytes());
    });
    this.sweepSeconds = new Histogram({
      name: 'patrol_sweep_duration_seconds',
      help: 'Time of one resource sweep (read, decode, windows)',
      labelNames: ['source'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [r],
    });
  }

  private topCache: { at: number; rows: ReturnType<typeof topRows> } | undefined;
  /** Union of the top N by CPU and the top N by memory, computed once per scrape. */
  topProcesses(): ReturnType<typeof topRows> {
    const now = this.src.nowMs();
    if (this.topCache && now - this.topCache.at < 500) return this.topCache.rows;
    // processes only: an aggregate row is not one, and has no pid or exec_id to label
    const q = { nowMs: now, windowMs: this.src.keyWindow.ms, limit: this.src.topN, aggregates: false };
    const byCpu = topRows(this.src.processes, { ...q, sort: 'cpu' });
    const byRss = topRows(this.src.processes, { ...q, sort: 'rss' });
    const seen = new Set(byCpu.map((r) => r.exec_id));
    const rows = [...byCpu, ...byRss.filter((r) => !seen.has(r.exec_id))];
    this.topCache = { at: now, rows };
    return rows;
  }

  private windowed(gauge: Gauge<'window' | 'stat'>, key: string, metric: 'cpu' | 'memory'): void {
    const e = this.src.node.windows.get(key);
    if (!e) return;
    for (const w of this.src.windows) {
      const f = e.series[metric]?.figures(this.src.nowMs(), w.ms);
      if (!f) continue;
      for (const s of STATS) gauge.set({ window: w.label, stat: s }, f[s]);
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Upper bound on the number of series, for a given configuration (checked by a test). Mounts,
 *  disks and interfaces default to their caps in node.ts, so the bound holds on any machine. */
export function seriesBound(c: { windows: number; cgroupsMax: number; topN: number; mounts?: number; disks?: number; interfaces?: number }): number {
  const o = { mounts: MAX_MOUNTS, disks: MAX_DISKS, interfaces: MAX_INTERFACES, ...c };
  const node = 2 * o.windows * 3 + 5 + 3 + 18 + 2 * o.disks + 3 * o.mounts + 2 * o.interfaces + 2;
  const cgroup = o.cgroupsMax * (3 + 1 + 2 + 1);
  const proc = 2 * o.topN * (3 + 1 + 2);
  const agent = 5 * 2 + 5 * 2 * 2 + 1 + 5 + 1 + 1 + 13 * 2;
  return node + cgroup + proc + agent + 80; // + prom-client's default process metrics
}
