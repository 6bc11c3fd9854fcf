// The sweeps read fields in place (src/wire/offsets.ts); the generated whole-struct readers are
// the reference: on any bytes, both must agree on every field the sweeps return.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeThreadSnaps, decodeUsageSweep, UsageSweepDecoder } from '../../src/wire/index.js';
import { fieldOffset } from '../../src/wire/offsets.js';
import { LAYOUT, PT_TASK_USAGE_SIZE, PT_USAGE_LEADER, PT_USAGE_KTHREAD, PT_USAGE_ZOMBIE, readPtTaskUsage } from '../../src/wire/generated/lifecycle.js';
import { ST_TASK_SNAP_SIZE, readStTaskSnap } from '../../src/wire/generated/state.js';

// counters below 2^53 (the sweeps read them as numbers): random bytes with each u64's top 11 bits cleared
function records(size: number, n: number, seed: number, patch: (b: Buffer, off: number, i: number) => void): Buffer {
  const b = Buffer.alloc(size * n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  for (let i = 7; i < b.length; i += 8) b[i] = 0;
  for (let i = 6; i < b.length; i += 8) b[i]! &= 0x1f;
  for (let r = 0; r < n; r++) patch(b, r * size, r);
  return b;
}

const PID = fieldOffset(LAYOUT, 'pt_task_usage', 'pid');
const FLAGS = fieldOffset(LAYOUT, 'pt_task_usage', 'flags');

describe('sweep decoders agree with the generated readers', () => {
  it('usage sweep: per-process sums and the leader fields', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer(), (n, seed) => {
        // three processes; the leader of each is its first record
        const pidOf = (i: number) => 100 + (i % 3);
        const buf = records(PT_TASK_USAGE_SIZE, n, seed, (b, off, i) => {
          b.writeUInt32LE(pidOf(i), off + PID);
          b.writeUInt32LE((i < 3 ? PT_USAGE_LEADER : 0) | (i % 5 === 0 ? PT_USAGE_KTHREAD : 0) | (i % 7 === 0 ? PT_USAGE_ZOMBIE : 0), off + FLAGS);
        });
        const got = new Map(decodeUsageSweep(buf).map((g) => [g.pid, g]));
        for (let pid = 100; pid < 103; pid++) {
          const recs = Array.from({ length: n }, (_, i) => i).filter((i) => pidOf(i) === pid).map((i) => readPtTaskUsage(buf, i * PT_TASK_USAGE_SIZE));
          if (recs.length === 0) continue;
          const g = got.get(pid)!;
          const leader = recs.find((r) => r.flags & PT_USAGE_LEADER)!;
          expect(g.threads).toBe(recs.length);
          expect(g.cpuNs).toBe(BigInt(recs.reduce((a, r) => a + Number(r.cpuNs), 0)));
          expect(g.readBytes).toBe(recs.reduce((a, r) => a + Number(r.readBytes), 0));
          expect(g.majflt).toBe(recs.reduce((a, r) => a + Number(r.majflt), 0));
          expect(g.startNs).toBe(recs[0]!.startNs);
          expect(g.cgroupId).toBe(leader.cgroupId);
          expect(g.ppid).toBe(leader.ppid);
          expect(g.comm).toEqual(leader.comm);
          expect(g.rssBytes).toBe(Number(leader.rssKb) * 1024);
          expect(g.peakRssBytes).toBe(Number(leader.hiwaterKb) * 1024);
          expect(g.zombie).toBe((leader.flags & PT_USAGE_ZOMBIE) !== 0);
          expect(g.kthread).toBe(recs.some((r) => r.flags & PT_USAGE_KTHREAD));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('state snapshot: every field a thread snap carries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer(), (n, seed) => {
        const buf = records(ST_TASK_SNAP_SIZE, n, seed, () => {});
        const snaps = decodeThreadSnaps(buf);
        expect(snaps).toHaveLength(n);
        snaps.forEach((t, i) => {
          const r = readStTaskSnap(buf, i * ST_TASK_SNAP_SIZE);
          expect(t.pid).toBe(r.pid);
          expect(t.tid).toBe(r.tid);
          expect(t.startNs).toBe(r.startNs);
          expect(t.cgroupId).toBe(r.cgroupId);
          expect(t.comm).toEqual(r.comm);
          expect(t.rawState).toBe(r.acct.state);
          expect(t.sinceNs).toBe(r.acct.sinceNs);
          expect(t.rqMaxNs).toBe(Number(r.acct.rqMaxNs));
          expect(t.rqHist).toEqual(r.acct.rqHist);
          expect(t.nvcsw).toBe(Number(r.acct.nvcsw));
          expect(t.nivcsw).toBe(Number(r.acct.nivcsw));
        });
      }),
      { numRuns: 100 },
    );
  });
});

const at = (f: string) => fieldOffset(LAYOUT, 'pt_task_usage', f);

/** One task's record of a usage sweep. */
interface TaskRec {
  pid: number;
  start: bigint;
  leader: boolean;
  kthread: boolean;
  zombie: boolean;
  cpu: number;
  read: number;
  rss: number;
  hiwater: number;
  ppid: number;
  cgroup: bigint;
  comm: string;
}

function sweepBuf(recs: TaskRec[]): Buffer {
  const b = Buffer.alloc(recs.length * PT_TASK_USAGE_SIZE);
  recs.forEach((r, i) => {
    const o = i * PT_TASK_USAGE_SIZE;
    b.writeBigUInt64LE(r.start, o + at('start_ns'));
    b.writeBigUInt64LE(r.cgroup, o + at('cgroup_id'));
    b.writeBigUInt64LE(BigInt(r.cpu), o + at('cpu_ns'));
    b.writeBigUInt64LE(BigInt(r.read), o + at('read_bytes'));
    b.writeBigUInt64LE(BigInt(r.rss), o + at('rss_kb'));
    b.writeBigUInt64LE(BigInt(r.hiwater), o + at('hiwater_kb'));
    b.writeUInt32LE(r.pid, o + at('pid'));
    b.writeUInt32LE(r.ppid, o + at('ppid'));
    b.writeUInt32LE((r.leader ? PT_USAGE_LEADER : 0) | (r.kthread ? PT_USAGE_KTHREAD : 0) | (r.zombie ? PT_USAGE_ZOMBIE : 0), o + FLAGS);
    b.write(r.comm, o + at('comm'), 15, 'latin1');
  });
  return b;
}

describe('the agent\'s usage decoder, sweep after sweep', () => {
  // a sweep: up to 6 pids, each with 1–3 tasks; between sweeps counters grow, comms change,
  // pids are reused (a new start), processes come and go, a leader's record may be missing
  const task = fc.record({
    pid: fc.integer({ min: 1, max: 6 }),
    start: fc.constantFrom(1_000n, 2_000n, 2n ** 40n + 7n),
    leader: fc.boolean(),
    kthread: fc.boolean(),
    zombie: fc.boolean(),
    cpu: fc.constantFrom(0, 5, 1_000_000, 2 ** 40),
    read: fc.constantFrom(0, 4096),
    rss: fc.constantFrom(0, 100, 2 ** 33),
    hiwater: fc.constantFrom(0, 200),
    ppid: fc.constantFrom(0, 1, 77),
    cgroup: fc.constantFrom(0n, 5n, 2n ** 40n),
    comm: fc.constantFrom('', 'sleep', 'nginx', 'naïve', 'x'.repeat(15), 'kworker/0:1', 'kworker/0:2', 'kworker/0:1H'),
  });
  // tasks of one pid share its start within a sweep (one process per pid at a time)
  const sweep = fc.array(task, { maxLength: 12 }).map((ts) => {
    const startOf = new Map<number, bigint>();
    return ts.map((t) => {
      if (!startOf.has(t.pid)) startOf.set(t.pid, t.start);
      return { ...t, start: startOf.get(t.pid)! };
    });
  });

  it('answers as a fresh decode of each sweep', () => {
    fc.assert(
      fc.property(fc.array(sweep, { minLength: 1, maxLength: 8 }), (sweeps) => {
        const d = new UsageSweepDecoder();
        for (const recs of sweeps) {
          const buf = sweepBuf(recs);
          const got = d.decode(buf).map((g) => ({ ...g, comm: { ...g.comm } }));
          expect(got).toEqual(decodeUsageSweep(buf));
          expect(d.size).toBe(new Set(recs.map((r) => r.pid)).size);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('an unchanged process keeps its object and makes no new bigint or text; a reused pid gets a new one', () => {
    const d = new UsageSweepDecoder();
    const rec: TaskRec = { pid: 42, start: 5_000n, leader: true, kthread: false, zombie: false, cpu: 7, read: 0, rss: 10, hiwater: 10, ppid: 1, cgroup: 9n, comm: 'sleep' };
    const [a] = d.decode(sweepBuf([rec]));
    const fields = { start: a!.startNs, cgroup: a!.cgroupId, cpu: a!.cpuNs, comm: a!.comm };
    const [b] = d.decode(sweepBuf([rec]));
    expect(b).toBe(a);
    // the same bigint and text objects: nothing was made again
    expect(b!.comm).toBe(fields.comm);
    expect(b!.cpuNs).toBe(fields.cpu);
    expect(b!.cgroupId).toBe(fields.cgroup);
    expect(b!.startNs).toBe(fields.start);
    const [c] = d.decode(sweepBuf([{ ...rec, cpu: 9, comm: 'nginx' }]));
    expect(c).toBe(a);
    expect(c!.cpuNs).toBe(9n);
    expect(c!.comm.text).toBe('nginx');
    const [e] = d.decode(sweepBuf([{ ...rec, start: 6_000n }]));
    expect(e).not.toBe(a);
    expect(e!.startNs).toBe(6_000n);
    expect(d.decode(sweepBuf([]))).toEqual([]);
    expect(d.size).toBe(0);
  });
});
