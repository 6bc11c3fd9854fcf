// Wires the lifecycle stream: BPF sensor → framed batches → decodeBatch → SeqTracker →
// ProcessTable → sink, and owns the loss accounting across those stages.
import type { Logger } from '../shared/log.js';
import { EVENT_TYPES, type Accounting, type EventType, type LifecycleEvent } from '../shared/events.js';
import { DEFAULT_PULL_POLICY, Sensor, boottimeNs, native, probeKernel, type ProbeResult, type RingStats, type SensorSpec } from '../kernel/index.js';
import {
  LAYOUT,
  OP_EVENT_TYPE,
  SeqTracker,
  decodeBatch,
  decodeCounters,
  decodePerCpuU64,
  decodeTaskSnaps,
  encodeRodata,
  type DecodeResult,
} from '../wire/index.js';
import { DEFAULT_DEAD_MAX, PATH_PROBE_HOLD_NS, PathProbeMarker, ProcessTable, readBootId, type Enriched, type ProcessTableOptions } from '../process/index.js';
import { ConsumerGuard, type ConsumerFaults } from './consumers.js';
import { OverlapDedupe } from './overlap.js';
import type { Tick, Ticker } from './ticker.js';
import { projectPath } from '../shared/paths.js';

/** What paces the unwatched drains: the agent's Ticker. */
export type Pacer = Pick<Ticker, 'every'>;

export const LIFECYCLE_OBJECT = projectPath('bpf', '.output', 'lifecycle.bpf.o');

export interface LifecycleConfig {
  /** argv bytes copied per exec (kernel cap 32768) */
  argsCap: number;
  filenameCap: number;
  /** ring buffer bytes, a power of two and a multiple of the page size */
  ringBytes: number;
  emitThreads: boolean;
  /** report failed execs via syscall tracepoints: needs tracefs; 'auto' = when available */
  execFailed: boolean | 'auto';
  /** 0: wake only a sleeping consumer (default); 1: kernel adaptive (every caught-up record) */
  wakeupMode: 0 | 1;
  batchBytes: number;
  /** batches handed to JS, not yet handled (a secondary bound; queueBytes is the one that bites) */
  queueDepth: number;
  /** bytes handed to JS, not yet handled: past it, batches are dropped and counted */
  queueBytes: number;
  /** >0: the ring's poll thread AND the calling JS thread run SCHED_FIFO at this priority
   *  (opt-in, needs CAP_SYS_NICE): cuts the exec → event latency tail on PREEMPT_NONE kernels.
   *  Both are needed: with the poll thread alone, the JS thread still waits for the exec'ing
   *  task (bench/README.md, ts-realtime vs ts-fifo). Cost: a JS thread busy at 100 % (an exec
   *  storm) then takes up to the RT budget (95 %) of its CPU from normal tasks, and threads the
   *  JS thread starts afterwards inherit the policy (the state sensor's consumer, libuv's pool).
   *  0 = normal. */
  consumerRealtimePriority: number;
  /** µs a batch that starts after an idle gap is held before JS gets it, so that at low rates
   *  a process's fork, exec, exit and reap reach JS as one batch (JS's cost is mostly per
   *  batch: bench/README.md, "Agent CPU at low rates"). 'auto': 1000, or 0 with
   *  consumerRealtimePriority (latency first). */
  batchDelayUs: number | 'auto';
  tableMaxEntries: number;
  tableGraceMs: number;
  /** reaped entries kept at most, however fast processes come and go */
  tableDeadMax: number;
  /** How records reach JS (docs/architecture.md, "Delivery policies"):
   *  - 'efficient': the JS thread drains the ring every deliveryIntervalMs, one addon call per
   *    tick, and sleeps when the stream stops; no consumer thread, no wakeup per record. Events
   *    arrive within ~deliveryIntervalMs of happening. The default (the agent's).
   *  - 'low_latency': a consumer thread woken by producers (sub-millisecond), `patrol trace`'s.
   *  consumerRealtimePriority > 0 implies low_latency. */
  delivery: DeliveryPolicy;
  /** efficient delivery: ms between drains while the stream is watched, the latency bound */
  deliveryIntervalMs: number;
  /** efficient delivery: ms between drains while nobody watches the stream (setWatched), 0 =
   *  always deliveryIntervalMs. Readers drain first (drainNow), so what they read is current. */
  unwatchedIntervalMs: number;
  /** argv redaction and cgroup identity, handed to the process table (src/app/integrations.ts);
   *  hooks, not config keys */
  redactArgv?: ProcessTableOptions['redactArgv'];
  identify?: ProcessTableOptions['identify'];
  /** handed the pipeline's cgroupPath() once it runs: the identity cache's source for a cgroup
   *  gone before its process's exec was handled */
  bindCgroupPaths?: (lookup: (cgroupId: bigint) => string | null) => void;
}

export const DELIVERY_POLICIES = ['efficient', 'low_latency'] as const;
export type DeliveryPolicy = (typeof DELIVERY_POLICIES)[number];

export const DEFAULT_LIFECYCLE: LifecycleConfig = {
  argsCap: 4096,
  filenameCap: 1024,
  ringBytes: 4 << 20,
  emitThreads: false,
  execFailed: 'auto',
  wakeupMode: 0,
  batchBytes: 64 << 10,
  queueDepth: 4096,
  // What 256 full batches used to hold: JS may fall ~250k fork records behind before losing any.
  queueBytes: 16 << 20,
  consumerRealtimePriority: 0,
  batchDelayUs: 'auto',
  tableMaxEntries: 65536,
  tableGraceMs: 30_000,
  tableDeadMax: DEFAULT_DEAD_MAX,
  delivery: 'efficient',
  deliveryIntervalMs: 15,
  unwatchedIntervalMs: 0,
};

/** The policy in force: realtime priority asks for latency first. */
export function resolveDelivery(config: Pick<LifecycleConfig, 'delivery' | 'consumerRealtimePriority'>): DeliveryPolicy {
  return config.consumerRealtimePriority > 0 ? 'low_latency' : config.delivery;
}

/** the pt_op of each event type: what accounting() sums */
const EVENT_OPS: readonly number[] = EVENT_TYPES.map((t) => OP_EVENT_TYPE.indexOf(t));

// BTF tracepoints: always there on a 5.8+ BTF kernel, no tracefs needed.
const CORE_PROGS = ['handle_exec', 'handle_fork', 'handle_exit', 'handle_switch', 'handle_free'];
// Classic syscall tracepoints (tracefs): exact reap time from wait4()/waitid().
const WAIT_PROGS = ['handle_wait4_exit', 'handle_waitid_enter', 'handle_waitid_exit'];
const EXEC_FAILED_PROGS = ['handle_execve_enter', 'handle_execveat_enter', 'handle_execve_exit', 'handle_execveat_exit'];
/** Records each new cgroup v2 directory's path (pt_cgroup_paths): identity for a process whose
 *  cgroup is gone by the time its exec is handled. Optional: without it, such a process stays
 *  without identity, as before. Its tracepoint (cgroup_mkdir with the path) is older than the
 *  BTF the sensor needs (5.8), so it loads wherever the sensor does. */
const CGROUP_PATH_PROGS = ['handle_cgroup_mkdir'];

export type EventSink = (ev: LifecycleEvent, enriched: Enriched) => void;

export interface AccountingReport {
  perType: Accounting;
  totals: { generated: bigint; captured: bigint; lostReserve: bigint; lostUserspace: bigint; duplicates: bigint };
  /** records captured twice during a sensor reload's overlap and removed (counted in captured:
   *  the identity is about the ring; what reached the consumers is captured − duplicates) */
  duplicates: Record<EventType, bigint>;
  /** generated = captured + lost_reserve + lost_userspace (+ in flight while running) */
  identityHolds: boolean;
  /** records generated but not yet decoded: in the ring or the queue. Exactly 0 after stop(). */
  inFlight: bigint;
  /** true once stopped: the identity is then checked with nothing in flight */
  exact: boolean;
  /** cross-check: records numbered by the kernel but never received, minus burned numbers */
  seqGaps: bigint;
  malformed: number;
  threadExits: bigint;
  threadForks: bigint;
  ring: RingStats | null;
}

/** The hold the ring consumer applies (µs): 'auto' is 1000, or 0 when latency comes first. */
export function resolveBatchDelayUs(config: Pick<LifecycleConfig, 'batchDelayUs' | 'consumerRealtimePriority'>): number {
  if (config.batchDelayUs !== 'auto') return config.batchDelayUs;
  return config.consumerRealtimePriority > 0 ? 0 : AUTO_BATCH_DELAY_US;
}
const AUTO_BATCH_DELAY_US = 1000;

function ptHdrOffset(field: string): number {
  const f = LAYOUT.structs.pt_hdr.fields.find((x) => x.name === field);
  if (!f) throw new Error(`generated layout lacks pt_hdr.${field}`);
  return f.offset;
}
const ptHdrOpOffset = () => ptHdrOffset('op');

export class LifecyclePipeline {
  readonly table: ProcessTable;
  readonly seq = new SeqTracker(0n);
  /** records handed over, per type: numbers, not bigints (a bigint increment allocates, and
   *  2^53 records is 285 years at a million a second); the accounting reads them as bigints */
  readonly captured: Record<EventType, number> = { exec: 0, fork: 0, exit: 0, reap: 0, exec_failed: 0 };
  malformed = 0;
  private sink: EventSink = () => {};
  private readonly events: LifecycleEvent[] = [];
  private stopped = false;

  private constructor(
    private sensor: Sensor,
    readonly config: LifecycleConfig,
    readonly attached: string[],
    private readonly log: Logger,
  ) {
    this.tableGuard = new ConsumerGuard('table', log);
    this.sinkGuard = new ConsumerGuard('sink', log);
    this.table = new ProcessTable({
      bootId: readBootId(),
      maxEntries: config.tableMaxEntries,
      graceMs: config.tableGraceMs,
      deadMax: config.tableDeadMax,
      ...(config.redactArgv ? { redactArgv: config.redactArgv } : {}),
      ...(config.identify ? { identify: config.identify } : {}),
    });
  }

/** The records the decoders read: a successor object must lay them out the same way. */
  static readonly WIRE_TYPES = ['pt_hdr', 'pt_exec', 'pt_fork', 'pt_exit', 'pt_reap', 'pt_exec_failed', 'pt_counters', 'pt_ring_ctl', 'pt_task_snap', 'pt_task_usage'];

  /** The sensor as this config, kernel and object want it; `generation` goes to .rodata. */
  static spec(config: LifecycleConfig, probe: ProbeResult, objectPath: string, generation: number): SensorSpec {
    const execFailed = config.execFailed === 'auto' ? probe.tracefs : config.execFailed;
    const n = native();
    // Test hook (test/faults, bench/soak.mjs): PATROL_BENCH_PRODUCE=1 also loads bench_produce,
    // never attached, so bench/build/bpf-produce can drive this agent's own ring past what its
    // consumer takes (found by lifecycle.filename_cap, its token). Needs bpf_loop (5.17+).
    const autoload: Record<string, boolean> = { bench_produce: process.env.PATROL_BENCH_PRODUCE === '1' };
    for (const p of EXEC_FAILED_PROGS) autoload[p] = execFailed;
    for (const p of WAIT_PROGS) autoload[p] = probe.tracefs;
    return {
      name: 'lifecycle',
      objectPath,
      maxEntries: { pt_scratch: n.numPossibleCpus, pt_events: config.ringBytes },
      autoload,
      rodata: (base, vars) =>
        encodeRodata(
          base,
          {
            argsCap: config.argsCap,
            filenameCap: config.filenameCap,
            emitThreads: config.emitThreads,
            wakeupMode: config.wakeupMode,
            pageKb: Math.max(1, n.pageSize / 1024),
            ...(generation !== 0 ? { generation } : {}),
          },
          vars ?? undefined,
        ),
      programs: CORE_PROGS,
      optionalPrograms: [...(probe.tracefs ? WAIT_PROGS : []), ...(execFailed ? EXEC_FAILED_PROGS : []), ...CGROUP_PATH_PROGS],
      wireTypes: LifecyclePipeline.WIRE_TYPES,
      generation: { map: 'pt_gen', variable: 'generation' },
    };
  }

  /** Probes, loads and attaches the sensor, bootstraps the table, then starts the stream. */
  static start(cfg: Partial<LifecycleConfig>, log: Logger, sink: EventSink, opts: { objectPath?: string } = {}): LifecyclePipeline {
    const config = { ...DEFAULT_LIFECYCLE, ...cfg };
    const probe = probeKernel();
    if (!probe.tracefs) {
      log.warn('tracefs not mounted at /sys/kernel/tracing: reap times fall back to task free (late by an RCU grace period); failed execs are not reported');
    }
    const sensor = Sensor.load(LifecyclePipeline.spec(config, probe, opts.objectPath ?? LIFECYCLE_OBJECT, 0), log);
    const p = new LifecyclePipeline(sensor, config, [], log);
    p.sink = sink;
    config.bindCgroupPaths?.((id) => p.cgroupPath(id));
    try {
      // Consumer first, programs second: the ring then holds every record from sequence 0.
      p.startConsumer(sensor, config);
      if (config.consumerRealtimePriority > 0) {
        const err = sensor.ringStats()?.realtimeError ?? native().setThreadRealtime?.(config.consumerRealtimePriority) ?? null;
        if (err) log.warn({ err }, 'keeping normal scheduling: SCHED_FIFO refused');
      }
      p.bootstrap();
      (p as { attached: string[] }).attached = sensor.attach();
      p.wanted = [...CORE_PROGS, ...(sensor.spec.optionalPrograms ?? [])];
    } catch (e) {
      sensor.close();
      throw e;
    }
    return p;
  }

  /** The ring consumer the config asks for, on `sensor`'s ring. */
  private startConsumer(sensor: Sensor, config: LifecycleConfig): void {
    if (resolveDelivery(config) === 'efficient') {
      sensor.startRingPull(
        'pt_events',
        { tagOffset: ptHdrOpOffset(), sleepFlag: { map: 'pt_ring_ctl', offset: 0 } },
        {
          ...DEFAULT_PULL_POLICY,
          tickMs: this.intervalFor(config),
          // A burst that fills a quarter of the ring is drained at once, not at the next tick.
          wakeAboveBytes: config.ringBytes / 4,
        },
        (batch) => this.onBatch(batch),
      );
      sensor.setRingPressureHandler(() => this.onRingPressure());
    } else {
      sensor.startRing(
        'pt_events',
        {
          batchBytes: config.batchBytes,
          queueDepth: config.queueDepth,
          queueBytes: config.queueBytes,
          realtimePriority: config.consumerRealtimePriority,
          batchDelayUs: resolveBatchDelayUs(config),
          timeOffset: ptHdrOffset('ktime_ns'),
          tagOffset: ptHdrOpOffset(),
          sleepFlag: { map: 'pt_ring_ctl', offset: 0 },
        },
        (batch) => this.onBatch(batch),
      );
    }
  }

  // ---------------------------------------------------------------- watched and unwatched delivery

  /** Whether anyone follows the stream as it happens (the agent's live event stream). */
  private watched = false;

  /** The efficient consumer's interval for `config`: the latency bound while watched; the
   *  longer unwatched interval otherwise, when there is one. */
  private intervalFor(config: LifecycleConfig): number {
    const fast = config.deliveryIntervalMs;
    return this.watched || config.unwatchedIntervalMs <= 0 ? fast : Math.max(fast, config.unwatchedIntervalMs);
  }

  /** A live subscriber came (true) or the last one left (false). Coming, it gets what waits at
   *  once, then a drain every deliveryIntervalMs. */
  setWatched(watched: boolean): void {
    if (watched === this.watched) return;
    this.watched = watched;
    if (watched) this.drainNow();
    this.applyInterval();
  }

  /** The agent's ticker (src/app/ticker.ts), set once: unwatched, the ring is drained in its
   *  wakeups (the sweeps' once a second at the default interval) instead of on a timer of the
   *  ring's own, so the drain costs no wakeup of its own. */
  setPacer(pacer: Pacer): void {
    this.pacer = pacer;
    this.applyInterval();
  }

  /** Called when records were lost since the last look: looked at after a drain the watermark
   *  brought (at most every 100 ms), so an overload is reported without waiting for the health
   *  sampler's next second (the agent: HealthMonitor.sampleNow). */
  onLoss: (() => void) | null = null;
  private pressureCheckedAt = 0;
  private lostSeen = 0;

  private onRingPressure(): void {
    if (this.onLoss === null) return;
    const now = performance.now();
    if (now - this.pressureCheckedAt < 100) return;
    this.pressureCheckedAt = now;
    const lost = this.lostTotal();
    if (lost <= this.lostSeen) return;
    this.lostSeen = lost;
    this.onLoss();
  }

  private pacer: Pacer | null = null;
  private paceTick: Tick | null = null;
  private paceMs = 0;

  /** The interval in force on the running sensor, and who paces it: the ticker while unwatched
   *  (and there is one), the ring's own timer while watched. */
  private applyInterval(): void {
    const ms = this.intervalFor(this.config);
    this.sensor.setRingInterval(ms);
    const wantPaced = this.pacer !== null && !this.watched && this.config.unwatchedIntervalMs > 0 && !this.stopped;
    const paced = this.sensor.setRingPaced(wantPaced);
    if (paced && (this.paceTick === null || this.paceMs !== ms)) {
      this.paceTick?.cancel();
      this.paceTick = this.pacer!.every(ms, () => this.sensor.pacedRingTick());
      this.paceMs = ms;
    } else if (!paced && this.paceTick !== null) {
      this.paceTick.cancel();
      this.paceTick = null;
    }
  }

  get isWatched(): boolean {
    return this.watched;
  }

  /** A new unwatched interval (a config reload): from the next drain on. */
  setUnwatchedInterval(ms: number): void {
    (this as { config: LifecycleConfig }).config = { ...this.config, unwatchedIntervalMs: ms };
    this.applyInterval();
  }

  /** Hands over what the ring holds now, before returning: a reader of the table, the states,
   *  the windows or the store then reads every record the kernel had written. A no-op for the
   *  low-latency consumer (it delivers as records come) and inside a delivery. */
  drainNow(): void {
    if (!this.stopped) this.sensor.drainRingNow();
  }

  // ---------------------------------------------------------------- sensor reload (src/app/sensor-reload.ts)

  /** Records seen twice while two generations overlap are removed here (overlap.ts). */
  readonly overlap = new OverlapDedupe();
  /** ring consumers retired by sensor reloads: their user-space drops still count */
  private retiredDrops: number[] = new Array(256).fill(0);

  /** The running sensor (the reload attaches a successor, flips, then detaches this one). */
  get currentSensor(): Sensor {
    return this.sensor;
  }

  /** Loads the successor of the running sensor for `config`, from `objectPath`, as
   *  `generation` (nothing attached). Throws SensorReloadError. */
  /** The successor's pre-flight alone: nothing is loaded (bundle application, before any swap). */
  preflightSuccessor(config: LifecycleConfig, objectPath: string): void {
    Sensor.preflightOnly(LifecyclePipeline.spec(config, probeKernel(), objectPath, 0), this.sensor);
  }

  prepareSuccessor(config: LifecycleConfig, objectPath: string, generation: number): Promise<{ sensor: Sensor; reused: string[] }> {
    return Sensor.successor(LifecyclePipeline.spec(config, probeKernel(), objectPath, generation), this.sensor, this.log);
  }

  /** The successor's programs are attached and the generation flipped and the old programs
   *  detached: hands the ring to a consumer on the successor (the old one drains first, so the
   *  stream stays in order and nothing is read twice), then closes the old object. */
  async adopt(next: Sensor, config: LifecycleConfig, attached: string[]): Promise<void> {
    const old = this.sensor;
    const stats = await old.stopRing();
    if (stats) for (let i = 0; i < this.retiredDrops.length; i++) this.retiredDrops[i]! += stats.droppedByTag[i] ?? 0;
    this.startConsumer(next, config);
    if (config.consumerRealtimePriority !== this.config.consumerRealtimePriority) {
      const err = native().setThreadRealtime?.(config.consumerRealtimePriority) ?? null;
      if (err) this.log.warn({ err }, 'keeping normal scheduling: SCHED_FIFO refused');
    }
    this.sensor = next;
    (this as { attached: string[] }).attached = attached;
    (this as { config: LifecycleConfig }).config = config;
    this.wanted = [...CORE_PROGS, ...(next.spec.optionalPrograms ?? [])];
    // the successor's consumer starts on its own timer: paced again, as its predecessor was
    this.applyInterval();
    old.close();
  }

  /** The cgroup v2 path the kernel recorded when cgroup `cgroupId` was made, while the sensor
   *  ran (`/system.slice/x.scope`); null when it was not seen or the map is unavailable. One map
   *  lookup: the identity cache asks only for a cgroup it could not resolve otherwise. */
  cgroupPath(cgroupId: bigint): string | null {
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(cgroupId);
    let v: Buffer | null;
    try {
      v = this.sensor.lookup('pt_cgroup_paths', key);
    } catch {
      return null; // an object without the map (a sensor reload from an older one)
    }
    if (v === null) return null;
    const end = v.indexOf(0);
    const path = v.toString('utf8', 0, end < 0 ? v.length : end);
    return path.startsWith('/') ? path : null;
  }

  /** One read of the live resource sweep iterator (pt_task_usage records, one per task). */
  readUsage(): Buffer {
    return this.sensor.iterate('usage_tasks');
  }

  private bootstrap(): void {
    try {
      const snaps = decodeTaskSnaps(this.sensor.iterate('snapshot_tasks'));
      this.table.bootstrap(snaps);
      // The iterator does not visit every task (pid 1 is missing on some kernels): /proc fills
      // the gaps, keeping the exact start times already known.
      this.table.bootstrapFromProc();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'task iterator unavailable; bootstrapping from /proc');
      this.table.bootstrapFromProc();
    }
  }

  /** Records decoded and handed over at a time. Unwatched, a drain holds a second of events:
   *  decoded at once, all of them (and their table answers, held by the rules' batch) stayed
   *  alive until the last was dispatched, and the scavenges that fell in the drain copied them
   *  all (bench/README.md, "Session 22"). A chunk is also the rules' batch (`onDrained`). */
  static readonly CHUNK_RECORDS = 128;

  private onBatch(batch: Buffer): void {
    // when the batch left the ring: what was recorded after it is in a later batch
    const drainedAt = performance.now();
    try {
      for (let from = 0; from < batch.length; ) {
        const r = this.onChunk(batch, from);
        // a bad frame ends the walk (decodeBatch counted it); the rest of the batch is unreadable
        if (r.stop !== null || r.consumed === 0) break;
        from += r.consumed;
      }
    } finally {
      // a reload's overlap window closes between batches only, never between two chunks
      if (this.overlap.active) this.overlap.batchDone(drainedAt);
    }
    if (this.probes.waiting > 0 && this.probeTimer === null && !this.stopped) {
      this.probeTimer = setTimeout(this.flushProbes, Number(PATH_PROBE_HOLD_NS / 1_000_000n) + 1);
      this.probeTimer.unref();
    }
  }

  /** Decodes and hands over the next CHUNK_RECORDS records of `batch` from `from`. */
  private onChunk(batch: Buffer, from: number): DecodeResult {
    const events = this.events;
    events.length = 0;
    const r = decodeBatch(batch, { events, seq: this.seq, from, maxRecords: LifecyclePipeline.CHUNK_RECORDS });
    this.malformed += r.malformed;
    for (let i = 0; i < events.length; i++) this.captured[events[i]!.type]++;
    // a sensor reload's overlap: the same event recorded by two generations reaches no one twice
    if (this.overlap.active) this.overlap.filter(events);
    // PATH-search probes are marked before anyone sees them; a failure whose verdict is not in
    // this chunk waits for the next one (or PATH_PROBE_HOLD_NS).
    const ready = this.ready;
    ready.length = 0;
    this.probes.process(events, ready);
    this.dispatch(ready);
    // hold no event past its chunk: until the next drain (1 s unwatched) they would often meet a
    // scavenge alive, and be copied or promoted for nothing
    events.length = 0;
    ready.length = 0;
    this.onDrained?.();
    return r;
  }

  /** Runs after each chunk of a batch has been handed to the sink (the agent: the rules apply
   *  what waits when the drain itself was a batch, unwatched). */
  onDrained: (() => void) | null = null;

  readonly probes = new PathProbeMarker();
  private readonly ready: LifecycleEvent[] = [];
  private probeTimer: NodeJS.Timeout | null = null;
  private readonly flushProbes = (): void => {
    this.probeTimer = null;
    // The rest of a PATH search may still be in the ring (unwatched, a drain comes every second):
    // hand it over first, so a failure is released as real only when its verdict is not there.
    // That drain may arm this timer again (onBatch); the test below then keeps that one.
    if (!this.stopped) this.drainNow();
    const out: LifecycleEvent[] = [];
    if (this.stopped) this.probes.flushAll(out);
    else this.probes.flushStale(boottimeNs(), out);
    this.dispatch(out);
    if (this.probes.waiting > 0 && !this.stopped && this.probeTimer === null) {
      this.probeTimer = setTimeout(this.flushProbes, 10);
      this.probeTimer.unref();
    }
  };

  private dispatch(events: readonly LifecycleEvent[]): void {
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      // A throw is counted and logged, and the rest of the batch goes on.
      let en: Enriched;
      try {
        en = this.table.apply(ev);
      } catch (e) {
        this.tableGuard.fail(e);
        continue;
      }
      try {
        this.sink(ev, en);
      } catch (e) {
        this.sinkGuard.fail(e);
      }
    }
  }

  private readonly tableGuard: ConsumerGuard;
  private readonly sinkGuard: ConsumerGuard;

  private wanted: string[] = [];

  /** Programs this kernel should have taken that did not attach (the health report names them). */
  missingPrograms(): string[] {
    return this.wanted.filter((x) => !this.attached.includes(x));
  }

  /** Throws caught in the pipeline itself (the table, the sink as a whole). */
  faults(): Record<string, ConsumerFaults> {
    return { table: this.tableGuard.faults(), sink: this.sinkGuard.faults() };
  }

  /** Current accounting. Exact after stop(); while running, records in flight may be missing. */
  accounting(): AccountingReport {
    const n = native();
    // The sequence numbers first, the counters after: the kernel counts a record as generated
    // before it numbers it, so every number issued by now is in the counters read next (as
    // captured, lost or in flight). Read the other way round, a record made between the two
    // reads was a gap of one in a live snapshot.
    const seqRaw = this.sensor.lookup('pt_seq', Buffer.alloc(4));
    const counters = this.readCounters();
    const ring = this.sensor.ringStats();
    const perType = {} as Accounting;
    let identityHolds = true;
    let inFlight = 0n;
    const totals = { generated: 0n, captured: 0n, lostReserve: 0n, lostUserspace: 0n, duplicates: this.overlap.total };
    for (const type of EVENT_TYPES) {
      const op = OP_EVENT_TYPE.indexOf(type);
      const t = {
        generated: counters?.total.generated[op] ?? 0n,
        captured: BigInt(this.captured[type]),
        lostReserve: counters?.total.lostReserve[op] ?? 0n,
        lostUserspace: BigInt((ring?.droppedByTag[op] ?? 0) + (this.retiredDrops[op] ?? 0)),
      };
      perType[type] = t;
      const pending = t.generated - t.captured - t.lostReserve - t.lostUserspace;
      // Running: records may be in the ring (pending > 0), never more captured than generated.
      if (this.stopped ? pending !== 0n : pending < 0n) identityHolds = false;
      inFlight += pending > 0n ? pending : 0n;
      totals.generated += t.generated;
      totals.captured += t.captured;
      totals.lostReserve += t.lostReserve;
      totals.lostUserspace += t.lostUserspace;
    }
    let seqGaps = 0n;
    if (seqRaw) {
      const next = decodePerCpuU64(seqRaw, n.numPossibleCpus);
      const burned = counters?.perCpu ?? [];
      next.forEach((issued, cpu) => {
        seqGaps += this.seq.gapsUpTo(cpu, issued) - (burned[cpu]?.seqBurned ?? 0n);
      });
      // Numbered records still in the ring are not gaps yet.
      if (!this.stopped) seqGaps = seqGaps > inFlight ? seqGaps - inFlight : 0n;
    }
    return {
      perType,
      totals,
      duplicates: { ...this.overlap.duplicates },
      identityHolds,
      inFlight,
      exact: this.stopped,
      seqGaps,
      malformed: this.malformed,
      threadExits: counters?.total.threadExits ?? 0n,
      threadForks: counters?.total.threadForks ?? 0n,
      ring,
    };
  }

  /** Records lost so far, kernel and user space: accounting()'s loss total without the rest of
   *  it (the per-type figures, the sequence cross-check). The health sampler asks every second,
   *  idle or not. */
  lostTotal(): number {
    const reserve = this.readCounters()?.total.lostReserve;
    const dropped = this.sensor.ringStats()?.droppedByTag;
    let lost = 0;
    for (const op of EVENT_OPS) lost += Number(reserve?.[op] ?? 0n) + (dropped?.[op] ?? 0) + (this.retiredDrops[op] ?? 0);
    return lost;
  }

  private readCounters() {
    const raw = this.sensor.lookup('pt_counters', Buffer.alloc(4));
    return raw ? decodeCounters(raw, native().numPossibleCpus) : null;
  }

  /** Detach (no new records), drain the ring into the sink, then account exactly. */
  async stop(): Promise<AccountingReport> {
    if (!this.stopped) {
      this.stopped = true;
      this.paceTick?.cancel();
      this.paceTick = null;
      // An exit is counted and prepared at sched_process_exit, and emitted at the task's final
      // switch, moments later. Detaching both at once strands the exits in between (counted,
      // never emitted: the identity would not be exact on a busy machine). So the preparing hook
      // goes first, and the others once what it prepared has been emitted (or 200 ms at most).
      this.sensor.detachPrograms(['handle_exit']);
      for (const end = performance.now() + 200; performance.now() < end && this.parkedExits() > 0; ) await new Promise((r) => setTimeout(r, 2));
      this.sensor.detach();
      await this.sensor.stopRing();
      // the stream is complete: failures still waiting for a verdict were final
      if (this.probeTimer) clearTimeout(this.probeTimer);
      this.probeTimer = null;
      const out: LifecycleEvent[] = [];
      this.probes.flushAll(out);
      this.dispatch(out);
    }
    return this.accounting();
  }

  /** Exits prepared at sched_process_exit, waiting for their task's final switch. */
  private parkedExits(): number {
    try {
      return native().mapEntries(this.sensor.object, 'pt_pending_exit', 1).length;
    } catch {
      return 0;
    }
  }

  async close(): Promise<void> {
    await this.stop();
    this.sensor.close();
    if (this.config.consumerRealtimePriority > 0) native().setThreadRealtime?.(0);
  }
}
