// Bounded memory of recent lifecycle facts the trees ask about: failing exits per command, execs
// per parent, exited processes' I/O. Times are ms since boot (numbers: an hour fits easily).

export interface ExitRecord {
  tMs: number;
  execId: string;
  pid: number;
  ppid: number;
  comm: string;
  command: string;
  exitCode: number | null;
  signal: number | null;
  failed: boolean;
  writeBytes: number;
  readBytes: number;
  maxRssBytes: number;
}

export interface HistoryLimits {
  /** oldest fact kept */
  horizonMs: number;
  maxExits: number;
  maxKeys: number;
  maxPerKey: number;
}

export const DEFAULT_HISTORY: HistoryLimits = { horizonMs: 3_600_000, maxExits: 50_000, maxKeys: 10_000, maxPerKey: 512 };

/** Insertion-ordered map of bounded time lists; the least recently written key goes first. */
class KeyedTimes<T extends { tMs: number }> {
  private readonly m = new Map<string, T[]>();
  constructor(private readonly limits: HistoryLimits) {}

  add(key: string, item: T): void {
    let list = this.m.get(key);
    if (list) this.m.delete(key); // re-insert: most recent last
    else list = [];
    list.push(item);
    if (list.length > this.limits.maxPerKey) list.splice(0, list.length - this.limits.maxPerKey);
    this.m.set(key, list);
    if (this.m.size > this.limits.maxKeys) this.m.delete(this.m.keys().next().value!);
  }

  within(key: string, fromMs: number, toMs: number): T[] {
    const list = this.m.get(key);
    return list ? list.filter((x) => x.tMs >= fromMs && x.tMs <= toMs) : [];
  }

  get size(): number {
    return this.m.size;
  }
}

export class History {
  private exits: ExitRecord[] = [];
  private readonly failuresByCommand: KeyedTimes<ExitRecord>;
  private readonly execsByParent: KeyedTimes<{ tMs: number; execId: string; comm: string; pid: number }>;

  constructor(private readonly limits: HistoryLimits = DEFAULT_HISTORY) {
    this.failuresByCommand = new KeyedTimes(limits);
    this.execsByParent = new KeyedTimes(limits);
  }

  recordExit(r: ExitRecord): void {
    this.exits.push(r);
    if (this.exits.length > this.limits.maxExits * 2 || (this.exits.length & 1023) === 0) this.trim(r.tMs);
    if (r.failed) this.failuresByCommand.add(r.command, r);
  }

  recordExec(parentExecId: string, e: { tMs: number; execId: string; comm: string; pid: number }): void {
    this.execsByParent.add(parentExecId, e);
  }

  failures(command: string, fromMs: number, toMs: number): ExitRecord[] {
    return this.failuresByCommand.within(command, fromMs, toMs);
  }

  execsBy(parentExecId: string, fromMs: number, toMs: number) {
    return this.execsByParent.within(parentExecId, fromMs, toMs);
  }

  exitsWithin(fromMs: number, toMs: number): ExitRecord[] {
    return this.exits.filter((x) => x.tMs >= fromMs && x.tMs <= toMs);
  }

  private trim(nowMs: number): void {
    const cut = nowMs - this.limits.horizonMs;
    let i = 0;
    while (i < this.exits.length && this.exits[i]!.tMs < cut) i++;
    const over = this.exits.length - i - this.limits.maxExits;
    if (over > 0) i += over;
    if (i > 0) this.exits = this.exits.slice(i);
  }

  stats() {
    return { exits: this.exits.length, commands: this.failuresByCommand.size, parents: this.execsByParent.size };
  }
}

/** Same command: comm plus the executable, so `sh -c a` and a script named sh stay apart. */
export function commandKey(comm: string, filename: string | null): string {
  return filename ? `${comm}\u0000${filename}` : comm;
}
