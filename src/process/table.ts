// The process table: every process the kernel told us about (plus the ones found at startup),
// keyed by exec_id and indexed by live pid, with parent links, exit information and bounded
// memory. `apply()` is the hot path of the event pipeline: Map lookups and field writes only.
// Identity, the indexes, the bounds and the queries are TableCore's (table-core.ts); this file
// folds the events and the startup snapshot into it.
//
// Event order. The BPF ring buffer delivers records in reservation order, so a fork precedes
// everything its child does. A reap is reported after the pid is freed (at the parent's wait()
// return, or at the RCU-delayed task free), and an autoreaped process's exit may be reported
// after that too, so both can arrive after a new process got the same pid: such late events are
// matched by exec_id, not by pid, and the new holder of the pid is left alone. Events of
// processes the table never saw (lost records, or a start before the bootstrap) create
// 'inferred' entries instead of being dropped.
import type {
  ExecEvent,
  ExecFailedEvent,
  ExitEvent,
  ForkEvent,
  KText,
  LifecycleEvent,
  ReapEvent,
} from '../shared/events.js';
import { NS_PER_TICK } from './procfs.js';
import { EXIT_DEAD, EXIT_ZOMBIE, ProcessEntry, type Enriched, type ProcessTableOptions, type ProcessTableStats, type TaskSnapshot } from './entry.js';
import { SubtreeFilter } from './subtree.js';
import { TableCore } from './table-core.js';

// the entry and its types have their own file (entry.ts); importers of the table still find them here
export { EXIT_DEAD, EXIT_ZOMBIE, ProcessEntry, SubtreeFilter };
export type { Enriched, EntrySource, ExitInfo, ProcessFilter, ProcessState, ProcessTableOptions, ProcessTableStats, TaskSnapshot } from './entry.js';
export { DEFAULT_DEAD_MAX, MIN_DEAD_MAX } from './table-core.js';

export class ProcessTable extends TableCore {
  private readonly sweepEvery: number;
  private sinceSweep = 0;
  private lastKtime = 0n;
  private nThreadForks = 0;
  private nExecFailed = 0;
  private nPathProbes = 0;
  private nEvents = 0;

  constructor(opts: ProcessTableOptions) {
    super(opts);
    this.sweepEvery = Math.max(1, Math.floor(opts.sweepEvery ?? 1024));
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
    this.trimDead(null);
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
    this.trimDead(null);
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
    if (this.nDead > this.deadMax) this.trimDead(out.entry);
    if (this.size > this.maxEntries) this.evictIfNeeded(out.entry);
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
    if (this.identify !== undefined && (e.identity === null || e.cgroupId !== ev.cgroupId)) e.identity = this.identify(ev.cgroupId, ev.pid, ev.ppid);
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
    e.touched = ++this.tick;
    if (this.pids.get(e.pid) === e) this.pids.delete(e.pid);
    if (e.state !== 'dead') {
      const wasLive = e.state === 'live';
      this.setState(e, 'dead');
      e.deadAtNs = ev.ktimeNs;
      // exit missed: its children were reparented without us noticing
      if (wasLive && e.children !== null && e.children.size > 0) this.reparentChildren(e);
      // most reaped processes have no children left: kept as a record, the entry dies young
      if (!this.compact(e)) this.scheduleRemoval(e, ev.ktimeNs);
    }
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
    let n = this.records.remask(this.redactArgv);
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

  /** Stream filter for `trace --pid N`: see SubtreeFilter. */
  subtreeFilter(rootPid: number): SubtreeFilter {
    return new SubtreeFilter(this, rootPid);
  }

  stats(): ProcessTableStats {
    return {
      size: this.size,
      live: this.nLive,
      zombies: this.nZombie,
      dead: this.nDead,
      evictions: this.nEvictions,
      deadEvictions: this.nDeadEvictions,
      reparented: this.nReparented,
      pidReuseDetected: this.nPidReuse,
      inferred: this.nInferred,
      threadForks: this.nThreadForks,
      execFailed: this.nExecFailed,
      pathProbes: this.nPathProbes,
      events: this.nEvents,
    };
  }
}

function result(e: ProcessEntry, durationNs: bigint | undefined, zombieNs: bigint | undefined): Enriched {
  return { execId: e.execId, parentExecId: e.parentExecId, ppid: e.ppid, comm: e.comm, durationNs, zombieNs, entry: e };
}
