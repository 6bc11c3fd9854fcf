// Sensor lifecycle: open → configure → load → attach → stream → stop → close. Generic over the
// BPF object: which programs, maps and config bytes belong to which sensor is decided by the
// caller (src/app), so this stage knows nothing of event semantics.
import type { Logger } from '../shared/log.js';
import { BpfError } from './errors.js';
import { native, type BpfLink, type BpfObject, type ObjectFacts, type RingConsumer, type RingOptions, type RingPullOptions, type RingStats } from './native.js';
import { RingPuller, type PullBatchHandler, type PullPolicy } from './ring-pull.js';
import { Btf } from './btf.js';
import { SensorReloadError, loadFailure, preflight } from './preflight.js';

/** The generation word's value that makes every attached generation emit (PT_GEN_ALL in
 *  bpf/lifecycle.h): the overlap's duplicates made visible, for tests and benchmarks. */
export const GENERATION_ALL = 0xffffffff;

/** .rodata variables of an object, from its own BTF: name → offset, size, scalar kind. */
export type RodataVars = Record<string, { offset: number; size: number; kind: string }>;

export interface SensorSpec {
  name: string;
  objectPath: string;
  maxEntries?: Record<string, number>;
  autoload?: Record<string, boolean>;
  /** Patch the .rodata image (const volatile config) before load. `vars`: where the object's
   *  own BTF puts each variable (null when it has none). */
  rodata?: (base: Buffer, vars: RodataVars | null) => Buffer;
  /** Programs that must attach. */
  programs: string[];
  /** Programs attached when possible; failures are logged, not fatal. */
  optionalPrograms?: string[];
  /** Structs whose layout a successor must keep: the records the decoders read. */
  wireTypes?: string[];
  /** The generation word (an array map, u32 at key 0) and the .rodata variable that names the
   *  object's generation: hooks emit only while the two agree (bpf/lifecycle.h). */
  generation?: { map: string; variable: string };
}

const LOAD_ATTEMPTS = 4;

export type BatchHandler = (batch: Buffer, records: number) => void;

export class Sensor {
  private obj: BpfObject | null = null;
  private readonly links = new Map<string, BpfLink>();
  private consumer: RingConsumer | null = null;
  private puller: RingPuller | null = null;
  private lastRingStats: RingStats | null = null;

  private constructor(
    readonly spec: SensorSpec,
    private readonly log: Logger,
  ) {}

  /** Opens and loads the object; programs are not attached yet. A load the kernel answers with
   *  EAGAIN (seen under memory pressure or a signal during verification) is retried from a fresh
   *  open: a libbpf object cannot be loaded twice. */
  static load(spec: SensorSpec, log: Logger): Sensor {
    for (let attempt = 1; ; attempt++) {
      try {
        return Sensor.loadOnce(spec, log);
      } catch (e) {
        if (!(e instanceof BpfError) || e.errnoCode !== 'EAGAIN' || attempt >= LOAD_ATTEMPTS) throw e;
        log.warn({ sensor: spec.name, attempt }, 'BPF load answered EAGAIN; retrying');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 * attempt);
      }
    }
  }

  private static loadOnce(spec: SensorSpec, log: Logger): Sensor {
    const s = new Sensor(spec, log);
    const n = native();
    Sensor.logTo(spec, log);
    try {
      s.obj = n.open(spec.objectPath, { maxEntries: spec.maxEntries ?? {}, autoload: spec.autoload ?? {} });
    } catch (e) {
      throw BpfError.from(`open ${spec.objectPath}`, e);
    }
    try {
      const rodata = spec.rodata ? spec.rodata(n.readRodata(s.obj), rodataVarsOf(n.inspect(s.obj))) : undefined;
      n.load(s.obj, rodata ? { rodata } : {});
    } catch (e) {
      s.close();
      throw BpfError.from(`load ${spec.name}`, e);
    }
    return s;
  }

  private static logTo(spec: SensorSpec, log: Logger): void {
    native().setLogger((level, line) => {
      const msg = line.trimEnd();
      if (level === 'warn') log.warn({ sensor: spec.name }, msg);
      else log.debug({ sensor: spec.name }, msg);
    });
  }

  /** Loads the object that is to replace `running` (make-before-break; nothing is attached):
   *  pre-flight (programs, the kernel's BTF, shared maps, record layouts, the generation word),
   *  then a load that takes over every map the two share, so state in flight (the ring, counters,
   *  sequence numbers, pending exits, task storage) carries over. Throws SensorReloadError; the
   *  running sensor is not touched either way. The verifier runs off the event loop. */
  static async successor(spec: SensorSpec, running: Sensor, log: Logger): Promise<{ sensor: Sensor; reused: string[] }> {
    const n = native();
    Sensor.logTo(spec, log);
    // An object built for another patrol may lack a program we would set autoload for: open
    // once to list them, then again with only the settings that apply.
    let programs: Set<string>;
    try {
      const probe = n.open(spec.objectPath, {});
      try {
        programs = new Set(n.inspect(probe).programs.map((p) => p.name));
      } finally {
        n.close(probe);
      }
    } catch (e) {
      throw new SensorReloadError('E_SENSOR_OBJECT', `${spec.name}: cannot open ${spec.objectPath}: ${(e as Error).message}`);
    }
    const s = new Sensor(spec, log);
    try {
      const autoload = Object.fromEntries(Object.entries(spec.autoload ?? {}).filter(([k]) => programs.has(k)));
      s.obj = n.open(spec.objectPath, { maxEntries: spec.maxEntries ?? {}, autoload });
      const facts = n.inspect(s.obj);
      const pf = preflight({
        sensor: spec.name,
        running: running.facts(),
        next: facts,
        programs: spec.programs,
        ...(spec.wireTypes ? { wireTypes: spec.wireTypes } : {}),
        ...(spec.generation ? { generation: spec.generation } : {}),
      });
      const rodata = spec.rodata ? spec.rodata(n.readRodata(s.obj), pf.rodataVars) : undefined;
      try {
        // off the event loop: verifying takes hundreds of ms, seconds on a busy machine
        await n.loadAsync(s.obj, { ...(rodata ? { rodata } : {}), reuse: { from: running.object, maps: pf.reuse } });
      } catch (e) {
        throw loadFailure(spec.name, e as { message: string; log?: string[]; program?: string });
      }
      return { sensor: s, reused: pf.reuse };
    } catch (e) {
      s.close();
      if (e instanceof SensorReloadError) throw e;
      throw new SensorReloadError('E_SENSOR_OBJECT', `${spec.name}: ${spec.objectPath}: ${(e as Error).message}`);
    }
  }

  /** The pre-flight of successor() without a load: opens the object, checks it against the
   *  running sensor and this kernel's BTF (programs, tracepoints, shared maps, record layouts,
   *  the generation word), and closes it. Nothing is loaded, the running sensor is not touched.
   *  Throws SensorReloadError. (A CO-RE relocation this kernel cannot resolve shows only at a
   *  load: successor() reports it, still without touching the running sensor.) */
  static preflightOnly(spec: SensorSpec, running: Sensor): void {
    const n = native();
    let obj: BpfObject;
    try {
      // with the autoload settings that apply to this object, as successor() opens it
      const probe = n.open(spec.objectPath, {});
      let programs: Set<string>;
      try {
        programs = new Set(n.inspect(probe).programs.map((p) => p.name));
      } finally {
        n.close(probe);
      }
      obj = n.open(spec.objectPath, { maxEntries: spec.maxEntries ?? {}, autoload: Object.fromEntries(Object.entries(spec.autoload ?? {}).filter(([k]) => programs.has(k))) });
    } catch (e) {
      throw new SensorReloadError('E_SENSOR_OBJECT', `${spec.name}: cannot open ${spec.objectPath}: ${(e as Error).message}`);
    }
    try {
      preflight({
        sensor: spec.name,
        running: running.facts(),
        next: n.inspect(obj),
        programs: spec.programs,
        ...(spec.wireTypes ? { wireTypes: spec.wireTypes } : {}),
        ...(spec.generation ? { generation: spec.generation } : {}),
      });
    } finally {
      n.close(obj);
    }
  }

  private factsCache: ObjectFacts | null = null;

  /** What the loaded object holds (programs, maps, BTF). */
  facts(): ObjectFacts {
    this.factsCache ??= native().inspect(this.object);
    return this.factsCache;
  }

  /** Writes the generation word (spec.generation): hooks of the object whose generation it
   *  names emit from now on, the others stop. */
  setGeneration(g: number): void {
    const gen = this.spec.generation;
    if (!gen) throw new SensorReloadError('E_SENSOR_GENERATION', `${this.spec.name} has no generation word`);
    const v = Buffer.alloc(4);
    v.writeUInt32LE(g >>> 0);
    native().mapUpdate(this.object, gen.map, Buffer.alloc(4), v);
  }

  /** Attaches every program, all or nothing (a failure detaches what was attached): the
   *  successor's attach during a reload. Optional programs that fail are skipped. */
  attachAll(): string[] {
    try {
      return this.attach();
    } catch (e) {
      this.detach();
      throw new SensorReloadError('E_SENSOR_ATTACH', `${this.spec.name}: ${(e as Error).message}`);
    }
  }

  get object(): BpfObject {
    if (!this.obj) throw new BpfError('sensor', 0, 'EBADF', `${this.spec.name} is closed`);
    return this.obj;
  }

  /** Attaches every program; optional ones may fail. Returns the names attached. */
  attach(): string[] {
    const n = native();
    for (const prog of this.spec.programs) {
      try {
        this.links.set(prog, n.attach(this.object, prog));
      } catch (e) {
        this.detach();
        throw BpfError.from(`attach ${prog}`, e);
      }
    }
    for (const prog of this.spec.optionalPrograms ?? []) {
      try {
        this.links.set(prog, n.attach(this.object, prog));
      } catch (e) {
        this.log.warn({ sensor: this.spec.name, prog, err: (e as Error).message }, 'optional program not attached');
      }
    }
    return [...this.links.keys()];
  }

  get attached(): string[] {
    return [...this.links.keys()];
  }

  startRing(map: string, opts: RingOptions, onBatch: BatchHandler): void {
    if (this.consumer) throw new BpfError('ringStart', 0, 'EBUSY', 'ring consumer already running');
    try {
      this.consumer = native().ringStart(this.object, map, opts, onBatch);
    } catch (e) {
      throw BpfError.from(`ringStart ${map}`, e);
    }
  }

  /** The efficient delivery: drained on the JS thread on a timer (src/kernel/ring-pull.ts). */
  startRingPull(map: string, opts: Omit<RingPullOptions, 'wakeAbovePages'>, policy: PullPolicy, onBatch: PullBatchHandler): void {
    if (this.consumer || this.puller) throw new BpfError('ringStart', 0, 'EBUSY', 'ring consumer already running');
    try {
      this.puller = new RingPuller(this.object, map, opts, policy, onBatch);
    } catch (e) {
      throw BpfError.from(`ringPullOpen ${map}`, e);
    }
  }

  /** Efficient delivery: drains the ring now (see RingPuller.drainNow); otherwise nothing. */
  drainRingNow(): void {
    this.puller?.drainNow();
  }

  /** Efficient delivery: the interval between drains from now on; otherwise nothing. */
  setRingInterval(ms: number): void {
    this.puller?.setTickMs(ms);
  }

  /** Efficient delivery: whether the owner paces the drains (RingPuller.setPaced); otherwise
   *  nothing. Returns whether the ring is paced now. */
  setRingPaced(paced: boolean): boolean {
    this.puller?.setPaced(paced);
    return this.puller?.isPaced ?? false;
  }

  /** Efficient delivery: `fn` runs after each drain a watermark wake brought; otherwise nothing. */
  setRingPressureHandler(fn: () => void): void {
    if (this.puller) this.puller.onPressure = fn;
  }

  /** Efficient delivery, paced: the owner's periodic drain; otherwise nothing. */
  pacedRingTick(): void {
    this.puller?.pacedTick();
  }

  ringStats(): RingStats | null {
    if (this.puller) return this.puller.stats();
    return this.consumer ? native().ringStats(this.consumer) : this.lastRingStats;
  }

  /** Detaches every program: no new records are generated after this returns. */
  detach(): void {
    const n = native();
    for (const [prog, link] of this.links) {
      try {
        n.detach(link);
      } catch (e) {
        this.log.warn({ prog, err: (e as Error).message }, 'detach failed');
      }
    }
    this.links.clear();
  }

  /** Detaches these programs only (the others stay attached). */
  detachPrograms(names: readonly string[]): void {
    const n = native();
    for (const prog of names) {
      const link = this.links.get(prog);
      if (!link) continue;
      this.links.delete(prog);
      try {
        n.detach(link);
      } catch (e) {
        this.log.warn({ prog, err: (e as Error).message }, 'detach failed');
      }
    }
  }

  /** Detach, side by side: what detach() does, in one grace period instead of one per classic
   *  tracepoint (a sensor reload's "break" step). Resolves when every link is gone, with when
   *  the last program was unhooked and when the last link was released (ms from the call): the
   *  kernel stops calling a program as its detach begins, then may wait out a grace period. */
  async detachAsync(): Promise<{ unhookedMs: number; doneMs: number }> {
    // Every link on a thread of its own, started at once (SCHED_FIFO when allowed): a tp_btf
    // detach unhooks, then may wait for an RCU grace period (the tracepoint's static call going
    // back to one probe); a perf event tracepoint detach unhooks, then waits for a tasks-trace
    // grace period. One after another, each later link would stay hooked through the earlier
    // ones' waits.
    const links = [...this.links.values()];
    this.links.clear();
    const t0 = performance.now();
    try {
      return await native().detachAll(links);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'detach failed');
      const ms = performance.now() - t0;
      return { unhookedMs: ms, doneMs: ms };
    }
  }

  /** Stops the consumer after a final drain; resolves once every batch read from the ring has
   *  been handed to the batch handler. */
  async stopRing(): Promise<RingStats | null> {
    if (this.puller) {
      this.puller.close();
      this.lastRingStats = this.puller.stats();
      this.puller = null;
      return this.lastRingStats;
    }
    const c = this.consumer;
    if (!c) return this.lastRingStats;
    const n = native();
    await n.ringStop(c);
    this.lastRingStats = n.ringStats(c);
    this.consumer = null;
    return this.lastRingStats;
  }

  lookup(map: string, key: Buffer): Buffer | null {
    return native().mapLookup(this.object, map, key);
  }

  iterate(prog: string): Buffer {
    return native().iterRead(this.object, prog);
  }

  /** Detach and release everything; idempotent. Call stopRing() first to keep the tail of the
   *  stream (close stops a running consumer without waiting for its queued batches). */
  close(): void {
    this.detach();
    this.consumer = null;
    this.puller?.close();
    this.puller = null;
    if (this.obj) {
      native().close(this.obj);
      this.obj = null;
    }
  }
}

function rodataVarsOf(facts: ObjectFacts): RodataVars | null {
  if (!facts.btf) return null;
  return Object.fromEntries(Btf.parse(facts.btf).sectionVars('.rodata').map((v) => [v.name, { offset: v.offset, size: v.size, kind: v.kind }]));
}
