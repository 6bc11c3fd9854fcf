// decodeBatch: what the encoder writes at the generated offsets comes back exactly, and no input,
// however garbled, makes it throw or loop.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExecEvent, ExecFailedEvent, ExitEvent, ForkEvent, KText, LifecycleEvent, ReapEvent } from '../../src/shared/events.js';
import { decodeBatch, SeqTracker } from '../../src/wire/index.js';
import {
  PT_F_ARGS_FAULT,
  PT_F_ARGS_TRUNCATED,
  PT_F_CORE_DUMPED,
  PT_F_FILENAME_TRUNCATED,
  PT_F_THREAD,
  PT_OP_EXEC,
  PT_OP_EXEC_FAILED,
  PT_OP_EXIT,
  PT_OP_FORK,
  PT_OP_REAP,
} from '../../src/wire/generated/lifecycle.js';
import { argvRegion, fieldOffset, frame, record, structSize } from './wire-encode.js';

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });
/** Kernel text: arbitrary bytes except NUL, biased to include invalid UTF-8 and multibyte. */
const textBytes = (max: number) =>
  fc
    .oneof(
      fc.uint8Array({ minLength: 0, maxLength: max }).map((a) => a.map((b) => b || 0x41)),
      fc.string({ unit: 'binary', maxLength: Math.floor(max / 4) }).map((s) => new Uint8Array(Buffer.from(s.replace(/\0/g, 'x')))),
      fc.string({ unit: 'grapheme-ascii', maxLength: max }).map((s) => new Uint8Array(Buffer.from(s.replace(/\0/g, 'x')))),
    )
    .map((a) => Buffer.from(a.subarray(0, max)));

const fatal = new TextDecoder('utf-8', { fatal: true });
/** What KText must be for these bytes: raw exactly when they are not UTF-8. */
function expectText(k: KText, bytes: Buffer): void {
  expect(k.text).toBe(bytes.toString('utf8'));
  let valid = true;
  try {
    fatal.decode(bytes);
  } catch {
    valid = false;
  }
  if (valid) {
    expect(k.raw).toBeUndefined();
    expect(Buffer.from(k.text, 'utf8').equals(bytes)).toBe(true);
  } else {
    expect(k.raw).toBeInstanceOf(Buffer);
    expect(k.raw!.equals(bytes)).toBe(true);
  }
}

const hdrArb = fc.record({ ktime_ns: u64, seq: u64, cpu: u16, flags: u8 });
type Hdr = { ktime_ns: bigint; seq: bigint; cpu: number; flags: number };
function expectBase(e: LifecycleEvent, h: Hdr, type: string): void {
  expect(e).toMatchObject({ type, ktimeNs: h.ktime_ns, seq: h.seq, cpu: h.cpu, flags: h.flags });
}

// One arbitrary per op: [record bytes, check(decoded)]
type Case = { rec: Buffer; check: (e: LifecycleEvent) => void };

const forkCase = fc
  .record({ hdr: hdrArb, child_start_ns: u64, parent_start_ns: u64, child_pid: u32, child_tid: u32, parent_pid: u32, parent_tid: u32, comm: textBytes(16) })
  .map(
    (v): Case => ({
      rec: record('pt_fork', { ...v, hdr: { ...v.hdr, op: PT_OP_FORK } }),
      check: (e) => {
        expectBase(e, v.hdr, 'fork');
        const f = e as ForkEvent;
        expect(f).toMatchObject({ pid: v.child_pid, tid: v.child_tid, startNs: v.child_start_ns, ppid: v.parent_pid, parentTid: v.parent_tid, parentStartNs: v.parent_start_ns });
        expect(f.thread).toBe((v.hdr.flags & PT_F_THREAD) !== 0);
        expectText(f.comm, v.comm);
      },
    }),
  );

const execCase = fc
  .record({
    hdr: hdrArb,
    start_ns: u64,
    parent_start_ns: u64,
    cgroup_id: u64,
    pid: u32,
    old_tid: u32,
    ppid: u32,
    uid: u32,
    gid: u32,
    euid: u32,
    args_full_len: u32,
    comm: textBytes(16),
    args: fc.array(textBytes(40), { maxLength: 8 }),
    truncated: fc.boolean(),
    cutLast: fc.boolean(),
    filename: textBytes(300),
  })
  .map((v): Case => {
    // A cut last arg (no NUL after it) only happens with truncation and is only distinguishable
    // from a complete one when non-empty.
    const cut = v.truncated && v.cutLast && v.args.length > 0 && v.args[v.args.length - 1]!.length > 0;
    const region = argvRegion(v.args, cut);
    const flags = (v.hdr.flags & ~PT_F_ARGS_TRUNCATED) | (v.truncated ? PT_F_ARGS_TRUNCATED : 0);
    const rec = record(
      'pt_exec',
      { ...v, hdr: { ...v.hdr, flags, op: PT_OP_EXEC }, args_len: region.length, filename_len: v.filename.length },
      Buffer.concat([region, v.filename]),
    );
    return {
      rec,
      check: (e) => {
        expectBase(e, { ...v.hdr, flags }, 'exec');
        const x = e as ExecEvent;
        expect(x).toMatchObject({ pid: v.pid, oldTid: v.old_tid, ppid: v.ppid, startNs: v.start_ns, parentStartNs: v.parent_start_ns, cgroupId: v.cgroup_id });
        expect(x).toMatchObject({ uid: v.uid, gid: v.gid, euid: v.euid, argsFullLen: v.args_full_len });
        expect(x.argsTruncated).toBe(v.truncated);
        expect(x.filenameTruncated).toBe((flags & PT_F_FILENAME_TRUNCATED) !== 0);
        expect(x.argsFault).toBe((flags & PT_F_ARGS_FAULT) !== 0);
        expectText(x.comm, v.comm);
        expectText(x.filename, v.filename);
        expect(x.args).toHaveLength(v.args.length);
        x.args.forEach((a, i) => expectText(a, v.args[i]!));
      },
    };
  });

const exitCase = fc
  .record({
    hdr: hdrArb,
    usage: fc.array(u64, { minLength: 13, maxLength: 13 }),
    maxrss: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    pid: u32,
    tid: u32,
    ppid: u32,
    status: fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((c) => c << 8),
      fc.integer({ min: 1, max: 0x7e }).map((s) => s),
      fc.integer({ min: 1, max: 0x7e }).map((s) => s | 0x80),
      u32,
    ),
    comm: textBytes(16),
  })
  .map((v): Case => {
    const [start_ns, cpu_ns, utime_ns, stime_ns, , read_bytes, write_bytes, rchar, wchar, minflt, majflt, nvcsw, nivcsw] = v.usage as bigint[];
    const body = { start_ns, cpu_ns, utime_ns, stime_ns, maxrss_kb: BigInt(v.maxrss), read_bytes, write_bytes, rchar, wchar, minflt, majflt, nvcsw, nivcsw };
    return {
      rec: record('pt_exit', { ...body, pid: v.pid, tid: v.tid, ppid: v.ppid, exit_code: v.status, comm: v.comm, hdr: { ...v.hdr, op: PT_OP_EXIT } }),
      check: (e) => {
        expectBase(e, v.hdr, 'exit');
        const x = e as ExitEvent;
        expect(x).toMatchObject({ pid: v.pid, tid: v.tid, ppid: v.ppid, startNs: start_ns, status: v.status });
        const sig = v.status & 0x7f;
        expect(x.exitCode).toBe(sig === 0 ? (v.status >>> 8) & 0xff : null);
        expect(x.signal).toBe(sig === 0 ? null : sig);
        expect(x.coreDumped).toBe((v.hdr.flags & PT_F_CORE_DUMPED) !== 0 || (v.status & 0x80) !== 0);
        // counters and sizes come as numbers: exact below 2^53, the nearest double above
        // (the same rounding as Number(bigint))
        const n = (b: bigint | undefined) => Number(b);
        expect(x.usage).toEqual({
          cpuNs: n(cpu_ns),
          utimeNs: n(utime_ns),
          stimeNs: n(stime_ns),
          maxRssKb: v.maxrss,
          readBytes: n(read_bytes),
          writeBytes: n(write_bytes),
          rchar: n(rchar),
          wchar: n(wchar),
          minflt: n(minflt),
          majflt: n(majflt),
          nvcsw: n(nvcsw),
          nivcsw: n(nivcsw),
        });
        expectText(x.comm, v.comm);
      },
    };
  });

const reapCase = fc.record({ hdr: hdrArb, start_ns: u64, exit_ns: u64, pid: u32 }).map(
  (v): Case => ({
    rec: record('pt_reap', { ...v, hdr: { ...v.hdr, op: PT_OP_REAP } }),
    check: (e) => {
      expectBase(e, v.hdr, 'reap');
      expect(e as ReapEvent).toMatchObject({ pid: v.pid, startNs: v.start_ns, exitNs: v.exit_ns });
    },
  }),
);

const execFailedCase = fc
  .record({ hdr: hdrArb, start_ns: u64, pid: u32, tid: u32, errno: fc.integer({ min: 1, max: 4095 }), filename: textBytes(255), junk: fc.uint8Array({ maxLength: 256 }), comm: textBytes(16) })
  .map((v): Case => {
    // As the BPF side does: a fixed 256-byte filename buffer, only filename_len of it meaningful.
    const tail = Buffer.alloc(256, 0xee);
    Buffer.from(v.junk).copy(tail);
    v.filename.copy(tail);
    return {
      rec: record('pt_exec_failed', { ...v, err: -v.errno, filename_len: v.filename.length, hdr: { ...v.hdr, op: PT_OP_EXEC_FAILED } }, tail),
      check: (e) => {
        expectBase(e, v.hdr, 'exec_failed');
        expect(e as ExecFailedEvent).toMatchObject({ pid: v.pid, tid: v.tid, startNs: v.start_ns, errno: v.errno });
        expectText((e as ExecFailedEvent).filename, v.filename);
        expectText((e as ExecFailedEvent).comm, v.comm);
      },
    };
  });

const anyCase = fc.oneof(forkCase, execCase, exitCase, reapCase, execFailedCase);

describe('decodeBatch roundtrip', () => {
  it('returns exactly what was encoded, in order, for batches of every record type', () => {
    fc.assert(
      fc.property(fc.array(anyCase, { maxLength: 12 }), (cases) => {
        const batch = frame(cases.map((c) => c.rec));
        const seq = new SeqTracker();
        const r = decodeBatch(batch, { seq });
        expect(r).toMatchObject({ records: cases.length, malformed: 0, unknownOps: 0, consumed: batch.length, stop: null });
        expect(r.events).toHaveLength(cases.length);
        cases.forEach((c, i) => c.check(r.events[i]!));
        expect(seq.received).toBe(cases.length);
      }),
      { numRuns: 400 },
    );
  });

  it('appends to a caller-owned events array', () => {
    fc.assert(
      fc.property(fc.array(anyCase, { minLength: 1, maxLength: 4 }), fc.array(anyCase, { minLength: 1, maxLength: 4 }), (a, b) => {
        const events: LifecycleEvent[] = [];
        decodeBatch(frame(a.map((c) => c.rec)), { events });
        const r = decodeBatch(frame(b.map((c) => c.rec)), { events });
        expect(r.events).toBe(events);
        expect(events).toHaveLength(a.length + b.length);
        [...a, ...b].forEach((c, i) => c.check(events[i]!));
      }),
      { numRuns: 50 },
    );
  });
});

describe('decodeBatch text edge cases', () => {
  const exec = (args: Buffer, flags = 0, filename = Buffer.from('/bin/x')) =>
    decodeBatch(frame([record('pt_exec', { hdr: { op: PT_OP_EXEC, flags }, args_len: args.length, filename_len: filename.length }, Buffer.concat([args, filename]))])).events[0] as ExecEvent;

  it('splits argv on NUL: trailing NUL ends the last arg, empty args survive', () => {
    expect(exec(Buffer.from('a\0\0b\0')).args).toEqual([{ text: 'a' }, { text: '' }, { text: 'b' }]);
    expect(exec(Buffer.from('')).args).toEqual([]);
    expect(exec(Buffer.from('\0')).args).toEqual([{ text: '' }]);
  });

  it('keeps a partial last arg when argv was truncated', () => {
    const e = exec(Buffer.from('sh\0-c\0echo aaaa'), PT_F_ARGS_TRUNCATED);
    expect(e.argsTruncated).toBe(true);
    expect(e.args.map((a) => a.text)).toEqual(['sh', '-c', 'echo aaaa']);
  });

  it('non-UTF-8 bytes: U+FFFD text plus the exact raw bytes, only for the bad arg', () => {
    const e = exec(Buffer.from([0x61, 0, 0xff, 0x62, 0, 0xc3, 0xa9, 0]));
    expect(e.args[0]).toEqual({ text: 'a' });
    expect(e.args[1]!.text).toBe('\ufffdb');
    expect(e.args[1]!.raw).toEqual(Buffer.from([0xff, 0x62]));
    expect(e.args[2]).toEqual({ text: 'é' });
  });

  it('comm without a NUL uses all 16 bytes; comm stops at the first NUL', () => {
    const f = (comm: Buffer) => (decodeBatch(frame([record('pt_fork', { hdr: { op: PT_OP_FORK }, comm })])).events[0] as ForkEvent).comm;
    expect(f(Buffer.from('0123456789abcdef'))).toEqual({ text: '0123456789abcdef' });
    expect(f(Buffer.from('ab\0cd'))).toEqual({ text: 'ab' });
  });

  it('raw is a copy, not a view of the batch', () => {
    const batch = frame([record('pt_fork', { hdr: { op: PT_OP_FORK }, comm: Buffer.from([0xff, 0xfe]) })]);
    const ev = decodeBatch(batch).events[0] as ForkEvent;
    batch.fill(0);
    expect(ev.comm.raw).toEqual(Buffer.from([0xff, 0xfe]));
  });
});

describe('decodeBatch on bad input', () => {
  const good = () => frame([record('pt_reap', { hdr: { op: PT_OP_REAP, seq: 1n }, pid: 7 }), record('pt_reap', { hdr: { op: PT_OP_REAP, seq: 2n }, pid: 8 })]);

  it('counts an unknown op as malformed and keeps walking', () => {
    const unknown = record('pt_reap', { hdr: { op: 99 }, pid: 1 });
    const r = decodeBatch(Buffer.concat([frame([unknown]), good()]));
    expect(r).toMatchObject({ records: 3, malformed: 1, unknownOps: 1, stop: null, lastRecordError: 'E_WIRE_UNKNOWN_OP' });
    expect(r.events.map((e) => (e as ReapEvent).pid)).toEqual([7, 8]);
  });

  it('skips a record whose hdr.size disagrees with its frame, or whose tail overruns it', () => {
    const bad = record('pt_reap', { hdr: { op: PT_OP_REAP } });
    bad.writeUInt32LE(1000, fieldOffset('pt_hdr', 'size'));
    const over = record('pt_exec', { hdr: { op: PT_OP_EXEC }, args_len: 50, filename_len: 0 }, Buffer.alloc(10));
    const short = record('pt_reap', { hdr: { op: PT_OP_FORK } }); // a fork header on a reap-sized record
    const r = decodeBatch(Buffer.concat([frame([bad, over, short]), good()]));
    expect(r).toMatchObject({ records: 5, malformed: 3, unknownOps: 0, stop: null });
    expect(r.events).toHaveLength(2);
  });

  it('stops at garbled or truncated framing and reports it', () => {
    const g = good();
    const garbled = Buffer.from(g);
    garbled.writeUInt32LE(5, 4); // the zero word of the first frame
    expect(decodeBatch(garbled)).toMatchObject({ records: 0, malformed: 1, stop: 'E_WIRE_FRAME_GARBLED', consumed: 0 });
    const cut = g.subarray(0, g.length - 3);
    const r = decodeBatch(cut);
    expect(r).toMatchObject({ records: 1, malformed: 1, stop: 'E_WIRE_FRAME_TRUNCATED', consumed: 8 + structSize('pt_reap') });
    expect(r.events).toHaveLength(1);
    expect(decodeBatch(Buffer.concat([g, Buffer.alloc(5)]))).toMatchObject({ records: 2, stop: 'E_WIRE_FRAME_SHORT' });
  });

  it('a record shorter than the header is malformed, the walk goes on', () => {
    const r = decodeBatch(Buffer.concat([frame([Buffer.alloc(4)]), good()]));
    expect(r).toMatchObject({ records: 3, malformed: 1, lastRecordError: 'E_WIRE_RECORD_SHORT', stop: null });
  });

  it('never throws and always terminates on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        const buf = Buffer.from(bytes);
        const r = decodeBatch(buf);
        expect(r.consumed).toBeLessThanOrEqual(buf.length);
        expect(r.events.length + r.malformed).toBeGreaterThanOrEqual(r.records);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on valid batches with random byte corruption', () => {
    fc.assert(
      fc.property(
        fc.array(anyCase, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 8 }),
        (cases, edits) => {
          const buf = frame(cases.map((c) => c.rec));
          for (const [at, b] of edits) buf[at % buf.length] = b;
          // lengths in corrupted frames can be anything up to 4 GiB: the walk must still end
          const r = decodeBatch(buf);
          expect(r.consumed).toBeLessThanOrEqual(buf.length);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a batch cut anywhere decodes to a prefix of the whole batch', () => {
    fc.assert(
      fc.property(fc.array(anyCase, { minLength: 1, maxLength: 6 }), fc.nat(), (cases, cutAt) => {
        const buf = frame(cases.map((c) => c.rec));
        const cut = buf.subarray(0, cutAt % (buf.length + 1));
        const r = decodeBatch(cut);
        expect(r.events.length).toBeLessThanOrEqual(cases.length);
        r.events.forEach((e, i) => cases[i]!.check(e));
        if (r.consumed < cut.length) expect(r.stop).not.toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('decoded a chunk at a time (from, maxRecords), a batch gives what it gives whole, corrupt or not', () => {
    fc.assert(
      fc.property(
        fc.array(anyCase, { minLength: 1, maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), u8), { maxLength: 3 }),
        fc.integer({ min: 1, max: 4 }),
        (cases, edits, perChunk) => {
          const buf = frame(cases.map((c) => c.rec));
          for (const [at, b] of edits) buf[at % buf.length] = b;
          const whole = decodeBatch(buf);
          const events: LifecycleEvent[] = [];
          let records = 0;
          let malformed = 0;
          let chunks = 0;
          // as LifecyclePipeline.onBatch walks a drain
          for (let start = 0; start < buf.length; chunks++) {
            const r = decodeBatch(buf, { events, from: start, maxRecords: perChunk });
            expect(r.records).toBeLessThanOrEqual(perChunk);
            records += r.records;
            malformed += r.malformed;
            if (r.stop !== null) break; // only the last chunk may hold a bad frame
            expect(r.consumed).toBeGreaterThan(0);
            // a chunk cut short of perChunk records is the batch's last
            if (r.records < perChunk) expect(start + r.consumed).toBe(buf.length);
            start += r.consumed;
          }
          expect({ records, malformed }).toEqual({ records: whole.records, malformed: whole.malformed });
          expect(events).toEqual(whole.events);
          if (edits.length === 0) expect(chunks).toBe(Math.ceil(cases.length / perChunk));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
