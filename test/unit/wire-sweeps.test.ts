// The sweeps read fields in place (src/wire/offsets.ts); the generated whole-struct readers are
// the reference: on any bytes, both must agree on every field the sweeps return.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeThreadSnaps, decodeUsageSweep } from '../../src/wire/index.js';
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
