// Batch decoder: ring records as framed by the native addon, to LifecycleEvents. Pure: no I/O,
// no module state; it never throws on bad input, it counts and reports instead, because one bad
// record must not take the consumer down.
//
// Framing (the addon's, not BTF's): per record [u32 LE length][u32 0][record][zeros to 8n].
// Bad framing stops the walk (nothing after it can be trusted); a bad record inside good framing
// is counted as malformed and skipped.
import type { EventType, ExecEvent, ExecFailedEvent, ExitEvent, ForkEvent, LifecycleEvent, ReapEvent } from '../shared/events.js';
import {
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
  readPtExecBody,
  readPtExecFailedBody,
  readPtExitBody,
  readPtForkBody,
  readPtHdr,
  readPtReapBody,
  type PtHdr,
} from './generated/lifecycle.js';
import type { SeqTracker } from './seq.js';
import { execTail, ktext } from './text.js';

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
}

export interface DecodeResult {
  events: LifecycleEvent[];
  /** records framed in this batch, decoded or not */
  records: number;
  /** records skipped plus a bad frame that stopped the walk */
  malformed: number;
  /** of malformed: well-framed records whose op is unknown */
  unknownOps: number;
  /** bytes walked; less than batch.length when the walk stopped */
  consumed: number;
  stop: FrameError | null;
  lastRecordError: RecordError | null;
}

export function decodeBatch(batch: Buffer, out?: DecodeSink): DecodeResult {
  const events = out?.events ?? [];
  const seq = out?.seq;
  const r: DecodeResult = { events, records: 0, malformed: 0, unknownOps: 0, consumed: 0, stop: null, lastRecordError: null };
  const end = batch.length;
  let off = 0;
  try {
    while (off < end) {
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
      const h = readPtHdr(batch, rec);
      const ev = h.size === len ? decodeRecord(batch, rec, len, h) : 'E_WIRE_SIZE_MISMATCH';
      if (typeof ev === 'string') {
        r.malformed++;
        r.lastRecordError = ev;
        if (ev === 'E_WIRE_UNKNOWN_OP') r.unknownOps++;
        continue;
      }
      events.push(ev);
      seq?.observe(h.cpu, h.seq);
    }
  } catch {
    // Unreachable by construction (every read is bounds-checked above); kept so a decoder bug
    // costs one batch, not the consumer.
    r.stop = 'E_WIRE_INTERNAL';
  }
  if (r.stop !== null) r.malformed++;
  r.consumed = off;
  return r;
}

function decodeRecord(buf: Buffer, rec: number, len: number, h: PtHdr): LifecycleEvent | RecordError {
  switch (h.op) {
    case PT_OP_FORK:
      return len < PT_FORK_SIZE ? 'E_WIRE_RECORD_SHORT' : fork(buf, rec, h);
    case PT_OP_EXEC:
      return len < PT_EXEC_SIZE ? 'E_WIRE_RECORD_SHORT' : exec(buf, rec, len, h);
    case PT_OP_EXIT:
      return len < PT_EXIT_SIZE ? 'E_WIRE_RECORD_SHORT' : exit(buf, rec, h);
    case PT_OP_REAP:
      return len < PT_REAP_SIZE ? 'E_WIRE_RECORD_SHORT' : reap(buf, rec, h);
    case PT_OP_EXEC_FAILED:
      return len < PT_EXEC_FAILED_SIZE ? 'E_WIRE_RECORD_SHORT' : execFailed(buf, rec, len, h);
    default:
      return 'E_WIRE_UNKNOWN_OP';
  }
}

function fork(buf: Buffer, rec: number, h: PtHdr): ForkEvent {
  const b = readPtForkBody(buf, rec);
  return {
    type: 'fork',
    ktimeNs: h.ktimeNs,
    seq: h.seq,
    cpu: h.cpu,
    flags: h.flags,
    pid: b.childPid,
    tid: b.childTid,
    startNs: b.childStartNs,
    ppid: b.parentPid,
    parentTid: b.parentTid,
    parentStartNs: b.parentStartNs,
    comm: b.comm,
    thread: (h.flags & PT_F_THREAD) !== 0,
  };
}

function exec(buf: Buffer, rec: number, len: number, h: PtHdr): ExecEvent | RecordError {
  const b = readPtExecBody(buf, rec);
  // Tail: argv region, then filename; both lengths are bounded by the record.
  const argsStart = rec + PT_EXEC_SIZE;
  const argsEnd = argsStart + b.argsLen;
  const fileEnd = argsEnd + b.filenameLen;
  if (fileEnd > rec + len) return 'E_WIRE_TAIL_OVERRUN';
  const tail = execTail(buf, argsStart, argsEnd, fileEnd);
  return {
    type: 'exec',
    ktimeNs: h.ktimeNs,
    seq: h.seq,
    cpu: h.cpu,
    flags: h.flags,
    pid: b.pid,
    oldTid: b.oldTid,
    ppid: b.ppid,
    startNs: b.startNs,
    parentStartNs: b.parentStartNs,
    cgroupId: b.cgroupId,
    uid: b.uid,
    gid: b.gid,
    euid: b.euid,
    comm: b.comm,
    filename: tail.filename,
    filenameTruncated: (h.flags & PT_F_FILENAME_TRUNCATED) !== 0,
    args: tail.args,
    argsTruncated: (h.flags & PT_F_ARGS_TRUNCATED) !== 0,
    argsFault: (h.flags & PT_F_ARGS_FAULT) !== 0,
    argsFullLen: b.argsFullLen,
  };
}

function exit(buf: Buffer, rec: number, h: PtHdr): ExitEvent {
  const b = readPtExitBody(buf, rec);
  const status = b.exitCode; // raw wait status
  const sig = status & 0x7f;
  return {
    type: 'exit',
    ktimeNs: h.ktimeNs,
    seq: h.seq,
    cpu: h.cpu,
    flags: h.flags,
    pid: b.pid,
    tid: b.tid,
    ppid: b.ppid,
    startNs: b.startNs,
    status,
    exitCode: sig === 0 ? (status >>> 8) & 0xff : null,
    signal: sig === 0 ? null : sig,
    coreDumped: (h.flags & PT_F_CORE_DUMPED) !== 0 || (status & 0x80) !== 0,
    comm: b.comm,
    usage: {
      cpuNs: b.cpuNs,
      utimeNs: b.utimeNs,
      stimeNs: b.stimeNs,
      maxRssKb: b.maxrssKb,
      readBytes: b.readBytes,
      writeBytes: b.writeBytes,
      rchar: b.rchar,
      wchar: b.wchar,
      minflt: b.minflt,
      majflt: b.majflt,
      nvcsw: b.nvcsw,
      nivcsw: b.nivcsw,
    },
  };
}

function reap(buf: Buffer, rec: number, h: PtHdr): ReapEvent {
  const b = readPtReapBody(buf, rec);
  return { type: 'reap', ktimeNs: h.ktimeNs, seq: h.seq, cpu: h.cpu, flags: h.flags, pid: b.pid, startNs: b.startNs, exitNs: b.exitNs };
}

function execFailed(buf: Buffer, rec: number, len: number, h: PtHdr): ExecFailedEvent | RecordError {
  const b = readPtExecFailedBody(buf, rec);
  const start = rec + PT_EXEC_FAILED_SIZE;
  // The record carries a fixed filename buffer; only filename_len bytes of it are meaningful.
  if (start + b.filenameLen > rec + len) return 'E_WIRE_TAIL_OVERRUN';
  return {
    type: 'exec_failed',
    ktimeNs: h.ktimeNs,
    seq: h.seq,
    cpu: h.cpu,
    flags: h.flags,
    pid: b.pid,
    tid: b.tid,
    startNs: b.startNs,
    errno: -b.err,
    filename: ktext(buf, start, start + b.filenameLen),
    comm: b.comm,
  };
}
