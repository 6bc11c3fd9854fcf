// Decoders for the state sensor (bpf/state.bpf.c): its ring records, its per-thread snapshot
// from the st_snapshot iterator, and its counters. Pure functions, like decode.ts.
import type { StateLetter, StateStreamEvent } from '../shared/events.js';
import {
  PT_HDR_SIZE,
  ST_COUNTERS_SIZE,
  LAYOUT,
  ST_OP_STATE,
  ST_OP_THROTTLE,
  ST_R_D_LONG,
  ST_TASK_SNAP_SIZE,
  ST_THROTTLE_SIZE,
  ST_TRANSITION_SIZE,
  readPtHdr,
  readStCounters,
  readStThrottleBody,
  readStTransitionBody,
} from './generated/state.js';
import { FRAME_HEADER } from './decode.js';
import { fieldLength, fieldOffset } from './offsets.js';
import { cstrText, u64b, u64n } from './text.js';
import type { SeqTracker } from './seq.js';
import { WireError } from './errors.js';
import type { KText } from '../shared/events.js';

/** Slots of the run-queue latency histogram (from BTF: st_task.rq_hist). */
export const ST_HIST_SLOTS: number = (LAYOUT.structs.st_task.fields as ReadonlyArray<{ name: string; count?: number }>).find(
  (f) => f.name === 'rq_hist',
)!.count!;

/** enum st_state → ps letter. RUNNING and RUNNABLE are both R; IDLE is I; DEAD is X; PARKED is P. */
export const STATE_LETTER: readonly StateLetter[] = ['S', 'R', 'R', 'S', 'D', 'T', 'I', 'X', 'P'];

export function stateLetter(s: number): StateLetter {
  return STATE_LETTER[s] ?? 'S';
}

export interface StateDecodeResult {
  events: StateStreamEvent[];
  records: number;
  malformed: number;
}

export function decodeStateBatch(batch: Buffer, seq?: SeqTracker): StateDecodeResult {
  const r: StateDecodeResult = { events: [], records: 0, malformed: 0 };
  for (let off = 0; off + FRAME_HEADER <= batch.length; ) {
    const len = batch.readUInt32LE(off);
    const rec = off + FRAME_HEADER;
    const next = rec + len + ((8 - (len & 7)) & 7);
    if (batch.readUInt32LE(off + 4) !== 0 || next > batch.length) {
      r.malformed++;
      break;
    }
    off = next;
    r.records++;
    if (len < PT_HDR_SIZE) {
      r.malformed++;
      continue;
    }
    const h = readPtHdr(batch, rec);
    seq?.observe(h.cpu, h.seq);
    if (h.op === ST_OP_STATE && len >= ST_TRANSITION_SIZE) {
      const b = readStTransitionBody(batch, rec);
      r.events.push({
        type: 'state',
        ktimeNs: h.ktimeNs,
        seq: h.seq,
        cpu: h.cpu,
        pid: b.pid,
        tid: b.tid,
        startNs: b.startNs,
        from: stateLetter(b.oldState),
        to: stateLetter(b.newState),
        durationNs: b.durationNs,
        reason: b.reason === ST_R_D_LONG ? 'd_long' : 'watched',
        comm: b.comm,
      });
    } else if (h.op === ST_OP_THROTTLE && len >= ST_THROTTLE_SIZE) {
      const b = readStThrottleBody(batch, rec);
      r.events.push({
        type: 'throttle',
        ktimeNs: h.ktimeNs,
        seq: h.seq,
        cpu: h.cpu,
        phase: b.end ? 'end' : 'start',
        suppressed: b.suppressed,
        budget: b.budget,
      });
    } else {
      r.malformed++;
    }
  }
  return r;
}

/** One thread's accounting from the st_snapshot iterator: the fields the state table reads.
 *  Counters are numbers (exact below 2^53); identity and clock fields stay bigints. */
export interface ThreadSnap {
  pid: number;
  tid: number;
  startNs: bigint;
  cgroupId: bigint;
  comm: KText;
  state: StateLetter;
  /** raw enum st_state (RUNNING 1 vs RUNNABLE 2 matter for run-queue views) */
  rawState: number;
  sinceNs: bigint;
  rqMaxNs: number;
  rqHist: number[];
  nvcsw: number;
  nivcsw: number;
}

// The snapshot sees every thread on the machine each sweep: read only what the table uses
// (per-state times and run-queue totals are left in the record), counters as numbers.
const SNAP = {
  start: fieldOffset(LAYOUT, 'st_task_snap', 'start_ns'),
  cgroup: fieldOffset(LAYOUT, 'st_task_snap', 'cgroup_id'),
  since: fieldOffset(LAYOUT, 'st_task_snap', 'acct.since_ns'),
  rqMax: fieldOffset(LAYOUT, 'st_task_snap', 'acct.rq_max_ns'),
  nvcsw: fieldOffset(LAYOUT, 'st_task_snap', 'acct.nvcsw'),
  nivcsw: fieldOffset(LAYOUT, 'st_task_snap', 'acct.nivcsw'),
  hist: fieldOffset(LAYOUT, 'st_task_snap', 'acct.rq_hist'),
  state: fieldOffset(LAYOUT, 'st_task_snap', 'acct.state'),
  pid: fieldOffset(LAYOUT, 'st_task_snap', 'pid'),
  tid: fieldOffset(LAYOUT, 'st_task_snap', 'tid'),
  comm: fieldOffset(LAYOUT, 'st_task_snap', 'comm'),
  commLen: fieldLength(LAYOUT, 'st_task_snap', 'comm'),
};

export function decodeThreadSnaps(buf: Buffer): ThreadSnap[] {
  if (buf.length % ST_TASK_SNAP_SIZE !== 0) {
    throw new WireError('E_WIRE_SNAPSHOT_SIZE', `state snapshot of ${buf.length} bytes is not a multiple of ${ST_TASK_SNAP_SIZE}`);
  }
  const out: ThreadSnap[] = new Array<ThreadSnap>(buf.length / ST_TASK_SNAP_SIZE);
  for (let off = 0, n = 0; off < buf.length; off += ST_TASK_SNAP_SIZE, n++) {
    const raw = buf.readUInt32LE(off + SNAP.state);
    const hist = new Array<number>(ST_HIST_SLOTS);
    for (let i = 0; i < ST_HIST_SLOTS; i++) hist[i] = buf.readUInt32LE(off + SNAP.hist + 4 * i);
    out[n] = {
      pid: buf.readUInt32LE(off + SNAP.pid),
      tid: buf.readUInt32LE(off + SNAP.tid),
      startNs: u64b(buf, off + SNAP.start),
      cgroupId: u64b(buf, off + SNAP.cgroup),
      comm: cstrText(buf, off + SNAP.comm, SNAP.commLen),
      state: stateLetter(raw),
      rawState: raw,
      sinceNs: u64b(buf, off + SNAP.since),
      rqMaxNs: u64n(buf, off + SNAP.rqMax),
      rqHist: hist,
      nvcsw: u64n(buf, off + SNAP.nvcsw),
      nivcsw: u64n(buf, off + SNAP.nivcsw),
    };
  }
  return out;
}

export interface StateCounters {
  generated: bigint[];
  lostReserve: bigint[];
  throttled: bigint[];
  storageFail: bigint;
}

/** Sums a per-CPU st_counters lookup (nCPU slots of round_up(size, 8)). */
export function decodeStateCounters(value: Buffer): StateCounters {
  const stride = (ST_COUNTERS_SIZE + 7) & ~7;
  if (value.length % stride !== 0) throw new WireError('E_WIRE_PERCPU_SIZE', `st_counters: ${value.length} bytes`);
  let total: StateCounters | null = null;
  for (let off = 0; off < value.length; off += stride) {
    const c = readStCounters(value, off);
    if (!total) total = { generated: [...c.generated], lostReserve: [...c.lostReserve], throttled: [...c.throttled], storageFail: c.storageFail };
    else {
      c.generated.forEach((v, i) => (total!.generated[i]! += v));
      c.lostReserve.forEach((v, i) => (total!.lostReserve[i]! += v));
      c.throttled.forEach((v, i) => (total!.throttled[i]! += v));
      total.storageFail += c.storageFail;
    }
  }
  return total ?? { generated: [], lostReserve: [], throttled: [], storageFail: 0n };
}

export const STATE_OPS = { state: ST_OP_STATE, throttle: ST_OP_THROTTLE } as const;
