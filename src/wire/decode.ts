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
  ptExecArgsFullLen,
  ptExecArgsLen,
  ptExecCgroupId,
  ptExecComm,
  ptExecEuid,
  ptExecExecSeq,
  ptExecFailedComm,
  ptExecFailedErr,
  ptExecFailedFilenameLen,
  ptExecFailedPid,
  ptExecFailedStartNs,
  ptExecFailedTid,
  ptExecFilenameLen,
  ptExecGid,
  ptExecOldTid,
  ptExecParentStartNs,
  ptExecPid,
  ptExecPpid,
  ptExecStartNs,
  ptExecUid,
  ptExitComm,
  ptExitCpuNs,
  ptExitExitCode,
  ptExitMajflt,
  ptExitMaxrssKb,
  ptExitMinflt,
  ptExitNivcsw,
  ptExitNvcsw,
  ptExitPid,
  ptExitPpid,
  ptExitRchar,
  ptExitReadBytes,
  ptExitStartNs,
  ptExitStimeNs,
  ptExitTid,
  ptExitUtimeNs,
  ptExitWchar,
  ptExitWriteBytes,
  ptForkChildPid,
  ptForkChildStartNs,
  ptForkChildTid,
  ptForkComm,
  ptForkParentPid,
  ptForkParentStartNs,
  ptForkParentTid,
  ptHdrCpu,
  ptHdrFlags,
  ptHdrKtimeNs,
  ptHdrOp,
  ptHdrSeq,
  ptHdrSize,
  ptReapExitNs,
  ptReapPid,
  ptReapStartNs,
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
      // the header's fields are read where they are needed: no header object per record
      const ev = ptHdrSize(batch, rec) === len ? decodeRecord(batch, rec, len) : 'E_WIRE_SIZE_MISMATCH';
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
  r.consumed = off;
  return r;
}

function decodeRecord(buf: Buffer, rec: number, len: number): LifecycleEvent | RecordError {
  switch (ptHdrOp(buf, rec)) {
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

// Each decoder builds its event from the generated field readers, straight from the buffer.

function fork(buf: Buffer, rec: number): ForkEvent {
  const flags = ptHdrFlags(buf, rec);
  return {
    type: 'fork',
    ktimeNs: ptHdrKtimeNs(buf, rec),
    seq: ptHdrSeq(buf, rec),
    cpu: ptHdrCpu(buf, rec),
    flags,
    pid: ptForkChildPid(buf, rec),
    tid: ptForkChildTid(buf, rec),
    startNs: ptForkChildStartNs(buf, rec),
    ppid: ptForkParentPid(buf, rec),
    parentTid: ptForkParentTid(buf, rec),
    parentStartNs: ptForkParentStartNs(buf, rec),
    comm: ptForkComm(buf, rec),
    thread: (flags & PT_F_THREAD) !== 0,
  };
}

function exec(buf: Buffer, rec: number, len: number): ExecEvent | RecordError {
  // Tail: argv region, then filename; both lengths are bounded by the record.
  const argsStart = rec + PT_EXEC_SIZE;
  const argsEnd = argsStart + ptExecArgsLen(buf, rec);
  const fileEnd = argsEnd + ptExecFilenameLen(buf, rec);
  if (fileEnd > rec + len) return 'E_WIRE_TAIL_OVERRUN';
  const tail = execTail(buf, argsStart, argsEnd, fileEnd);
  const flags = ptHdrFlags(buf, rec);
  return {
    type: 'exec',
    ktimeNs: ptHdrKtimeNs(buf, rec),
    seq: ptHdrSeq(buf, rec),
    cpu: ptHdrCpu(buf, rec),
    flags,
    pid: ptExecPid(buf, rec),
    oldTid: ptExecOldTid(buf, rec),
    ppid: ptExecPpid(buf, rec),
    startNs: ptExecStartNs(buf, rec),
    parentStartNs: ptExecParentStartNs(buf, rec),
    cgroupId: ptExecCgroupId(buf, rec),
    uid: ptExecUid(buf, rec),
    gid: ptExecGid(buf, rec),
    euid: ptExecEuid(buf, rec),
    comm: ptExecComm(buf, rec),
    filename: tail.filename,
    filenameTruncated: (flags & PT_F_FILENAME_TRUNCATED) !== 0,
    args: tail.args,
    argsTruncated: (flags & PT_F_ARGS_TRUNCATED) !== 0,
    argsFault: (flags & PT_F_ARGS_FAULT) !== 0,
    argsFullLen: ptExecArgsFullLen(buf, rec),
    execSeq: ptExecExecSeq(buf, rec),
  };
}

function exit(buf: Buffer, rec: number): ExitEvent {
  const status = ptExitExitCode(buf, rec); // raw wait status
  const sig = status & 0x7f;
  const flags = ptHdrFlags(buf, rec);
  return {
    type: 'exit',
    ktimeNs: ptHdrKtimeNs(buf, rec),
    seq: ptHdrSeq(buf, rec),
    cpu: ptHdrCpu(buf, rec),
    flags,
    pid: ptExitPid(buf, rec),
    tid: ptExitTid(buf, rec),
    ppid: ptExitPpid(buf, rec),
    startNs: ptExitStartNs(buf, rec),
    status,
    exitCode: sig === 0 ? (status >>> 8) & 0xff : null,
    signal: sig === 0 ? null : sig,
    coreDumped: (flags & PT_F_CORE_DUMPED) !== 0 || (status & 0x80) !== 0,
    comm: ptExitComm(buf, rec),
    usage: {
      cpuNs: ptExitCpuNs(buf, rec),
      utimeNs: ptExitUtimeNs(buf, rec),
      stimeNs: ptExitStimeNs(buf, rec),
      maxRssKb: ptExitMaxrssKb(buf, rec),
      readBytes: ptExitReadBytes(buf, rec),
      writeBytes: ptExitWriteBytes(buf, rec),
      rchar: ptExitRchar(buf, rec),
      wchar: ptExitWchar(buf, rec),
      minflt: ptExitMinflt(buf, rec),
      majflt: ptExitMajflt(buf, rec),
      nvcsw: ptExitNvcsw(buf, rec),
      nivcsw: ptExitNivcsw(buf, rec),
    },
  };
}

function reap(buf: Buffer, rec: number): ReapEvent {
  return {
    type: 'reap',
    ktimeNs: ptHdrKtimeNs(buf, rec),
    seq: ptHdrSeq(buf, rec),
    cpu: ptHdrCpu(buf, rec),
    flags: ptHdrFlags(buf, rec),
    pid: ptReapPid(buf, rec),
    startNs: ptReapStartNs(buf, rec),
    exitNs: ptReapExitNs(buf, rec),
  };
}

function execFailed(buf: Buffer, rec: number, len: number): ExecFailedEvent | RecordError {
  const start = rec + PT_EXEC_FAILED_SIZE;
  const filenameLen = ptExecFailedFilenameLen(buf, rec);
  // The record carries a fixed filename buffer; only filename_len bytes of it are meaningful.
  if (start + filenameLen > rec + len) return 'E_WIRE_TAIL_OVERRUN';
  return {
    type: 'exec_failed',
    ktimeNs: ptHdrKtimeNs(buf, rec),
    seq: ptHdrSeq(buf, rec),
    cpu: ptHdrCpu(buf, rec),
    flags: ptHdrFlags(buf, rec),
    pid: ptExecFailedPid(buf, rec),
    tid: ptExecFailedTid(buf, rec),
    startNs: ptExecFailedStartNs(buf, rec),
    errno: -ptExecFailedErr(buf, rec),
    filename: ktext(buf, start, start + filenameLen),
    comm: ptExecFailedComm(buf, rec),
  };
}
