// Per-process resource windows. Live processes are sampled by the sweep (differences between
// consecutive sweeps); an exit closes the process with the exact totals of its exit record, so
// a process that lived 50 ms between two sweeps is accounted as exactly as one that lived hours.
import type { ExitEvent } from '../shared/events.js';
import type { ProcUsage } from '../shared/usage.js';
import { KeyedWindows, type KeyEntry } from './keyed.js';
import { DEFAULT_SERIES_OPTIONS, type SeriesOptions, type WindowFigures } from './series.js';
import { nsToMs } from './time.js';

export type ProcMetric = 'cpu' | 'rss' | 'rss_peak' | 'io_read' | 'io_write';

/** What the process table knows about (pid, start). */
export interface ProcIdentity {
  execId: string;
  comm: string;
  cgroupId: bigint | null;
}
export type Identify = (pid: number, startNs: bigint) => ProcIdentity | undefined;
export type ExecIdOf = (pid: number, startNs: bigint) => string;

export interface ExitFacts {
  exitNs: bigint;
  durationNs: number;
  cpuNs: number;
  maxRssBytes: number;
  readBytes: number;
  writeBytes: number;
  exitCode: number | null;
  signal: number | null;
}

export interface ProcMeta {
  pid: number;
  ppid: number;
  execId: string;
  comm: string;
  cgroupId: bigint | null;
  startNs: bigint;
  kthread: boolean;
  /** Counters at the previous sweep. */
  prev?: { tNs: bigint; cpuNs: bigint; readBytes: number; writeBytes: number; peakRss: number };
  exit?: ExitFacts;
}

export interface ProcWindowOptions {
  series: SeriesOptions;
  maxKeys: number;
}

/** Samples per process per longest window, at most: short sweeps or long windows coarsen the
 *  per-process samples (the differences accumulate), so a busy process costs at most this many
 *  runs per series whatever the configuration. 300 = one per second over 5 minutes. */
export const MAX_SAMPLES_PER_WINDOW = 300;

const RESOLUTION: Partial<Record<ProcMetric, number>> = { cpu: 0.01, rss: 4096, rss_peak: 4096, io_read: 1, io_write: 1 };

export class ProcessWindows {
  readonly windows: KeyedWindows<ProcMetric, ProcMeta>;
  /** exec_id of each pid at the last sweep, to notice pid reuse and exits the stream missed. */
  private sweeps = 0;
  lastSweepNs = 0n;
  private readonly minSampleNs: bigint;

  constructor(
    private readonly identify: Identify,
    private readonly execIdOf: ExecIdOf,
    opts: ProcWindowOptions = { series: DEFAULT_SERIES_OPTIONS, maxKeys: 10_000 },
  ) {
    this.windows = new KeyedWindows<ProcMetric, ProcMeta>({ ...opts, resolution: RESOLUTION });
    // three quarters: a sweep timer firing a little early must not skip every other sweep
    this.minSampleNs = BigInt(Math.floor((opts.series.maxWindowMs / MAX_SAMPLES_PER_WINDOW) * 0.75 * 1e6));
  }

  private entryFor(pid: number, startNs: bigint, tMs: number, seed: { ppid: number; comm: string; cgroupId: bigint | null; kthread: boolean }): KeyEntry<ProcMetric, ProcMeta> | undefined {
    const who = this.identify(pid, startNs);
    const execId = who?.execId ?? this.execIdOf(pid, startNs);
    let e = this.windows.get(execId);
    if (!e) {
      e = this.windows.entry(execId, tMs, () => ({
        pid,
        ppid: seed.ppid,
        execId,
        comm: who?.comm || seed.comm,
        cgroupId: who?.cgroupId ?? seed.cgroupId,
        startNs,
        kthread: seed.kthread,
      }));
    }
    return e;
  }

  applySweep(tNs: bigint, processes: readonly ProcUsage[]): void {
    const tMs = nsToMs(tNs);
    for (const p of processes) {
      if (p.zombie && p.threads <= 1 && p.rssBytes === 0) {
        // A zombie holds no resources; its exit record already closed it.
        continue;
      }
      const e = this.entryFor(p.pid, p.startNs, tMs, { ppid: p.ppid, comm: p.comm.text, cgroupId: p.cgroupId || null, kthread: p.kthread });
      if (!e || e.meta.exit) continue; // over metrics.max_processes (counted), or already closed
      // exec changes comm and the parent may change (reparenting): the sweep has the news
      const m = e.meta;
      if (p.comm.text && m.comm !== p.comm.text) m.comm = p.comm.text;
      if (p.ppid) m.ppid = p.ppid;
      if (p.cgroupId) m.cgroupId = p.cgroupId;
      const prev = e.meta.prev;
      // Too soon after this process's last sample: let the differences accumulate.
      if (prev && tNs - prev.tNs < this.minSampleNs) continue;
      // First sight: a process born since the last sweep is measured from its start; one that
      // was already running when we started has no baseline yet.
      const base = prev ?? (this.sweeps > 0 && p.startNs > this.lastSweepNs ? { tNs: p.startNs, cpuNs: 0n, readBytes: 0, writeBytes: 0, peakRss: 0 } : undefined);
      // Counters only grow; a thread released between the iterator's reads can make one sweep
      // read low. Keeping the highest reading as the baseline turns that into a zero, not a
      // negative sample followed by a spike.
      const cpuNs = base && p.cpuNs < base.cpuNs ? base.cpuNs : p.cpuNs;
      const readBytes = base ? Math.max(p.readBytes, base.readBytes) : p.readBytes;
      const writeBytes = base ? Math.max(p.writeBytes, base.writeBytes) : p.writeBytes;
      if (base && tNs > base.tNs) {
        const dtNs = Number(tNs - base.tNs);
        const dtS = dtNs / 1e9;
        this.windows.record(e, 'cpu', tMs, (100 * Number(cpuNs - base.cpuNs)) / dtNs, dtS);
        this.windows.record(e, 'io_read', tMs, readBytes - base.readBytes, dtS);
        this.windows.record(e, 'io_write', tMs, writeBytes - base.writeBytes, dtS);
      }
      if (!p.kthread) {
        this.windows.record(e, 'rss', tMs, p.rssBytes, 1);
        if (!prev || p.peakRssBytes > prev.peakRss) this.windows.record(e, 'rss_peak', tMs, p.peakRssBytes, 1);
      }
      e.meta.prev = { tNs, cpuNs, readBytes, writeBytes, peakRss: Math.max(p.peakRssBytes, prev?.peakRss ?? 0) };
    }
    this.sweeps++;
    this.lastSweepNs = tNs;
    // Expiry walks every key: once every few seconds is enough (keys live for minutes).
    if (tMs - this.lastExpireMs >= 5000) {
      this.windows.expire(tMs);
      this.lastExpireMs = tMs;
    }
  }
  private lastExpireMs = -Infinity;

  /** Closes a process with the exact totals of its exit record. */
  applyExit(ev: ExitEvent, execId: string, cgroupId: bigint | null): void {
    const tNs = ev.ktimeNs;
    const tMs = nsToMs(tNs);
    const e = this.windows.get(execId) ?? this.windows.entry(execId, tMs, () => ({
      pid: ev.pid, ppid: ev.ppid, execId, comm: ev.comm.text, cgroupId, startNs: ev.startNs, kthread: false,
    }));
    if (!e || e.meta.exit) return;
    const u = ev.usage;
    const prev = e.meta.prev ?? { tNs: ev.startNs, cpuNs: 0n, readBytes: 0, writeBytes: 0, peakRss: 0 };
    const dtNs = Number(tNs - prev.tNs);
    if (dtNs > 0) {
      const dtS = dtNs / 1e9;
      this.windows.record(e, 'cpu', tMs, (100 * Math.max(0, Number(u.cpuNs - prev.cpuNs))) / dtNs, dtS);
      this.windows.record(e, 'io_read', tMs, Math.max(0, Number(u.readBytes) - prev.readBytes), dtS);
      this.windows.record(e, 'io_write', tMs, Math.max(0, Number(u.writeBytes) - prev.writeBytes), dtS);
    }
    const maxRss = u.maxRssKb * 1024;
    if (maxRss > prev.peakRss) this.windows.record(e, 'rss_peak', tMs, maxRss, 1);
    e.meta.exit = {
      exitNs: tNs,
      durationNs: Number(tNs - ev.startNs),
      cpuNs: Number(u.cpuNs),
      maxRssBytes: maxRss,
      readBytes: Number(u.readBytes),
      writeBytes: Number(u.writeBytes),
      exitCode: ev.exitCode,
      signal: ev.signal,
    };
    e.meta.comm = ev.comm.text || e.meta.comm;
    this.windows.end(execId, tMs);
  }

  figures(e: KeyEntry<ProcMetric, ProcMeta>, metric: ProcMetric, nowMs: number, windowMs: number): WindowFigures | undefined {
    return this.windows.figures(e, metric, nowMs, windowMs);
  }

  /** Heap bytes per tracked process, for the memory bound. */
  bytesPerKey(): number {
    return this.windows.size ? this.windows.approxBytes() / this.windows.size : 0;
  }
}
