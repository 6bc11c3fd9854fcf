// The process table's storage: entries by exec_id, the live pid index, parent links, and the
// bounds on memory. ProcessTable (table.ts) folds events into it; this file owns identity,
// lookups, removal and the queries.
//
// Identity. A process is (pid, startNs) where startNs is the thread-group leader's
// start_boottime (see exec-id.ts). Every lifecycle event carries both, so an event is matched to
// its entry exactly, and pid reuse is told apart from a new event of the same process.
//
// Clock. Every time here is CLOCK_BOOTTIME ns: event ktimes (bpf_ktime_get_boot_ns), start
// times (task start_boottime), /proc/<pid>/stat starttime (the same clock in USER_HZ ticks) and
// the injectable `now`.
//
// Coarse starts. Entries loaded from /proc only know the start time in 10 ms ticks: they get
// startNs = ticks * 10 ms and `coarseStart: true`, and their exec_id is computed from that
// coarse time. The first kernel event for the same pid whose exact startNs truncates to the
// same tick ADOPTS the entry: startNs becomes exact, coarseStart false, and the exec_id is kept,
// because an identity must not change in the middle of a process's life. (The exact-time id is
// remembered as an internal alias so late events still find the entry.) A pid cannot be reused
// within one 10 ms tick of its previous start in practice, so the tick match is safe. Caveat:
// inside a time namespace with a boottime offset, /proc shifts starttime by the offset while BPF
// does not; adoption then fails and the /proc entry is replaced as a pid reuse.
//
// Parent links. `parentExecId` is the identity of the parent and stays when the parent entry
// leaves the table; `parent` is the in-table reference (null once the parent is removed), used
// by ancestry walks and kept consistent with the parent's `children` set.
//
// Bounds. A dead (reaped) entry stays `graceMs` so late events and queries still find it, but
// never more than `deadMax` of them: at a high exec rate the grace alone would keep rate × grace
// entries (11,000 at 370 exec/s). The default 4,096 still covers the 10 s within which the rules
// join a kernel line to an exited process (src/app/rules.ts, TableFacts.byPid) up to ~400
// exec/s. Above that, `maxEntries` bounds every entry, live ones too.
//
// Reaped processes without children are kept as compact records (dead-records.ts), not as
// entries: `get`, `list`, `children` and `ancestry` read them back as copies, and a late event
// of such a process takes its record back as an entry. `values()` yields entries only: every
// live and zombie process, and the reaped ones that had children.
import type { KText } from '../shared/events.js';
import { execIdFactory, type ExecIdFn } from './exec-id.js';
import { NS_PER_TICK, RealProcFs, readUptimeNs, type ProcFs } from './procfs.js';
import type { ProcessIdentity } from './identity.js';
import { ProcessEntry, type EntrySource, type ProcessFilter, type ProcessState, type ProcessTableOptions } from './entry.js';
import { DeadRecords, type DeadFields } from './dead-records.js';

const MAX_ANCESTRY = 64;

export class TableCore {
  readonly bootId: string;
  maxEntries: number;
  graceNs: bigint;
  deadMax: number;
  protected readonly idOf: ExecIdFn;
  protected readonly procfs: ProcFs;
  protected readonly now: () => bigint;
  protected readonly redactArgv: ((argv: readonly KText[]) => KText[] | null) | undefined;
  protected readonly identify: ((cgroupId: bigint, pid: number, ppid?: number) => ProcessIdentity | null) | undefined;

  protected readonly entries = new Map<string, ProcessEntry>();
  protected readonly pids = new Map<number, ProcessEntry>();
  protected readonly aliases = new Map<string, ProcessEntry>();
  /** reaped processes without children, compactly (dead-records.ts); counted in nDead */
  protected readonly records = new DeadRecords();
  private readonly compactReaped: boolean;
  /** dead entries in the order they died: grace sweep and eviction both take from the front */
  protected deadQ: (ProcessEntry | undefined)[] = [];
  protected deadHead = 0;

  /** exec_id computed by the last missed find() (saves hashing twice) */
  protected missId = '';
  protected tick = 0;

  protected nLive = 0;
  protected nZombie = 0;
  protected nDead = 0;
  protected nEvictions = 0;
  protected nDeadEvictions = 0;
  protected nReparented = 0;
  protected nPidReuse = 0;
  protected nInferred = 0;

  constructor(opts: ProcessTableOptions) {
    this.bootId = opts.bootId;
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries ?? 65536));
    this.graceNs = graceNsOf(opts.graceMs ?? 30_000);
    this.deadMax = deadMaxOf(opts.deadMax ?? DEFAULT_DEAD_MAX);
    this.idOf = execIdFactory(opts.bootId);
    this.procfs = opts.procfs ?? new RealProcFs();
    this.now = opts.now ?? (() => readUptimeNs());
    this.redactArgv = opts.redactArgv;
    this.identify = opts.identify;
    this.compactReaped = opts.compactReaped ?? true;
  }

  /** New bounds (a config reload): they apply from the next event on. */
  setLimits(opts: { maxEntries: number; graceMs: number; deadMax?: number }): void {
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries));
    this.graceNs = graceNsOf(opts.graceMs);
    if (opts.deadMax !== undefined) {
      this.deadMax = deadMaxOf(opts.deadMax);
      this.trimDead(null); // a lower bound applies now, not at the next reap
    }
  }

  // ---------------------------------------------------------------- internals

  /** Entry of process (pid, startNs), or undefined (then this.missId holds its exec_id). */
  protected find(pid: number, startNs: bigint): ProcessEntry | undefined {
    const e = this.pids.get(pid);
    if (e !== undefined) {
      if (e.startNs === startNs) return e;
      if (e.coarseStart && startNs >= e.startNs && startNs - e.startNs < NS_PER_TICK) {
        this.adopt(e, startNs);
        return e;
      }
    }
    // not the current holder of the pid: a late event of an older process, or a new one
    const id = this.idOf(pid, startNs);
    this.missId = id;
    let byId = this.entries.get(id);
    if (byId === undefined && this.aliases.size > 0) byId = this.aliases.get(id);
    if (byId === undefined && this.records.has(id)) byId = this.revive(id);
    return byId !== undefined && byId.pid === pid && byId.startNs === startNs ? byId : undefined;
  }

  /** A late event of a process kept as a record: it becomes an entry again, still dead, at the
   *  back of the dead queue (the record is read back exactly; only its place in the order moves). */
  private revive(id: string): ProcessEntry | undefined {
    const e = this.records.take(id);
    if (e === undefined) return undefined;
    e.removed = false;
    this.entries.set(id, e);
    const parent = e.parentExecId === null ? undefined : this.entries.get(e.parentExecId);
    if (parent !== undefined && parent !== e) {
      (parent.children ??= new Set()).add(e);
      e.parent = parent;
    }
    this.deadQ.push(e);
    return e;
  }

  /** Reaped `e` becomes a compact record when nothing in the table links to it: no children, no
   *  alias. Its entry object is dropped (the caller's reference stays valid for its event). */
  protected compact(e: ProcessEntry): boolean {
    if (!this.compactReaped || e.state !== 'dead' || e.removed || e.aliasId !== null || (e.children !== null && e.children.size > 0)) return false;
    if (this.pids.get(e.pid) === e) return false;
    this.records.add(e);
    this.entries.delete(e.execId);
    if (e.parent !== null) {
      e.parent.children!.delete(e);
      e.parent = null;
    }
    e.children = null;
    e.removed = true;
    return true;
  }

  /** A coarse /proc entry meets its exact start time: keep the exec_id, fix startNs. */
  protected adopt(e: ProcessEntry, startNs: bigint): void {
    e.startNs = startNs;
    e.coarseStart = false;
    const exact = this.idOf(e.pid, startNs);
    if (exact !== e.execId) {
      e.aliasId = exact;
      this.aliases.set(exact, e);
    }
  }

  protected create(id: string, pid: number, startNs: bigint, source: EntrySource, atNs: bigint): ProcessEntry {
    const e = new ProcessEntry(id, pid, startNs, source);
    this.entries.set(id, e);
    this.nLive++;
    if (source === 'inferred' || source === 'exec') this.nInferred++;
    e.touched = ++this.tick;
    const cur = this.pids.get(pid);
    if (cur === undefined) {
      this.pids.set(pid, e);
    } else if (cur.startNs < startNs) {
      // A newer process has the pid, so the old holder is gone. A zombie: its reap is still on
      // the way (reaps are reported after the pid is freed). A live one: its exit was lost.
      if (cur.state !== 'dead') {
        if (cur.state === 'live') this.nPidReuse++;
        this.setState(cur, 'dead');
        this.scheduleRemoval(cur, atNs);
      }
      this.pids.set(pid, e);
    } else {
      // a late event of a process older than the current holder: it is gone already
      this.setState(e, 'dead');
      this.scheduleRemoval(e, atNs);
    }
    return e;
  }

  protected setComm(e: ProcessEntry, k: KText): void {
    e.comm = k.text;
    e.commRaw = k.raw;
  }

  protected setState(e: ProcessEntry, s: ProcessState): void {
    if (e.state === s) return;
    this.countState(e.state, -1);
    this.countState(s, 1);
    e.state = s;
  }

  protected countState(s: ProcessState, d: number): void {
    if (s === 'live') this.nLive += d;
    else if (s === 'zombie') this.nZombie += d;
    else this.nDead += d;
  }

  /** `e` just became dead: it leaves after the grace, or sooner when more than deadMax dead
   *  entries wait (trimDead, once the event is folded in). */
  protected scheduleRemoval(e: ProcessEntry, atNs: bigint): void {
    e.deadAtNs = atNs;
    this.deadQ.push(e);
  }

  /** Removes the oldest dead entries until at most deadMax are left, so a fast exec rate cannot
   *  grow the table. Called between events (after an event is folded in, after a bootstrap, at
   *  a reload), never in the middle of one: an entry the event is still linking stays. `keep`
   *  (the entry the event returns) stays too, where it is in the queue. */
  protected trimDead(keep: ProcessEntry | null): void {
    let kept: ProcessEntry | undefined;
    while (this.nDead - (kept === undefined ? 0 : 1) > this.deadMax) {
      if (this.recordIsOldest() && this.records.oldestId() !== keep?.execId) {
        this.dropRecord();
        this.nDeadEvictions++;
        continue;
      }
      const d = this.popDead();
      if (d === undefined) break;
      if (d === keep) {
        kept = d;
        continue;
      }
      this.remove(d);
      this.nDeadEvictions++;
    }
    if (kept === undefined) return;
    // back at the front, where it was: it is still the oldest
    if (this.deadHead > 0) this.deadQ[--this.deadHead] = kept;
    else this.deadQ.unshift(kept);
  }

  /** Link e to its parent. `parent` null: parentExecId = fallbackId (a parent not in the table). */
  protected setParent(e: ProcessEntry, ppid: number, parent: ProcessEntry | null, fallbackId: string | null): void {
    if (parent === e) parent = null;
    const old = e.parent;
    if (old !== parent) {
      if (old !== null) old.children!.delete(e);
      if (parent !== null) (parent.children ??= new Set()).add(e);
      e.parent = parent;
    }
    e.ppid = ppid;
    e.parentExecId = parent !== null ? parent.execId : fallbackId;
  }

  /** The children of exiting `e` get a new parent: the kernel's choice (init of the pid
   *  namespace, or the nearest child subreaper) as /proc reports it, else pid 1. */
  protected reparentChildren(e: ProcessEntry): void {
    for (const c of e.children!) {
      if (c.state === 'dead') continue;
      let ppid = 1;
      const st = this.procfs.readStat(c.pid);
      if (
        st !== null &&
        st.ppid > 0 &&
        st.ppid !== e.pid && // the kernel has not reparented it yet: fall back
        c.startNs / NS_PER_TICK === BigInt(st.startTicks) // still the same process
      ) {
        ppid = st.ppid;
      }
      const np = this.pids.get(ppid);
      this.setParent(c, ppid, np !== undefined && np !== c && np.state !== 'dead' ? np : null, null);
      this.nReparented++;
    }
  }

  /** Whether the oldest dead process is a record (not an entry in the dead queue). */
  protected recordIsOldest(): boolean {
    const r = this.records.oldestDeadAt();
    if (r === undefined) return false;
    const q = this.deadQ;
    // entries removed otherwise (evicted) leave the queue here, so the scan stays O(1)
    while (this.deadHead < q.length) {
      const e = q[this.deadHead];
      if (e !== undefined && !e.removed) return r <= e.deadAtNs!;
      q[this.deadHead++] = undefined;
    }
    return true;
  }

  protected dropRecord(): void {
    if (this.records.dropOldest()) this.countState('dead', -1);
  }

  protected remove(e: ProcessEntry): void {
    if (e.removed) return;
    e.removed = true;
    this.entries.delete(e.execId);
    if (this.pids.get(e.pid) === e) this.pids.delete(e.pid);
    if (e.aliasId !== null) this.aliases.delete(e.aliasId);
    if (e.parent !== null) {
      e.parent.children!.delete(e);
      e.parent = null;
    }
    if (e.children !== null) {
      // the children keep parentExecId (the id is still true) but lose the link
      for (const c of e.children) c.parent = null;
      e.children = null;
    }
    this.countState(e.state, -1);
  }

  protected popDead(): ProcessEntry | undefined {
    const q = this.deadQ;
    while (this.deadHead < q.length) {
      const e = q[this.deadHead];
      q[this.deadHead++] = undefined;
      if (e !== undefined && !e.removed) return e;
    }
    this.compactDeadQ();
    return undefined;
  }

  protected compactDeadQ(): void {
    if (this.deadHead === 0) return;
    if (this.deadHead >= this.deadQ.length) {
      this.deadQ = [];
      this.deadHead = 0;
    } else if (this.deadHead > 1024 && this.deadHead * 2 > this.deadQ.length) {
      this.deadQ = this.deadQ.slice(this.deadHead);
      this.deadHead = 0;
    }
  }

  /** Bring size back to maxEntries: oldest dead entries first; then live or zombie entries whose
   *  pid is no longer in /proc (their exit was lost); then the least recently touched. The last
   *  two free a batch (1/64 of the bound) at once so their cost is amortized. */
  protected evictIfNeeded(keep: ProcessEntry | null): void {
    const max = this.maxEntries;
    if (this.size <= max) return;
    while (this.size > max) {
      if (this.recordIsOldest()) {
        this.dropRecord();
        this.nEvictions++;
        continue;
      }
      const d = this.popDead();
      if (d === undefined) break;
      this.remove(d);
      this.nEvictions++;
    }
    if (this.size <= max) return;
    const target = Math.max(0, max - Math.max(1, max >> 6));
    let alive: Set<number> | null = null;
    try {
      alive = new Set(this.procfs.listPids());
    } catch {
      alive = null;
    }
    if (alive !== null) {
      for (const e of this.entries.values()) {
        if (this.entries.size <= target) break;
        if (e === keep || alive.has(e.pid)) continue;
        this.remove(e);
        this.nEvictions++;
      }
    }
    if (this.entries.size <= max) return;
    const byAge = [...this.entries.values()].sort((a, b) => a.touched - b.touched);
    for (let i = 0; i < byAge.length && this.entries.size > target; i++) {
      const e = byAge[i]!;
      if (e === keep) continue;
      this.remove(e);
      this.nEvictions++;
    }
  }

  // ---------------------------------------------------------------- maintenance

  /** Remove dead entries whose grace period ended by `nowNs` (CLOCK_BOOTTIME ns). apply() also
   *  calls this every `sweepEvery` events with the latest event time. Returns entries removed. */
  sweep(nowNs: bigint = this.now()): number {
    const q = this.deadQ;
    const cutoff = nowNs - this.graceNs;
    let n = 0;
    while (this.deadHead < q.length) {
      const e = q[this.deadHead];
      if (e !== undefined && !e.removed) {
        if (e.deadAtNs! > cutoff) break;
        this.remove(e);
        n++;
      }
      q[this.deadHead++] = undefined;
    }
    this.compactDeadQ();
    for (let t = this.records.oldestDeadAt(); t !== undefined && t <= cutoff; t = this.records.oldestDeadAt()) {
      this.dropRecord();
      n++;
    }
    return n;
  }

  // ---------------------------------------------------------------- queries

  get size(): number {
    return this.entries.size + this.records.size;
  }

  /** The entry of `execId`; for a reaped process kept as a record, a copy of it. */
  get(execId: string): ProcessEntry | undefined {
    return this.entries.get(execId) ?? this.records.materialize(execId);
  }

  /** The table's own entry of `execId`: undefined for a reaped process kept as a record
   *  (recordFields reads that one). */
  entryOf(execId: string): ProcessEntry | undefined {
    return this.entries.get(execId);
  }

  /** A reaped process kept as a record: the fields a rule reads, without copying its entry. */
  recordFields(execId: string): DeadFields | undefined {
    return this.records.fields(execId);
  }

  /** The live or zombie process holding `pid` now. */
  byPid(pid: number): ProcessEntry | undefined {
    return this.pids.get(pid);
  }

  /** All entries, in insertion order: live and zombie processes, and reaped ones that had
   *  children. Reaped processes kept as records are not among them (`list` has them). */
  values(): IterableIterator<ProcessEntry> {
    return this.entries.values();
  }

  /** The children in the table, records of reaped ones included (as copies). */
  children(execId: string): ProcessEntry[] {
    const e = this.get(execId);
    if (e === undefined) return [];
    const out = e.children === null ? [] : [...e.children];
    if (this.records.size > 0) out.push(...this.records.childrenOf(execId));
    return out;
  }

  /** [self, parent, grandparent, ...] up to the oldest known ancestor; at most maxDepth
   *  entries; stops at a repeated entry, so a corrupted parent chain cannot loop. */
  ancestry(execId: string, maxDepth = MAX_ANCESTRY): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    const seen = new Set<string>();
    let e = this.get(execId);
    while (e !== undefined && out.length < maxDepth && !seen.has(e.execId)) {
      out.push(e);
      seen.add(e.execId);
      e = this.parentOf(e);
    }
    return out;
  }

  /** Whether `entry` is the process holding `rootPid` or one of its descendants, through the
   *  current parent links (an orphan reparented to init leaves the subtree; see SubtreeFilter
   *  for a birth-based, sticky variant). At most 64 steps. */
  inSubtree(entry: ProcessEntry, rootPid: number): boolean {
    const root = this.pids.get(rootPid);
    let e: ProcessEntry | undefined = entry;
    for (let d = 0; e !== undefined && d <= MAX_ANCESTRY; d++) {
      if (root !== undefined ? e === root : e.pid === rootPid) return true;
      e = this.parentOf(e);
    }
    return false;
  }

  /** Pids of the live and zombie processes in the subtree of the process holding `pid`
   *  (itself included). Empty if no process holds it. */
  subtreeOf(pid: number): Set<number> {
    const out = new Set<number>();
    const root = this.pids.get(pid);
    if (root === undefined) return out;
    const stack: ProcessEntry[] = [root];
    const seen = new Set<ProcessEntry>();
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (seen.has(e)) continue;
      seen.add(e);
      if (e.state !== 'dead') out.add(e.pid);
      if (e.children !== null) for (const c of e.children) stack.push(c);
    }
    return out;
  }

  list(filter: ProcessFilter = {}): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    for (const e of this.entries.values()) if (this.matches(e, filter)) out.push(e);
    if (filter.state !== undefined && filter.state !== 'dead') return out;
    for (const e of this.records.copies()) if (this.matches(e, filter)) out.push(e);
    return out;
  }

  private matches(e: ProcessEntry, filter: ProcessFilter): boolean {
    return (
      (filter.comm === undefined || e.comm === filter.comm) &&
      (filter.uid === undefined || e.uid === filter.uid) &&
      (filter.state === undefined || e.state === filter.state) &&
      (filter.pidSubtree === undefined || this.inSubtree(e, filter.pidSubtree))
    );
  }

  /** The next step up from `e`: its parent link, or for a record's copy (which has none) its
   *  parent found by id while that is still in the table. */
  private parentOf(e: ProcessEntry): ProcessEntry | undefined {
    return e.parent ?? (e.removed && e.parentExecId !== null ? this.get(e.parentExecId) : undefined);
  }

  /** Pids currently indexed (live and zombie). For checks and tests. */
  indexedPids(): IterableIterator<[number, ProcessEntry]> {
    return this.pids.entries();
  }
}

/** Dead entries kept at most, by default (lifecycle.table_dead_max). */
export const DEFAULT_DEAD_MAX = 4096;
/** The smallest bound, as for table_max_entries. Below rate × 10 s, the rules lose two joins
 *  that read reaped entries late: a kernel line about a process that exited up to 10 s before
 *  (src/app/rules.ts, TableFacts.byPid), and the ancestry of a coalesced firing rendered up to
 *  ~0.5 s later. */
export const MIN_DEAD_MAX = 1024;

const graceNsOf = (ms: number): bigint => BigInt(Math.max(0, Math.round(ms))) * 1_000_000n;
const deadMaxOf = (n: number): number => Math.max(MIN_DEAD_MAX, Math.floor(n));
