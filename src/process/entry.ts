// A process table entry and the table's types. The table itself (table.ts) keeps the entries
// consistent; everything here is data, plus the argv view every consumer reads.
import type { KText } from '../shared/events.js';
import type { ProcFs } from './procfs.js';
import type { ProcessIdentity } from './identity.js';

export type ProcessState = 'live' | 'zombie' | 'dead';

/** How the entry came to be: found at startup ('bootstrap'), born under our eyes ('fork'),
 *  first seen at an execve whose fork we missed ('exec'), or made up from another event of a
 *  process we did not know, or from a reference to it as a parent ('inferred'). */
export type EntrySource = 'bootstrap' | 'fork' | 'exec' | 'inferred';

export interface ExitInfo {
  /** raw wait status */
  status: number;
  exitCode: number | null;
  signal: number | null;
  coreDumped: boolean;
  /** peak RSS from the exit record, kB. The rest of the exit's usage goes to the store and the
   *  windows; an entry keeps only this, for the 30 s it stays after its reap (a usage object
   *  and its twelve boxed numbers were a quarter of what each exited process kept alive). */
  maxRssKb: number | null;
}

/** kernel task exit_state bits (include/linux/sched.h) */
export const EXIT_DEAD = 16;
export const EXIT_ZOMBIE = 32;

/** One record of the BPF task iterator (pt_task_snap), decoded. */
export interface TaskSnapshot {
  pid: number;
  ppid: number;
  startNs: bigint;
  parentStartNs: bigint;
  uid: number;
  cgroupId: bigint;
  comm: string | KText;
  /** task exit_state: EXIT_ZOMBIE (32) for a zombie */
  exitState: number;
}

export class ProcessEntry {
  /** parent's exec_id; null when unknown or for the roots (pid 1, kthreadd) */
  parentExecId: string | null = null;
  /** parent pid as last known; 0 when unknown or none */
  ppid = 0;
  /** startNs is ticks * 10 ms from /proc, not the exact kernel value (see the header) */
  coarseStart = false;
  comm = '';
  /** exact comm bytes, only when not valid UTF-8 */
  commRaw: Buffer | undefined = undefined;
  /** path given to the last successful execve; null if no exec was seen (inherited at fork) */
  filename: string | null = null;
  filenameRaw: Buffer | undefined = undefined;
  /** argv of the last exec as the kernel gave it (text, plus raw bytes where not UTF-8) */
  argv: readonly KText[] | null = null;
  argsTruncated = false;
  uid: number | null = null;
  gid: number | null = null;
  euid: number | null = null;
  cgroupId: bigint | null = null;
  /** what the cgroup's path proves (unit, container, pod); null when unresolved or not asked */
  identity: ProcessIdentity | null = null;
  /** argv had parts masked by the redaction patterns (export.redact) */
  argsRedacted = false;
  state: ProcessState = 'live';
  /** CLOCK_BOOTTIME ns of the group exit */
  exitNs: bigint | null = null;
  /** CLOCK_BOOTTIME ns of the reap (end of the zombie state) */
  reapNs: bigint | null = null;
  exit: ExitInfo | null = null;
  /** successful execs seen for this process */
  execCount = 0;
  lastExecNs: bigint | null = null;
  /** entries in the table whose parentExecId is this entry (maintained by the table) */
  children: Set<ProcessEntry> | null = null;
  /** table-internal: order of last event, for LRU eviction */
  touched = 0;
  /** table-internal: the parent entry while both are in the table (parentExecId outlives it) */
  parent: ProcessEntry | null = null;
  /** table-internal: when the entry was marked dead; it leaves the table graceMs later */
  deadAtNs: bigint | null = null;
  /** table-internal: no longer in the table */
  removed = false;
  /** table-internal: exec_id of the exact start after a coarse entry was adopted */
  aliasId: string | null = null;
  private argsCache: string[] | null = null;
  private argsCacheFor: readonly KText[] | null = null;

  constructor(
    readonly execId: string,
    readonly pid: number,
    /** CLOCK_BOOTTIME ns of the process start (exact unless coarseStart) */
    public startNs: bigint,
    public source: EntrySource,
  ) {}

  /** argv as strings (computed on first access after each exec). */
  get args(): string[] | null {
    const a = this.argv;
    if (a === null) return null;
    if (this.argsCacheFor !== a) {
      this.argsCache = a.map((k) => k.text);
      this.argsCacheFor = a;
    }
    return this.argsCache;
  }

  get childCount(): number {
    return this.children === null ? 0 : this.children.size;
  }
}

/** What the CLI needs to print one event, beyond the event itself. */
export interface Enriched {
  /** exec_id of the event's process (for a fork: the child; for a thread fork: the process) */
  execId: string;
  parentExecId: string | null;
  ppid: number;
  comm: string;
  /** exit: exit ktime − start time, exact to the ns */
  durationNs?: bigint;
  /** reap: reap ktime − exit ktime (time spent as a zombie) */
  zombieNs?: bigint;
  entry: ProcessEntry;
}

export interface ProcessTableOptions {
  bootId: string;
  /** hard bound on entries (default 65536) */
  maxEntries?: number;
  /** how long exited and reaped entries stay (default 30 000 ms) */
  graceMs?: number;
  /** at most this many reaped entries stay, the oldest leaving first (default 4096, at least 1024) */
  deadMax?: number;
  procfs?: ProcFs;
  /** CLOCK_BOOTTIME ns (default: /proc/uptime) */
  now?: () => bigint;
  /** sweep expired dead entries every this many apply() calls (default 1024) */
  sweepEvery?: number;
  /** argv redaction (export.redact), applied before argv is stored or passed on: returns the
   *  masked copy, or null when nothing matched. An exec event's args are replaced in place. */
  redactArgv?: (argv: readonly KText[]) => KText[] | null;
  /** the identity of a cgroup, resolved when a process of it first appears (cached there) */
  /** `ppid`: also asked when `pid` is gone (a short process, handled after its exit) */
  identify?: (cgroupId: bigint, pid: number, ppid?: number) => ProcessIdentity | null;
  /** keep reaped processes without children as compact records (dead-records.ts), so their
   *  entries die young (default true; false keeps every entry, for comparison in tests) */
  compactReaped?: boolean;
}

export interface ProcessFilter {
  comm?: string;
  uid?: number;
  /** the process with this live pid and all its descendants */
  pidSubtree?: number;
  state?: ProcessState;
}

export interface ProcessTableStats {
  size: number;
  live: number;
  zombies: number;
  dead: number;
  /** entries removed to keep size <= maxEntries (the grace sweep does not count) */
  evictions: number;
  /** reaped entries removed before their grace ended, to keep at most deadMax of them */
  deadEvictions: number;
  /** children moved to a new parent (orphan reparenting, or a ppid corrected by an event) */
  reparented: number;
  /** an event showed a new process on a pid still held by a live entry (its exit was lost) */
  pidReuseDetected: number;
  /** entries created for processes the table had not seen born (sources 'exec', 'inferred') */
  inferred: number;
  threadForks: number;
  execFailed: number;
  /** failed execs that were one step of a PATH search (not counted in execFailed) */
  pathProbes: number;
  /** apply() calls */
  events: number;
}
