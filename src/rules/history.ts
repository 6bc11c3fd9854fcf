// Bounded memory of recent lifecycle facts the trees ask about: failing exits per command, execs
// per parent, exited processes' writes. Times are ms since boot (numbers: an hour fits easily).
//
// Every list is a ring of parallel columns that grows to its bound and then overwrites its
// oldest slot: recording a fact stores numbers and references to strings the event already
// holds, and allocates nothing once the ring is full. Counting (what a gate asks at every exec
// or failed exit) walks numbers; objects are made only for evidence, when a rule fires.

export interface FailureRecord {
  tMs: number;
  execId: string;
  pid: number;
  comm: string;
  exitCode: number | null;
  signal: number | null;
}

export interface ExecRecord {
  tMs: number;
  execId: string;
  comm: string;
  pid: number;
}

export interface WriterRecord {
  tMs: number;
  execId: string;
  pid: number;
  comm: string;
  writeBytes: number;
}

export interface HistoryLimits {
  /** oldest fact kept */
  horizonMs: number;
  /** exits that wrote (for the top writers) */
  maxExits: number;
  maxKeys: number;
  maxPerKey: number;
}

export const DEFAULT_HISTORY: HistoryLimits = { horizonMs: 3_600_000, maxExits: 50_000, maxKeys: 10_000, maxPerKey: 512 };

/** Events reach us in ring order, which can be a little out of time order across CPUs: a
 *  backward scan stops only this far before the window, so a late entry is still counted. */
const DISORDER_MS = 1000;

/** Times and parallel columns of the last `cap` facts; slot order is insertion order. */
class Ring {
  readonly tMs: number[] = [];
  readonly execId: string[] = [];
  readonly comm: string[] = [];
  readonly pid: number[] = [];
  /** per ring kind: exit code (NaN for none) or bytes written */
  readonly a: number[] = [];
  /** signal (NaN for none) */
  readonly b: number[] = [];
  /** next slot to write once full (the oldest) */
  private next = 0;
  /** facts written so far: what the memo of the last count is valid for */
  private writes = 0;
  // The last count: one exec asks the same question up to three times (the rule's gate, its
  // tree, its explanation), each a scan of up to `cap` slots.
  private memoWrites = -1;
  private memoFrom = 0;
  private memoTo = 0;
  private memoCount = 0;
  /** the limit the memo was counted with: it is exact when below it, "at least" when it reached it */
  private memoLimit = Infinity;

  constructor(private readonly cap: number) {}

  get length(): number {
    return this.tMs.length;
  }

  /** Index of the slot to fill: append while growing, then overwrite the oldest. */
  claim(): number {
    this.writes++;
    if (this.tMs.length < this.cap) return this.tMs.length;
    const i = this.next;
    this.next = i + 1 === this.cap ? 0 : i + 1;
    return i;
  }

  /** Slot of the k-th newest fact (k = 0 is the newest). */
  newest(k: number): number {
    const n = this.tMs.length;
    const i = (n < this.cap ? n : this.next) - 1 - k;
    return i < 0 ? i + n : i;
  }

  /** Facts in [fromMs, toMs], newest first, stopping once well before the window; counted up to
   *  `limit` at most: a comparison with a constant needs no more (a storm's gate, `≥ 200`, then
   *  reads 200 slots of a full ring of 512). Returns min(count, limit). */
  count(fromMs: number, toMs: number, limit = Infinity): number {
    if (this.memoWrites === this.writes && this.memoFrom === fromMs && this.memoTo === toMs && (this.memoCount < this.memoLimit || this.memoCount >= limit)) {
      return this.memoCount < limit ? this.memoCount : limit;
    }
    const n = this.tMs.length;
    const ts = this.tMs;
    const stop = fromMs - DISORDER_MS;
    let i = n < this.cap ? n : this.next; // one past the newest
    let c = 0;
    for (let k = 0; k < n; k++) {
      i = i === 0 ? n - 1 : i - 1;
      const t = ts[i]!;
      if (t < stop) break;
      if (t >= fromMs && t <= toMs) {
        if (c >= limit) break;
        c++;
      }
    }
    this.memoWrites = this.writes;
    this.memoFrom = fromMs;
    this.memoTo = toMs;
    this.memoCount = c;
    this.memoLimit = limit;
    return c;
  }

  /** Slots of the facts in [fromMs, toMs], oldest first (for evidence: allocates). */
  slots(fromMs: number, toMs: number): number[] {
    const out: number[] = [];
    const n = this.tMs.length;
    for (let k = 0; k < n; k++) {
      const i = this.newest(k);
      const t = this.tMs[i]!;
      if (t < fromMs - DISORDER_MS) break;
      if (t >= fromMs && t <= toMs) out.push(i);
    }
    return out.reverse();
  }
}

/** Rings by key; the least recently written keys go first when there are too many: past maxKeys,
 *  the oldest quarter goes in one pass. Evicting one key per insert walked, each time, the holes
 *  earlier deletes left at the front of the Map (V8 skips them until it rehashes). */
class KeyedRings {
  private readonly m = new Map<string, Ring>();
  /** the key written last: a burst by one key (a storm) skips the re-insert */
  private last: string | null = null;
  constructor(private readonly limits: HistoryLimits) {}

  ring(key: string): Ring {
    let r = this.m.get(key);
    if (r === undefined) {
      r = new Ring(this.limits.maxPerKey);
      this.m.set(key, r);
      if (this.m.size > this.limits.maxKeys) this.evict(this.m.size - Math.floor(this.limits.maxKeys * 0.75));
    } else if (this.last !== key) {
      this.m.delete(key); // re-insert: most recent last
      this.m.set(key, r);
    }
    this.last = key;
    return r;
  }

  get(key: string): Ring | undefined {
    return this.m.get(key);
  }

  private evict(n: number): void {
    for (const k of this.m.keys()) {
      if (n-- <= 0) break;
      this.m.delete(k);
    }
  }

  get size(): number {
    return this.m.size;
  }
}

const orNaN = (v: number | null) => (v === null ? Number.NaN : v);
const orNull = (v: number) => (Number.isNaN(v) ? null : v);

export class History {
  private readonly writers: Ring;
  private readonly failuresByCommand: KeyedRings;
  private readonly execsByParent: KeyedRings;

  constructor(private readonly limits: HistoryLimits = DEFAULT_HISTORY) {
    this.writers = new Ring(limits.maxExits);
    this.failuresByCommand = new KeyedRings(limits);
    this.execsByParent = new KeyedRings(limits);
  }

  /** An exit that wrote: remembered for the top writers (exits that wrote nothing never rank). */
  recordWriter(tMs: number, execId: string, pid: number, comm: string, writeBytes: number): void {
    if (!(writeBytes > 0)) return;
    const r = this.writers;
    const i = r.claim();
    r.tMs[i] = tMs;
    r.execId[i] = execId;
    r.pid[i] = pid;
    r.comm[i] = comm;
    r.a[i] = writeBytes;
  }

  /** A failed exit (non-zero code or a signal) of `command`. */
  recordFailure(command: string, tMs: number, execId: string, pid: number, comm: string, exitCode: number | null, signal: number | null): void {
    const r = this.failuresByCommand.ring(command);
    const i = r.claim();
    r.tMs[i] = tMs;
    r.execId[i] = execId;
    r.pid[i] = pid;
    r.comm[i] = comm;
    r.a[i] = orNaN(exitCode);
    r.b[i] = orNaN(signal);
  }

  recordExec(parentExecId: string, tMs: number, execId: string, comm: string, pid: number): void {
    const r = this.execsByParent.ring(parentExecId);
    const i = r.claim();
    r.tMs[i] = tMs;
    r.execId[i] = execId;
    r.comm[i] = comm;
    r.pid[i] = pid;
  }

  private from(fromMs: number, toMs: number): number {
    return Math.max(fromMs, toMs - this.limits.horizonMs);
  }

  /** min(failures of `command` in the window, limit) */
  countFailures(command: string, fromMs: number, toMs: number, limit = Infinity): number {
    return this.failuresByCommand.get(command)?.count(this.from(fromMs, toMs), toMs, limit) ?? 0;
  }

  /** min(execs by the parent in the window, limit) */
  countExecs(parentExecId: string, fromMs: number, toMs: number, limit = Infinity): number {
    return this.execsByParent.get(parentExecId)?.count(this.from(fromMs, toMs), toMs, limit) ?? 0;
  }

  /** Oldest first. */
  failures(command: string, fromMs: number, toMs: number): FailureRecord[] {
    const r = this.failuresByCommand.get(command);
    if (!r) return [];
    return r.slots(this.from(fromMs, toMs), toMs).map((i) => ({ tMs: r.tMs[i]!, execId: r.execId[i]!, pid: r.pid[i]!, comm: r.comm[i]!, exitCode: orNull(r.a[i]!), signal: orNull(r.b[i]!) }));
  }

  /** Oldest first. */
  execsBy(parentExecId: string, fromMs: number, toMs: number): ExecRecord[] {
    const r = this.execsByParent.get(parentExecId);
    if (!r) return [];
    return r.slots(this.from(fromMs, toMs), toMs).map((i) => ({ tMs: r.tMs[i]!, execId: r.execId[i]!, comm: r.comm[i]!, pid: r.pid[i]! }));
  }

  /** Execs by a parent in the window, counted by comm in order of first appearance (the
   *  storm's evidence, built at each firing: no record objects). */
  execCommCounts(parentExecId: string, fromMs: number, toMs: number): { count: number; byComm: Map<string, number> } {
    const byComm = new Map<string, number>();
    const r = this.execsByParent.get(parentExecId);
    if (!r) return { count: 0, byComm };
    const slots = r.slots(this.from(fromMs, toMs), toMs);
    for (const i of slots) byComm.set(r.comm[i]!, (byComm.get(r.comm[i]!) ?? 0) + 1);
    return { count: slots.length, byComm };
  }

  /** Exits that wrote, in [fromMs, toMs], oldest first. */
  writersWithin(fromMs: number, toMs: number): WriterRecord[] {
    const r = this.writers;
    return r.slots(this.from(fromMs, toMs), toMs).map((i) => ({ tMs: r.tMs[i]!, execId: r.execId[i]!, pid: r.pid[i]!, comm: r.comm[i]!, writeBytes: r.a[i]! }));
  }

  stats() {
    return { writers: this.writers.length, commands: this.failuresByCommand.size, parents: this.execsByParent.size };
  }
}

/** Same command: comm plus the executable, so `sh -c a` and a script named sh stay apart. */
export function commandKey(comm: string, filename: string | null): string {
  return filename ? `${comm}\u0000${filename}` : comm;
}
