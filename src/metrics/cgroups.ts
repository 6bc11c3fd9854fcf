// Per-cgroup windows. CPU comes from the cgroup's own cpu.stat (usage_usec counts every task that
// ever ran in it, so short-lived processes are included exactly); memory from memory.current
// when the v2 hierarchy has the memory controller, else the RSS sum of the member processes; IO
// from io.stat when it has the io controller, else none (hybrid v1/v2 systems bind those
// controllers to v1).
import { CGROUP_USAGE_FILES, cgroupOwner, readCgroupStats, type CgroupFileMemo, type CgroupOwner, type CgroupStats } from '../host/index.js';
import type { ProcUsage } from '../shared/usage.js';
import { KeyedWindows } from './keyed.js';
import { DEFAULT_SERIES_OPTIONS, type SeriesOptions } from './series.js';

export type CgroupMetric = 'cpu' | 'memory' | 'io_read' | 'io_write' | 'procs';

export interface CgroupMeta {
  id: string;
  path: string;
  owner: CgroupOwner;
  prev?: { tNs: bigint; cpuUs?: number; ioRead?: number; ioWrite?: number };
  last?: CgroupStats;
  memoryFromProcesses: boolean;
  /** which of its files were absent: not asked about again every sweep (readCgroupStats) */
  files: CgroupFileMemo;
}

export type ResolveCgroup = (id: bigint) => string | undefined;

export class CgroupWindows {
  readonly windows: KeyedWindows<CgroupMetric, CgroupMeta>;
  /** cgroups beyond maxCgroups in one sweep, skipped (the bound keeps /metrics cardinality flat). */
  skipped = 0;

  constructor(
    private readonly resolve: ResolveCgroup,
    private readonly maxCgroups = 256,
    series: SeriesOptions = DEFAULT_SERIES_OPTIONS,
    private readonly readStats: (path: string, memo: CgroupFileMemo, nowMs: number) => CgroupStats = (path, memo, nowMs) => readCgroupStats(path, undefined, memo, nowMs, CGROUP_USAGE_FILES),
  ) {
    this.windows = new KeyedWindows({ series, maxKeys: maxCgroups, resolution: { cpu: 0.01, memory: 4096, io_read: 1, io_write: 1, procs: 1 } });
  }

  sample(tNs: bigint, tMs: number, processes: readonly ProcUsage[]): void {
    const members = new Map<bigint, { n: number; rss: number }>();
    for (const p of processes) {
      if (p.cgroupId === 0n || p.zombie) continue;
      const m = members.get(p.cgroupId) ?? { n: 0, rss: 0 };
      m.n++;
      m.rss += p.rssBytes;
      members.set(p.cgroupId, m);
    }
    // Cgroups already tracked stay sampled after their last member left (until the directory
    // goes): the interval in which short-lived members ran is still counted by cpu.stat.
    for (const e of this.windows.values()) {
      const id = BigInt(e.meta.id);
      if (e.endedT === undefined && !members.has(id)) members.set(id, { n: 0, rss: 0 });
    }
    // Busiest cgroups first when over the bound: by member count, a cheap proxy.
    const ids = [...members.entries()].sort((a, b) => b[1].n - a[1].n);
    if (ids.length > this.maxCgroups) this.skipped += ids.length - this.maxCgroups;
    for (const [id, m] of ids.slice(0, this.maxCgroups)) {
      const path = this.resolve(id);
      if (path === undefined) continue;
      const e = this.windows.entry(String(id), tMs, () => ({ id: String(id), path, owner: cgroupOwner(path), memoryFromProcesses: false, files: { absent: 0, recheckAtMs: 0 } }));
      if (!e) continue;
      const st = this.readStats(path, e.meta.files, tMs);
      if (m.n === 0 && st.cpuUsageUs === undefined && st.memoryCurrentBytes === undefined) {
        this.windows.end(e.meta.id, tMs); // removed: its figures stay readable until they expire
        continue;
      }
      const prev = e.meta.prev;
      const dtNs = prev ? Number(tNs - prev.tNs) : 0;
      if (prev && dtNs > 0) {
        const dtS = dtNs / 1e9;
        if (st.cpuUsageUs !== undefined && prev.cpuUs !== undefined) {
          this.windows.record(e, 'cpu', tMs, (100 * (st.cpuUsageUs - prev.cpuUs) * 1000) / dtNs, dtS);
        }
        if (st.ioReadBytes !== undefined && prev.ioRead !== undefined) this.windows.record(e, 'io_read', tMs, Math.max(0, st.ioReadBytes - prev.ioRead), dtS);
        if (st.ioWriteBytes !== undefined && prev.ioWrite !== undefined) this.windows.record(e, 'io_write', tMs, Math.max(0, st.ioWriteBytes - prev.ioWrite), dtS);
      }
      e.meta.memoryFromProcesses = st.memoryCurrentBytes === undefined;
      this.windows.record(e, 'memory', tMs, st.memoryCurrentBytes ?? m.rss, 1);
      this.windows.record(e, 'procs', tMs, m.n, 1);
      e.meta.prev = { tNs, cpuUs: st.cpuUsageUs, ioRead: st.ioReadBytes, ioWrite: st.ioWriteBytes };
      e.meta.last = st;
    }
    this.windows.expire(tMs);
  }
}
