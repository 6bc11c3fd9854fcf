// The process table: every process the kernel told us about (plus the ones found at startup),
// keyed by exec_id and indexed by live pid, with parent links, exit information and bounded
// memory. `apply()` is the hot path of the event pipeline: Map lookups and field writes only.
//
// Identity. A process is (pid, startNs) where startNs is the thread-group leader's
// start_boottime (see exec-id.ts). Every lifecycle event carries both, so an event is matched to
// its entry exactly, and pid reuse is told apart from a new event of the same process.
//
// Clock. Every time here is CLOCK_BOOTTIME ns: event ktimes (bpf_ktime_get_boot_ns), start
// times (task start_boottime), /proc/<pid>/stat starttime (the same clock in USER_HZ ticks) and
// the injectable `now`.
//
// Coarse starts. Entries loaded from /proc (`bootstrapFromProc`) only know the start time in
// 10 ms ticks: they get startNs = ticks * 10 ms and `coarseStart: true`, and their exec_id is
// computed from that coarse time. The first kernel event for the same pid whose exact startNs
// truncates to the same tick ADOPTS the entry: startNs becomes exact, coarseStart false, and the
// exec_id is kept, because an identity must not change in the middle of a process's life. (The
// exact-time id is remembered as an internal alias so late events still find the entry.) A pid
// cannot be reused within one 10 ms tick of its previous start in practice, so the tick match is
// safe. Caveat: inside a time namespace with a boottime offset, /proc shifts starttime by the
// offset while BPF does not; adoption then fails and the /proc entry is replaced as a pid reuse.
//
// Event order. The BPF ring buffer delivers records in reservation order, so a fork precedes
// everything its child does. A reap is reported after the pid is freed (at the parent's wait()
// return, or at the RCU-delayed task free), and an autoreaped process's exit may be reported
// after that too, so both can arrive after a new process got the same pid: such late events are
// matched by exec_id, not by pid, and the new holder of the pid is left alone. Events of
// processes the table never saw (lost records, or a start before the bootstrap) create
// 'inferred' entries instead of being dropped.
//
// Parent links. `parentExecId` is the identity of the parent and stays when the parent entry
// leaves the table; `parent` is the in-table reference (null once the parent is removed), used
// by ancestry walks and kept consistent with the parent's `children` set.
import type {
  ExecEvent,
  ExecFailedEvent,
  ExitEvent,
  ForkEvent,
  KText,
  LifecycleEvent,
  ReapEvent,
} from '../shared/events.js';
import { execIdFactory, type ExecIdFn } from './exec-id.js';
import { NS_PER_TICK, RealProcFs, readUptimeNs, type ProcFs } from './procfs.js';
import type { ProcessIdentity } from './identity.js';
import { EXIT_DEAD, EXIT_ZOMBIE, ProcessEntry, type Enriched, type EntrySource, type ProcessFilter, type ProcessState, type ProcessTableOptions, type ProcessTableStats, type TaskSnapshot } from './entry.js';
import { SubtreeFilter } from './subtree.js';

// the entry and its types have their own file (entry.ts); importers of the table still find them here
export { EXIT_DEAD, EXIT_ZOMBIE, ProcessEntry, SubtreeFilter };
export type { Enriched, EntrySource, ExitInfo, ProcessFilter, ProcessState, ProcessTableOptions, ProcessTableStats, TaskSnapshot } from './entry.js';

const MAX_ANCESTRY = 64;

export class ProcessTable {
  readonly bootId: string;
  maxEntries: number;
  graceNs: bigint;
  private readonly idOf: ExecIdFn;
  private readonly procfs: ProcFs;
  private readonly now: () => bigint;
  private readonly sweepEvery: number;
  private readonly redactArgv: ((argv: readonly KText[]) => KText[] | null) | undefined;
  private readonly identify: ((cgroupId: bigint, pid: number) => ProcessIdentity | null) | undefined;

  private readonly entries = new Map<string, ProcessEntry>();
  private readonly pids = new Map<number, ProcessEntry>();
  private readonly aliases = new Map<string, ProcessEntry>();
  /** dead entries in the order they died: grace sweep and eviction both take from the front */
  private deadQ: (ProcessEntry | undefined)[] = [];
  private deadHead = 0;

  /** exec_id computed by the last missed find() (saves hashing twice) */
  private missId = '';
  private tick = 0;
  private sinceSweep = 0;
  private lastKtime = 0n;

  private nLive = 0;
  private nZombie = 0;
  private nDead = 0;
  private nEvictions = 0;
  private nReparented = 0;
  private nPidReuse = 0;
  private nInferred = 0;
  private nThreadForks = 0;
  private nExecFailed = 0;
  private nPathProbes = 0;
  private nEvents = 0;

  constructor(opts: ProcessTableOptions) {
    this.bootId = opts.bootId;
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries ?? 65536));
    this.graceNs = BigInt(Math.max(0, Math.round(opts.graceMs ?? 30_000))) * 1_000_000n;
    this.idOf = execIdFactory(opts.bootId);
    this.procfs = opts.procfs ?? new RealProcFs();
    this.now = opts.now ?? (() => readUptimeNs());
    this.sweepEvery = Math.max(1, Math.floor(opts.sweepEvery ?? 1024));
    this.redactArgv = opts.redactArgv;
    this.identify = opts.identify;
  }

  /** New bounds (a config reload): they apply from the next event on. */
  setLimits(opts: { maxEntries: number; graceMs: number }): void {
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries));
    this.graceNs = BigInt(Math.max(0, Math.round(opts.graceMs))) * 1_000_000n;
  }

  // ---------------------------------------------------------------- bootstrap

  /** Load the processes that existed before the sensor started, from the BPF task iterator.
   *  Processes already known from events are kept (and completed). Parents are linked after
   *  every entry is loaded. argv is read from /proc/<pid>/cmdline unless `readArgs` is false
   *  (checked against the start tick, so a reused pid is never mixed up). Returns the number of
   *  entries created. */
  bootstrap(snaps: readonly TaskSnapshot[], opts: { readArgs?: boolean } = {}): number {
    const readArgs = opts.readArgs ?? true;
    const now = this.now();
    const loaded: ProcessEntry[] = [];
    const snapOf: TaskSnapshot[] = [];
    let created = 0;
    for (const s of snaps) {
      if ((s.exitState & EXIT_DEAD) !== 0) continue;
      let e = this.find(s.pid, s.startNs);
      if (e === undefined) {
        e = this.create(this.missId, s.pid, s.startNs, 'bootstrap', now);
        created++;
      }
      if (e.comm === '') {
        if (typeof s.comm === 'string') e.comm = s.comm;
        else this.setComm(e, s.comm);
      }
      if (e.uid === null) e.uid = s.uid;
      if (e.cgroupId === null) {
        e.cgroupId = s.cgroupId;
        if (this.identify !== undefined) e.identity = this.identify(s.cgroupId, s.pid);
      }
      if ((s.exitState & EXIT_ZOMBIE) !== 0 && e.state === 'live') this.setState(e, 'zombie');
      if (readArgs && e.argv === null && e.state === 'live') this.readArgv(e);
      loaded.push(e);
      snapOf.push(s);
    }
    for (let i = 0; i < loaded.length; i++) {
      const e = loaded[i]!;
      const s = snapOf[i]!;
      if (e.parentExecId !== null || s.ppid === 0 || e.removed) continue;
      const parent = this.find(s.ppid, s.parentStartNs);
      this.setParent(e, s.ppid, parent ?? null, parent === undefined ? this.missId : null);
    }
    this.evictIfNeeded(null);
    return created;
  }

  /** Fallback bootstrap from /proc/<pid>/{stat,cmdline,status}. Start times are coarse (10 ms
   *  ticks): see "Coarse starts" in the header. Returns the number of entries created. */
  bootstrapFromProc(): number {
    const fs = this.procfs;
    const now = this.now();
    const loaded: ProcessEntry[] = [];
    const ppidOf: number[] = [];
    let created = 0;
    for (const pid of fs.listPids()) {
      const st = fs.readStat(pid);
      if (st === null || st.state === 'X' || st.state === 'x') continue;
      const ticks = BigInt(st.startTicks);
      let e = this.pids.get(pid);
      if (e === undefined || e.startNs / NS_PER_TICK !== ticks) {
        const coarse = ticks * NS_PER_TICK;
        e = this.create(this.idOf(pid, coarse), pid, coarse, 'bootstrap', now);
        e.coarseStart = true;
        created++;
      }
      if (e.comm === '') {
        e.comm = st.comm;
        e.commRaw = st.commRaw;
      }
      if (st.state === 'Z' && e.state === 'live') this.setState(e, 'zombie');
      if (e.argv === null) {
        const argv = fs.readCmdline(pid);
        if (argv !== null && argv.length > 0) this.setArgv(e, argv.map((text) => ({ text })));
      }
      if (e.uid === null) e.uid = fs.readUid(pid);
      loaded.push(e);
      ppidOf.push(st.ppid);
    }
    for (let i = 0; i < loaded.length; i++) {
      const e = loaded[i]!;
      const ppid = ppidOf[i]!;
      if (e.parentExecId !== null || ppid === 0 || e.removed) continue;
      const parent = this.pids.get(ppid);
      this.setParent(e, ppid, parent !== undefined && parent !== e ? parent : null, null);
    }
    this.evictIfNeeded(null);
    return created;
  }

  // ---------------------------------------------------------------- hot path

  /** Fold one lifecycle event into the table and return what is needed to print it. */
  apply(ev: LifecycleEvent): Enriched {
    this.nEvents++;
    if (ev.ktimeNs > this.lastKtime) this.lastKtime = ev.ktimeNs;
    if (++this.sinceSweep >= this.sweepEvery) {
      this.sinceSweep = 0;
      this.sweep(this.lastKtime);
    }
    let out: Enriched;
    switch (ev.type) {
      case 'fork':
        out = this.onFork(ev);
        break;
      case 'exec':
        out = this.onExec(ev);
        break;
      case 'exit':
        out = this.onExit(ev);
        break;
      case 'reap':
        out = this.onReap(ev);
        break;
      case 'exec_failed':
        out = this.onExecFailed(ev);
        break;
    }
    if (this.entries.size > this.maxEntries) this.evictIfNeeded(out.entry);
    return out;
  }

  private onFork(ev: ForkEvent): Enriched {
    if (ev.thread) {
      // the new thread belongs to process (pid, parentStartNs); no entry for the thread itself
      this.nThreadForks++;
      let p = this.find(ev.pid, ev.parentStartNs);
      if (p === undefined) {
        p = this.create(this.missId, ev.pid, ev.parentStartNs, 'inferred', ev.ktimeNs);
        this.setComm(p, ev.comm);
      }
      p.touched = ++this.tick;
      return result(p, undefined, undefined);
    }
    let parent: ProcessEntry | null = null;
    if (ev.ppid !== 0) {
      let p = this.find(ev.ppid, ev.parentStartNs);
      if (p === undefined) {
        p = this.create(this.missId, ev.ppid, ev.parentStartNs, 'inferred', ev.ktimeNs);
        this.setComm(p, ev.comm); // fork copies comm
      }
      p.touched = ++this.tick;
      parent = p;
    }
    let child = this.find(ev.pid, ev.startNs);
    if (child === undefined) {
      child = this.create(this.missId, ev.pid, ev.startNs, 'fork', ev.ktimeNs);
      this.setComm(child, ev.comm);
      if (parent !== null) {
        // until it execs, the child runs its parent's image with its parent's credentials
        child.filename = parent.filename;
        child.filenameRaw = parent.filenameRaw;
        child.argv = parent.argv;
        child.argsTruncated = parent.argsTruncated;
        child.uid = parent.uid;
        child.gid = parent.gid;
        child.euid = parent.euid;
        child.cgroupId = parent.cgroupId;
        child.identity = parent.identity;
        child.argsRedacted = parent.argsRedacted;
      }
    } else if (child.source === 'inferred') {
      child.source = 'fork';
    }
    if (child.parent !== parent || child.ppid !== ev.ppid) {
      this.setParent(child, ev.ppid, parent, null);
    }
    child.touched = ++this.tick;
    return result(child, undefined, undefined);
  }

  private onExec(ev: ExecEvent): Enriched {
    let e = this.find(ev.pid, ev.startNs);
    let created = false;
    if (e === undefined) {
      e = this.create(this.missId, ev.pid, ev.startNs, 'exec', ev.ktimeNs);
      created = true;
    }
    if (ev.ppid !== 0) {
      let p = this.find(ev.ppid, ev.parentStartNs);
      if (p === undefined) {
        p = this.create(this.missId, ev.ppid, ev.parentStartNs, 'inferred', ev.ktimeNs);
      }
      if (p !== e && (e.parent !== p || e.ppid !== ev.ppid)) {
        if (!created && e.ppid !== 0 && e.ppid !== ev.ppid) this.nReparented++;
        this.setParent(e, ev.ppid, p, null);
      }
    }
    this.setComm(e, ev.comm);
    e.filename = ev.filename.text;
    e.filenameRaw = ev.filename.raw;
    if (this.redactArgv !== undefined) {
      const masked = this.redactArgv(ev.args);
      if (masked !== null) {
        ev.args = masked;
        ev.argsRedacted = true;
      }
    }
    e.argv = ev.args;
    e.argsRedacted = ev.argsRedacted === true;
    e.argsTruncated = ev.argsTruncated;
    e.uid = ev.uid;
    e.gid = ev.gid;
    e.euid = ev.euid;
    if (this.identify !== undefined && (e.identity === null || e.cgroupId !== ev.cgroupId)) e.identity = this.identify(ev.cgroupId, ev.pid);
    e.cgroupId = ev.cgroupId;
    e.execCount++;
    e.lastExecNs = ev.ktimeNs;
    e.touched = ++this.tick;
    return result(e, undefined, undefined);
  }

  private onExit(ev: ExitEvent): Enriched {
    let e = this.find(ev.pid, ev.startNs);
    let created = false;
    if (e === undefined) {
      e = this.create(this.missId, ev.pid, ev.startNs, 'inferred', ev.ktimeNs);
      created = true;
    }
    this.setComm(e, ev.comm); // prctl(PR_SET_NAME) may have renamed it since
    // the exit record carries the parent as the kernel sees it now: take it as a correction
    if (ev.ppid !== e.ppid || (e.parentExecId === null && ev.ppid !== 0)) {
      const p = this.pids.get(ev.ppid);
      const parent = p !== undefined && p !== e && p.state !== 'dead' ? p : null;
      if (!created && e.ppid !== 0 && e.ppid !== ev.ppid) this.nReparented++;
      this.setParent(e, ev.ppid, parent, null);
    }
    if (e.state === 'live') this.setState(e, 'zombie');
    e.exitNs = ev.ktimeNs;
    e.exit = {
      status: ev.status,
      exitCode: ev.exitCode,
      signal: ev.signal,
      coreDumped: ev.coreDumped,
      maxRssKb: ev.usage === null ? null : ev.usage.maxRssKb,
    };
    e.touched = ++this.tick;
    if (e.children !== null && e.children.size > 0) this.reparentChildren(e);
    return result(e, ev.ktimeNs - ev.startNs, undefined);
  }

  private onReap(ev: ReapEvent): Enriched {
    let e = this.find(ev.pid, ev.startNs);
    if (e === undefined) e = this.create(this.missId, ev.pid, ev.startNs, 'inferred', ev.ktimeNs);
    if (ev.exitNs !== 0n && e.exitNs === null) e.exitNs = ev.exitNs;
    const exitNs = ev.exitNs !== 0n ? ev.exitNs : e.exitNs;
    e.reapNs = ev.ktimeNs;
    if (e.state !== 'dead') {
      const wasLive = e.state === 'live';
      this.setState(e, 'dead');
      this.scheduleRemoval(e, ev.ktimeNs);
      // exit missed: its children were reparented without us noticing
      if (wasLive && e.children !== null && e.children.size > 0) this.reparentChildren(e);
    }
    if (this.pids.get(e.pid) === e) this.pids.delete(e.pid);
    e.touched = ++this.tick;
    return result(e, undefined, exitNs === null ? undefined : ev.ktimeNs - exitNs);
  }

  private onExecFailed(ev: ExecFailedEvent): Enriched {
    if (ev.pathProbe === true) this.nPathProbes++;
    else this.nExecFailed++;
    let e = this.find(ev.pid, ev.startNs);
    if (e === undefined) {
      e = this.create(this.missId, ev.pid, ev.startNs, 'inferred', ev.ktimeNs);
      this.setComm(e, ev.comm);
    }
    e.touched = ++this.tick;
    return result(e, undefined, undefined);
  }

  // ---------------------------------------------------------------- internals

  /** Entry of process (pid, startNs), or undefined (then this.missId holds its exec_id). */
  private find(pid: number, startNs: bigint): ProcessEntry | undefined {
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
    return byId !== undefined && byId.pid === pid && byId.startNs === startNs ? byId : undefined;
  }

  /** A coarse /proc entry meets its exact start time: keep the exec_id, fix startNs. */
  private adopt(e: ProcessEntry, startNs: bigint): void {
    e.startNs = startNs;
    e.coarseStart = false;
    const exact = this.idOf(e.pid, startNs);
    if (exact !== e.execId) {
      e.aliasId = exact;
      this.aliases.set(exact, e);
    }
  }

  private create(id: string, pid: number, startNs: bigint, source: EntrySource, atNs: bigint): ProcessEntry {
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

  private setComm(e: ProcessEntry, k: KText): void {
    e.comm = k.text;
    e.commRaw = k.raw;
  }

  private setState(e: ProcessEntry, s: ProcessState): void {
    if (e.state === s) return;
    this.countState(e.state, -1);
    this.countState(s, 1);
    e.state = s;
  }

  private countState(s: ProcessState, d: number): void {
    if (s === 'live') this.nLive += d;
    else if (s === 'zombie') this.nZombie += d;
    else this.nDead += d;
  }

  private scheduleRemoval(e: ProcessEntry, atNs: bigint): void {
    e.deadAtNs = atNs;
    this.deadQ.push(e);
  }

  /** Link e to its parent. `parent` null: parentExecId = fallbackId (a parent not in the table). */
  private setParent(e: ProcessEntry, ppid: number, parent: ProcessEntry | null, fallbackId: string | null): void {
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
  private reparentChildren(e: ProcessEntry): void {
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

  private remove(e: ProcessEntry): void {
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

  private popDead(): ProcessEntry | undefined {
    const q = this.deadQ;
    while (this.deadHead < q.length) {
      const e = q[this.deadHead];
      q[this.deadHead++] = undefined;
      if (e !== undefined && !e.removed) return e;
    }
    this.compactDeadQ();
    return undefined;
  }

  private compactDeadQ(): void {
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
  private evictIfNeeded(keep: ProcessEntry | null): void {
    const max = this.maxEntries;
    if (this.entries.size <= max) return;
    while (this.entries.size > max) {
      const d = this.popDead();
      if (d === undefined) break;
      this.remove(d);
      this.nEvictions++;
    }
    if (this.entries.size <= max) return;
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

  private readArgv(e: ProcessEntry): void {
    const st = this.procfs.readStat(e.pid);
    if (st === null || BigInt(st.startTicks) !== e.startNs / NS_PER_TICK) return;
    const argv = this.procfs.readCmdline(e.pid);
    if (argv !== null && argv.length > 0) this.setArgv(e, argv.map((text) => ({ text })));
  }

  /** argv read from /proc, through the redaction like an exec's. */
  private setArgv(e: ProcessEntry, argv: KText[]): void {
    const masked = this.redactArgv?.(argv) ?? null;
    e.argv = masked ?? argv;
    e.argsRedacted = masked !== null;
  }

  /** The redaction applied again to the argv every entry holds (a reload changed the patterns):
   *  a new pattern masks what the table already has; nothing masked is ever unmasked (the raw
   *  text is gone). Returns the entries newly masked. */
  redactAgain(): number {
    if (this.redactArgv === undefined) return 0;
    let n = 0;
    for (const e of this.entries.values()) {
      if (e.argv === null) continue;
      const masked = this.redactArgv(e.argv);
      if (masked === null) continue;
      e.argv = masked;
      e.argsRedacted = true;
      n++;
    }
    return n;
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
    return n;
  }

  // ---------------------------------------------------------------- queries

  get size(): number {
    return this.entries.size;
  }

  get(execId: string): ProcessEntry | undefined {
    return this.entries.get(execId);
  }

  /** The live or zombie process holding `pid` now. */
  byPid(pid: number): ProcessEntry | undefined {
    return this.pids.get(pid);
  }

  /** All entries, in insertion order. */
  values(): IterableIterator<ProcessEntry> {
    return this.entries.values();
  }

  children(execId: string): ProcessEntry[] {
    const e = this.entries.get(execId);
    return e === undefined || e.children === null ? [] : [...e.children];
  }

  /** [self, parent, grandparent, ...] up to the oldest known ancestor; at most maxDepth
   *  entries; stops at a repeated entry, so a corrupted parent chain cannot loop. */
  ancestry(execId: string, maxDepth = MAX_ANCESTRY): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    const seen = new Set<ProcessEntry>();
    let e = this.entries.get(execId);
    while (e !== undefined && out.length < maxDepth && !seen.has(e)) {
      out.push(e);
      seen.add(e);
      e = e.parent ?? undefined;
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
      e = e.parent ?? undefined;
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

  /** Stream filter for `trace --pid N`: see SubtreeFilter. */
  subtreeFilter(rootPid: number): SubtreeFilter {
    return new SubtreeFilter(this, rootPid);
  }

  list(filter: ProcessFilter = {}): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    for (const e of this.entries.values()) {
      if (filter.comm !== undefined && e.comm !== filter.comm) continue;
      if (filter.uid !== undefined && e.uid !== filter.uid) continue;
      if (filter.state !== undefined && e.state !== filter.state) continue;
      if (filter.pidSubtree !== undefined && !this.inSubtree(e, filter.pidSubtree)) continue;
      out.push(e);
    }
    return out;
  }

  stats(): ProcessTableStats {
    return {
      size: this.entries.size,
      live: this.nLive,
      zombies: this.nZombie,
      dead: this.nDead,
      evictions: this.nEvictions,
      reparented: this.nReparented,
      pidReuseDetected: this.nPidReuse,
      inferred: this.nInferred,
      threadForks: this.nThreadForks,
      execFailed: this.nExecFailed,
      pathProbes: this.nPathProbes,
      events: this.nEvents,
    };
  }

  /** Pids currently indexed (live and zombie). For checks and tests. */
  indexedPids(): IterableIterator<[number, ProcessEntry]> {
    return this.pids.entries();
  }
}

function result(e: ProcessEntry, durationNs: bigint | undefined, zombieNs: bigint | undefined): Enriched {
  return { execId: e.execId, parentExecId: e.parentExecId, ppid: e.ppid, comm: e.comm, durationNs, zombieNs, entry: e };
}
