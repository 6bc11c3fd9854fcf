// Process states in milliseconds: one StateMachine per process, fed by lifecycle events
// (exit → Z, reap → X), the state sensor's transitions of interest (exact), and periodic sweeps
// of per-thread accounting. Answers: current state and time in it, zombies blamed on their
// parents, stuck-D threads, and run-queue latency per process and per cgroup.
import type { LifecycleEvent, StateEvent } from '../shared/events.js';
import type { ThreadSnap } from '../wire/index.js';
import { StateMachine, normalize, type Anomaly, type ProcState } from './state-machine.js';
import type { Enriched, ProcessEntry, ProcessTable } from './table.js';

export interface RqStats {
  count: number;
  p50Ns: number;
  p95Ns: number;
  maxNs: number;
}

export interface ZombieInfo {
  pid: number;
  execId: string;
  comm: string;
  ppid: number;
  parentExecId: string | null;
  parentComm: string | null;
  zombieMs: number;
  exitNs: bigint;
}

export interface StuckD {
  pid: number;
  tid: number;
  execId: string | null;
  comm: string;
  dMs: number;
}

interface ProcAcct {
  machine: StateMachine;
  /** summed run-queue histogram of the process's threads (log2 µs slots) */
  rqHist: number[];
  rqMaxNs: number;
  nvcsw: number;
  nivcsw: number;
  cgroupId: bigint;
  /** cumulative histograms kept every rqSnapNs, oldest first, to read the last window; null
   *  until a sweep sees the process (most processes live less than a sweep) */
  rqSnaps: { tNs: bigint; hist: number[] }[] | null;
  /** the states the process left, as observed (the dashboard's timeline); null until its first
   *  change, so an idle process costs nothing here */
  seen: StateLog | null;
}

/** States observed per process at most: a process flipping R/S at every sweep (2 s) keeps its
 *  last ~2 minutes; an idle one holds one entry. */
export const STATE_LOG_MAX = 64;
const NO_LETTERS = new Uint8Array(0);
const NO_SINCE = new BigInt64Array(0);
/** the run-queue histogram of a process no sweep has seen yet (never written: replaced) */
const NO_HIST: number[] = [];

/** A ring of (state, since) in typed arrays: ~0.6 KB at most per process, grown from 4 on demand.
 *  It holds the states left; the current one is the state machine's. The arrays come with the
 *  second state left: a short-lived process leaves one (R, at its exit) before its reap, and at
 *  200 exec/s a pair of typed arrays per process was 5 % of what the agent allocated. */
class StateLog {
  private letters: Uint8Array = NO_LETTERS;
  private since: BigInt64Array = NO_SINCE;
  private head = 0;
  private n = 0;

  constructor(
    private readonly first: ProcState,
    private readonly firstSinceNs: bigint,
  ) {}

  push(state: ProcState, sinceNs: bigint): void {
    if (this.letters === NO_LETTERS) {
      this.letters = new Uint8Array(4);
      this.since = new BigInt64Array(4);
      this.put(this.first, this.firstSinceNs);
    }
    this.put(state, sinceNs);
  }

  private put(state: ProcState, sinceNs: bigint): void {
    if (this.n === this.letters.length && this.n < STATE_LOG_MAX - 1) {
      const cap = Math.min(this.n * 2, STATE_LOG_MAX - 1);
      const l = new Uint8Array(cap);
      const t = new BigInt64Array(cap);
      for (let i = 0; i < this.n; i++) {
        l[i] = this.letters[(this.head + i) % this.n]!;
        t[i] = this.since[(this.head + i) % this.n]!;
      }
      this.letters = l;
      this.since = t;
      this.head = 0;
    }
    const cap = this.letters.length;
    const at = (this.head + this.n) % cap;
    this.letters[at] = state.charCodeAt(0);
    this.since[at] = sinceNs;
    if (this.n < cap) this.n++;
    else this.head = (this.head + 1) % cap;
  }

  list(): { state: ProcState; sinceNs: bigint }[] {
    if (this.letters === NO_LETTERS) return [{ state: this.first, sinceNs: this.firstSinceNs }];
    const out: { state: ProcState; sinceNs: bigint }[] = [];
    const cap = this.letters.length;
    for (let i = 0; i < this.n; i++) {
      const j = (this.head + i) % cap;
      out.push({ state: String.fromCharCode(this.letters[j]!) as ProcState, sinceNs: this.since[j]! });
    }
    return out;
  }
}

export interface ProcessStatesOptions {
  /** CLOCK_BOOTTIME now; without it run-queue figures are cumulative since the sensor started */
  now?: () => bigint;
  /** window of the run-queue percentiles (default 60 s) */
  rqWindowNs?: bigint;
}

/** Percentile from a log2 histogram: slot i covers [2^i, 2^(i+1)) µs (slot 0: [0, 2) µs),
 *  interpolated linearly inside the slot and capped by the exact maximum. */
export function histPercentile(hist: readonly number[], p: number, maxNs: number): number {
  let total = 0;
  for (const c of hist) total += c;
  if (total === 0) return 0;
  const want = p * total;
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    const c = hist[i]!;
    if (c > 0 && cum + c >= want) {
      const lo = i === 0 ? 0 : 2 ** i;
      const hi = 2 ** (i + 1);
      const us = lo + ((want - cum) / c) * (hi - lo);
      return Math.min(us * 1000, maxNs);
    }
    cum += c;
  }
  return maxNs;
}

function rqStats(hist: readonly number[], maxNs: number): RqStats {
  let count = 0;
  for (const c of hist) count += c;
  return { count, p50Ns: histPercentile(hist, 0.5, maxNs), p95Ns: histPercentile(hist, 0.95, maxNs), maxNs };
}

export class ProcessStates {
  private readonly procs = new Map<string, ProcAcct>();
  /** threads seen in D at the last sweep: tid → {since, pid, comm} */
  private dThreads: ThreadSnap[] = [];
  readonly anomalies: Anomaly[] = [];
  anomalyCount = 0;
  private readonly maxAnomaliesKept = 100;

  private readonly rqWindowNs: bigint;
  private readonly rqSnapNs: bigint;

  constructor(
    private readonly table: ProcessTable,
    private readonly onAnomaly: (a: Anomaly, pid: number) => void = () => {},
    private readonly opts: ProcessStatesOptions = {},
  ) {
    this.rqWindowNs = opts.rqWindowNs ?? 60_000_000_000n;
    // 12 snapshots per window: the window is read to within a twelfth of its length.
    this.rqSnapNs = this.rqWindowNs / 12n;
  }

  /** Run-queue histogram of the last window: the cumulative one minus the newest snapshot at
   *  least one window old (a process younger than the window: everything it has). */
  private windowHist(a: ProcAcct, nowNs: bigint | undefined): number[] {
    if (nowNs === undefined || a.rqSnaps === null || a.rqSnaps.length === 0) return a.rqHist;
    const edge = nowNs - this.rqWindowNs;
    let base: number[] | undefined;
    for (const s of a.rqSnaps) {
      if (s.tNs <= edge) base = s.hist;
      else break;
    }
    if (!base) return a.rqHist;
    return a.rqHist.map((c, i) => Math.max(0, c - (base![i] ?? 0)));
  }

  private acct(entry: ProcessEntry, initial: ProcState, atNs: bigint): ProcAcct {
    let a = this.procs.get(entry.execId);
    if (!a) {
      a = { machine: new StateMachine(initial, atNs), rqHist: NO_HIST, rqMaxNs: 0, nvcsw: 0, nivcsw: 0, cgroupId: entry.cgroupId ?? 0n, rqSnaps: null, seen: null };
      this.procs.set(entry.execId, a);
    }
    return a;
  }

  /** `log`: false when the process is forgotten right after (its reap) */
  private move(a: ProcAcct, to: ProcState, atNs: bigint, source: string, pid: number, log = true): void {
    const from = a.machine.state;
    const fromSince = a.machine.sinceNs;
    const anomaly = a.machine.apply(to, atNs, source);
    if (!anomaly) {
      if (log && a.machine.state !== from) {
        if (a.seen === null) a.seen = new StateLog(from, fromSince);
        else a.seen.push(from, fromSince);
      }
      return;
    }
    this.anomalyCount++;
    if (this.anomalies.length >= this.maxAnomaliesKept) this.anomalies.shift();
    this.anomalies.push(anomaly);
    this.onAnomaly(anomaly, pid);
  }

  applyLifecycle(ev: LifecycleEvent, en: Enriched): void {
    switch (ev.type) {
      case 'fork':
        if (!ev.thread) this.acct(en.entry, 'R', ev.ktimeNs);
        break;
      case 'exec':
        this.acct(en.entry, 'R', ev.ktimeNs);
        break;
      case 'exit':
        this.move(this.acct(en.entry, 'R', ev.ktimeNs), 'Z', ev.ktimeNs, 'exit', ev.pid);
        break;
      case 'reap': {
        const a = this.procs.get(en.execId);
        if (a) this.move(a, 'X', ev.ktimeNs, 'reap', ev.pid, false);
        this.procs.delete(en.execId);
        break;
      }
      default:
        break;
    }
  }

  /** An exact transition from the state sensor (only the thread-group leader moves the process). */
  applyState(ev: StateEvent): void {
    if (ev.tid !== ev.pid) return;
    const entry = this.table.byPid(ev.pid);
    if (!entry || entry.startNs !== ev.startNs) return;
    const a = this.acct(entry, normalize(ev.from), ev.ktimeNs - ev.durationNs);
    // The sensor reports time already spent in `from`: place the state's start where it began.
    if (a.machine.state !== normalize(ev.from)) this.move(a, normalize(ev.from), ev.ktimeNs - ev.durationNs, 'state', ev.pid);
    this.move(a, normalize(ev.to), ev.ktimeNs, 'state', ev.pid);
  }

  /** A sweep of per-thread accounting: leader state per process, summed run-queue figures. */
  applySweep(threads: readonly ThreadSnap[]): void {
    const seen = new Map<ProcAcct, { hist: number[]; max: number; nv: number; niv: number }>();
    const dThreads: ThreadSnap[] = [];
    for (const t of threads) {
      if (t.state === 'D') dThreads.push(t);
      const entry = this.table.byPid(t.pid);
      if (!entry || entry.startNs !== t.startNs || entry.state !== 'live') continue;
      const a = this.acct(entry, normalize(t.state), t.sinceNs);
      a.cgroupId = t.cgroupId;
      if (t.tid === t.pid && t.state !== 'X') this.move(a, normalize(t.state), t.sinceNs, 'sweep', t.pid);
      let s = seen.get(a);
      if (!s) seen.set(a, (s = { hist: new Array<number>(t.rqHist.length).fill(0), max: 0, nv: 0, niv: 0 }));
      for (let i = 0; i < t.rqHist.length; i++) s.hist[i]! += t.rqHist[i]!;
      if (t.rqMaxNs > s.max) s.max = t.rqMaxNs;
      s.nv += t.nvcsw;
      s.niv += t.nivcsw;
    }
    const now = this.opts.now?.();
    for (const [a, s] of seen) {
      a.rqHist = s.hist;
      a.rqMaxNs = s.max;
      a.nvcsw = s.nv;
      a.nivcsw = s.niv;
      if (now !== undefined) {
        const snaps = (a.rqSnaps ??= []);
        const last = snaps[snaps.length - 1];
        if (!last || now - last.tNs >= this.rqSnapNs) {
          snaps.push({ tNs: now, hist: s.hist });
          // keep one snapshot older than the window: it is the base of the window
          while (snaps.length > 2 && snaps[1]!.tNs <= now - this.rqWindowNs) snaps.shift();
        }
      }
    }
    this.dThreads = dThreads;
  }

  /** The state letter a process is in now, or null when not tracked: cheap, for lists of every
   *  process (stateOf also computes run-queue figures). */
  letterOf(execId: string): ProcState | null {
    return this.procs.get(execId)?.machine.state ?? null;
  }

  /** Current state of a process, or null when not tracked. */
  stateOf(execId: string, nowNs: bigint): { state: ProcState; stateMs: number; rq: RqStats; nvcsw: number; nivcsw: number } | null {
    const a = this.procs.get(execId);
    if (!a) return null;
    return { state: a.machine.state, stateMs: a.machine.stateMs(nowNs), rq: rqStats(this.windowHist(a, this.opts.now ? nowNs : undefined), a.rqMaxNs), nvcsw: a.nvcsw, nivcsw: a.nivcsw };
  }

  /** The states a process went through as observed, oldest first (at most STATE_LOG_MAX);
   *  null when not tracked (never seen by the sensor, or reaped). Sweeps see a state only if it
   *  holds at sweep time (with its exact start); D past the threshold and watched processes
   *  arrive as exact transitions. */
  history(execId: string): { state: ProcState; sinceNs: bigint }[] | null {
    const a = this.procs.get(execId);
    if (!a) return null;
    const out = a.seen?.list() ?? [];
    out.push({ state: a.machine.state, sinceNs: a.machine.sinceNs });
    return out;
  }

  /** Current zombies, each blamed on the parent that has not reaped it. */
  zombies(nowNs: bigint): ZombieInfo[] {
    const out: ZombieInfo[] = [];
    for (const e of this.table.values()) {
      if (e.state !== 'zombie' || e.exitNs === null) continue;
      const parent = e.parentExecId ? this.table.get(e.parentExecId) : this.table.byPid(e.ppid);
      out.push({
        pid: e.pid,
        execId: e.execId,
        comm: e.comm,
        ppid: e.ppid,
        parentExecId: e.parentExecId,
        parentComm: parent?.comm ?? null,
        zombieMs: nowNs > e.exitNs ? Number((nowNs - e.exitNs) / 1_000_000n) : 0,
        exitNs: e.exitNs,
      });
    }
    return out.sort((x, y) => y.zombieMs - x.zombieMs);
  }

  /** Threads in D for at least thresholdNs at the last sweep, longest first. */
  stuckD(nowNs: bigint, thresholdNs: bigint): StuckD[] {
    return this.dThreads
      .filter((t) => nowNs - t.sinceNs >= thresholdNs)
      .map((t) => {
        const e = this.table.byPid(t.pid);
        return {
          pid: t.pid,
          tid: t.tid,
          execId: e && e.startNs === t.startNs ? e.execId : null,
          comm: t.comm.text,
          dMs: Number((nowNs - t.sinceNs) / 1_000_000n),
        };
      })
      .sort((x, y) => y.dMs - x.dMs);
  }

  /** Run-queue latency per cgroup over the last window, from the processes' summed histograms. */
  rqByCgroup(nowNs?: bigint): Map<bigint, RqStats> {
    const hists = new Map<bigint, { hist: number[]; max: number }>();
    for (const a of this.procs.values()) {
      let h = hists.get(a.cgroupId);
      if (!h) hists.set(a.cgroupId, (h = { hist: [], max: 0 }));
      this.windowHist(a, nowNs ?? this.opts.now?.()).forEach((c, i) => (h!.hist[i] = (h!.hist[i] ?? 0) + c));
      if (a.rqMaxNs > h.max) h.max = a.rqMaxNs;
    }
    const out = new Map<bigint, RqStats>();
    for (const [cg, h] of hists) out.set(cg, rqStats(h.hist, h.max));
    return out;
  }

  get size(): number {
    return this.procs.size;
  }
}
