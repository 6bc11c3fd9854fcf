// Wires the state sensor: BPF (task-storage accounting, transitions of interest) → its own ring
// → decodeStateBatch → ProcessStates, plus a periodic sweep of the st_snapshot iterator.
import type { Logger } from '../shared/log.js';
import type { StateStreamEvent } from '../shared/events.js';
import { Sensor, boottimeNs, native, type SensorSpec } from '../kernel/index.js';
import { SeqTracker, STATE_LAYOUT, STATE_OPS, decodePerCpuU64, decodeStateBatch, decodeStateCounters, decodeThreadSnaps, patchRodataVars } from '../wire/index.js';
import { ProcessStates, type ProcessTable } from '../process/index.js';
import { Ticker, type Tick } from './ticker.js';
import { projectPath } from '../shared/paths.js';

export const STATE_OBJECT = projectPath('bpf', '.output', 'state.bpf.o');

export interface StateConfig {
  /** leaving D after this long is reported; ongoing D this long is "stuck" (default 1 s) */
  dThresholdMs: number;
  /** transition records per CPU per second before throttling */
  budgetPerSec: number;
  /** how often per-thread accounting is swept (ms) */
  sweepMs: number;
}

export const DEFAULT_STATE: StateConfig = { dThresholdMs: 1000, budgetPerSec: 2000, sweepMs: 2000 };

/** A reader (ps, stuck-D) gets a sweep at most this old: one is taken on demand if needed, so
 *  the background interval can stay slow without serving stale states. */
const FRESH_MS = 250;

const OP_OFFSET = (STATE_LAYOUT.structs.pt_hdr.fields as ReadonlyArray<{ name: string; offset: number }>).find((f) => f.name === 'op')!.offset;

export interface StateAccounting {
  generated: { state: bigint; throttle: bigint };
  captured: { state: bigint; throttle: bigint };
  lostReserve: { state: bigint; throttle: bigint };
  lostUserspace: { state: bigint; throttle: bigint };
  throttled: bigint;
  identityHolds: boolean;
  seqGaps: bigint;
  storageFail: bigint;
}

export class StatePipeline {
  readonly states: ProcessStates;
  readonly seq = new SeqTracker(0n);
  readonly captured = { state: 0n, throttle: 0n };
  private tick: Tick | null = null;
  /** the timer of the sweep: the agent's shared one, or the pipeline's own (start) */
  private ticker!: Ticker;
  private stopped = false;
  lastSweepMs = 0;
  sweeps = 0;

  private constructor(
    private sensor: Sensor,
    readonly config: StateConfig,
    table: ProcessTable,
    private readonly log: Logger,
    private readonly sink: (ev: StateStreamEvent) => void,
  ) {
    this.states = new ProcessStates(table, (a, pid) => log.debug({ pid, ...a, atNs: String(a.atNs) }, 'invalid state transition ignored'), { now: boottimeNs });
  }

  /** The sensor as this config and object want it; `generation` goes to .rodata. */
  static spec(config: StateConfig, objectPath: string, generation: number): SensorSpec {
    return {
      name: 'state',
      objectPath,
      rodata: (base, vars) =>
        patchRodataVars(
          base,
          { d_threshold_ns: BigInt(config.dThresholdMs) * 1_000_000n, budget_per_sec: config.budgetPerSec, wakeup_mode: 0, ...(generation !== 0 ? { generation } : {}) },
          vars ?? STATE_LAYOUT.rodata.vars,
        ),
      programs: ['st_switch', 'st_wakeup', 'st_wakeup_new'],
      wireTypes: ['pt_hdr', 'st_transition', 'st_throttle', 'st_task', 'st_task_snap', 'st_counters', 'st_budget'],
      generation: { map: 'st_gen', variable: 'generation' },
    };
  }

  /** `beforeBatch`: runs before each batch of state records is applied (the agent drains the
   *  lifecycle ring there, so a state record finds the process it is about in the table). */
  static start(cfg: Partial<StateConfig>, table: ProcessTable, log: Logger, sink: (ev: StateStreamEvent) => void, opts: { objectPath?: string; ticker?: Ticker; beforeBatch?: () => void } = {}): StatePipeline {
    const config = { ...DEFAULT_STATE, ...cfg };
    const sensor = Sensor.load(StatePipeline.spec(config, opts.objectPath ?? STATE_OBJECT, 0), log);
    const p = new StatePipeline(sensor, config, table, log, sink);
    try {
      p.startConsumer(sensor);
      sensor.attach();
    } catch (e) {
      sensor.close();
      throw e;
    }
    p.ticker = opts.ticker ?? new Ticker();
    p.tick = p.ticker.every(config.sweepMs, () => p.sweep());
    p.beforeBatch = opts.beforeBatch ?? null;
    return p;
  }

  private startConsumer(sensor: Sensor): void {
    sensor.startRing('st_events', { tagOffset: OP_OFFSET, sleepFlag: { map: 'st_ring_ctl', offset: 0 } }, (b) => this.onBatch(b));
  }

  // ---------------------------------------------------------------- sensor reload (src/app/sensor-reload.ts)

  private retiredDrops: number[] = new Array(256).fill(0);

  get currentSensor(): Sensor {
    return this.sensor;
  }

  /** The successor's pre-flight alone: nothing is loaded. Throws SensorReloadError. */
  preflightSuccessor(config: StateConfig, objectPath: string): void {
    Sensor.preflightOnly(StatePipeline.spec(config, objectPath, 0), this.sensor);
  }

  /** Loads the successor of the running sensor (nothing attached). Throws SensorReloadError. */
  prepareSuccessor(config: StateConfig, objectPath: string, generation: number): Promise<{ sensor: Sensor; reused: string[] }> {
    return Sensor.successor(StatePipeline.spec(config, objectPath, generation), this.sensor, this.log);
  }

  /** After the flip and the old programs' detach: the ring to a consumer on the successor (the
   *  old one drains first), then the old object closes. The task storage is shared, so every
   *  thread's state, time in state and run-queue figures carry over. */
  async adopt(next: Sensor, config: StateConfig): Promise<void> {
    const old = this.sensor;
    const stats = await old.stopRing();
    if (stats) for (let i = 0; i < this.retiredDrops.length; i++) this.retiredDrops[i]! += stats.droppedByTag[i] ?? 0;
    this.startConsumer(next);
    this.sensor = next;
    const sweepChanged = config.sweepMs !== this.config.sweepMs;
    (this as { config: StateConfig }).config = config;
    if (sweepChanged) this.setSweepMs(config.sweepMs);
    old.close();
  }

  private beforeBatch: (() => void) | null = null;

  private onBatch(batch: Buffer): void {
    this.beforeBatch?.();
    const r = decodeStateBatch(batch, this.seq);
    for (const ev of r.events) {
      this.captured[ev.type]++;
      if (ev.type === 'state') this.states.applyState(ev);
      this.sink(ev);
    }
  }

  /** Sweeps now if the last sweep is older than FRESH_MS (readers call it before reading). */
  freshen(): void {
    if (performance.now() - this.lastSweepAt > FRESH_MS) this.sweep();
  }

  private lastSweepAt = -Infinity;

  /** Reads every thread's accounting; also callable on demand (e.g. before answering ps). */
  sweep(): void {
    if (this.stopped) return;
    const t0 = performance.now();
    this.lastSweepAt = t0;
    try {
      this.states.applySweep(decodeThreadSnaps(this.sensor.iterate('st_snapshot')));
      this.sweeps++;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'state sweep failed');
    }
    this.lastSweepMs = performance.now() - t0;
  }

  private readonly watched = new Set<number>();

  /** Watch a process: every state change of it is reported. */
  watch(pid: number, on: boolean): void {
    const n = native();
    const key = Buffer.alloc(4);
    key.writeUInt32LE(pid);
    if (on) {
      n.mapUpdate(this.sensor.object, 'st_watch', key, Buffer.from([1]));
      this.watched.add(pid);
    } else if (this.watched.delete(pid)) {
      n.mapDelete(this.sensor.object, 'st_watch', key);
    }
    const count = Buffer.alloc(4);
    count.writeUInt32LE(this.watched.size);
    n.mapUpdate(this.sensor.object, 'st_watch_count', Buffer.alloc(4), count);
  }

  accounting(): StateAccounting {
    const raw = this.sensor.lookup('st_counters', Buffer.alloc(4));
    const c = raw ? decodeStateCounters(raw) : null;
    const ring = this.sensor.ringStats();
    const gen = { state: c?.generated[0] ?? 0n, throttle: c?.generated[1] ?? 0n };
    const throttled = c?.throttled[0] ?? 0n;
    const lostReserve = { state: c?.lostReserve[0] ?? 0n, throttle: c?.lostReserve[1] ?? 0n };
    const opState = STATE_OPS.state;
    const drops = (op: number) => BigInt((ring?.droppedByTag[op] ?? 0) + (this.retiredDrops[op] ?? 0));
    const lostUserspace = { state: drops(opState), throttle: drops(opState + 1) };
    const identityHolds =
      gen.state === this.captured.state + lostReserve.state + lostUserspace.state + throttled &&
      gen.throttle === this.captured.throttle + lostReserve.throttle + lostUserspace.throttle;
    let seqGaps = 0n;
    const seqRaw = this.sensor.lookup('st_seq', Buffer.alloc(4));
    if (seqRaw) decodePerCpuU64(seqRaw).forEach((next, cpu) => (seqGaps += this.seq.gapsUpTo(cpu, next)));
    return { generated: gen, captured: { ...this.captured }, lostReserve, lostUserspace, throttled, identityHolds, seqGaps, storageFail: c?.storageFail ?? 0n };
  }

  nowNs(): bigint {
    return boottimeNs();
  }

  /** A new sweep interval (a config reload). */
  setSweepMs(ms: number): void {
    (this as { config: StateConfig }).config = { ...this.config, sweepMs: ms };
    if (this.stopped) return;
    this.tick?.cancel();
    this.tick = this.ticker.every(ms, () => this.sweep());
  }

  get dThresholdNs(): bigint {
    return BigInt(this.config.dThresholdMs) * 1_000_000n;
  }

  stateOf(execId: string, nowNs: bigint) {
    this.freshen();
    return this.states.stateOf(execId, nowNs);
  }

  zombies(nowNs: bigint) {
    return this.states.zombies(nowNs);
  }

  history(execId: string) {
    return this.states.history(execId) ?? [];
  }

  stuckD(nowNs: bigint, thresholdNs: bigint) {
    this.freshen();
    return this.states.stuckD(nowNs, thresholdNs);
  }

  async stop(): Promise<StateAccounting> {
    if (!this.stopped) {
      this.stopped = true;
      this.tick?.cancel();
      this.sensor.detach();
      await this.sensor.stopRing();
    }
    return this.accounting();
  }

  async close(): Promise<void> {
    await this.stop();
    this.sensor.close();
  }
}
