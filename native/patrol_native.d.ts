// Type declarations for native/build/Release/patrol_native.node (built from native/src).
//
// A thin transport over libbpf 1.1: open/load/attach BPF objects, raw map access, task
// iterators, test runs, and a ring buffer consumer thread. It never interprets records;
// all decoding is done in TypeScript.
//
// Load with:
//   const native = createRequire(import.meta.url)('../native/build/Release/patrol_native.node') as typeof import('../native/patrol_native.js');
//
// Errors: every failure throws a PatrolNativeError (an Error; a TypeError for bad arguments,
// with code 'EINVAL'). libbpf's own log lines go to the logger installed with setLogger().
// All functions are synchronous and run on the calling (JS) thread, except the ring
// consumer, which has its own thread.

declare const brand: unique symbol;

/** An opened (and possibly loaded) BPF object. Opaque. */
export interface BpfObject {
  readonly [brand]: 'BpfObject';
}
/** A program attachment made by attach(). Opaque. */
export interface BpfLink {
  readonly [brand]: 'BpfLink';
}
/** A running or stopped ring buffer consumer. Opaque. */
export interface RingConsumer {
  readonly [brand]: 'RingConsumer';
}

/** What every function throws. */
export interface PatrolNativeError extends Error {
  /** errno name: 'EPERM', 'ENOENT', 'EINVAL', 'EACCES', 'EBADF' (closed object), 'EBUSY', ...;
   *  'ELIBBPF' for libbpf's own error numbers (4000+, e.g. a malformed ELF). */
  code: string;
  /** Positive errno value. */
  errno: number;
  /** The native function that failed: 'open', 'load', 'attach', 'mapLookup', ... */
  syscall: string;
  /** libbpf warning lines printed during the failing call (e.g. the verifier log), if any. */
  log?: string[];
  /** load() only: the program libbpf reported as failing to load. */
  program?: string;
}

export interface OpenOptions {
  /** bpf_map__set_max_entries per map name, e.g. { pt_scratch: numPossibleCpus }. */
  maxEntries?: Record<string, number>;
  /** bpf_program__set_autoload per program name. */
  autoload?: Record<string, boolean>;
  /** New initial value of .rodata (the `const volatile` globals). Must be exactly as long as
   *  readRodata()'s result. Same effect as LoadOptions.rodata. */
  rodata?: Uint8Array;
}

export interface LoadOptions {
  /** New initial value of .rodata; start from readRodata(obj), patch at BTF offsets. */
  rodata?: Uint8Array;
}

/** bpf_object__open_file + options. Throws ENOENT for unknown map/program names. */
export function open(path: string, opts?: OpenOptions): BpfObject;

/** A copy of the current initial value of .rodata (before load: what load() will use). */
export function readRodata(obj: BpfObject): Buffer;

/** bpf_object__load. On a verifier rejection the error has `program`, the verifier's verdict in
 *  its message, and the log in `log` (and the logger). An object that failed to load cannot be
 *  loaded again: close it. */
export function load(obj: BpfObject, opts?: LoadOptions): void;

/** bpf_program__attach (FD-based link; tp_btf, raw_tp, tracepoint, iter... from the section
 *  name). A 'tracepoint/' program failing with ENOENT says tracefs may be unmounted. */
export function attach(obj: BpfObject, progName: string): BpfLink;

/** bpf_link__destroy. Idempotent; a no-op after close() of the object. */
export function detach(link: BpfLink): void;

/** Stops the object's ring consumers (as ringStop does), destroys its remaining links and
 *  closes it. Idempotent. Other functions then throw EBADF. The kernel frees the programs
 *  asynchronously: `bpftool prog show` may list them for a few milliseconds more.
 *  Handles that become unreachable are closed when garbage-collected; a running consumer
 *  keeps its object (and the event loop) alive until stopped. */
export function close(obj: BpfObject): void;

/** bpf_map_lookup_elem. Per-CPU maps return numPossibleCpus slots of roundUp(valueSize, 8)
 *  bytes, CPU 0 first. null if the key is absent. Key length is checked (EINVAL). */
export function mapLookup(obj: BpfObject, mapName: string, key: Uint8Array): Buffer | null;

/** bpf_map_update_elem; value as mapLookup returns it. flags: BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2. */
export function mapUpdate(obj: BpfObject, mapName: string, key: Uint8Array, value: Uint8Array, flags?: number): void;

/** bpf_map_delete_elem (EINVAL for arrays, ENOENT for an absent key). */
export function mapDelete(obj: BpfObject, mapName: string, key: Uint8Array): void;

/** All [key, value] pairs via BPF_MAP_GET_NEXT_KEY + lookup (not atomic: entries changing
 *  meanwhile may be missed or, for hashes, repeated). At most maxEntries pairs (default: the
 *  map's max_entries). */
export function mapEntries(obj: BpfObject, mapName: string, maxEntries?: number): Array<[Buffer, Buffer]>;

/** Attaches an iter/ program, reads the iterator to EOF, detaches; returns all bytes
 *  (for iter/task snapshot_tasks: a whole number of struct pt_task_snap). */
export function iterRead(obj: BpfObject, progName: string): Buffer;

export interface ProgRunOptions {
  /** Number of BPF_PROG_TEST_RUN calls, made back to back (default 1). raw_tp programs
   *  reject the kernel's own repeat, so repetitions are done here. */
  repeat?: number;
  /** Run on this CPU (BPF_F_TEST_RUN_ON_CPU); default: the calling thread's CPU. */
  cpu?: number;
}
export interface ProgRunResult {
  /** Return value of the last run. */
  retval: number;
  /** Average wall-clock time per run, syscall included, in ns. */
  durationNs: number;
  runs: number;
}
/** BPF_PROG_TEST_RUN without input (raw_tp: empty ctx), e.g. to drive bench_produce. */
export function progRun(obj: BpfObject, progName: string, opts?: ProgRunOptions): ProgRunResult;

export interface RingOptions {
  /** Capacity of a batch in bytes (default 65536). A record that does not fit in the current
   *  batch starts a new one; a record larger than batchBytes gets a batch of its own. */
  batchBytes?: number;
  /** Batches handed to JS but not yet delivered (default 4096). When that many are pending
   *  the next batch is dropped and counted (droppedBatches/droppedRecords/droppedByTag). */
  queueDepth?: number;
  /** Bytes handed to JS but not yet delivered (default 16 MiB: what 256 full batches held):
   *  each batch costs its length plus 256 bytes, so tiny batches count too. The bound that
   *  matters: a batch that would pass it is dropped and counted like above; the first pending
   *  batch always passes. Because batches grow while JS is behind (see ringStart), this is in
   *  effect a bound in records: ~16 MiB / record size. */
  queueBytes?: number;
  /** Byte offset, inside each record, of a u8 tag; drops are counted per tag value
   *  (22 = pt_hdr.op). Records shorter than tagOffset + 1 are counted untagged. */
  tagOffset?: number;
  /** u32 "consumer sleeping" flag in an mmapable array map (pt_ring_ctl, offset 0). The
   *  consumer sets it (seq_cst) before it blocks; the first producer to see it clears it and
   *  wakes the consumer (BPF_RB_FORCE_WAKEUP), the others submit with BPF_RB_NO_WAKEUP
   *  (protocol: bpf/ringbuf.bpf.h). Without it the consumer only sees
   *  NO_WAKEUP records when idleTimeoutMs expires. Ignored when pollIntervalUs is set. */
  sleepFlag?: { map: string; offset: number };
  /** Longest block in epoll_wait, in ms (default 1000; -1: no limit, 0: never block).
   *  A consume always follows, whatever ended the wait. */
  idleTimeoutMs?: number;
  /** Timed polling for benchmarks: never block longer than this (0: busy poll) and do not
   *  use the sleep flag. */
  pollIntervalUs?: number;
  /** With sleepFlag: after a consume that found records, keep polling for up to this long
   *  (µs, default 1000) before announcing sleep, so a dense burst costs one wakeup instead of
   *  many. The actual length adapts between one step and this: doubled when the first step
   *  finds records, halved when the whole linger finds none. 0 disables. */
  lingerUs?: number;
  /** Step of that polling (µs, default 100): the most a record arriving during the linger
   *  waits. */
  lingerStepUs?: number;
  /** Hold (µs, default 0 = off): a batch that starts after an idle gap (no hand-off for
   *  2 × batchDelayUs) is handed to JS only once its first record is this old (or it is full,
   *  or at stop), and the thread waits out that time in one timed wait instead of polling. At
   *  low rates the records of one process (fork, exec, exit, reap) then reach JS as one batch
   *  instead of one each, which saves JS its per-batch cost; those records are up to that
   *  much later. A steady stream (batches less than the gap apart) is not held. */
  batchDelayUs?: number;
  /** Offset of a u64 CLOCK_BOOTTIME ns timestamp (when the record was made) in every record:
   *  the hold then counts from it, not from when the thread read the record. */
  timeOffset?: number;
  /** >0: the poll thread runs at SCHED_FIFO with this priority (1-99; default 0 = off). A
   *  woken consumer then preempts the task that woke it instead of waiting for it to block,
   *  which is most of the exec-to-JS latency tail on PREEMPT_NONE kernels. Needs
   *  CAP_SYS_NICE; if refused the thread keeps running normally and ringStats().realtimeError
   *  says why. */
  realtimePriority?: number;
}

/**
 * Starts a consumer thread on a BPF_MAP_TYPE_RINGBUF map (one consumer per map, else EBUSY).
 *
 * onBatch(batch, records) runs on the JS thread. `batch` is owned by JS (zero-copy: the
 * memory the thread filled) and holds `records` records back to back, each:
 *
 *   [u32 little-endian length][u32 0][length bytes of record][0-7 zero bytes: pad to 8]
 *
 * so record i+1 starts at offset + 8 + roundUp(length, 8), and every record starts 8-byte
 * aligned within the batch. Records keep the ring's order; batches arrive in order. A batch
 * is handed over at once when JS has nothing pending (latency first, so it may hold one
 * record; batchDelayUs delays that); while JS is behind it keeps filling it until it is full, so batches grow with the backlog. A held batch goes out as soon as JS catches up (within one
 * lingerStepUs) and always before the thread blocks.
 * An exception thrown by onBatch is an uncaught exception.
 *
 * While running, the consumer keeps the event loop alive (like a socket) and keeps `obj`
 * open; ringStop (or close) releases both.
 */
export function ringStart(
  obj: BpfObject,
  mapName: string,
  opts: RingOptions,
  onBatch: (batch: Buffer, records: number) => void,
): RingConsumer;

/**
 * Stops the consumer: wakes its thread, which drains the ring one last time (that final
 * drain ignores queueDepth and queueBytes, so stopping loses nothing), and joins it; synchronous up to
 * there. Batches not yet delivered are delivered asynchronously by the event loop, AFTER
 * ringStop returns; the promise resolves once the last one has been delivered (stats are
 * final then). Idempotent: later calls resolve once delivery is complete.
 */
export function ringStop(consumer: RingConsumer): Promise<void>;

export interface RingStats {
  /** Records read from the ring: delivered + dropped + still pending. */
  records: number;
  /** Batches queued for JS (delivered or pending). */
  batches: number;
  deliveredBatches: number;
  /** Queued, not yet delivered (never above queueDepth while running). */
  pendingBatches: number;
  /** Their cost against queueBytes (never above it while running, but for a first batch). */
  pendingBytes: number;
  /** User-space loss: records in batches dropped because JS was queueDepth batches or
   *  queueBytes behind
   *  (or out of memory, or environment teardown). Exact. */
  droppedRecords: number;
  droppedBatches: number;
  /** droppedRecords split by the tag byte (256 entries; all 0 without tagOffset). */
  droppedByTag: number[];
  /** epoll_wait returns caused by the ring (a producer's wakeup). */
  wakeups: number;
  /** Times the consumer set the sleep flag and blocked. */
  sleeps: number;
  /** Records picked up by the linger wait (no wakeup needed). */
  lingerRecords: number;
  /** Timed waits of the linger (each one a timeslice of the poll thread). */
  lingerSteps: number;
  /** Timed waits for a held batch to come due (batchDelayUs). */
  holdWaits: number;
  /** epoll_wait timeouts (idleTimeoutMs, or every poll interval in pollIntervalUs mode). */
  timedConsumes: number;
  /** Records found by the consume after a timeout. With the sleep flag protocol these are
   *  missed wakeups and should stay 0. */
  timedRecords: number;
  running: boolean;
  /** Why realtimePriority could not be applied (strerror), else null. */
  realtimeError: string | null;
}
export function ringStats(consumer: RingConsumer): RingStats;

/** A ring drained on the JS thread (the efficient delivery policy): no thread, no hand-off. */
export interface RingPull { readonly __brand: 'RingPull' }
export interface RingPullOptions {
  /** The mmapable array word producers read to decide whether to wake us (bpf/ringbuf.bpf.h):
   *  0 never, 1 any record (asleep), k > 1 once k - 1 pages are pending (the watermark). */
  sleepFlag: { map: string; offset: number };
  /** While awake, a backlog of this many pages makes a producer wake JS. 0: never. */
  wakeAbovePages?: number;
  tagOffset?: number;
}
/** The ring's epoll fd joins libuv (uv_poll); `onWake` runs on the JS thread when a producer
 *  wakes us. The poll stops at each wake and is re-armed by the next drain or sleep. */
export function ringPullOpen(obj: BpfObject, map: string, opts: RingPullOptions, onWake: () => void): RingPull;
/** Every record in the ring, framed like onBatch batches, written into `target`: returns the
 *  bytes written, or a new Buffer holding them all when they did not fit. Re-arms the
 *  watermark (flag k) and the poll. */
export function ringPullDrain(h: RingPull, target: Buffer): number | Buffer;
/** Sets the flag to 1 (wake on any record), then drains: -1 = asleep, nothing was pending;
 *  otherwise the drain's result and still awake (records came, or a producer claimed). */
export function ringPullSleep(h: RingPull, target: Buffer): number | Buffer;
export function ringPullClose(h: RingPull): void;
export function ringPullStats(h: RingPull): {
  records: number; drains: number; overflows: number; wakeups: number; sleeps: number;
  sleepAborts: number; droppedRecords: number; cutDrains: number; running: boolean;
};

/** The calling thread to SCHED_FIFO at `priority` (1-99), or back to SCHED_OTHER (0). Returns
 *  null, or why the kernel refused (strerror: no CAP_SYS_NICE, no RT budget in the cgroup). */
export function setThreadRealtime(priority: number): string | null;

/**
 * Receives libbpf's print output, one line per call (a verifier log arrives as many
 * lines). Process-wide, like libbpf_set_print. Lines are forwarded when the native call that
 * produced them returns, before its error is thrown (never from inside libbpf), so the
 * logger may call this module. Exceptions thrown by the logger are ignored. null restores
 * the default: warn and info lines to stderr, debug dropped.
 */
export function setLogger(fn: ((level: 'warn' | 'info' | 'debug', line: string) => void) | null): void;

/** clock_gettime(CLOCK_BOOTTIME) in ns: the clock of pt_hdr.ktime_ns and task start times. */
export function clockBoottimeNs(): bigint;

/** getpagesize(). */
export const pageSize: number;
/** libbpf_num_possible_cpus(): the slot count of per-CPU map values. */
export const numPossibleCpus: number;
/** libbpf_version_string(), e.g. 'v1.1'. */
export const libbpfVersion: string;
