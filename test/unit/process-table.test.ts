import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type {
  ExecEvent,
  ExecFailedEvent,
  ExitEvent,
  ExitUsage,
  ForkEvent,
  KText,
  LifecycleEvent,
  ReapEvent,
} from '../../src/shared/events.js';
import {
  ProcessTable,
  execId,
  type ProcessEntry,
  type ProcFs,
  type ProcStat,
  type TaskSnapshot,
} from '../../src/process/index.js';

// ------------------------------------------------------------------ fakes and builders

const BOOT = '0f6c9c1e-5b0e-4d7e-a1c2-6d3f4e5a6b7c';
const MS = 1_000_000n;
const SEC = 1_000_000_000n;
const TICK = 10_000_000n;

interface FakeProc {
  stat: ProcStat;
  cmdline: string[];
  uid: number;
}

class FakeProcFs implements ProcFs {
  readonly procs = new Map<number, FakeProc>();
  statReads = 0;
  listCalls = 0;

  add(pid: number, ppid: number, startTicks: number, comm = `p${pid}`, state = 'S', cmdline = [comm], uid = 0): void {
    this.procs.set(pid, { stat: { pid, comm, state, ppid, startTicks }, cmdline, uid });
  }
  listPids(): number[] {
    this.listCalls++;
    return [...this.procs.keys()];
  }
  readStat(pid: number): ProcStat | null {
    this.statReads++;
    const p = this.procs.get(pid);
    return p ? { ...p.stat } : null;
  }
  readCmdline(pid: number): string[] | null {
    return this.procs.get(pid)?.cmdline ?? null;
  }
  readUid(pid: number): number | null {
    return this.procs.get(pid)?.uid ?? null;
  }
}

class FakeClock {
  t = 1000n * SEC;
  now = (): bigint => this.t;
}

let seq = 0n;
const kt = (text: string): KText => ({ text });
function hdr<T extends LifecycleEvent['type']>(type: T, ktimeNs: bigint) {
  return { type, ktimeNs, seq: seq++, cpu: 0, flags: 0 };
}
const ZERO_USAGE: ExitUsage = {
  cpuNs: 0n,
  utimeNs: 0n,
  stimeNs: 0n,
  maxRssKb: 0,
  readBytes: 0n,
  writeBytes: 0n,
  rchar: 0n,
  wchar: 0n,
  minflt: 0n,
  majflt: 0n,
  nvcsw: 0n,
  nivcsw: 0n,
};

function fork(pid: number, startNs: bigint, ppid: number, parentStartNs: bigint, o: { thread?: boolean; tid?: number; comm?: string; at?: bigint } = {}): ForkEvent {
  return {
    ...hdr('fork', o.at ?? startNs),
    pid,
    tid: o.tid ?? pid,
    startNs,
    ppid,
    parentTid: ppid,
    parentStartNs,
    comm: kt(o.comm ?? `c${ppid}`),
    thread: o.thread ?? false,
  };
}

function exec(pid: number, startNs: bigint, ppid: number, parentStartNs: bigint, at: bigint, filename: string, args: string[] = [filename], uid = 1000): ExecEvent {
  return {
    ...hdr('exec', at),
    pid,
    oldTid: pid,
    ppid,
    startNs,
    parentStartNs,
    cgroupId: 77n,
    uid,
    gid: uid,
    euid: uid,
    comm: kt(filename.split('/').pop()!.slice(0, 15)),
    filename: kt(filename),
    filenameTruncated: false,
    args: args.map(kt),
    argsTruncated: false,
    argsFault: false,
    argsFullLen: args.join('\0').length + 1,
  };
}

function exit(pid: number, startNs: bigint, ppid: number, at: bigint, o: { code?: number; signal?: number; comm?: string; maxRssKb?: number } = {}): ExitEvent {
  const signal = o.signal ?? null;
  const code = signal === null ? (o.code ?? 0) : null;
  return {
    ...hdr('exit', at),
    pid,
    tid: pid,
    ppid,
    startNs,
    status: signal === null ? (code! << 8) : signal,
    exitCode: code,
    signal,
    coreDumped: false,
    comm: kt(o.comm ?? `x${pid}`),
    usage: o.maxRssKb === undefined ? ZERO_USAGE : { ...ZERO_USAGE, maxRssKb: o.maxRssKb },
  };
}

function reap(pid: number, startNs: bigint, at: bigint, exitNs = 0n): ReapEvent {
  return { ...hdr('reap', at), pid, startNs, exitNs };
}

function execFailed(pid: number, startNs: bigint, at: bigint, errno = 2): ExecFailedEvent {
  return { ...hdr('exec_failed', at), pid, tid: pid, startNs, errno, filename: kt('/nope'), comm: kt(`f${pid}`) };
}

function snap(pid: number, ppid: number, startNs: bigint, parentStartNs: bigint, comm = `s${pid}`, exitState = 0): TaskSnapshot {
  return { pid, ppid, startNs, parentStartNs, uid: 0, cgroupId: 1n, comm, exitState };
}

function newTable(o: { maxEntries?: number; graceMs?: number; sweepEvery?: number; deadMax?: number } = {}) {
  const procfs = new FakeProcFs();
  const clock = new FakeClock();
  const table = new ProcessTable({ bootId: BOOT, procfs, now: clock.now, ...o });
  return { table, procfs, clock };
}

/** init (1) and a shell (100) already running */
const INIT_START = 50n * MS;
const SH_START = 2n * SEC + 123_456n;
function withShell(o: Parameters<typeof newTable>[0] = {}) {
  const t = newTable(o);
  t.table.bootstrap([snap(1, 0, INIT_START, 0n, 'systemd'), snap(100, 1, SH_START, INIT_START, 'bash')], { readArgs: false });
  return t;
}

/** `n` children of init (pids 10000…), born a ms apart from 10 s on, each exited and reaped at
 *  once; their exec_ids, oldest first. */
function bornAndReaped(table: ProcessTable, n: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = 10n * SEC + BigInt(i) * MS;
    ids.push(table.apply(fork(10_000 + i, s, 1, INIT_START)).execId);
    table.apply(exit(10_000 + i, s, 1, s + 100n));
    table.apply(reap(10_000 + i, s, s + 200n));
  }
  return ids;
}

function checkInvariants(table: ProcessTable, max: number): void {
  expect(table.size).toBeLessThanOrEqual(max);
  for (const [pid, e] of table.indexedPids()) {
    expect(e.pid).toBe(pid);
    expect(table.get(e.execId)).toBe(e);
    expect(e.state).not.toBe('dead');
  }
  // list() has every process: entries, and copies of the reaped ones kept as records
  const all = table.list();
  expect(all.length).toBe(new Set(all.map((e) => e.execId)).size);
  const st = table.stats();
  expect(st.size).toBe(all.length);
  expect(st.live).toBe(all.filter((e) => e.state === 'live').length);
  expect(st.zombies).toBe(all.filter((e) => e.state === 'zombie').length);
  expect(st.dead).toBe(all.filter((e) => e.state === 'dead').length);
  for (const e of all) {
    if (e.children !== null) {
      for (const c of e.children) {
        expect(c.parentExecId).toBe(e.execId);
        expect(c.parent).toBe(e);
        expect(c.removed).toBe(false);
      }
    }
    if (e.parent !== null) expect(e.parent.children!.has(e)).toBe(true);
  }
}

// ------------------------------------------------------------------ tests

describe('ProcessTable lifecycle', () => {
  it('fork/exec/exit/reap: parent link, exec update, exact duration, zombie time, grace', () => {
    const { table } = withShell({ graceMs: 30_000 });
    const sh = table.byPid(100)!;
    const start = 10n * SEC + 17n;
    const f = table.apply(fork(200, start, 100, SH_START, { comm: 'bash' }));
    expect(f.execId).toBe(execId(BOOT, 200, start));
    expect(f.parentExecId).toBe(sh.execId);
    expect(f.ppid).toBe(100);
    expect(f.entry.source).toBe('fork');
    expect(table.children(sh.execId).map((e) => e.pid)).toEqual([200]);

    const x = table.apply(exec(200, start, 100, SH_START, start + 80_000n, '/usr/bin/ls', ['ls', '-l']));
    expect(x.execId).toBe(f.execId); // exec keeps the identity
    expect(x.comm).toBe('ls');
    expect(x.entry.filename).toBe('/usr/bin/ls');
    expect(x.entry.args).toEqual(['ls', '-l']);
    expect(x.entry.execCount).toBe(1);
    expect(x.entry.uid).toBe(1000);
    expect(x.entry.cgroupId).toBe(77n);

    const exitAt = start + 437_219n; // 0.437 ms after start
    const e = table.apply(exit(200, start, 100, exitAt, { code: 3, maxRssKb: 4321 }));
    expect(e.durationNs).toBe(437_219n);
    expect(e.entry.state).toBe('zombie');
    expect(e.entry.exit).toMatchObject({ exitCode: 3, signal: null, status: 3 << 8 });
    expect(table.byPid(200)).toBe(e.entry); // a zombie still holds its pid

    const r = table.apply(reap(200, start, exitAt + 51_000n, exitAt - 1_000n));
    expect(r.zombieNs).toBe(52_000n); // from the kernel's exitNs, not our exit event
    expect(r.entry.state).toBe('dead');
    expect(r.entry.reapNs).toBe(exitAt + 51_000n);
    expect(table.byPid(200)).toBeUndefined();
    // kept as a compact record through the grace: read back as a copy of the entry
    const kept = table.get(f.execId)!;
    expect(kept).not.toBe(r.entry);
    expect({ ...kept }).toEqual({ ...r.entry, argsCache: null, argsCacheFor: null, touched: kept.touched });

    const reapAt = exitAt + 51_000n;
    expect(table.sweep(reapAt + 30_000n * MS - 1n)).toBe(0);
    expect(table.get(f.execId)).toBeDefined();
    expect(table.sweep(reapAt + 30_000n * MS)).toBe(1);
    expect(table.get(f.execId)).toBeUndefined();
    expect(table.children(sh.execId)).toEqual([]);
    expect(r.entry.removed).toBe(true);
    expect(r.entry.parent).toBeNull();
    checkInvariants(table, 65536);
  });

  it('zombieNs falls back to the exit event time when the reap has no exitNs', () => {
    const { table } = withShell();
    const s = 5n * SEC;
    table.apply(fork(300, s, 100, SH_START));
    table.apply(exit(300, s, 100, s + 900n));
    expect(table.apply(reap(300, s, s + 1_900n, 0n)).zombieNs).toBe(1_000n);
  });

  it('thread forks are counted and create no entry', () => {
    const { table } = withShell();
    const before = table.size;
    const r = table.apply(fork(100, 20n * SEC, 100, SH_START, { thread: true, tid: 101 }));
    expect(r.execId).toBe(table.byPid(100)!.execId);
    expect(table.size).toBe(before);
    expect(table.stats().threadForks).toBe(1);
  });

  it('exec_failed is counted and enriched with the exec_id', () => {
    const { table } = withShell();
    const r = table.apply(execFailed(100, SH_START, 30n * SEC));
    expect(r.execId).toBe(table.byPid(100)!.execId);
    expect(table.stats().execFailed).toBe(1);
  });
});

describe('pid reuse', () => {
  it('the same pid with a new start time gets a new exec_id; the old one is marked dead', () => {
    const { table } = withShell();
    const s1 = 10n * SEC;
    const s2 = 20n * SEC;
    const a = table.apply(fork(400, s1, 100, SH_START));
    // exit and reap of the first 400 were lost
    const b = table.apply(fork(400, s2, 100, SH_START));
    expect(a.execId).not.toBe(b.execId);
    expect(a.entry.state).toBe('dead');
    expect(table.byPid(400)).toBe(b.entry);
    expect(table.stats().pidReuseDetected).toBe(1);
    checkInvariants(table, 65536);
  });

  it('a late (RCU-delayed) reap of the old process finds it by exec_id', () => {
    const { table } = withShell();
    const s1 = 10n * SEC;
    const s2 = 10n * SEC + 5n * MS;
    const a = table.apply(fork(400, s1, 100, SH_START));
    table.apply(exit(400, s1, 100, s1 + MS));
    const b = table.apply(fork(400, s2, 100, SH_START)); // pid freed and reused before the free hook ran
    const r = table.apply(reap(400, s1, s2 + MS, s1 + MS));
    expect(r.execId).toBe(a.execId);
    expect(r.zombieNs).toBe(s2 - s1);
    expect(table.byPid(400)).toBe(b.entry);
    expect(b.entry.state).toBe('live');
    // the old 400 was a zombie waiting for its reap, not a lost exit
    expect(table.stats().pidReuseDetected).toBe(0);
    checkInvariants(table, 65536);
  });

  it('a late exit (autoreaped, pid already reused) still lands on the old process', () => {
    const { table } = withShell();
    const s1 = 10n * SEC;
    const s2 = 10n * SEC + 3n * MS;
    const a = table.apply(fork(401, s1, 100, SH_START));
    const b = table.apply(fork(401, s2, 100, SH_START));
    const x = table.apply(exit(401, s1, 100, s2 + 1n));
    expect(x.execId).toBe(a.execId);
    expect(x.durationNs).toBe(s2 + 1n - s1);
    expect(x.entry.state).toBe('dead');
    expect(x.entry.exit?.exitCode).toBe(0);
    expect(table.byPid(401)).toBe(b.entry);
    checkInvariants(table, 65536);
  });
});

describe('unknown processes', () => {
  it('events of unknown processes create inferred entries', () => {
    const { table } = newTable();
    const ex = table.apply(exit(500, 3n * SEC, 1, 4n * SEC));
    expect(ex.entry.source).toBe('inferred');
    expect(ex.entry.state).toBe('zombie');
    expect(ex.durationNs).toBe(SEC);
    expect(ex.comm).toBe('x500');

    const rp = table.apply(reap(501, 3n * SEC, 4n * SEC, 0n));
    expect(rp.entry.state).toBe('dead');
    expect(rp.zombieNs).toBeUndefined();

    const xc = table.apply(exec(502, 3n * SEC, 1, INIT_START, 4n * SEC, '/bin/true'));
    expect(xc.entry.source).toBe('exec'); // missed fork
    expect(xc.entry.execCount).toBe(1);
    // the parent referenced by the exec is inferred too, and linked
    const init = table.byPid(1)!;
    expect(init.source).toBe('inferred');
    expect(xc.parentExecId).toBe(init.execId);

    const xf = table.apply(execFailed(503, 3n * SEC, 4n * SEC));
    expect(xf.entry.source).toBe('inferred');
    expect(table.stats().inferred).toBe(5);

    // a fork whose parent is unknown infers the parent
    const fk = table.apply(fork(600, 5n * SEC, 550, SEC, { comm: 'make' }));
    const p = table.get(fk.parentExecId!)!;
    expect(p.pid).toBe(550);
    expect(p.comm).toBe('make');
    expect(p.childCount).toBe(1);
    checkInvariants(table, 65536);
  });
});

describe('orphan reparenting', () => {
  it('A -> B -> C: when B exits, C is reparented to what /proc says (a subreaper)', () => {
    const { table, procfs } = withShell();
    const sA = 10n * SEC;
    const sB = 11n * SEC;
    const sC = 12n * SEC;
    table.apply(fork(10, sA, 100, SH_START));
    table.apply(fork(20, sB, 10, sA));
    const c = table.apply(fork(30, sC, 20, sB)).entry;
    // A declared itself a child subreaper; the kernel moved C to A
    procfs.add(30, 10, Number(sC / TICK));
    const readsBefore = procfs.statReads;
    table.apply(exit(20, sB, 10, 13n * SEC));
    expect(procfs.statReads - readsBefore).toBe(1);
    expect(c.ppid).toBe(10);
    expect(c.parentExecId).toBe(table.byPid(10)!.execId);
    expect(table.children(table.byPid(10)!.execId).map((e) => e.pid).sort()).toEqual([20, 30]);
    expect(table.stats().reparented).toBe(1);
    expect(table.ancestry(c.execId).map((e) => e.pid)).toEqual([30, 10, 100, 1]);
  });

  it('falls back to pid 1 when /proc does not know the child, and exits without children read nothing', () => {
    const { table, procfs } = withShell();
    table.apply(fork(20, 11n * SEC, 100, SH_START));
    const c = table.apply(fork(30, 12n * SEC, 20, 11n * SEC)).entry;
    table.apply(exit(20, 11n * SEC, 100, 13n * SEC));
    expect(c.ppid).toBe(1);
    expect(c.parentExecId).toBe(table.byPid(1)!.execId);
    const reads = procfs.statReads;
    table.apply(exit(30, 12n * SEC, 1, 14n * SEC)); // no children: no /proc read
    expect(procfs.statReads).toBe(reads);
  });

  it('a ppid carried by a later event corrects the parent', () => {
    const { table } = withShell();
    table.apply(fork(20, 11n * SEC, 100, SH_START));
    const c = table.apply(fork(30, 12n * SEC, 20, 11n * SEC)).entry;
    // B's exit was lost; C's exit says its parent is now 1
    const r = table.apply(exit(30, 12n * SEC, 1, 14n * SEC));
    expect(r.ppid).toBe(1);
    expect(c.parentExecId).toBe(table.byPid(1)!.execId);
    expect(table.stats().reparented).toBe(1);
  });
});

describe('ancestry and subtrees', () => {
  it('ancestry is self -> root and bounded by maxDepth', () => {
    const { table } = withShell();
    let ppid = 100;
    let pstart = SH_START;
    let last = '';
    for (let i = 0; i < 100; i++) {
      const pid = 1000 + i;
      const s = 10n * SEC + BigInt(i);
      last = table.apply(fork(pid, s, ppid, pstart)).execId;
      ppid = pid;
      pstart = s;
    }
    const chain = table.ancestry(last);
    expect(chain.length).toBe(64);
    expect(chain[0]!.pid).toBe(1099);
    expect(chain[63]!.pid).toBe(1036);
    const full = table.ancestry(last, 1000);
    expect(full.length).toBe(102);
    expect(full.at(-1)!.pid).toBe(1);
    expect(table.ancestry(last, 3).map((e) => e.pid)).toEqual([1099, 1098, 1097]);
    expect(table.ancestry('0000000000000000')).toEqual([]);
  });

  it('a removed parent ends the chain but its exec_id stays on the children', () => {
    const { table } = withShell({ graceMs: 1 });
    const p = table.apply(fork(20, 11n * SEC, 100, SH_START)).entry;
    const c = table.apply(fork(30, 12n * SEC, 20, 11n * SEC)).entry;
    table.apply(exit(20, 11n * SEC, 100, 13n * SEC)); // 30 -> pid 1 (fallback)
    table.apply(exec(30, 12n * SEC, 20, 11n * SEC, 13n * SEC + 1n, '/bin/x')); // stale ppid says 20 again
    expect(c.parent).toBe(p);
    table.apply(reap(20, 11n * SEC, 14n * SEC));
    table.sweep(15n * SEC);
    expect(table.get(p.execId)).toBeUndefined();
    expect(c.parentExecId).toBe(p.execId);
    expect(c.parent).toBeNull();
    expect(table.ancestry(c.execId).map((e) => e.pid)).toEqual([30]);
    checkInvariants(table, 65536);
  });

  it('is cycle-safe', () => {
    const { table } = newTable();
    const x = table.apply(fork(1000, 10n * SEC, 1, INIT_START)).entry;
    const y = table.apply(fork(2000, 11n * SEC, 1000, 10n * SEC)).entry;
    // a (bogus) correction makes X a child of Y: X -> Y -> X
    table.apply(exec(1000, 10n * SEC, 2000, 11n * SEC, 12n * SEC, '/bin/x'));
    expect(x.parentExecId).toBe(y.execId);
    expect(y.parentExecId).toBe(x.execId);
    expect(table.ancestry(y.execId).map((e) => e.pid)).toEqual([2000, 1000]);
    expect(table.inSubtree(y, 12345)).toBe(false);
    expect(table.subtreeOf(1000)).toEqual(new Set([1000, 2000]));
  });

  it('inSubtree, subtreeOf, list and SubtreeFilter follow new descendants', () => {
    const { table, procfs } = withShell();
    table.apply(fork(10, 10n * SEC, 100, SH_START));
    table.apply(fork(11, 11n * SEC, 10, 10n * SEC));
    table.apply(fork(12, 12n * SEC, 100, SH_START));
    const filter = table.subtreeFilter(10);
    expect(table.subtreeOf(10)).toEqual(new Set([10, 11]));
    expect(table.subtreeOf(100)).toEqual(new Set([100, 10, 11, 12]));
    expect(table.list({ pidSubtree: 10 }).map((e) => e.pid).sort()).toEqual([10, 11]);
    expect(table.list({ comm: 'bash' }).map((e) => e.pid)).toEqual([100]);
    // children inherit the credentials of their parent until they exec
    expect(table.list({ state: 'live', uid: 0 }).map((e) => e.pid).sort((a, b) => a - b)).toEqual([1, 10, 11, 12, 100]);
    table.apply(exec(12, 12n * SEC, 100, SH_START, 12n * SEC + 1n, '/bin/id', ['id'], 1000));
    expect(table.list({ uid: 1000 }).map((e) => e.pid)).toEqual([12]);

    const events: LifecycleEvent[] = [
      fork(13, 13n * SEC, 11, 11n * SEC), // grandchild born after the filter: in
      exec(13, 13n * SEC, 11, 11n * SEC, 13n * SEC + 1n, '/bin/sleep'),
      fork(14, 14n * SEC, 12, 12n * SEC), // outside
      exit(11, 11n * SEC, 10, 15n * SEC), // 13 is orphaned...
      fork(15, 16n * SEC, 13, 13n * SEC), // ...and still followed, as are its children
      exit(15, 16n * SEC, 1, 17n * SEC),
      reap(15, 16n * SEC, 17n * SEC + 1n),
    ];
    const verdicts = events.map((ev) => {
      const en = table.apply(ev);
      return [ev.type, en.entry.pid, filter.matches(ev, en)];
    });
    expect(verdicts).toEqual([
      ['fork', 13, true],
      ['exec', 13, true],
      ['fork', 14, false],
      ['exit', 11, true],
      ['fork', 15, true],
      ['exit', 15, true],
      ['reap', 15, true],
    ]);
    expect(procfs.statReads).toBeGreaterThan(0); // 11 had a live child when it exited
    expect(table.byPid(13)!.ppid).toBe(1); // structurally reparented...
    expect(table.inSubtree(table.byPid(13)!, 10)).toBe(false); // ...so it left the live-links subtree
  });
});

describe('bootstrap', () => {
  it('links parents after loading all snapshots, in any order; zombies and dead tasks', () => {
    const { table } = newTable();
    const n = table.bootstrap(
      [
        snap(300, 200, 3n * SEC, 2n * SEC, 'child'),
        snap(200, 1, 2n * SEC, INIT_START, 'parent'),
        snap(1, 0, INIT_START, 0n, 'init'),
        snap(301, 200, 3n * SEC + 5n, 2n * SEC, 'zomb', 32),
        snap(302, 200, 3n * SEC + 6n, 2n * SEC, 'gone', 16),
        snap(400, 399, 4n * SEC, 1n * SEC, 'orphan-of-unknown'),
      ],
      { readArgs: false },
    );
    expect(n).toBe(5);
    const child = table.byPid(300)!;
    const parent = table.byPid(200)!;
    const init = table.byPid(1)!;
    expect(child.parentExecId).toBe(parent.execId);
    expect(parent.parentExecId).toBe(init.execId);
    expect(init.parentExecId).toBeNull();
    expect(table.byPid(301)!.state).toBe('zombie');
    expect(table.byPid(302)).toBeUndefined();
    expect(table.byPid(400)!.parentExecId).toBe(execId(BOOT, 399, SEC)); // parent not in the table
    expect(table.ancestry(child.execId).map((e) => e.comm)).toEqual(['child', 'parent', 'init']);
    expect(child.source).toBe('bootstrap');
    expect(table.stats()).toMatchObject({ size: 5, live: 4, zombies: 1, inferred: 0 });
  });

  it('reads argv from /proc only when the start tick matches', () => {
    const { table, procfs } = newTable();
    procfs.add(200, 1, Number((2n * SEC) / TICK), 'nginx', 'S', ['nginx', '-g', 'daemon off;']);
    procfs.add(201, 1, 999, 'other', 'S', ['reused']); // pid reused since the snapshot
    table.bootstrap([snap(200, 1, 2n * SEC + 3n, 0n), snap(201, 1, 2n * SEC, 0n)]);
    expect(table.byPid(200)!.args).toEqual(['nginx', '-g', 'daemon off;']);
    expect(table.byPid(201)!.args).toBeNull();
  });

  it('from /proc: coarse starts, parent links, and adoption by exact kernel times keeps exec_id', () => {
    const { table, procfs } = newTable();
    procfs.add(1, 0, 5, 'systemd', 'S', ['/sbin/init'], 0);
    procfs.add(500, 1, 123, 'sshd', 'S', ['sshd', '-D'], 0);
    procfs.add(501, 500, 200, 'bash', 'S', ['-bash'], 1000);
    procfs.add(502, 500, 201, 'defunct', 'Z', [], 1000);
    expect(table.bootstrapFromProc()).toBe(4);
    const sshd = table.byPid(500)!;
    const bash = table.byPid(501)!;
    expect(sshd.coarseStart).toBe(true);
    expect(sshd.startNs).toBe(123n * TICK);
    expect(sshd.args).toEqual(['sshd', '-D']);
    expect(bash.uid).toBe(1000);
    expect(bash.parentExecId).toBe(sshd.execId);
    expect(table.byPid(502)!.state).toBe('zombie');
    const id = sshd.execId;

    // exact start inside tick 123: adopt, keep the id
    const exactSshd = 123n * TICK + 4_567_891n;
    const f = table.apply(fork(600, 30n * SEC, 500, exactSshd));
    expect(f.parentExecId).toBe(id);
    expect(sshd.coarseStart).toBe(false);
    expect(sshd.startNs).toBe(exactSshd);
    const ex = table.apply(exit(500, exactSshd, 1, 31n * SEC));
    expect(ex.execId).toBe(id);
    expect(ex.durationNs).toBe(31n * SEC - exactSshd);
    // a late reap keyed by the exact start still finds it, even after pid reuse
    table.apply(fork(500, 32n * SEC, 1, 5n * TICK));
    const r = table.apply(reap(500, exactSshd, 32n * SEC + 1n));
    expect(r.execId).toBe(id);

    // an exact start in another tick is another process
    const other = table.apply(exec(501, 201n * TICK + 1n, 500, exactSshd, 40n * SEC, '/bin/ls'));
    expect(other.execId).not.toBe(bash.execId);
    expect(bash.state).toBe('dead');
    // sshd was a zombie when 500 was reused (its reap was pending): only bash's loss counts
    expect(table.stats().pidReuseDetected).toBe(1);
    checkInvariants(table, 65536);
  });

  it('keeps entries already created by events (bootstrap after the sensor started)', () => {
    const { table, procfs } = newTable();
    const exact = 7n * SEC + 3n;
    const f = table.apply(fork(700, exact, 1, INIT_START));
    procfs.add(700, 1, Number(exact / TICK), 'early');
    procfs.add(1, 0, 5, 'init');
    table.bootstrapFromProc();
    expect(table.byPid(700)).toBe(f.entry);
    expect(f.entry.coarseStart).toBe(false);
    table.bootstrap([snap(700, 1, exact, INIT_START)], { readArgs: false });
    expect(table.byPid(700)).toBe(f.entry);
  });
});

describe('bounds and sweeping', () => {
  it('grace removal happens lazily during apply too', () => {
    const { table } = newTable({ graceMs: 1000, sweepEvery: 4 });
    const s = 10n * SEC;
    const id = table.apply(fork(800, s, 1, INIT_START)).execId;
    table.apply(exit(800, s, 1, s + MS));
    table.apply(reap(800, s, s + 2n * MS));
    for (let i = 0; i < 8; i++) table.apply(execFailed(1, INIT_START, s + 500n * MS));
    expect(table.get(id)).toBeDefined();
    for (let i = 0; i < 8; i++) table.apply(execFailed(1, INIT_START, s + 2n * SEC));
    expect(table.get(id)).toBeUndefined();
  });

  it('sweep() defaults to the injected clock', () => {
    const { table, clock } = newTable({ graceMs: 1000 });
    clock.t = 10n * SEC;
    table.apply(reap(900, 5n * SEC, 10n * SEC));
    clock.t = 10n * SEC + 999n * MS;
    expect(table.sweep()).toBe(0);
    clock.t = 11n * SEC;
    expect(table.sweep()).toBe(1);
  });

  it('keeps at most deadMax reaped entries, the oldest leaving first, within the grace', () => {
    const { table } = newTable({ graceMs: 3_600_000, deadMax: 1024 });
    // 1100 processes born, exited and reaped, each a ms after the previous: all inside the grace
    const ids = bornAndReaped(table, 1100);
    const st = table.stats();
    expect(st.dead).toBe(1024);
    expect(st.deadEvictions).toBe(76);
    expect(st.evictions).toBe(0); // the bound on all entries was never reached
    for (let i = 0; i < 76; i++) expect(table.get(ids[i]!), `oldest ${i}`).toBeUndefined();
    for (let i = 76; i < 1100; i++) expect(table.get(ids[i]!), `newest ${i}`).toBeDefined();
    // live and zombie entries do not count against it
    const live = table.apply(fork(50_000, 20n * SEC, 1, INIT_START)).execId;
    table.apply(fork(50_001, 20n * SEC + 1n, 1, INIT_START));
    table.apply(exit(50_001, 20n * SEC + 1n, 1, 20n * SEC + 2n));
    expect(table.stats().dead).toBe(1024);
    expect(table.get(live)).toBeDefined();
    expect(table.byPid(50_001)!.state).toBe('zombie');
    // clamped: the rules read reaped entries for up to 10 s
    table.setLimits({ maxEntries: 65536, graceMs: 3_600_000, deadMax: 1 });
    expect(table.deadMax).toBe(1024);
    // a higher bound lets the next reap stay; a lower one trims at once, not at the next reap
    table.setLimits({ maxEntries: 65536, graceMs: 3_600_000, deadMax: 1100 });
    table.apply(reap(50_001, 20n * SEC + 1n, 20n * SEC + 3n));
    expect(table.stats().dead).toBe(1025);
    table.setLimits({ maxEntries: 65536, graceMs: 3_600_000, deadMax: 1024 });
    expect(table.stats()).toMatchObject({ dead: 1024, deadEvictions: 77 });
    checkInvariants(table, 65536);
  });

  it('trims dead entries after an event is folded in, keeping the links consistent', () => {
    // A late fork from a parent that is the oldest reaped entry, whose child takes the pid of a
    // live process (so one more entry dies during the event): the parent is trimmed only after
    // the event, and the child then keeps its parent's exec_id without a dangling link.
    const { table } = newTable({ graceMs: 3_600_000, deadMax: 1024 });
    const pStart = 5n * SEC;
    const parent = table.apply(fork(900, pStart, 1, INIT_START)).execId;
    table.apply(exit(900, pStart, 1, pStart + MS));
    table.apply(reap(900, pStart, pStart + 2n * MS));
    bornAndReaped(table, 1023);
    table.apply(fork(777, 30n * SEC, 1, INIT_START)); // live, holds pid 777
    expect(table.stats().dead).toBe(1024);
    expect(table.get(parent)!.state).toBe('dead');
    // the late fork: parent (pid 900, pStart) forked pid 777 at a later start: pid reuse
    const f = table.apply(fork(777, 31n * SEC, 900, pStart));
    expect(f.parentExecId).toBe(parent);
    expect(table.get(parent)).toBeUndefined(); // the oldest dead left after the event
    expect(f.entry.parent).toBeNull();
    expect(f.entry.parentExecId).toBe(parent);
    expect(table.stats()).toMatchObject({ dead: 1024, deadEvictions: 1 });
    checkInvariants(table, 65536);
  });

  it('evicts dead first, then live entries gone from /proc, then least recently touched', () => {
    const { table, procfs } = newTable({ maxEntries: 64 });
    procfs.add(1, 0, 5);
    for (let i = 0; i < 60; i++) table.apply(fork(1000 + i, 10n * SEC + BigInt(i), 1, INIT_START));
    table.apply(reap(1000, 10n * SEC, 20n * SEC));
    // fill up: 1 (inferred init) + 60 + 3 more = 64
    for (let i = 0; i < 4; i++) table.apply(fork(2000 + i, 21n * SEC + BigInt(i), 1, INIT_START));
    expect(table.size).toBe(64);
    expect(table.byPid(1000)).toBeUndefined();
    expect(table.stats().evictions).toBe(1);
    // no dead left; only pid 1 and 2000..2003 exist in /proc
    for (let i = 0; i < 4; i++) procfs.add(2000 + i, 1, 2100);
    table.apply(fork(3000, 30n * SEC, 1, INIT_START));
    expect(table.size).toBeLessThanOrEqual(64);
    expect(table.byPid(3000)).toBeDefined(); // the entry being applied is never evicted
    expect(table.byPid(2000)).toBeDefined();
    expect(table.byPid(1)).toBeDefined();
    expect(table.byPid(1001)).toBeUndefined(); // oldest gone-from-/proc entries went first
    // everything exists: least recently touched goes
    for (const [pid] of [...table.indexedPids()]) procfs.add(pid, 1, 1);
    for (let i = 0; i < 70; i++) {
      table.apply(execFailed(1, INIT_START, 31n * SEC)); // keep init warm
      table.apply(fork(4000 + i, 31n * SEC + BigInt(i), 1, INIT_START));
      procfs.add(4000 + i, 1, 3100);
    }
    expect(table.size).toBeLessThanOrEqual(64);
    expect(table.byPid(1)).toBeDefined();
    expect(table.byPid(4069)).toBeDefined();
    checkInvariants(table, 64);
  });
});

// ------------------------------------------------------------------ property tests

type Op =
  | { k: 'spawn'; parent: number; pid: number; dt: number; lose: boolean; thread: boolean }
  | { k: 'exec'; who: number; dt: number; lose: boolean }
  | { k: 'exit'; who: number; dt: number; lose: boolean }
  | { k: 'reap'; who: number; dt: number; lose: boolean; noExitNs: boolean }
  | { k: 'fail'; who: number; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('spawn' as const), parent: fc.nat(50), pid: fc.integer({ min: 2, max: 40 }), dt: fc.integer({ min: 1, max: 3_000_000 }), lose: fc.boolean(), thread: fc.boolean() }),
  fc.record({ k: fc.constant('exec' as const), who: fc.nat(50), dt: fc.integer({ min: 1, max: 3_000_000 }), lose: fc.boolean() }),
  fc.record({ k: fc.constant('exit' as const), who: fc.nat(50), dt: fc.integer({ min: 1, max: 3_000_000 }), lose: fc.boolean() }),
  fc.record({ k: fc.constant('reap' as const), who: fc.nat(50), dt: fc.integer({ min: 1, max: 3_000_000 }), lose: fc.boolean(), noExitNs: fc.boolean() }),
  fc.record({ k: fc.constant('fail' as const), who: fc.nat(50), dt: fc.integer({ min: 1, max: 3_000_000 }) }),
);

interface MProc {
  pid: number;
  start: bigint;
  ppid: number;
  state: 'live' | 'zombie';
  exitNs: bigint;
}

/** A tiny kernel: processes, zombies, reparenting to init, pid reuse. Emits the events the BPF
 *  sensor would, dropping the ones marked lost; the fake /proc always tells the truth. */
function runModel(ops: Op[], loss: boolean, table: ProcessTable, procfs: FakeProcFs, onApply: (ev: LifecycleEvent) => void) {
  const procs = new Map<number, MProc>();
  let t = 5n * SEC;
  const init: MProc = { pid: 1, start: INIT_START, ppid: 0, state: 'live', exitNs: 0n };
  procs.set(1, init);
  const sync = () => {
    procfs.procs.clear();
    for (const p of procs.values()) procfs.add(p.pid, p.ppid, Number(p.start / TICK), `p${p.pid}`, p.state === 'zombie' ? 'Z' : 'S');
  };
  const emit = (ev: LifecycleEvent, lose: boolean) => {
    sync();
    if (loss && lose) return;
    onApply(ev);
  };
  const pick = (i: number, f: (p: MProc) => boolean) => {
    const c = [...procs.values()].filter(f);
    return c.length === 0 ? undefined : c[i % c.length];
  };
  sync();
  table.bootstrap([snap(1, 0, INIT_START, 0n, 'init')], { readArgs: false });
  for (const op of ops) {
    t += BigInt(op.dt);
    switch (op.k) {
      case 'spawn': {
        const parent = pick(op.parent, (p) => p.state === 'live');
        if (!parent) break;
        if (op.thread) {
          emit(fork(parent.pid, t, parent.pid, parent.start, { thread: true, tid: 10_000 + op.pid }), op.lose);
          break;
        }
        if (procs.has(op.pid)) break;
        const child: MProc = { pid: op.pid, start: t, ppid: parent.pid, state: 'live', exitNs: 0n };
        procs.set(op.pid, child);
        emit(fork(child.pid, t, parent.pid, parent.start), op.lose);
        break;
      }
      case 'exec': {
        const p = pick(op.who, (x) => x.state === 'live');
        if (!p) break;
        const parent = procs.get(p.ppid);
        emit(exec(p.pid, p.start, p.ppid, parent ? parent.start : 0n, t, `/bin/prog${p.pid}`), op.lose);
        break;
      }
      case 'exit': {
        const p = pick(op.who, (x) => x.state === 'live' && x.pid !== 1);
        if (!p) break;
        p.state = 'zombie';
        p.exitNs = t;
        for (const c of procs.values()) if (c.ppid === p.pid) c.ppid = 1; // kernel reparenting
        emit(exit(p.pid, p.start, p.ppid, t), op.lose);
        break;
      }
      case 'reap': {
        const p = pick(op.who, (x) => x.state === 'zombie');
        if (!p) break;
        procs.delete(p.pid);
        emit(reap(p.pid, p.start, t, op.noExitNs ? 0n : p.exitNs), op.lose);
        break;
      }
      case 'fail': {
        const p = pick(op.who, (x) => x.state === 'live');
        if (!p) break;
        emit(execFailed(p.pid, p.start, t), false);
        break;
      }
    }
  }
  return procs;
}

describe('property tests', () => {
  it('under random lossy event streams: size <= maxEntries and the pid index is consistent', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 4, max: 40 }), fc.integer({ min: 0, max: 20 }), (ops, max, graceMs) => {
        const procfs = new FakeProcFs();
        const table = new ProcessTable({ bootId: BOOT, procfs, maxEntries: max, graceMs, sweepEvery: 7, now: () => 0n });
        runModel(ops, true, table, procfs, (ev) => {
          const en = table.apply(ev);
          expect(en.entry.pid).toBe(ev.pid);
          expect(table.size).toBeLessThanOrEqual(max);
        });
        checkInvariants(table, max);
      }),
      { numRuns: 300 },
    );
  });

  it('without loss and without bound pressure, the table mirrors the kernel', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const procfs = new FakeProcFs();
        const table = new ProcessTable({ bootId: BOOT, procfs, graceMs: 1, sweepEvery: 5, now: () => 0n });
        const durations: bigint[] = [];
        const procs = runModel(ops, false, table, procfs, (ev) => {
          const en = table.apply(ev);
          expect(en.execId).toBe(execId(BOOT, ev.pid, ev.type === 'fork' && ev.thread ? ev.parentStartNs : ev.startNs));
          if (ev.type === 'exit') durations.push(en.durationNs! - (ev.ktimeNs - ev.startNs));
          if (ev.type === 'reap' && ev.exitNs !== 0n) expect(en.zombieNs).toBe(ev.ktimeNs - ev.exitNs);
        });
        expect(durations.every((d) => d === 0n)).toBe(true);
        const indexed = new Map([...table.indexedPids()]);
        expect(new Set(indexed.keys())).toEqual(new Set(procs.keys()));
        for (const p of procs.values()) {
          const e = indexed.get(p.pid)!;
          expect(e.startNs).toBe(p.start);
          expect(e.state).toBe(p.state);
          expect(e.ppid).toBe(p.ppid);
          const parent = procs.get(p.ppid);
          if (parent) expect(e.parentExecId).toBe(execId(BOOT, parent.pid, parent.start));
        }
        const st = table.stats();
        expect(st.inferred).toBe(0);
        expect(st.pidReuseDetected).toBe(0);
        checkInvariants(table, 65536);
      }),
      { numRuns: 300 },
    );
  });
});


// ------------------------------------------------------------------ reaped processes as records

/** What a reader of an entry sees (the table-internal links and caches left out). */
function visible(e: ProcessEntry) {
  const { parent: _p, children: _c, removed: _r, aliasId: _a, touched: _t, ...rest } = e as unknown as Record<string, unknown>;
  delete rest.argsCache;
  delete rest.argsCacheFor;
  return rest;
}

describe('reaped processes kept as compact records', () => {
  it('a reaped leaf leaves the entries and reads back exactly: get, list, children, ancestry, subtree', () => {
    const { table } = newTable({ graceMs: 60_000 });
    table.bootstrap([snap(1, 0, INIT_START, 0n, 'init')], { readArgs: false });
    const s = 10n * SEC;
    const sh = table.apply(fork(100, s, 1, INIT_START)).execId;
    table.apply(exec(100, s, 1, INIT_START, s + MS, '/bin/sh', ['sh', '-c', 'x']));
    const kid = table.apply(fork(101, s + 2n * MS, 100, s)).execId;
    table.apply(exec(101, s + 2n * MS, 100, s, s + 3n * MS, '/usr/bin/ls', ['ls', '-l']));
    table.apply(exit(101, s + 2n * MS, 100, s + 4n * MS, { code: 2, maxRssKb: 1234 }));
    const r = table.apply(reap(101, s + 2n * MS, s + 5n * MS, s + 4n * MS));
    const before = visible(r.entry);
    // the entry object the reap returned is no longer the table's
    expect([...table.values()].map((e) => e.execId)).toEqual([execId(BOOT, 1, INIT_START), sh]);
    expect(table.stats()).toMatchObject({ size: 3, dead: 1, live: 2 });
    const got = table.get(kid)!;
    expect(got).not.toBe(r.entry);
    expect(visible(got)).toEqual(before);
    expect(got).toMatchObject({ state: 'dead', exit: { status: 2 << 8, exitCode: 2, signal: null, coreDumped: false, maxRssKb: 1234 }, cgroupId: 77n, uid: 1000 });
    expect(got.args).toEqual(['ls', '-l']);
    expect(table.list({ state: 'dead' }).map((e) => e.execId)).toEqual([kid]);
    expect(table.list({ comm: got.comm }).map((e) => e.execId)).toEqual([kid]);
    expect(table.list({ state: 'live' }).map((e) => e.execId)).not.toContain(kid);
    expect(table.children(sh).map((e) => e.execId)).toEqual([kid]);
    expect(table.ancestry(kid).map((e) => e.pid)).toEqual([101, 100, 1]);
    expect(table.list({ pidSubtree: 100 }).map((e) => e.pid).sort()).toEqual([100, 101]);
    checkInvariants(table, 65536);
    // the grace ends: the record goes
    expect(table.sweep(s + 5n * MS + 60n * SEC)).toBe(1);
    expect(table.get(kid)).toBeUndefined();
    expect(table.stats()).toMatchObject({ size: 2, dead: 0 });
  });

  it('a late exit after the reap (autoreap order) takes the record back as the table entry', () => {
    const { table } = newTable({ graceMs: 60_000 });
    const s = 10n * SEC;
    const id = table.apply(fork(200, s, 1, INIT_START)).execId;
    table.apply(reap(200, s, s + 2n * MS, s + MS));
    expect(table.stats().dead).toBe(1);
    const x = table.apply(exit(200, s, 1, s + MS, { code: 0, maxRssKb: 99 }));
    expect(x.execId).toBe(id);
    expect(x.durationNs).toBe(MS);
    expect(table.get(id)).toBe(x.entry); // an entry again: the same object every time
    expect(x.entry).toMatchObject({ state: 'dead', reapNs: s + 2n * MS, exit: { exitCode: 0, maxRssKb: 99 } });
    expect(table.stats()).toMatchObject({ dead: 1, inferred: 1 });
    checkInvariants(table, 65536);
  });

  it('a reaped process that still has children in the table stays an entry', () => {
    const { table } = newTable({ graceMs: 60_000 });
    const s = 10n * SEC;
    const p = table.apply(fork(300, s, 1, INIT_START)).execId;
    table.apply(fork(301, s + MS, 300, s));
    table.apply(fork(302, s + 2n * MS, 301, s + MS));
    // 301 exits, its child 302 is reparented; 301 is reaped with no children: a record
    table.apply(exit(301, s + MS, 300, s + 3n * MS));
    table.apply(reap(301, s + MS, s + 4n * MS));
    // 300 exits and is reaped while its dead child 301 is a record: nothing links it, a record too
    table.apply(exit(300, s, 1, s + 5n * MS));
    table.apply(reap(300, s, s + 6n * MS));
    expect([...table.values()].map((e) => e.pid)).toEqual([1, 302]);
    expect(table.children(p).map((e) => e.pid)).toEqual([301]);
    checkInvariants(table, 65536);
  });

  it('redaction applied again reaches the records', () => {
    const procfs = new FakeProcFs();
    let pattern = /^nothing$/;
    const table = new ProcessTable({
      bootId: BOOT, procfs, graceMs: 60_000, now: () => 0n,
      redactArgv: (argv) => (argv.some((k) => pattern.test(k.text)) ? argv.map((k) => (pattern.test(k.text) ? { text: '***' } : k)) : null),
    });
    const s = 10n * SEC;
    const id = table.apply(fork(400, s, 1, INIT_START)).execId;
    table.apply(exec(400, s, 1, INIT_START, s + MS, '/bin/login', ['login', 'hunter2']));
    table.apply(exit(400, s, 1, s + 2n * MS));
    table.apply(reap(400, s, s + 3n * MS));
    pattern = /^hunter2$/;
    expect(table.redactAgain()).toBe(1);
    expect(table.get(id)).toMatchObject({ args: ['login', '***'], argsRedacted: true });
  });

  it('under random lossy event streams, a table of records answers as one that keeps every entry', () => {
    let records = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 100, maxLength: 400 }), (ops) => {
        // one /proc for both (the model keeps it true); a keeps records, b every entry
        const procfs = new FakeProcFs();
        const mk = (compactReaped: boolean) => ({ procfs, table: new ProcessTable({ bootId: BOOT, procfs, graceMs: 3_600_000, sweepEvery: 7, now: () => 0n, compactReaped }) });
        const a = mk(true), b = mk(false);
        a.table.bootstrap([snap(1, 0, INIT_START, 0n, 'init')], { readArgs: false });
        const events: LifecycleEvent[] = [];
        runModel(ops, true, b.table, b.procfs, (ev) => {
          events.push(structuredClone(ev));
          const en = b.table.apply(ev);
          const ea = a.table.apply(events[events.length - 1]!);
          expect({ ...ea, entry: undefined }).toEqual({ ...en, entry: undefined });
          expect(visible(ea.entry)).toEqual(visible(en.entry));
        });
        const ids = (l: ProcessEntry[]) => l.map((e) => e.execId).sort();
        const all = b.table.list();
        expect(ids(a.table.list())).toEqual(ids(all));
        for (const e of all) {
          if (a.table.get(e.execId)!.removed) records++;
          expect(visible(a.table.get(e.execId)!)).toEqual(visible(e));
          expect(ids(a.table.children(e.execId))).toEqual(ids(b.table.children(e.execId)));
          expect(a.table.ancestry(e.execId).map((x) => x.execId)).toEqual(b.table.ancestry(e.execId).map((x) => x.execId));
        }
        expect(a.table.stats()).toEqual(b.table.stats());
        checkInvariants(a.table, 65536);
      }),
      { numRuns: 300 },
    );
    // not vacuous: most reaped processes were compared as records
    expect(records).toBeGreaterThan(500);
  });
});
