// TableFacts remembers the last 8,192 exits by pid (kernel lines about a process often arrive
// after its reap), in a ring: the oldest exit leaves unless its pid exited again since.
import { describe, expect, it } from 'vitest';
import { TableFacts } from '../../src/app/rules.js';
import { ProcessTable, type ProcFs } from '../../src/process/index.js';
import type { LifecycleEvent } from '../../src/shared/events.js';
import type { ProcFact } from '../../src/rules/index.js';

function facts(): TableFacts {
  // exited entries only: every exec_id is a process that ended 1 s after boot
  const table = {
    byPid: () => undefined,
    entryOf: (execId: string) => ({ execId, pid: 0, startNs: 0n, exitNs: 1_000_000_000n }),
  } as unknown as ProcessTable;
  return new TableFacts(table);
}

// ------------------------------------------------------------------ a reaped process as a record

const SEC = 1_000_000_000n;
const noProcs: ProcFs = { listPids: () => [], readStat: () => null, readCmdline: () => null, readUid: () => null };
let seq = 0n;
const h = <T extends LifecycleEvent['type']>(type: T, ktimeNs: bigint) => ({ type, ktimeNs, seq: seq++, cpu: 0, flags: 0 });
const usage = (maxRssKb: number) => ({ cpuNs: 1n, utimeNs: 1n, stimeNs: 0n, maxRssKb, readBytes: 0n, writeBytes: 0n, rchar: 0n, wchar: 0n, minflt: 0n, majflt: 0n, nvcsw: 0n, nivcsw: 0n });

/** A shell (100) starts four children: one execs and exits 3, one is killed by SIGSEGV, one
 *  never execs, and one execs and is still a zombie (not reaped). Every one of them exits. */
function history(): LifecycleEvent[] {
  const out: LifecycleEvent[] = [];
  const sh = 2n * SEC;
  out.push({ ...h('fork', sh), pid: 100, tid: 100, startNs: sh, ppid: 1, parentTid: 1, parentStartNs: SEC, comm: { text: 'bash' }, thread: false });
  const kids: [number, 'code' | 'segv' | 'noexec' | 'zombie'][] = [[200, 'code'], [201, 'segv'], [202, 'noexec'], [203, 'zombie']];
  for (const [pid, how] of kids) {
    const s = 3n * SEC + BigInt(pid);
    out.push({ ...h('fork', s), pid, tid: pid, startNs: s, ppid: 100, parentTid: 100, parentStartNs: sh, comm: { text: 'bash' }, thread: false });
    if (how !== 'noexec') {
      const args = ['/usr/bin/prog', `--n=${pid}`];
      out.push({
        ...h('exec', s + 10n), pid, oldTid: pid, ppid: 100, startNs: s, parentStartNs: sh, cgroupId: 77n, uid: 1000, gid: 1000, euid: 1000,
        comm: { text: 'prog' }, filename: { text: args[0]! }, filenameTruncated: false, args: args.map((text) => ({ text })), argsTruncated: false, argsFault: false, argsFullLen: 24,
      });
    }
    const signal = how === 'segv' ? 11 : null;
    const code = signal === null ? 3 : null;
    out.push({ ...h('exit', s + 500n), pid, tid: pid, ppid: 100, startNs: s, status: signal ?? code! << 8, exitCode: code, signal, coreDumped: signal !== null, comm: { text: how === 'noexec' ? 'bash' : 'prog' }, usage: usage(pid) });
    if (how !== 'zombie') out.push({ ...h('reap', s + 900n), pid, startNs: s, exitNs: s + 500n });
  }
  return out;
}

const FIELDS: (keyof ProcFact)[] = ['execId', 'pid', 'ppid', 'parentExecId', 'comm', 'args', 'filename', 'cgroup', 'startNs', 'exitNs', 'exitCode', 'signal', 'maxRssBytes'];
const asObject = (f: ProcFact | null) => (f === null ? null : Object.fromEntries(FIELDS.map((k) => [k, f[k]])));

describe('TableFacts: a reaped process kept as a record', () => {
  it('reads as the same fact as its entry would, by exec_id and by pid, and is read from the record without a copy', () => {
    const tables = [true, false].map((compactReaped) => new ProcessTable({ bootId: 'b', procfs: noProcs, graceMs: 3_600_000, now: () => 4n * SEC, compactReaped }));
    const ids: string[][] = [[], []];
    for (const ev of history()) {
      tables.forEach((t, i) => {
        const en = t.apply(ev);
        if (ev.type === 'fork') ids[i]!.push(en.execId);
      });
    }
    const [compact, full] = tables.map((t) => new TableFacts(t));
    expect(ids[0]).toEqual(ids[1]);
    const records = ids[0]!.filter((id) => tables[0]!.entryOf(id) === undefined);
    // the three reaped leaves are records in the compact table; the zombie and the shell are entries
    expect(records.length).toBe(3);
    expect(records.every((id) => tables[0]!.recordFields(id) !== undefined && tables[1]!.entryOf(id) !== undefined)).toBe(true);
    for (const id of ids[0]!) {
      const got = asObject(compact!.get(id));
      expect(got, id).toEqual(asObject(full!.get(id)));
      expect(got).not.toBeNull();
    }
    const segv = asObject(compact!.get(records[1]!));
    expect(segv).toMatchObject({ pid: 201, comm: 'prog', args: ['/usr/bin/prog', '--n=201'], exitCode: null, signal: 11, maxRssBytes: 201 * 1024 });
    expect(asObject(compact!.get(records[2]!))).toMatchObject({ pid: 202, args: null, filename: null, exitCode: 3 });
    // by pid, as a kernel line after the reap finds it
    for (const f of [compact!, full!]) for (const [pid, i] of [[200, 1], [201, 2], [202, 3]] as const) f.noteExit(pid, ids[0]![i]!);
    for (const pid of [200, 201, 202]) expect(asObject(compact!.byPid(pid, 3n * SEC + 600n))).toEqual(asObject(full!.byPid(pid, 3n * SEC + 600n)));
    expect(compact!.get('no-such-exec-id')).toBeNull();
  });
});
const at = 2_000_000_000n;

describe('TableFacts: exits by pid', () => {
  it('keeps the last 8,192 exits; a pid that exited again keeps its newer exit until that one leaves', () => {
    const f = facts();
    f.noteExit(5, 'x');
    f.noteExit(5, 'y'); // pid 5 reused
    expect(f.byPid(5, at)?.execId).toBe('y');
    for (let i = 0; i < 8190; i++) f.noteExit(1000 + i, `e${i}`);
    // 8,192 exits so far: x and y both still in the ring
    expect(f.byPid(1000, at)?.execId).toBe('e0');
    f.noteExit(9999, 'z'); // x's slot leaves: pid 5 now means y, which stays
    expect(f.byPid(5, at)?.execId).toBe('y');
    f.noteExit(9998, 'w'); // y's slot leaves
    expect(f.byPid(5, at)).toBeNull();
    expect(f.byPid(1000, at)?.execId).toBe('e0');
    f.noteExit(9997, 'v'); // e0's slot leaves
    expect(f.byPid(1000, at)).toBeNull();
    expect(f.byPid(1001, at)?.execId).toBe('e1');
    expect(f.byPid(9997, at)?.execId).toBe('v');
  });
});
