// The only file that touches the N-API addon. Everything above it sees typed functions.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { PatrolError } from '../shared/errors.js';
import { projectPath } from '../shared/paths.js';

export type BpfObject = { readonly __brand: 'BpfObject' };
export type BpfLink = { readonly __brand: 'BpfLink' };
export type RingConsumer = { readonly __brand: 'RingConsumer' };
export type RingPullHandle = { readonly __brand: 'RingPull' };

export interface RingPullOptions {
  sleepFlag: { map: string; offset: number };
  /** while awake, a backlog of this many pages makes a producer wake JS (0: never) */
  wakeAbovePages?: number;
  tagOffset?: number;
}

export interface RingPullStats {
  records: number;
  drains: number;
  overflows: number;
  wakeups: number;
  sleeps: number;
  sleepAborts: number;
  droppedRecords: number;
  /** drains stopped at a ring's worth, the rest left for the next (a producer faster than us) */
  cutDrains: number;
  running: boolean;
}

export interface RingOptions {
  batchBytes?: number;
  queueDepth?: number;
  queueBytes?: number;
  tagOffset?: number;
  sleepFlag?: { map: string; offset: number };
  idleTimeoutMs?: number;
  pollIntervalUs?: number;
  lingerUs?: number;
  lingerStepUs?: number;
  /** hold a batch until its first record is this old (µs; 0 = hand over at once) */
  batchDelayUs?: number;
  /** offset of a u64 CLOCK_BOOTTIME ns timestamp in every record: the hold counts from it */
  timeOffset?: number;
  realtimePriority?: number;
}

export interface RingStats {
  /** 'efficient': drained on the JS thread (RingPuller); absent: the consumer thread */
  delivery?: 'efficient' | 'low_latency';
  /** efficient delivery: timer ticks, drains, wakes from sleep, watermark wakes, drains that
   *  did not fit the reused buffer */
  ticks?: number;
  drains?: number;
  sleepWakes?: number;
  watermarkWakes?: number;
  overflows?: number;
  /** efficient delivery: drains stopped at a ring's worth (the producers outran the JS thread) */
  cutDrains?: number;
  /** efficient delivery: drains asked for by a reader (drainNow), and the interval in force */
  demandDrains?: number;
  intervalMs?: number;
  /** efficient delivery: drained by its owner's wakeups (the agent's ticker), no timer of its own */
  paced?: boolean;
  records: number;
  batches: number;
  deliveredBatches: number;
  pendingBatches: number;
  pendingBytes: number;
  sleeps: number;
  timedRecords: number;
  running: boolean;
  droppedRecords: number;
  droppedBatches: number;
  droppedByTag: number[];
  wakeups: number;
  timedConsumes: number;
  lingerRecords: number;
  lingerSteps: number;
  holdWaits: number;
  /** why SCHED_FIFO could not be applied (realtimePriority), else null */
  realtimeError: string | null;
}

export interface InspectProgram {
  name: string;
  /** ELF section, e.g. tp_btf/sched_process_exec */
  section: string;
  autoload: boolean;
}

export interface InspectMap {
  name: string;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** 0: no BTF for it */
  btfKeyTypeId: number;
  btfValueTypeId: number;
  /** .rodata, .bss, .data, .kconfig */
  internal: boolean;
  loaded: boolean;
}

export interface ObjectFacts {
  programs: InspectProgram[];
  maps: InspectMap[];
  /** the object's BTF, raw (src/kernel/btf.ts reads it); null without BTF */
  btf: Buffer | null;
}

export interface NativeAddon {
  pageSize: number;
  numPossibleCpus: number;
  libbpfVersion: string;
  setLogger(fn: ((level: string, line: string) => void) | null): void;
  open(path: string, opts?: { maxEntries?: Record<string, number>; autoload?: Record<string, boolean> }): BpfObject;
  readRodata(obj: BpfObject): Buffer;
  load(obj: BpfObject, opts?: { rodata?: Buffer; reuse?: { from: BpfObject; maps: string[] } }): void;
  /** load() on a worker thread (the event loop keeps running); do not use obj until it settles */
  loadAsync(obj: BpfObject, opts?: { rodata?: Buffer; reuse?: { from: BpfObject; maps: string[] } }): Promise<void>;
  inspect(obj: BpfObject): ObjectFacts;
  attach(obj: BpfObject, prog: string): BpfLink;
  detach(link: BpfLink): void;
  /** every link destroyed on a thread of its own (they share the RCU grace period classic
   *  tracepoint links wait for); resolves when all are gone, with the ms from the call until
   *  the last destroy began (its program unhooked) and until the last one returned */
  detachAll(links: BpfLink[]): Promise<{ unhookedMs: number; doneMs: number }>;
  close(obj: BpfObject): void;
  mapLookup(obj: BpfObject, map: string, key: Buffer): Buffer | null;
  mapUpdate(obj: BpfObject, map: string, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(obj: BpfObject, map: string, key: Buffer): void;
  mapEntries(obj: BpfObject, map: string, max?: number): Array<[Buffer, Buffer]>;
  iterRead(obj: BpfObject, prog: string): Buffer;
  progRun(obj: BpfObject, prog: string, opts?: { repeat?: number; cpu?: number }): { retval: number; durationNs: number; runs: number };
  ringStart(obj: BpfObject, map: string, opts: RingOptions, onBatch: (batch: Buffer, records: number) => void): RingConsumer;
  ringStop(c: RingConsumer): Promise<void>;
  ringStats(c: RingConsumer): RingStats;
  /** Opens a JS-thread consumer: the ring's epoll fd joins libuv, `onWake` runs when a producer
   *  wakes it (asleep, or past the watermark). */
  ringPullOpen(obj: BpfObject, map: string, opts: RingPullOptions, onWake: () => void): RingPullHandle;
  /** Drains the ring into `target`: the bytes written, or a new Buffer when they did not fit. */
  ringPullDrain(h: RingPullHandle, target: Buffer): number | Buffer;
  /** Like ringPullDrain, but first asks producers to wake us: -1 = asleep (nothing was there). */
  ringPullSleep(h: RingPullHandle, target: Buffer): number | Buffer;
  ringPullClose(h: RingPullHandle): void;
  ringPullStats(h: RingPullHandle): RingPullStats;
  setThreadRealtime?(priority: number): string | null;
  /** malloc_trim(0): hands freed native memory (libbpf's BTF after a load) back to the kernel */
  trimHeap?(): boolean;
  /** madvise(MADV_PAGEOUT) over a page-aligned range: 0, or the errno of the refusal */
  pageOut?(addr: number, len: number, random?: boolean): number;
  /** poll(2) with a zero timeout: true when a read would not block (or would fail) */
  fdReadable?(fd: number): boolean;
  /** a libuv poll handle on `fd`: `onReadable` runs on the JS thread whenever a read would not
   *  block (level-triggered: read until EAGAIN). Does not keep the process alive. */
  FdWatch?: new (fd: number, onReadable: () => void) => FdWatchHandle;
  clockBoottimeNs?(): bigint;
}

export interface FdWatchHandle {
  close(): void;
}

export const ADDON_PATH = projectPath('native', 'build', 'Release', 'patrol_native.node');

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new PatrolError('E_NOT_BUILT', `native addon not built (${ADDON_PATH}); run: bash scripts/setup.sh`);
  }
  cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  return cached;
}
