// Sensor lifecycle: open → configure → load → attach → stream → stop → close. Generic over the
// BPF object: which programs, maps and config bytes belong to which sensor is decided by the
// caller (src/app), so this stage knows nothing of event semantics.
import type { Logger } from '../shared/log.js';
import { BpfError } from './errors.js';
import { native, type BpfLink, type BpfObject, type RingConsumer, type RingOptions, type RingPullOptions, type RingStats } from './native.js';
import { RingPuller, type PullBatchHandler, type PullPolicy } from './ring-pull.js';

export interface SensorSpec {
  name: string;
  objectPath: string;
  maxEntries?: Record<string, number>;
  autoload?: Record<string, boolean>;
  /** Patch the .rodata image (const volatile config) before load. */
  rodata?: (base: Buffer) => Buffer;
  /** Programs that must attach. */
  programs: string[];
  /** Programs attached when possible; failures are logged, not fatal. */
  optionalPrograms?: string[];
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
    n.setLogger((level, line) => {
      const msg = line.trimEnd();
      if (level === 'warn') log.warn({ sensor: spec.name }, msg);
      else log.debug({ sensor: spec.name }, msg);
    });
    try {
      s.obj = n.open(spec.objectPath, { maxEntries: spec.maxEntries ?? {}, autoload: spec.autoload ?? {} });
    } catch (e) {
      throw BpfError.from(`open ${spec.objectPath}`, e);
    }
    try {
      const rodata = spec.rodata ? spec.rodata(n.readRodata(s.obj)) : undefined;
      n.load(s.obj, rodata ? { rodata } : {});
    } catch (e) {
      s.close();
      throw BpfError.from(`load ${spec.name}`, e);
    }
    return s;
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
