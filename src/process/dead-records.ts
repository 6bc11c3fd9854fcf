// Reaped processes, compactly. A reaped process stays in the table for its grace period (up to
// `deadMax` of them, ~20 s at 200 exec/s) so late events, the rules' joins and `ps` still find
// it. Kept as its ProcessEntry, each one outlived V8's young generation: the entry, its exit
// object and its five boxed bigints were promoted, then died in the old generation, and they
// were most of what made the agent's major GCs come every ~16 s (bench/README.md, "Session 20").
//
// So a reaped process without children in the table becomes one record in a ring of typed
// arrays: numbers and bigints in columns, and only the strings it shares with others (exec_id,
// comm, filename, argv) by reference. Its ProcessEntry, allocated at its fork a few ms before,
// then dies young. The table reads a record back as a ProcessEntry on demand: a copy for a
// query (`materialize`), or the table's own entry again when a late event of the process comes
// (`take`). Records leave in the order they came, like the table's dead queue.
import type { KText } from '../shared/events.js';
import type { ProcessIdentity } from './identity.js';
import { ProcessEntry, type EntrySource } from './entry.js';

// bigint columns (stride B)
const START = 0, EXIT_NS = 1, REAP = 2, LAST_EXEC = 3, DEAD_AT = 4, CGROUP = 5;
const B = 6;
// number columns (stride F); NaN is null
const PID = 0, PPID = 1, UID = 2, GID = 3, EUID = 4, STATUS = 5, CODE = 6, SIG = 7, MAXRSS = 8, EXECS = 9, TOUCHED = 10;
const F = 11;
// reference columns (stride R)
const ID = 0, PARENT_ID = 1, COMM = 2, COMM_RAW = 3, FILE = 4, FILE_RAW = 5, ARGV = 6, IDENTITY = 7;
const R = 8;
// flags
const COARSE = 1, ARGS_TRUNC = 2, REDACTED = 4, CORE = 8, HAS_EXIT = 16, HAS_EXIT_NS = 32, HAS_REAP = 64, HAS_LAST_EXEC = 128, HAS_CGROUP = 256;
const SOURCES: readonly EntrySource[] = ['bootstrap', 'fork', 'exec', 'inferred'];

/** What a rule reads of a reaped process (src/app/rules.ts), read from its record without a
 *  copy of its whole entry: a storm's rule fires at every exec, and by the time the rules apply
 *  a drain's batch most of those processes are records (bench/README.md, "Session 21"). */
export interface DeadFields {
  execId: string;
  pid: number;
  ppid: number;
  parentExecId: string | null;
  comm: string;
  argv: readonly KText[] | null;
  filename: string | null;
  startNs: bigint;
  exitNs: bigint | null;
  exitCode: number | null;
  signal: number | null;
  maxRssKb: number | null;
}

const orNaN = (v: number | null): number => (v === null ? NaN : v);
const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

export class DeadRecords {
  private alloc = 0;
  private head = 0;
  /** slots from head to the tail, holes (taken records) included */
  private span = 0;
  private live = 0;
  private big = new BigInt64Array(0);
  private num = new Float64Array(0);
  private bits = new Uint16Array(0);
  private refs: unknown[] = [];
  private readonly slotOf = new Map<string, number>();

  /** records kept */
  get size(): number {
    return this.live;
  }

  has(execId: string): boolean {
    return this.slotOf.has(execId);
  }

  /** Keeps reaped `e` (dead, no children, no alias) as a record. The caller drops the entry. */
  add(e: ProcessEntry): void {
    if (this.span === this.alloc) this.grow();
    const i = (this.head + this.span) % this.alloc;
    this.span++;
    this.live++;
    const b = this.big, ob = i * B;
    b[ob + START] = e.startNs;
    b[ob + EXIT_NS] = e.exitNs ?? 0n;
    b[ob + REAP] = e.reapNs ?? 0n;
    b[ob + LAST_EXEC] = e.lastExecNs ?? 0n;
    b[ob + DEAD_AT] = e.deadAtNs ?? 0n;
    b[ob + CGROUP] = e.cgroupId === null ? 0n : BigInt.asIntN(64, e.cgroupId);
    const n = this.num, o = i * F;
    const x = e.exit;
    n[o + PID] = e.pid;
    n[o + PPID] = e.ppid;
    n[o + UID] = orNaN(e.uid);
    n[o + GID] = orNaN(e.gid);
    n[o + EUID] = orNaN(e.euid);
    n[o + STATUS] = x === null ? NaN : x.status;
    n[o + CODE] = x === null ? NaN : orNaN(x.exitCode);
    n[o + SIG] = x === null ? NaN : orNaN(x.signal);
    n[o + MAXRSS] = x === null ? NaN : orNaN(x.maxRssKb);
    n[o + EXECS] = e.execCount;
    n[o + TOUCHED] = e.touched;
    this.bits[i] =
      (e.coarseStart ? COARSE : 0) |
      (e.argsTruncated ? ARGS_TRUNC : 0) |
      (e.argsRedacted ? REDACTED : 0) |
      (x !== null && x.coreDumped ? CORE : 0) |
      (x !== null ? HAS_EXIT : 0) |
      (e.exitNs !== null ? HAS_EXIT_NS : 0) |
      (e.reapNs !== null ? HAS_REAP : 0) |
      (e.lastExecNs !== null ? HAS_LAST_EXEC : 0) |
      (e.cgroupId !== null ? HAS_CGROUP : 0) |
      (SOURCES.indexOf(e.source) << 12);
    const r = this.refs, or = i * R;
    r[or + ID] = e.execId;
    r[or + PARENT_ID] = e.parentExecId;
    r[or + COMM] = e.comm;
    r[or + COMM_RAW] = e.commRaw;
    r[or + FILE] = e.filename;
    r[or + FILE_RAW] = e.filenameRaw;
    r[or + ARGV] = e.argv;
    r[or + IDENTITY] = e.identity;
    this.slotOf.set(e.execId, i);
  }

  /** A copy of the record as a dead ProcessEntry (removed: it is not the table's object). */
  materialize(execId: string): ProcessEntry | undefined {
    const i = this.slotOf.get(execId);
    return i === undefined ? undefined : this.entryAt(i);
  }

  /** The fields a rule reads (DeadFields), or undefined when `execId` is no record. */
  fields(execId: string): DeadFields | undefined {
    const i = this.slotOf.get(execId);
    if (i === undefined) return undefined;
    const b = this.big, ob = i * B;
    const n = this.num, o = i * F;
    const f = this.bits[i]!;
    const r = this.refs, or = i * R;
    const exited = (f & HAS_EXIT) !== 0;
    return {
      execId,
      pid: n[o + PID]!,
      ppid: n[o + PPID]!,
      parentExecId: r[or + PARENT_ID] as string | null,
      comm: r[or + COMM] as string,
      argv: r[or + ARGV] as readonly KText[] | null,
      filename: r[or + FILE] as string | null,
      startNs: b[ob + START]!,
      exitNs: (f & HAS_EXIT_NS) !== 0 ? b[ob + EXIT_NS]! : null,
      exitCode: exited ? orNull(n[o + CODE]!) : null,
      signal: exited ? orNull(n[o + SIG]!) : null,
      maxRssKb: exited ? orNull(n[o + MAXRSS]!) : null,
    };
  }

  /** The record back as an entry, and out of the ring (a late event of the process). */
  take(execId: string): ProcessEntry | undefined {
    const i = this.slotOf.get(execId);
    if (i === undefined) return undefined;
    const e = this.entryAt(i);
    this.clear(i);
    return e;
  }

  /** death time of the oldest record, or undefined when there is none. */
  oldestDeadAt(): bigint | undefined {
    this.skipHoles();
    return this.live === 0 ? undefined : this.big[this.head * B + DEAD_AT]!;
  }

  /** Drops the oldest record; false when there is none. */
  dropOldest(): boolean {
    this.skipHoles();
    if (this.live === 0) return false;
    this.clear(this.head);
    return true;
  }

  /** exec_id of the oldest record ('' when there is none). */
  oldestId(): string {
    this.skipHoles();
    return this.live === 0 ? '' : (this.refs[this.head * R + ID] as string);
  }

  /** Every record as a copy, oldest first (for queries). */
  *copies(): IterableIterator<ProcessEntry> {
    for (let k = 0; k < this.span; k++) {
      const i = (this.head + k) % this.alloc;
      if (this.refs[i * R + ID] !== undefined) yield this.entryAt(i);
    }
  }

  /** Records whose parent is `parentExecId`, as copies (a scan: for queries). */
  childrenOf(parentExecId: string): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    for (let k = 0; k < this.span; k++) {
      const i = (this.head + k) % this.alloc;
      if (this.refs[i * R + ID] !== undefined && this.refs[i * R + PARENT_ID] === parentExecId) out.push(this.entryAt(i));
    }
    return out;
  }

  /** Replaces each record's argv by `mask(argv)` where it returns one; returns how many. */
  remask(mask: (argv: readonly KText[]) => KText[] | null): number {
    let n = 0;
    for (let k = 0; k < this.span; k++) {
      const i = (this.head + k) % this.alloc;
      const argv = this.refs[i * R + ARGV] as readonly KText[] | null | undefined;
      if (this.refs[i * R + ID] === undefined || argv === null || argv === undefined) continue;
      const masked = mask(argv);
      if (masked === null) continue;
      this.refs[i * R + ARGV] = masked;
      this.bits[i] = this.bits[i]! | REDACTED;
      n++;
    }
    return n;
  }

  private entryAt(i: number): ProcessEntry {
    const b = this.big, ob = i * B;
    const n = this.num, o = i * F;
    const f = this.bits[i]!;
    const r = this.refs, or = i * R;
    const e = new ProcessEntry(r[or + ID] as string, n[o + PID]!, b[ob + START]!, SOURCES[f >> 12]!);
    e.parentExecId = r[or + PARENT_ID] as string | null;
    e.ppid = n[o + PPID]!;
    e.coarseStart = (f & COARSE) !== 0;
    e.comm = r[or + COMM] as string;
    e.commRaw = r[or + COMM_RAW] as Buffer | undefined;
    e.filename = r[or + FILE] as string | null;
    e.filenameRaw = r[or + FILE_RAW] as Buffer | undefined;
    e.argv = r[or + ARGV] as readonly KText[] | null;
    e.argsTruncated = (f & ARGS_TRUNC) !== 0;
    e.uid = orNull(n[o + UID]!);
    e.gid = orNull(n[o + GID]!);
    e.euid = orNull(n[o + EUID]!);
    e.cgroupId = (f & HAS_CGROUP) !== 0 ? BigInt.asUintN(64, b[ob + CGROUP]!) : null;
    e.identity = r[or + IDENTITY] as ProcessIdentity | null;
    e.argsRedacted = (f & REDACTED) !== 0;
    e.state = 'dead';
    e.exitNs = (f & HAS_EXIT_NS) !== 0 ? b[ob + EXIT_NS]! : null;
    e.reapNs = (f & HAS_REAP) !== 0 ? b[ob + REAP]! : null;
    e.exit =
      (f & HAS_EXIT) !== 0
        ? { status: n[o + STATUS]!, exitCode: orNull(n[o + CODE]!), signal: orNull(n[o + SIG]!), coreDumped: (f & CORE) !== 0, maxRssKb: orNull(n[o + MAXRSS]!) }
        : null;
    e.execCount = n[o + EXECS]!;
    e.lastExecNs = (f & HAS_LAST_EXEC) !== 0 ? b[ob + LAST_EXEC]! : null;
    e.touched = n[o + TOUCHED]!;
    e.deadAtNs = b[ob + DEAD_AT]!;
    e.removed = true;
    return e;
  }

  private clear(i: number): void {
    const or = i * R;
    this.slotOf.delete(this.refs[or + ID] as string);
    // drop the references so the strings can go; an undefined exec_id marks the hole
    for (let k = 0; k < R; k++) this.refs[or + k] = undefined;
    this.live--;
    if (this.live === 0) {
      this.head = 0;
      this.span = 0;
    }
  }

  private skipHoles(): void {
    while (this.span > 0 && this.refs[this.head * R + ID] === undefined) {
      this.head = (this.head + 1) % this.alloc;
      this.span--;
    }
  }

  /** Doubles the ring (from 1,024), keeping the order; holes are squeezed out. */
  private grow(): void {
    const alloc = Math.max(1024, this.alloc * 2);
    const big = new BigInt64Array(alloc * B);
    const num = new Float64Array(alloc * F);
    const bits = new Uint16Array(alloc);
    const refs = new Array<unknown>(alloc * R).fill(undefined);
    this.slotOf.clear();
    let j = 0;
    for (let k = 0; k < this.span; k++) {
      const i = (this.head + k) % this.alloc;
      const id = this.refs[i * R + ID];
      if (id === undefined) continue;
      for (let c = 0; c < B; c++) big[j * B + c] = this.big[i * B + c]!;
      for (let c = 0; c < F; c++) num[j * F + c] = this.num[i * F + c]!;
      bits[j] = this.bits[i]!;
      for (let c = 0; c < R; c++) refs[j * R + c] = this.refs[i * R + c];
      this.slotOf.set(id as string, j);
      j++;
    }
    this.big = big;
    this.num = num;
    this.bits = bits;
    this.refs = refs;
    this.alloc = alloc;
    this.head = 0;
    this.span = j;
  }
}
