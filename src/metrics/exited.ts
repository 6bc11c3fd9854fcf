// Exited processes, compactly. An exited process's figures are one exact sample: for one born
// since the last sweep, its whole life from the exit record's totals. So it needs no Series: it
// is one fixed-size record in a ring of typed arrays (metrics.max_exited of them). When the ring
// is full the oldest record goes to ExitAggregates: kept whole if it is among the most expensive
// of its sub-window, else added to its (comm, cgroup) aggregate. Memory is bounded by count
// whatever the exec rate, and every exit stays counted until the longest window passes it.
import { joinCgroupId, splitCgroupId } from './cgroup-id.js';
import { ExitAggregates, type AggregateCell } from './exited-aggregates.js';
import type { WindowFigures } from './series.js';
import { DOUBLE_ZERO } from '../shared/numbers.js';

/** The exit record's own totals, as `patrol top` shows them under `exit`. */
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

/** One exited process: its sample over [t0Ms, t1Ms] (t1 = the exit) and its exit record. */
export interface ExitedRecord {
  execId: string;
  comm: string;
  pid: number;
  ppid: number;
  cgroupId: bigint | null;
  t0Ms: number;
  t1Ms: number;
  /** seconds the CPU figures cover */
  weightS: number;
  /** CPU time inside the sample, ns */
  cpuNs: number;
  cpuMaxPct: number;
  cpuP95Pct: number;
  cpuLastPct: number;
  rssMaxBytes: number;
  rssAvgBytes: number;
  rssLastBytes: number;
  /** storage IO inside the sample */
  readBytes: number;
  writeBytes: number;
  exit: ExitFacts;
}

/** What push() takes. Callers fill one instance and reuse it, so an exit allocates nothing. */
export class ExitInput {
  execId = '';
  comm = '';
  pid = 0;
  ppid = 0;
  cgroupId: bigint | null = null;
  startNs = 0n;
  exitNs = 0n;
  // times, sums and sizes: doubles from the start (src/shared/numbers.ts)
  t0Ms = DOUBLE_ZERO;
  t1Ms = DOUBLE_ZERO;
  weightS = DOUBLE_ZERO;
  cpuNs = DOUBLE_ZERO;
  cpuMaxPct = DOUBLE_ZERO;
  cpuP95Pct = DOUBLE_ZERO;
  cpuLastPct = DOUBLE_ZERO;
  rssMaxBytes = DOUBLE_ZERO;
  rssAvgBytes = DOUBLE_ZERO;
  rssLastBytes = DOUBLE_ZERO;
  readBytes = DOUBLE_ZERO;
  writeBytes = DOUBLE_ZERO;
  exitCpuNs = DOUBLE_ZERO;
  exitMaxRssBytes = DOUBLE_ZERO;
  exitReadBytes = DOUBLE_ZERO;
  exitWriteBytes = DOUBLE_ZERO;
  exitCode: number | null = null;
  signal: number | null = null;
}

// Float64 columns of one record (stride F).
const T0 = 0, T1 = 1, WEIGHT = 2, CPU = 3, CPU_MAX = 4, CPU_P95 = 5, CPU_LAST = 6, RSS_MAX = 7, RSS_AVG = 8, RSS_LAST = 9,
  READ = 10, WRITE = 11, X_CPU = 12, X_RSS = 13, X_READ = 14, X_WRITE = 15, PID = 16, PPID = 17, CODE = 18, SIG = 19, CG_HI = 20, CG_LO = 21;
const F = 22;
const NONE = -1; // exit code or signal absent (no valid value is negative)

export interface ExitedOptions {
  /** records kept individually in the ring */
  capacity: number;
  maxWindowMs: number;
  /** sub-window of the aggregates: window edges are exact to one of these */
  slotMs: number;
}

export class ExitedProcesses {
  private alloc: number;
  private num: Float64Array;
  private ns: BigInt64Array; // [startNs, exitNs] per record
  private execIds: string[];
  private comms: string[];
  private head = 0;
  private count = 0;
  private newestT = -Infinity;
  readonly aggregates: ExitAggregates;
  /** records dropped because the longest window passed them */
  expired = 0;

  constructor(private readonly opts: ExitedOptions) {
    // grows by doubling up to the capacity, so a quiet machine does not hold the whole ring
    this.alloc = Math.min(opts.capacity, 1024);
    this.num = new Float64Array(this.alloc * F);
    this.ns = new BigInt64Array(this.alloc * 2);
    this.execIds = new Array<string>(this.alloc).fill('');
    this.comms = new Array<string>(this.alloc).fill('');
    this.aggregates = new ExitAggregates(opts.maxWindowMs, opts.slotMs);
  }

  /** Records in the ring (the aggregates' kept records are counted by `aggregates.keptCount`). */
  get size(): number {
    return this.count;
  }

  /** Exits that went into an aggregate row instead of a record of their own. */
  get aggregated(): number {
    return this.aggregates.aggregated;
  }

  push(x: ExitInput): void {
    if (x.t1Ms > this.newestT) this.newestT = x.t1Ms;
    this.expire(this.newestT);
    if (this.count === this.opts.capacity) {
      this.aggregates.add(this, this.head);
      this.head = (this.head + 1) % this.alloc;
      this.count--;
    } else if (this.count === this.alloc) {
      this.grow();
    }
    const i = (this.head + this.count) % this.alloc;
    this.count++;
    const n = this.num, o = i * F;
    n[o + T0] = x.t0Ms;
    n[o + T1] = x.t1Ms;
    n[o + WEIGHT] = x.weightS;
    n[o + CPU] = x.cpuNs;
    n[o + CPU_MAX] = x.cpuMaxPct;
    n[o + CPU_P95] = x.cpuP95Pct;
    n[o + CPU_LAST] = x.cpuLastPct;
    n[o + RSS_MAX] = x.rssMaxBytes;
    n[o + RSS_AVG] = x.rssAvgBytes;
    n[o + RSS_LAST] = x.rssLastBytes;
    n[o + READ] = x.readBytes;
    n[o + WRITE] = x.writeBytes;
    n[o + X_CPU] = x.exitCpuNs;
    n[o + X_RSS] = x.exitMaxRssBytes;
    n[o + X_READ] = x.exitReadBytes;
    n[o + X_WRITE] = x.exitWriteBytes;
    n[o + PID] = x.pid;
    n[o + PPID] = x.ppid;
    n[o + CODE] = x.exitCode ?? NONE;
    n[o + SIG] = x.signal ?? NONE;
    splitCgroupId(x.cgroupId, n, o + CG_HI);
    this.ns[2 * i] = x.startNs;
    this.ns[2 * i + 1] = x.exitNs;
    this.execIds[i] = x.execId;
    this.comms[i] = x.comm;
  }

  /** Drops the records and aggregates no window can reach any more. */
  expire(nowMs: number): void {
    const horizon = nowMs - this.opts.maxWindowMs;
    while (this.count > 0 && this.num[this.head * F + T1]! < horizon) {
      this.execIds[this.head] = '';
      this.head = (this.head + 1) % this.alloc;
      this.count--;
      this.expired++;
    }
    this.aggregates.expire(nowMs);
  }

  /** Every exited process kept individually whose exit falls in (startMs, nowMs], ring and kept. */
  records(startMs: number, nowMs: number): ExitedRecord[] {
    const out: ExitedRecord[] = [];
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % this.alloc;
      const t1 = this.num[i * F + T1]!;
      if (t1 > startMs && t1 <= nowMs) out.push(this.record(i));
    }
    this.aggregates.keptIn(startMs, nowMs, out);
    return out;
  }

  /** The aggregate rows over (startMs, nowMs], one per (comm, cgroup). */
  aggregateRows(startMs: number, nowMs: number): AggregateCell[] {
    return this.aggregates.cells(startMs, nowMs);
  }

  /** The newest record of execId, ring or kept. A scan: for the rare lookup (attribution). */
  find(execId: string): ExitedRecord | undefined {
    for (let k = this.count - 1; k >= 0; k--) {
      const i = (this.head + k) % this.alloc;
      if (this.execIds[i] === execId) return this.record(i);
    }
    return this.aggregates.findKept(execId);
  }

  approxBytes(): number {
    // columns, plus the exec_id strings the ring keeps alive (16 hex chars) and the kept records
    return 64 + this.alloc * (F * 8 + 16 + 16) + this.count * 40 + this.aggregates.approxBytes();
  }

  // --- columns, for ExitAggregates
  t1At(i: number): number {
    return this.num[i * F + T1]!;
  }
  cpuNsAt(i: number): number {
    return this.num[i * F + CPU]!;
  }
  rssMaxAt(i: number): number {
    return this.num[i * F + RSS_MAX]!;
  }
  weightAt(i: number): number {
    return this.num[i * F + WEIGHT]!;
  }
  readAt(i: number): number {
    return this.num[i * F + READ]!;
  }
  writeAt(i: number): number {
    return this.num[i * F + WRITE]!;
  }
  cgroupHiAt(i: number): number {
    return this.num[i * F + CG_HI]!;
  }
  cgroupLoAt(i: number): number {
    return this.num[i * F + CG_LO]!;
  }
  commAt(i: number): string {
    return this.comms[i]!;
  }

  /** The record at ring index i as an object (allocates: reads and the kept few only). */
  record(i: number): ExitedRecord {
    const n = this.num, o = i * F;
    const startNs = this.ns[2 * i]!, exitNs = this.ns[2 * i + 1]!;
    const code = n[o + CODE]!, sig = n[o + SIG]!;
    return {
      execId: this.execIds[i]!,
      comm: this.comms[i]!,
      pid: n[o + PID]!,
      ppid: n[o + PPID]!,
      cgroupId: joinCgroupId(n[o + CG_HI]!, n[o + CG_LO]!),
      t0Ms: n[o + T0]!,
      t1Ms: n[o + T1]!,
      weightS: n[o + WEIGHT]!,
      cpuNs: n[o + CPU]!,
      cpuMaxPct: n[o + CPU_MAX]!,
      cpuP95Pct: n[o + CPU_P95]!,
      cpuLastPct: n[o + CPU_LAST]!,
      rssMaxBytes: n[o + RSS_MAX]!,
      rssAvgBytes: n[o + RSS_AVG]!,
      rssLastBytes: n[o + RSS_LAST]!,
      readBytes: n[o + READ]!,
      writeBytes: n[o + WRITE]!,
      exit: {
        exitNs,
        durationNs: Number(exitNs - startNs),
        cpuNs: n[o + X_CPU]!,
        maxRssBytes: n[o + X_RSS]!,
        readBytes: n[o + X_READ]!,
        writeBytes: n[o + X_WRITE]!,
        exitCode: code === NONE ? null : code,
        signal: sig === NONE ? null : sig,
      },
    };
  }

  private grow(): void {
    const alloc = Math.min(this.opts.capacity, this.alloc * 2);
    const num = new Float64Array(alloc * F);
    const ns = new BigInt64Array(alloc * 2);
    const execIds = new Array<string>(alloc).fill('');
    const comms = new Array<string>(alloc).fill('');
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % this.alloc;
      // a loop, not set(subarray()): a view per record was most of a growth's garbage
      for (let f = 0; f < F; f++) num[k * F + f] = this.num[i * F + f]!;
      ns[2 * k] = this.ns[2 * i]!;
      ns[2 * k + 1] = this.ns[2 * i + 1]!;
      execIds[k] = this.execIds[i]!;
      comms[k] = this.comms[i]!;
    }
    this.num = num;
    this.ns = ns;
    this.execIds = execIds;
    this.comms = comms;
    this.alloc = alloc;
    this.head = 0;
  }
}

/** A record's figures in the shape a Series gives, for queries that read series (checks): one
 *  sample. undefined where the record has no such sample (RSS of a process no sweep saw). */
export function recordFigures(r: ExitedRecord, metric: 'cpu' | 'rss' | 'rss_peak' | 'io_read' | 'io_write'): WindowFigures | undefined {
  const one = (v: number, max = v, p95 = v, last = v, min = v): WindowFigures =>
    ({ count: 1, min, max, avg: v, p50: v, p90: p95, p95, p99: p95, last, sum: v, rate: 0, weight: r.weightS });
  const cpuAvg = r.weightS > 0 ? r.cpuNs / 1e7 / r.weightS : 0;
  switch (metric) {
    case 'cpu':
      return one(cpuAvg, r.cpuMaxPct, r.cpuP95Pct, r.cpuLastPct, Math.min(r.cpuLastPct, cpuAvg));
    case 'rss':
      return r.rssLastBytes > 0 ? one(r.rssAvgBytes, r.rssMaxBytes, r.rssMaxBytes, r.rssLastBytes, Math.min(r.rssAvgBytes, r.rssLastBytes)) : undefined;
    case 'rss_peak':
      return r.rssMaxBytes > 0 ? one(r.rssMaxBytes) : undefined;
    case 'io_read':
      return one(r.readBytes);
    case 'io_write':
      return one(r.writeBytes);
  }
}
