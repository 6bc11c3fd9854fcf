// Adapts the resource windows (src/metrics) to the check engine's windowed aggregates:
// agg(metric, window) [by exec_id | cgroup | comm]. Without `by`, the metric is the node's.
// Percentages are returned as fractions (90 % = 0.9), IO as bytes per second, as the DSL expects.
import { nsToMs, recordFigures, type AggregateCell, type KeyedWindows, type KeyEntry, type ProcessWindows, type CgroupWindows, type NodeWindows, type ProcMetric, type WindowFigures, type NodeMetric, type CgroupMetric, type TrendArm } from '../metrics/index.js';
import { boottimeNs } from '../kernel/index.js';
import { readMeminfo } from '../host/index.js';
import { MemoryLimits } from './memory-limits.js';
import { Moments, fitOf, type TrendFit } from '../shared/trend.js';

type By = 'exec_id' | 'cgroup' | 'comm' | null;
export interface WindowAnswer {
  groups: { key: string | null; value: number }[];
  usedMs: number;
}

const SERIES_OF: Record<string, { proc: string; cgroup: string; node: string }> = {
  cpu: { proc: 'cpu', cgroup: 'cpu', node: 'cpu' },
  rss: { proc: 'rss', cgroup: 'memory', node: 'memory_bytes' },
  io_read: { proc: 'io_read', cgroup: 'io_read', node: 'read_bytes' },
  io_write: { proc: 'io_write', cgroup: 'io_write', node: 'write_bytes' },
};

/** One figure of the exits aggregated by (comm, cgroup), combined as `by comm` combines
 *  processes (additive aggregates add up, the others take the largest); null for RSS, which
 *  aggregated exits have no samples of. */
function pickAggregate(c: AggregateCell, metric: string, agg: string): number | null {
  const additive = agg === 'avg' || agg === 'sum';
  if (metric === 'cpu') return (additive ? c.cpuPctSum : c.cpuPctMax) * 0.01;
  if (metric === 'io_read') return agg === 'sum' ? c.readBytes : additive ? c.readRateSum : c.readRateMax;
  if (metric === 'io_write') return agg === 'sum' ? c.writeBytes : additive ? c.writeRateSum : c.writeRateMax;
  return null;
}

/** One figure of a series, in the DSL's units. IO series hold bytes per sample interval. */
function pick(f: WindowFigures, metric: string, agg: string): number {
  const io = metric === 'io_read' || metric === 'io_write';
  const perSecond = io ? (f.weight > 0 ? f.count / f.weight : 1) : 1; // samples per second
  const scale = metric === 'cpu' ? 0.01 : 1;
  if (agg === 'avg') return (io ? (f.weight > 0 ? f.sum / f.weight : 0) : f.avg) * scale;
  if (agg === 'sum') return f.sum * scale;
  if (agg === 'min' || agg === 'max' || agg === 'p50' || agg === 'p90' || agg === 'p95' || agg === 'p99') return f[agg] * scale * perSecond;
  throw new Error(`unknown aggregate ${agg}`);
}

/** A fit in the DSL's units: CPU percent → fraction. */
function scaled(f: TrendFit, k: number): TrendFit {
  return k === 1 ? f : { ...f, slope: f.slope * k, level: f.level * k, rise: f.rise * k, fall: f.fall * k, last: f.last * k };
}

export function windowQuery(processes: ProcessWindows, cgroups: CgroupWindows, node: NodeWindows, nowMs: () => number = () => nsToMs(boottimeNs())) {
  const moments = new Moments();
  /** the fit of one key's compact series over the window (armed by this very ask) */
  function fitKey<M extends string, Meta>(kw: KeyedWindows<M, Meta>, e: KeyEntry<M, Meta>, arm: TrendArm, windowMs: number, now: number, scale: number): TrendFit | null {
    const tb = kw.trendOf(e, arm);
    if (tb === undefined) return null;
    moments.reset();
    tb.sums(now, windowMs, moments, now);
    return moments.n === 0 ? null : scaled(fitOf(moments, 0), scale);
  }
  const limits = new MemoryLimits(processes, cgroups, () => {
    const t = node.last?.memory.totalBytes ?? readMeminfo().totalBytes;
    return t > 0 ? t : null;
  });
  return {
    aggregate(metric: string, agg: string, windowMs: number, by: By): WindowAnswer | null {
      const names = SERIES_OF[metric];
      if (!names) throw new Error(`unknown windowed metric ${metric}`);
      const now = nowMs();
      const used = (firstT: number) => Math.min(windowMs, Math.max(0, now - firstT));
      if (by === null) {
        if (metric === 'io_read' || metric === 'io_write') {
          // The node's IO is the sum over whole disks (for max and percentiles, an upper bound:
          // the disks' peaks need not coincide).
          let total: number | null = null;
          let firstT = now;
          for (const e of node.windows.values()) {
            if (e.meta.kind !== 'disk') continue;
            const g = e.series[names.node as 'read_bytes']?.figures(now, windowMs);
            if (!g) continue;
            total = (total ?? 0) + pick(g, metric, agg);
            firstT = Math.min(firstT, e.firstT);
          }
          return total === null ? null : { groups: [{ key: null, value: total }], usedMs: used(firstT) };
        }
        const e = node.windows.get('node');
        const f = e?.series[names.node as 'cpu']?.figures(now, windowMs);
        if (!e || !f) return null;
        return { groups: [{ key: null, value: pick(f, metric, agg) }], usedMs: used(e.firstT) };
      }
      const groups: { key: string | null; value: number }[] = [];
      let firstT = now;
      if (by === 'cgroup') {
        for (const e of cgroups.windows.values()) {
          const f = e.series[names.cgroup as 'cpu']?.figures(now, windowMs);
          if (!f) continue;
          groups.push({ key: e.meta.path, value: pick(f, metric, agg) });
          firstT = Math.min(firstT, e.firstT);
        }
      } else {
        const byComm = new Map<string, number>();
        const additive = agg === 'avg' || agg === 'sum';
        const add = (execId: string, comm: string, v: number) => {
          if (by === 'exec_id') groups.push({ key: execId, value: v });
          else byComm.set(comm, additive ? (byComm.get(comm) ?? 0) + v : Math.max(byComm.get(comm) ?? -Infinity, v));
        };
        for (const e of processes.windows.values()) {
          const f = e.series[names.proc as 'cpu']?.figures(now, windowMs);
          if (!f) continue;
          firstT = Math.min(firstT, e.firstT);
          add(e.meta.execId, e.meta.comm, pick(f, metric, agg));
        }
        // exited processes kept as records: one sample each
        for (const r of processes.exited.records(now - windowMs, now)) {
          const f = recordFigures(r, names.proc as ProcMetric);
          if (!f) continue;
          firstT = Math.min(firstT, r.t0Ms);
          add(r.execId, r.comm, pick(f, metric, agg));
        }
        // exits aggregated by (comm, cgroup) have no exec_id: they count by comm only
        if (by === 'comm') {
          for (const c of processes.exited.aggregateRows(now - windowMs, now)) {
            const v = pickAggregate(c, metric, agg);
            if (v !== null) add('', c.comm, v);
          }
        }
        for (const [k, v] of byComm) groups.push({ key: k, value: v });
      }
      return groups.length ? { groups, usedMs: used(firstT) } : null;
    },

    /** Least-squares fits per group over the window: live processes and cgroups only. Members
     *  that share a key (by comm; the node's disks) come one by one; the DSL combines them. */
    trend(metric: string, windowMs: number, by: By): { groups: { key: string | null; member?: string; fit: TrendFit }[]; usedMs: number } | null {
      const names = SERIES_OF[metric];
      if (!names) throw new Error(`unknown windowed metric ${metric}`);
      const now = nowMs();
      const io = metric === 'io_read' || metric === 'io_write';
      const scale = metric === 'cpu' ? 0.01 : 1;
      const out: { key: string | null; member?: string; fit: TrendFit }[] = [];
      let firstT = now;
      if (by === null) {
        const nw = node.windows;
        const arm = nw.armTrend(names.node as NodeMetric, windowMs, now, io);
        for (const e of nw.values()) {
          const mine = io ? e.meta.kind === 'disk' : e.key === 'node';
          if (!mine) continue;
          const f = fitKey(nw, e, arm, windowMs, now, scale);
          if (f === null) continue;
          out.push({ key: null, member: e.meta.name, fit: f });
          firstT = Math.min(firstT, e.firstT);
        }
      } else if (by === 'cgroup') {
        const cw = cgroups.windows;
        const arm = cw.armTrend(names.cgroup as CgroupMetric, windowMs, now, io);
        for (const e of cw.values()) {
          if (e.endedT !== undefined) continue;
          const f = fitKey(cw, e, arm, windowMs, now, scale);
          if (f === null) continue;
          out.push({ key: e.meta.path, fit: f });
          firstT = Math.min(firstT, e.firstT);
        }
      } else {
        const pw = processes.windows;
        const arm = pw.armTrend(names.proc as ProcMetric, windowMs, now, io);
        for (const e of pw.values()) {
          if (e.endedT !== undefined || e.meta.exit !== undefined) continue;
          const f = fitKey(pw, e, arm, windowMs, now, scale);
          if (f === null) continue;
          out.push({ key: by === 'exec_id' ? e.meta.execId : e.meta.comm, member: e.meta.execId, fit: f });
          firstT = Math.min(firstT, e.firstT);
        }
      }
      return out.length ? { groups: out, usedMs: Math.min(windowMs, Math.max(0, now - firstT)) } : null;
    },

    /** The memory limit of a group: by exec_id the process's cgroup's, by cgroup that
     *  cgroup's, else (or when none is set) the node's memory (memory-limits.ts). */
    memoryLimit(by: 'exec_id' | 'cgroup' | null, key: string | null): number | null {
      if (by === null || key === null) return limits.node();
      return by === 'cgroup' ? limits.ofCgroup(key) : limits.ofProcess(key);
    },
  };
}

/** RSS samples of one process for the attribution engine ("grew from … to … in …"). The peak
 *  from the exit record or hiwater is merged in, so a process killed at its peak shows it. */
export function rssFacts(processes: ProcessWindows) {
  return {
    rss(execId: string, windowMs: number, nowNs: bigint): { tNs: bigint; bytes: number }[] {
      const e = processes.windows.get(execId);
      const now = nsToMs(nowNs);
      if (!e) {
        // an exited process kept as a record: its one figure is the exit record's peak
        const r = processes.exited.find(execId);
        if (!r || r.t1Ms <= now - windowMs || r.t1Ms > now || r.rssMaxBytes <= 0) return [];
        return [{ tNs: BigInt(Math.round(r.t1Ms * 1000)) * 1000n, bytes: r.rssMaxBytes }];
      }
      const pts = [...(e.series.rss?.points(now, windowMs) ?? []), ...(e.series.rss_peak?.points(now, windowMs) ?? [])];
      pts.sort((a, b) => a.t - b.t);
      return pts.map((p) => ({ tNs: BigInt(Math.round(p.t * 1000)) * 1000n, bytes: p.v }));
    },
  };
}
