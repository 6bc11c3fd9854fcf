// Sequence accounting, per-CPU counters, task snapshots and .rodata patching.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PatrolError } from '../../src/shared/errors.js';
import { decodeCounters, decodePerCpuU64, decodeTaskSnaps, encodeRodata, SeqTracker, WireError } from '../../src/wire/index.js';
import { LAYOUT, PT_OP_MAX, RODATA_SIZE } from '../../src/wire/generated/lifecycle.js';
import { structSize, writeStruct } from './wire-encode.js';

describe('SeqTracker', () => {
  it('gaps = (max - min + 1) - received per CPU, whatever the order', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1000n }),
        fc.uniqueArray(fc.integer({ min: 0, max: 199 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 3 }),
        (start, offsets, cpu) => {
          const t = new SeqTracker();
          for (const o of offsets) t.observe(cpu, start + BigInt(o)); // uniqueArray: any order
          const span = BigInt(Math.max(...offsets) - Math.min(...offsets) + 1);
          expect(t.gaps(cpu)).toBe(span - BigInt(offsets.length));
          expect(t.totalGaps()).toBe(t.gaps(cpu));
          expect(t.received).toBe(offsets.length);
        },
      ),
    );
  });

  it('with a baseline, losses before the first received record count too; older records are set aside', () => {
    const t = new SeqTracker(10n);
    t.observe(2, 15n);
    t.observe(2, 13n);
    t.observe(2, 3n); // from before the baseline
    expect(t.gaps(2)).toBe(4n); // 10, 11, 12, 14
    expect(t.stats()).toEqual([{ cpu: 2, min: 13n, max: 15n, received: 2, baseline: 10n, gaps: 4n, belowBaseline: 1 }]);
    expect(t.gaps(0)).toBe(0n);
  });

  it('gapsUpTo counts a lost tail against the kernel next sequence number', () => {
    const t = new SeqTracker(0n);
    for (const s of [0n, 1n, 3n]) t.observe(1, s);
    expect(t.gaps(1)).toBe(1n);
    expect(t.gapsUpTo(1, 6n)).toBe(3n); // 2, 4, 5
    expect(t.gapsUpTo(0, 2n)).toBe(2n); // CPU never seen: everything lost
    expect(new SeqTracker().gapsUpTo(0, 5n)).toBe(0n); // no baseline, nothing seen: unknown
  });
});

describe('decodeCounters', () => {
  const stride = (structSize('pt_counters') + 7) & ~7;
  it('sums per-CPU values and keeps the per-CPU view', () => {
    const n = 3;
    const buf = Buffer.alloc(n * stride);
    for (let cpu = 0; cpu < n; cpu++) {
      writeStruct(buf, 'pt_counters', cpu * stride, {
        generated: Array.from({ length: PT_OP_MAX }, (_, op) => BigInt(cpu * 100 + op)),
        lost_reserve: Array.from({ length: PT_OP_MAX }, (_, op) => BigInt(op === 1 ? cpu : 0)),
        thread_exits: BigInt(cpu),
        thread_forks: 2n ** 63n,
        seq_burned: 1n,
        pad0: 0xffn,
      });
    }
    const c = decodeCounters(buf, n);
    expect(c.perCpu).toHaveLength(n);
    expect(c.perCpu[2]!.generated[3]).toBe(203n);
    expect(c.total.generated).toEqual(Array.from({ length: PT_OP_MAX }, (_, op) => BigInt(300 + 3 * op)));
    expect(c.total.lostReserve[1]).toBe(3n);
    expect(c.total).toMatchObject({ threadExits: 3n, threadForks: 3n * 2n ** 63n, seqBurned: 3n });
    expect(decodeCounters(buf).perCpu).toHaveLength(n); // CPU count inferred
  });

  it('rejects a value that is not whole CPUs', () => {
    expect(() => decodeCounters(Buffer.alloc(stride + 8))).toThrow(WireError);
    expect(() => decodeCounters(Buffer.alloc(stride * 2), 3)).toThrow(expect.objectContaining({ code: 'E_WIRE_PERCPU_SIZE' }));
    expect(() => decodeCounters(Buffer.alloc(0))).toThrow(PatrolError);
  });

  it('decodes per-CPU u64 values (pt_seq)', () => {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(5n, 0);
    b.writeBigUInt64LE(2n ** 64n - 1n, 8);
    expect(decodePerCpuU64(b)).toEqual([5n, 2n ** 64n - 1n]);
  });
});

describe('decodeTaskSnaps', () => {
  it('decodes back-to-back records', () => {
    const size = structSize('pt_task_snap');
    const buf = Buffer.alloc(size * 2);
    writeStruct(buf, 'pt_task_snap', 0, { start_ns: 1n, parent_start_ns: 2n, cgroup_id: 3n, cpu_ns: 4n, pid: 5, ppid: 6, uid: 7, state: 8, exit_state: 32, nr_threads: 9, comm: Buffer.from('init') });
    writeStruct(buf, 'pt_task_snap', size, { pid: 10, comm: Buffer.from([0xff, 0]) });
    const s = decodeTaskSnaps(buf);
    expect(s[0]).toEqual({ pid: 5, ppid: 6, startNs: 1n, parentStartNs: 2n, cgroupId: 3n, cpuNs: 4n, uid: 7, state: 8, exitState: 32, nrThreads: 9, comm: { text: 'init' } });
    expect(s[1]!.comm).toEqual({ text: '\ufffd', raw: Buffer.from([0xff]) });
    expect(() => decodeTaskSnaps(Buffer.alloc(size + 1))).toThrow(expect.objectContaining({ code: 'E_WIRE_SNAPSHOT_SIZE' }));
    expect(decodeTaskSnaps(Buffer.alloc(0))).toEqual([]);
  });
});

describe('encodeRodata', () => {
  const base = Buffer.from(LAYOUT.rodata.init, 'hex');
  const v = LAYOUT.rodata.vars;

  it('patches each variable at its generated offset and leaves the base untouched', () => {
    const out = encodeRodata(base, { argsCap: 8192, filenameCap: 512, emitThreads: true, wakeupMode: 1, pageKb: 16n, benchBurst: 7 });
    expect(out).not.toBe(base);
    expect(base.readUInt32LE(v.args_cap.offset)).toBe(4096); // the object's default
    expect(out.readUInt32LE(v.args_cap.offset)).toBe(8192);
    expect(out.readUInt32LE(v.filename_cap.offset)).toBe(512);
    expect(out[v.emit_threads.offset]).toBe(1);
    expect(out.readUInt32LE(v.wakeup_mode.offset)).toBe(1);
    expect(out.readBigUInt64LE(v.page_kb.offset)).toBe(16n);
    expect(out.readUInt32LE(v.bench_burst.offset)).toBe(7);
    expect(out.length).toBe(RODATA_SIZE);
    expect(encodeRodata(base, { pageKb: 64 }).readBigUInt64LE(v.page_kb.offset)).toBe(64n);
    expect(encodeRodata(base, {}).equals(base)).toBe(true);
  });

  it('throws typed errors for a missing variable, a short image or a bad value', () => {
    const { bench_burst: _gone, ...rest } = v;
    expect(() => encodeRodata(base, { benchBurst: 1 }, rest)).toThrow(expect.objectContaining({ code: 'E_WIRE_RODATA_MISSING' }));
    expect(() => encodeRodata(base.subarray(0, 8), { pageKb: 4 })).toThrow(expect.objectContaining({ code: 'E_WIRE_RODATA_SHORT' }));
    expect(() => encodeRodata(base, { argsCap: -1 })).toThrow(expect.objectContaining({ code: 'E_WIRE_RODATA_RANGE' }));
    expect(() => encodeRodata(base, { argsCap: 2 ** 32 })).toThrow(WireError);
    expect(() => encodeRodata(base, { argsCap: 1.5 })).toThrow(WireError);
    expect(() => encodeRodata(base, { emitThreads: 1 as unknown as boolean })).toThrow(WireError);
  });
});
