// Per-process resource windows. Live processes are sampled by the sweep (differences between
// consecutive sweeps); an exit closes the process with the exact totals of its exit record, so
// a process that lived 50 ms between two sweeps is accounted as exactly as one that lived hours.
// A process no sweep saw is one exact sample, kept as a fixed-size record (ExitedProcesses), not
// as series: at 200 exec/s those are nearly all of them.
import type { ExitEvent } from '../shared/events.js';
import type { ProcUsage } from '../shared/usage.js';
import { ExitInput, ExitedProcesses, type ExitFacts } from './exited.js';
import { KeyedWindows, type KeyEntry } from './keyed.js';
import { DEFAULT_SERIES_OPTIONS, type SeriesOptions, type WindowFigures } from './series.js';
import { nsNumberToMs, nsToMs } from './time.js';

export type ProcMetric = 'cpu' | 'rss' | 'rss_peak' | 'io_read' | 'io_write';

/** What the process table knows about (pid, start). */
export interface ProcIdentity {
  execId: string;
  comm: string;
  cgroupId: bigint | null;
  /** the table already has its exit: a sweep that still sees it must not open new windows */
  exited?: boolean;
}
/** The answer may be one object refilled at every call: read it before asking again, never keep it. */
export type Identify = (pid: number, startNs: bigint) => ProcIdentity | undefined;
export type ExecIdOf = (pid: number, startNs: bigint) => string;

export type { ExitFacts };

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
  /** The RSS (−1 for a kernel thread, which has none) at which a sample with unchanged counters
   *  only extends the last runs, so the sweep defers it; NaN when it would not (the last sample
   *  had CPU or IO, or a series is in histogram mode). */
  quietRss: number;
  exit?: ExitFacts;
}

export interface ProcWindowOptions {
  series: SeriesOptions;
  maxKeys: number;
  /** exited processes kept individually (metrics.max_exited); beyond, aggregated by comm and cgroup */
  maxExited?: number;
  /** defer the samples of idle processes (KeyedWindows.defer); false: record every one (tests
   *  compare the two) */
  deferIdle?: boolean;
}

export const DEFAULT_MAX_EXITED = 10_000;

/** Exited processes that keep their samples (series) at most, for a given metrics.max_exited. */
export const endedWithSamplesBound = (maxExited: number): number => Math.max(64, Math.floor(maxExited / 32));

/** Samples per process per longest window, at most: short sweeps or long windows coarsen the
 *  per-process samples (the differences accumulate), so a busy process costs at most this many
 *  runs per series whatever the configuration. 300 = one per second over 5 minutes. */
export const MAX_SAMPLES_PER_WINDOW = 300;

const RESOLUTION: Partial<Record<ProcMetric, number>> = { cpu: 0.01, rss: 4096, rss_peak: 4096, io_read: 1, io_write: 1 };
/** What an idle process's sample repeats: its CPU and IO deltas (0, weighted by the interval)
 *  and its RSS (weighted 1 per sample). rss_peak is recorded only when it rises. */
const DEFERRABLE = { byTime: ['cpu', 'io_read', 'io_write'] as const, bySample: ['rss'] as const };

export class ProcessWindows {
  readonly windows: KeyedWindows<ProcMetric, ProcMeta>;
  readonly exited: ExitedProcesses;
  /** reused for every exit: the exit path allocates no record */
  private readonly input = new ExitInput();
  private readonly maxWindowMs: number;
  /** exec_id of each pid at the last sweep, to notice pid reuse and exits the stream missed. */
  private sweeps = 0;
  lastSweepNs = 0n;
  private readonly minSampleNs: bigint;
  private readonly deferIdle: boolean;

  constructor(
    private readonly identify: Identify,
    private readonly execIdOf: ExecIdOf,
    opts: ProcWindowOptions = { series: DEFAULT_SERIES_OPTIONS, maxKeys: 10_000 },
  ) {
    const maxExited = opts.maxExited ?? DEFAULT_MAX_EXITED;
    this.deferIdle = opts.deferIdle ?? true;
    this.maxWindowMs = opts.series.maxWindowMs;
    this.exited = new ExitedProcesses({ capacity: maxExited, maxWindowMs: opts.series.maxWindowMs, slotMs: opts.series.slotMs });
    // Exited processes a sweep saw keep their samples while few: 1/32 of max_exited (their series
    // cost ~3–6 KB each, a record ~250 B). Past that the first ended becomes one record too
    // (retire), coarsened to one sample.
    this.windows = new KeyedWindows<ProcMetric, ProcMeta>({
      series: opts.series,
      maxKeys: opts.maxKeys,
      resolution: RESOLUTION,
      maxEnded: endedWithSamplesBound(maxExited),
      onEvict: (e) => this.retire(e),
      deferrable: DEFERRABLE,
    });
    // three quarters: a sweep timer firing a little early must not skip every other sweep
    this.minSampleNs = BigInt(Math.floor((opts.series.maxWindowMs / MAX_SAMPLES_PER_WINDOW) * 0.75 * 1e6));
  }

  private entryFor(pid: number, startNs: bigint, tMs: number, seed: ProcUsage): KeyEntry<ProcMetric, ProcMeta> | undefined {
    const who = this.identify(pid, startNs);
    const execId = who?.execId ?? this.execIdOf(pid, startNs);
    let e = this.windows.peek(execId);
    if (!e) {
      if (who?.exited) return undefined; // its exit record already closed it
      e = this.windows.entry(execId, tMs, () => ({
        pid,
        ppid: seed.ppid,
        execId,
        comm: who?.comm || seed.comm.text,
        cgroupId: who?.cgroupId ?? (seed.cgroupId || null),
        startNs,
        kthread: seed.kthread,
        quietRss: NaN,
      }));
    }
    return e;
  }

  applySweep(tNs: bigint, processes: readonly ProcUsage[]): void {
    const tMs = nsToMs(tNs);
    // Per process, bigint arithmetic allocates and comparisons do not: the sampling edge is
    // computed once, and time differences are taken as numbers (exact below 2^53 ns of uptime).
    const sampleEdgeNs = tNs - this.minSampleNs;
    const tNum = Number(tNs);
    const w = this.windows;
    // a trend samples every record, so with one armed every sample is recorded
    const deferOk = this.deferIdle && !w.armed('cpu') && !w.armed('io_read') && !w.armed('io_write') && !w.armed('rss');
    // An index loop, the seed passed as it is and the baseline updated in place: this runs once
    // a sweep for every process, mostly before V8 optimizes it, where for-of and object
    // literals allocate per process.
    for (let i = 0; i < processes.length; i++) {
      const p = processes[i]!;
      if (p.zombie && p.threads <= 1 && p.rssBytes === 0) {
        // A zombie holds no resources; its exit record already closed it.
        continue;
      }
      const e = this.entryFor(p.pid, p.startNs, tMs, p);
      if (!e || e.meta.exit) continue; // over metrics.max_processes (counted), or already closed
      // exec changes comm and the parent may change (reparenting): the sweep has the news
      const m = e.meta;
      if (p.comm.text && m.comm !== p.comm.text) m.comm = p.comm.text;
      if (p.ppid) m.ppid = p.ppid;
      if (p.cgroupId) m.cgroupId = p.cgroupId;
      const prev = e.meta.prev;
      // Too soon after this process's last sample: let the differences accumulate.
      if (prev && prev.tNs > sampleEdgeNs) continue;
      // First sight: a process born since the last sweep is measured from its start; one that
      // was already running when we started has no baseline yet.
      const base = prev ?? (this.sweeps > 0 && p.startNs > this.lastSweepNs ? { tNs: p.startNs, cpuNs: 0n, readBytes: 0, writeBytes: 0, peakRss: 0 } : undefined);
      // Counters only grow; a thread released between the iterator's reads can make one sweep
      // read low. Keeping the highest reading as the baseline turns that into a zero, not a
      // negative sample followed by a spike.
      const cpuNs = base && p.cpuNs < base.cpuNs ? base.cpuNs : p.cpuNs;
      const readBytes = base ? Math.max(p.readBytes, base.readBytes) : p.readBytes;
      const writeBytes = base ? Math.max(p.writeBytes, base.writeBytes) : p.writeBytes;
      // Idle since its last sample, which was idle too: this sample only extends its runs
      // (quietRss says the last one left CPU and IO at 0 and RSS at this value). Deferred: no
      // series is touched until someone reads them.
      if (
        deferOk && prev !== undefined && tNs > prev.tNs && m.quietRss === (p.kthread ? -1 : p.rssBytes) &&
        cpuNs === prev.cpuNs && readBytes === prev.readBytes && writeBytes === prev.writeBytes && p.peakRssBytes <= prev.peakRss
      ) {
        w.defer(e, tMs, (tNum - Number(prev.tNs)) / 1e9);
        prev.tNs = tNs;
        continue;
      }
      let idle = false;
      if (base && tNs > base.tNs) {
        const dtNs = tNum - Number(base.tNs);
        const dtS = dtNs / 1e9;
        // an idle process (the same total) makes no bigint
        const cpu = cpuNs === base.cpuNs ? 0 : (100 * Number(cpuNs - base.cpuNs)) / dtNs;
        w.record(e, 'cpu', tMs, cpu, dtS);
        w.record(e, 'io_read', tMs, readBytes - base.readBytes, dtS);
        w.record(e, 'io_write', tMs, writeBytes - base.writeBytes, dtS);
        idle = cpu === 0 && readBytes === base.readBytes && writeBytes === base.writeBytes;
      }
      if (!p.kthread) {
        w.record(e, 'rss', tMs, p.rssBytes, 1);
        if (!prev || p.peakRssBytes > prev.peakRss) w.record(e, 'rss_peak', tMs, p.peakRssBytes, 1);
      }
      m.quietRss = idle && deferOk && w.exact(e) ? (p.kthread ? -1 : p.rssBytes) : NaN;
      const peakRss = Math.max(p.peakRssBytes, prev?.peakRss ?? 0);
      if (prev === undefined) e.meta.prev = { tNs, cpuNs, readBytes, writeBytes, peakRss };
      else {
        prev.tNs = tNs;
        prev.cpuNs = cpuNs;
        prev.readBytes = readBytes;
        prev.writeBytes = writeBytes;
        prev.peakRss = peakRss;
      }
    }
    this.sweeps++;
    this.lastSweepNs = tNs;
    // Expiry walks every key: once every few seconds is enough (keys live for minutes).
    if (tMs - this.lastExpireMs >= 5000) {
      this.windows.expire(tMs);
      this.exited.expire(tMs);
      this.lastExpireMs = tMs;
    }
  }
  private lastExpireMs = -Infinity;

  /** Closes a process with the exact totals of its exit record. Runs once per exit: a process
   *  no sweep saw becomes one record, with no allocation here. */
  applyExit(ev: ExitEvent, execId: string, cgroupId: bigint | null): void {
    const e = this.windows.get(execId);
    if (e === undefined) return this.pushWholeLife(ev, execId, cgroupId);
    if (e.meta.exit) return;
    const tNs = ev.ktimeNs;
    const tMs = nsToMs(tNs);
    const u = ev.usage;
    const prev = e.meta.prev ?? { tNs: ev.startNs, cpuNs: 0n, readBytes: 0, writeBytes: 0, peakRss: 0 };
    const dtNs = Number(tNs - prev.tNs);
    if (dtNs > 0) {
      const dtS = dtNs / 1e9;
      this.windows.record(e, 'cpu', tMs, (100 * Math.max(0, u.cpuNs - Number(prev.cpuNs))) / dtNs, dtS);
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

  // Born and dead between two sweeps: its whole life is one exact sample, from the exit record.
  private pushWholeLife(ev: ExitEvent, execId: string, cgroupId: bigint | null): void {
    const x = this.input;
    const u = ev.usage;
    // numbers, not bigint arithmetic (which allocates): exact below 2^53 ns (104 days of uptime),
    // within a few ns after, which a percentage does not see; durations are kept exact as bigints
    const dtNs = Number(ev.ktimeNs) - Number(ev.startNs);
    const cpuNs = Number(u.cpuNs);
    const pct = dtNs > 0 ? (100 * cpuNs) / dtNs : 0;
    x.execId = execId;
    x.comm = ev.comm.text;
    x.pid = ev.pid;
    x.ppid = ev.ppid;
    x.cgroupId = cgroupId;
    x.startNs = ev.startNs;
    x.exitNs = ev.ktimeNs;
    x.t0Ms = nsNumberToMs(ev.startNs);
    x.t1Ms = nsNumberToMs(ev.ktimeNs);
    x.weightS = dtNs > 0 ? dtNs / 1e9 : 0;
    x.cpuNs = cpuNs;
    x.cpuMaxPct = x.cpuP95Pct = x.cpuLastPct = pct;
    x.rssMaxBytes = x.exitMaxRssBytes = u.maxRssKb * 1024;
    x.rssAvgBytes = x.rssLastBytes = 0; // no sweep saw its RSS; its peak is the exit record's
    x.readBytes = x.exitReadBytes = Number(u.readBytes);
    x.writeBytes = x.exitWriteBytes = Number(u.writeBytes);
    x.exitCpuNs = cpuNs;
    x.exitCode = ev.exitCode;
    x.signal = ev.signal;
    this.exited.push(x);
  }

  // An exited process with samples leaves the windows (bound of ended keys, or max_processes):
  // its samples become one record, coarsened to one sample over its time in the windows.
  private retire(e: KeyEntry<ProcMetric, ProcMeta>): void {
    const m = e.meta;
    if (!m.exit) return;
    const now = e.lastT;
    const w = this.maxWindowMs;
    const cpu = e.series.cpu?.figures(now, w);
    const rss = e.series.rss?.figures(now, w);
    const peak = e.series.rss_peak?.figures(now, w);
    const x = this.input;
    x.execId = m.execId;
    x.comm = m.comm;
    x.pid = m.pid;
    x.ppid = m.ppid;
    x.cgroupId = m.cgroupId;
    x.startNs = m.startNs;
    x.exitNs = m.exit.exitNs;
    x.t0Ms = Math.max(e.firstT, now - w);
    x.t1Ms = e.endedT ?? now;
    x.weightS = cpu?.weight ?? 0;
    x.cpuNs = ((cpu?.avg ?? 0) * (cpu?.weight ?? 0) * 1e9) / 100;
    x.cpuMaxPct = cpu?.max ?? 0;
    x.cpuP95Pct = cpu?.p95 ?? 0;
    x.cpuLastPct = cpu?.last ?? 0;
    x.rssMaxBytes = Math.max(rss?.max ?? 0, peak?.max ?? 0);
    x.rssAvgBytes = rss?.avg ?? 0;
    x.rssLastBytes = rss?.last ?? 0;
    x.readBytes = e.series.io_read?.figures(now, w)?.sum ?? 0;
    x.writeBytes = e.series.io_write?.figures(now, w)?.sum ?? 0;
    x.exitCpuNs = m.exit.cpuNs;
    x.exitMaxRssBytes = m.exit.maxRssBytes;
    x.exitReadBytes = m.exit.readBytes;
    x.exitWriteBytes = m.exit.writeBytes;
    x.exitCode = m.exit.exitCode;
    x.signal = m.exit.signal;
    this.exited.push(x);
  }

  figures(e: KeyEntry<ProcMetric, ProcMeta>, metric: ProcMetric, nowMs: number, windowMs: number): WindowFigures | undefined {
    return this.windows.figures(e, metric, nowMs, windowMs);
  }

  /** Approximate heap held: windows and exited records. */
  approxBytes(): number {
    return this.windows.approxBytes() + this.exited.approxBytes();
  }

  /** Heap bytes per tracked process, for the memory bound. */
  bytesPerKey(): number {
    return this.windows.size ? this.windows.approxBytes() / this.windows.size : 0;
  }
}
