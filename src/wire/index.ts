// Public surface of the wire stage: kernel bytes in, typed values out.
export { decodeBatch, FRAME_HEADER, OP_EVENT_TYPE } from './decode.js';
export type { DecodeResult, DecodeSink, FrameError, RecordError } from './decode.js';
export { SeqTracker } from './seq.js';
export type { CpuSeqStats } from './seq.js';
export { decodeCounters, decodePerCpuU64 } from './counters.js';
export type { CounterSet, PerCpuCounters } from './counters.js';
export { decodeTaskSnaps } from './snapshot.js';
export type { TaskSnap } from './snapshot.js';
export { encodeRodata, patchRodataVars } from './rodata.js';
export type { RodataValues } from './rodata.js';
export { WireError } from './errors.js';
export { ktext, cstrText, splitArgs } from './text.js';
export { LAYOUT, PT_OP_MAX, PT_HDR_SIZE, PT_RING_CTL_SIZE } from './generated/lifecycle.js';
export { LAYOUT as STATE_LAYOUT } from './generated/state.js';
export {
  decodeStateBatch,
  decodeThreadSnaps,
  decodeStateCounters,
  stateLetter,
  STATE_LETTER,
  STATE_OPS,
  ST_HIST_SLOTS,
} from './state.js';
export type { StateDecodeResult, ThreadSnap, StateCounters } from './state.js';
export { decodeUsageSweep, UsageSweepDecoder } from './usage.js';
