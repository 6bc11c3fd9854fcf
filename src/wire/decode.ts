// Batch decoder: ring records as framed by the native addon, to LifecycleEvents. Pure: no I/O,
// no module state; it never throws on bad input, it counts and reports instead, because one bad
// record must not take the consumer down.
//
// Framing (the addon's, not BTF's): per record [u32 LE length][u32 0][record][zeros to 8n].
// Bad framing stops the walk (nothing after it can be trusted); a bad record inside good framing
// is counted as malformed and skipped.
import type { EventType, ExecEvent, ExecFailedEvent, ExitEvent, ForkEvent, LifecycleEvent, ReapEvent } from '../shared/events.js';
import {
  LAYOUT,
  PT_EXEC_FAILED_SIZE,
  PT_EXEC_SIZE,
  PT_EXIT_SIZE,
  PT_FORK_SIZE,
  PT_F_ARGS_FAULT,
  PT_F_ARGS_TRUNCATED,
  PT_F_CORE_DUMPED,
  PT_F_FILENAME_TRUNCATED,
  PT_F_THREAD,
  PT_HDR_SIZE,
  PT_OP_EXEC,
  PT_OP_EXEC_FAILED,
  PT_OP_EXIT,
  PT_OP_FORK,
  PT_OP_REAP,
  PT_REAP_SIZE,
} from './generated/lifecycle.js';
import type { SeqTracker } from './seq.js';
import { fieldLength, fieldOffset } from './offsets.js';
import { cstrText, execTail, ktext, u64b, u64n } from './text.js';

// Field offsets from the generated layout (offsets.ts): each decoder builds its event straight
// from the buffer, with no header or body object per record (those were 7 % of what the agent
// allocated at 200 exec/s). u64 fields read as numbers are the ones gen-wire's NUMBERS lists.
const off = (struct: string) => (field: string) => fieldOffset(LAYOUT, struct, field);
const hdr = off('pt_hdr');
const H = { ktime: hdr('ktime_ns'), seq: hdr('seq'), size: hdr('size'), cpu: hdr('cpu'), op: hdr('op'), flags: hdr('flags') };
const fo = off('pt_fork');
const FK = { childStart: fo('child_start_ns'), parentStart: fo('parent_start_ns'), childPid: fo('child_pid'), childTid: fo('child_tid'), parentPid: fo('parent_pid'), parentTid: fo('parent_tid'), comm: fo('comm'), commLen: fieldLength(LAYOUT, 'pt_fork', 'comm') };
const ex = off('pt_exec');
const EX = {
  start: ex('start_ns'), parentStart: ex('parent_start_ns'), cgroup: ex('cgroup_id'), pid: ex('pid'), oldTid: ex('old_tid'), ppid: ex('ppid'),
  uid: ex('uid'), gid: ex('gid'), euid: ex('euid'), filenameLen: ex('filename_len'), argsLen: ex('args_len'), argsFullLen: ex('args_full_len'),
  execSeq: ex('exec_seq'), comm: ex('comm'), commLen: fieldLength(LAYOUT, 'pt_exec', 'comm'),
};
const xt = off('pt_exit');
const XT = {
  start: xt('start_ns'), cpu: xt('cpu_ns'), utime: xt('utime_ns'), stime: xt('stime_ns'), maxrss: xt('maxrss_kb'), read: xt('read_bytes'),
  write: xt('write_bytes'), rchar: xt('rchar'), wchar: xt('wchar'), minflt: xt('minflt'), majflt: xt('majflt'), nvcsw: xt('nvcsw'),
  nivcsw: xt('nivcsw'), pid: xt('pid'), tid: xt('tid'), ppid: xt('ppid'), code: xt('exit_code'), comm: xt('comm'),
  commLen: fieldLength(LAYOUT, 'pt_exit', 'comm'),
};
const rp = off('pt_reap');
const RP = { start: rp('start_ns'), exitNs: rp('exit_ns'), pid: rp('pid') };
const ef = off('pt_exec_failed');
const EF = { start: ef('start_ns'), pid: ef('pid'), tid: ef('tid'), err: ef('err'), filenameLen: ef('filename_len'), comm: ef('comm'), commLen: fieldLength(LAYOUT, 'pt_exec_failed', 'comm') };

/** Bytes of the addon's per-record frame header. */
export const FRAME_HEADER = 8;

/** Event type per pt_op value (undefined for ops that are not events). */
export const OP_EVENT_TYPE: readonly (EventType | undefined)[] = (() => {
  const t: (EventType | undefined)[] = [];
  t[PT_OP_EXEC] = 'exec';
  t[PT_OP_FORK] = 'fork';
  t[PT_OP_EXIT] = 'exit';
  t[PT_OP_REAP] = 'reap';
  t[PT_OP_EXEC_FAILED] = 'exec_failed';
  return t;
})();

/** Why the walk stopped before the end of the batch. */
export type FrameError = 'E_WIRE_FRAME_SHORT' | 'E_WIRE_FRAME_GARBLED' | 'E_WIRE_FRAME_TRUNCATED' | 'E_WIRE_INTERNAL';
/** Why a well-framed record was skipped. */
export type RecordError = 'E_WIRE_RECORD_SHORT' | 'E_WIRE_SIZE_MISMATCH' | 'E_WIRE_UNKNOWN_OP' | 'E_WIRE_TAIL_OVERRUN';

export interface DecodeSink {
  /** events are appended here (a fresh array when absent) */
  events?: LifecycleEvent[];
  /** every decoded record's (cpu, seq) is observed here */
  seq?: SeqTracker;
  /** where the walk starts in the batch (0); a record always starts on a frame boundary */
  from?: number;
  /** the walk stops after this many framed records, at the next frame boundary (no stop set):
   *  a consumer can decode and hand over a large batch a part at a time */
  maxRecords?: number;
}

export interface DecodeResult {
  events: LifecycleEvent[];
  /** records framed in this batch, decoded or not */
  records: number;
  /** records skipped plus a bad frame that stopped the walk */
  malformed: number;
  /** of malformed: well-framed records whose op is unknown */
  unknownOps: number;
  /** bytes walked from `from`; short of the batch's end when the walk stopped at a bad frame
   *  (stop set) or after maxRecords records (stop null) */
  consumed: number;
  stop: FrameError | null;
  lastRecordError: RecordError | null;
}

export function decodeBatch(batch: Buffer, out?: DecodeSink): DecodeResult {
  const events = out?.events ?? [];
  const seq = out?.seq;
  const r: DecodeResult = { events, records: 0, malformed: 0, unknownOps: 0, consumed: 0, stop: null, lastRecordError: null };
  const end = batch.length;
  const from = out?.from ?? 0;
  const maxRecords = out?.maxRecords ?? Infinity;
  let off = from;
  try {
    while (off < end && r.records < maxRecords) {
      if (end - off < FRAME_HEADER) {
        r.stop = 'E_WIRE_FRAME_SHORT';
        break;
      }
      const len = batch.readUInt32LE(off);
      if (batch.readUInt32LE(off + 4) !== 0) {
        r.stop = 'E_WIRE_FRAME_GARBLED';
        break;
      }
      const rec = off + FRAME_HEADER;
      const next = rec + len + ((8 - (len & 7)) & 7);
      if (next > end) {
        r.stop = 'E_WIRE_FRAME_TRUNCATED';
        break;
      }
      r.records++;
      off = next; // framing is good: whatever the record holds, the walk continues after it
      if (len < PT_HDR_SIZE) {
        r.malformed++;
        r.lastRecordError = 'E_WIRE_RECORD_SHORT';
        continue;
      }
      const ev = batch.readUInt32LE(rec + H.size) === len ? decodeRecord(batch, rec, len) : 'E_WIRE_SIZE_MISMATCH';
      if (typeof ev === 'string') {
        r.malformed++;
        r.lastRecordError = ev;
        if (ev === 'E_WIRE_UNKNOWN_OP') r.unknownOps++;
        continue;
      }
      events.push(ev);
      seq?.observe(ev.cpu, ev.seq);
    }
  } catch {
    // Unreachable by construction (every read is bounds-checked above); kept so a decoder bug
    // costs one batch, not the consumer.
    r.stop = 'E_WIRE_INTERNAL';
  }
  if (r.stop !== null) r.malformed++;
  r.consumed = off - from;
  return r;
}

function decodeRecord(buf: Buffer, rec: number, len: number): LifecycleEvent | RecordError {
  switch (buf[rec + H.op]) {
    case PT_OP_FORK:
      return len < PT_FORK_SIZE ? 'E_WIRE_RECORD_SHORT' : fork(buf, rec);
    case PT_OP_EXEC:
      return len < PT_EXEC_SIZE ? 'E_WIRE_RECORD_SHORT' : exec(buf, rec, len);
    case PT_OP_EXIT:
      return len < PT_EXIT_SIZE ? 'E_WIRE_RECORD_SHORT' : exit(buf, rec);
    case PT_OP_REAP:
      return len < PT_REAP_SIZE ? 'E_WIRE_RECORD_SHORT' : reap(buf, rec);
    case PT_OP_EXEC_FAILED:
      return len < PT_EXEC_FAILED_SIZE ? 'E_WIRE_RECORD_SHORT' : execFailed(buf, rec, len);
    default:
      return 'E_WIRE_UNKNOWN_OP';
  }
}

function fork(buf: Buffer, rec: number): ForkEvent {
  const flags = buf[rec + H.flags]!;
  return {
    type: 'fork',
    ktimeNs: u64b(buf, rec + H.ktime),
    seq: u64b(buf, rec + H.seq),
    cpu: buf.readUInt16LE(rec + H.cpu),
    flags,
    pid: buf.readUInt32LE(rec + FK.childPid),
    tid: buf.readUInt32LE(rec + FK.childTid),
    startNs: u64b(buf, rec + FK.childStart),
    ppid: buf.readUInt32LE(rec + FK.parentPid),
    parentTid: buf.readUInt32LE(rec + FK.parentTid),
    parentStartNs: u64b(buf, rec + FK.parentStart),
    comm: cstrText(buf, rec + FK.comm, FK.commLen),
    thread: (flags & PT_F_THREAD) !== 0,
  };
}

function exec(buf: Buffer, rec: number, len: number): ExecEvent | RecordError {
  // Tail: argv region, then filename; both lengths are bounded by the record.
  const argsStart = rec + PT_EXEC_SIZE;
  const argsEnd = argsStart + buf.readUInt32LE(rec + EX.argsLen);
  const fileEnd = argsEnd + buf.readUInt32LE(rec + EX.filenameLen);
  if (fileEnd > rec + len) return 'E_WIRE_TAIL_OVERRUN';
  const tail = execTail(buf, argsStart, argsEnd, fileEnd);
  const flags = buf[rec + H.flags]!;
  return {
    type: 'exec',
    ktimeNs: u64b(buf, rec + H.ktime),
    seq: u64b(buf, rec + H.seq),
    cpu: buf.readUInt16LE(rec + H.cpu),
    flags,
    pid: buf.readUInt32LE(rec + EX.pid),
    oldTid: buf.readUInt32LE(rec + EX.oldTid),
    ppid: buf.readUInt32LE(rec + EX.ppid),
    startNs: u64b(buf, rec + EX.start),
    parentStartNs: u64b(buf, rec + EX.parentStart),
    cgroupId: u64b(buf, rec + EX.cgroup),
    uid: buf.readUInt32LE(rec + EX.uid),
    gid: buf.readUInt32LE(rec + EX.gid),
    euid: buf.readUInt32LE(rec + EX.euid),
    comm: cstrText(buf, rec + EX.comm, EX.commLen),
    filename: tail.filename,
    filenameTruncated: (flags & PT_F_FILENAME_TRUNCATED) !== 0,
    args: tail.args,
    argsTruncated: (flags & PT_F_ARGS_TRUNCATED) !== 0,
    argsFault: (flags & PT_F_ARGS_FAULT) !== 0,
    argsFullLen: buf.readUInt32LE(rec + EX.argsFullLen),
    execSeq: buf.readUInt32LE(rec + EX.execSeq),
  };
}

function exit(buf: Buffer, rec: number): ExitEvent {
  const status = buf.readUInt32LE(rec + XT.code); // raw wait status
  const sig = status & 0x7f;
  const flags = buf[rec + H.flags]!;
  return {
    type: 'exit',
    ktimeNs: u64b(buf, rec + H.ktime),
    seq: u64b(buf, rec + H.seq),
    cpu: buf.readUInt16LE(rec + H.cpu),
    flags,
    pid: buf.readUInt32LE(rec + XT.pid),
    tid: buf.readUInt32LE(rec + XT.tid),
    ppid: buf.readUInt32LE(rec + XT.ppid),
    startNs: u64b(buf, rec + XT.start),
    status,
    exitCode: sig === 0 ? (status >>> 8) & 0xff : null,
    signal: sig === 0 ? null : sig,
    coreDumped: (flags & PT_F_CORE_DUMPED) !== 0 || (status & 0x80) !== 0,
    comm: cstrText(buf, rec + XT.comm, XT.commLen),
    usage: {
      cpuNs: u64n(buf, rec + XT.cpu),
      utimeNs: u64n(buf, rec + XT.utime),
      stimeNs: u64n(buf, rec + XT.stime),
      maxRssKb: u64n(buf, rec + XT.maxrss),
      readBytes: u64n(buf, rec + XT.read),
      writeBytes: u64n(buf, rec + XT.write),
      rchar: u64n(buf, rec + XT.rchar),
      wchar: u64n(buf, rec + XT.wchar),
      minflt: u64n(buf, rec + XT.minflt),
      majflt: u64n(buf, rec + XT.majflt),
      nvcsw: u64n(buf, rec + XT.nvcsw),
      nivcsw: u64n(buf, rec + XT.nivcsw),
    },
  };
}

function reap(buf: Buffer, rec: number): ReapEvent {
  return {
    type: 'reap',
    ktimeNs: u64b(buf, rec + H.ktime),
    seq: u64b(buf, rec + H.seq),
    cpu: buf.readUInt16LE(rec + H.cpu),
    flags: buf[rec + H.flags]!,
    pid: buf.readUInt32LE(rec + RP.pid),
    startNs: u64b(buf, rec + RP.start),
    exitNs: u64b(buf, rec + RP.exitNs),
  };
}

function execFailed(buf: Buffer, rec: number, len: number): ExecFailedEvent | RecordError {
  const start = rec + PT_EXEC_FAILED_SIZE;
  const filenameLen = buf.readUInt32LE(rec + EF.filenameLen);
  // The record carries a fixed filename buffer; only filename_len bytes of it are meaningful.
  if (start + filenameLen > rec + len) return 'E_WIRE_TAIL_OVERRUN';
  return {
    type: 'exec_failed',
    ktimeNs: u64b(buf, rec + H.ktime),
    seq: u64b(buf, rec + H.seq),
    cpu: buf.readUInt16LE(rec + H.cpu),
    flags: buf[rec + H.flags]!,
    pid: buf.readUInt32LE(rec + EF.pid),
    tid: buf.readUInt32LE(rec + EF.tid),
    startNs: u64b(buf, rec + EF.start),
    errno: -buf.readInt32LE(rec + EF.err),
    filename: ktext(buf, start, start + filenameLen),
    comm: cstrText(buf, rec + EF.comm, EF.commLen),
  };
}
