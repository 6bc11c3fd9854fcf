// Sensor hot reload, make-before-break (issue 13; docs/reload.md). Composed here over the
// sensors of src/kernel, for the lifecycle and state pipelines:
//   1. load both successors — pre-flight (programs, the kernel's BTF, shared map layouts, record
//      layouts), then a load that takes over every shared map (the ring, counters, sequence
//      numbers, pending exits, exec arguments, task storage): nothing is attached yet, and a
//      refusal leaves the running sensors as they are;
//   2. per sensor: attach the successor's programs (inactive: the generation word still names
//      the running object), flip the word, detach the old programs. The kernel has no in-place
//      program swap for tp_btf or tracing links (BPF_LINK_UPDATE lacks update_prog there), and a
//      tp_btf probe added later runs after the older ones, so for one event the old hook checks
//      the word first: an event is recorded by the old generation, by the new one, or — when
//      the flip falls between the two checks — by both, never by neither;
//   3. the user-space filter (overlap.ts) removes what both recorded;
//   4. the ring's consumer moves to the successor (the old one drains first), the old object
//      closes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';
import { sha256Hex, versionOf } from '../shared/canonical.js';
import { GENERATION_ALL, SensorReloadError, boottimeNs, native, type Sensor } from '../kernel/index.js';
import type { AgentConfig } from './config.js';
import { LifecyclePipeline } from './lifecycle.js';
import type { StatePipeline } from './states.js';
import type { SensorObjectReport, SensorsPartReport, SensorsReloader } from './reload.js';
import { projectPath } from '../shared/paths.js';

export const BUILTIN_BPF_DIR = projectPath('bpf', '.output');

/** File names of the sensors' objects in agent.bpf_dir. */
export const OBJECT_FILES = { lifecycle: 'lifecycle.bpf.o', state: 'state.bpf.o' } as const;

/** The window of the user-space filter stays open this long after the old hooks are detached:
 *  a hook that passed its check just before the detach has long committed its record by then. */
const OVERLAP_GRACE_MS = 50;

/** Keys the sensors take at load: a change is applied by loading them again. */
const SENSOR_KEYS = new Set([
  'lifecycle.args_cap', 'lifecycle.filename_cap', 'lifecycle.threads', 'lifecycle.exec_failed',
  'lifecycle.delivery', 'lifecycle.delivery_interval', 'lifecycle.queue_size', 'lifecycle.realtime_priority', 'lifecycle.batch_delay_us',
  'state.d_threshold', 'state.budget_per_sec', 'agent.bpf_dir',
]);

export function objectPaths(bpfDir: string | null): { lifecycle: string; state: string } {
  const dir = bpfDir ?? BUILTIN_BPF_DIR;
  return { lifecycle: join(dir, OBJECT_FILES.lifecycle), state: join(dir, OBJECT_FILES.state) };
}

/** Lifecycle config as the pipeline takes it (the agent's config has no consumer internals). */
export type LifecycleSettings = LifecyclePipeline['config'];

export interface SensorReloaderOptions {
  lifecycle: LifecyclePipeline;
  states: StatePipeline | null;
  log: Logger;
  /** the running config (what the objects were loaded with) */
  config: AgentConfig;
  /** hold both generations emitting this long before the flip (tests and the benchmark: the
   *  duplicates made visible); 0 in the agent */
  forceOverlapMs?: number;
}

interface Loaded {
  path: string;
  hash: string;
}

export class SensorReloader implements SensorsReloader {
  private generation = 0;
  private objects: { lifecycle: Loaded; state: Loaded | null };
  forceOverlapMs: number;
  /** overlap of every applied reload, ms (for the benchmark and tests) */
  readonly overlaps: number[] = [];
  /** CLOCK_BOOTTIME of every lifecycle generation flip (tests: which events straddle one) */
  readonly flips: bigint[] = [];

  constructor(private readonly opts: SensorReloaderOptions) {
    this.forceOverlapMs = opts.forceOverlapMs ?? 0;
    const paths = objectPaths(opts.config.agent.bpfDir);
    this.objects = { lifecycle: { path: paths.lifecycle, hash: safeHash(paths.lifecycle) }, state: opts.states ? { path: paths.state, hash: safeHash(paths.state) } : null };
  }

  takesKey(key: string): boolean {
    return SENSOR_KEYS.has(key);
  }

  changedOnDisk(cfg: AgentConfig): boolean {
    const p = objectPaths(cfg.agent.bpfDir);
    if (p.lifecycle !== this.objects.lifecycle.path || safeHash(p.lifecycle) !== this.objects.lifecycle.hash) return true;
    const st = this.objects.state;
    return st !== null && (p.state !== st.path || safeHash(p.state) !== st.hash);
  }

  /** The pre-flight of the objects `cfg` names that differ from the running ones, without a
   *  load (bundle application runs it before anything is swapped). Null when they pass (or
   *  nothing differs), else the refusal. */
  preflight(cfg: AgentConfig): { sensor: string; code: string; reason: string } | null {
    const paths = objectPaths(cfg.agent.bpfDir);
    const lcConfig: LifecycleSettings = { ...this.opts.lifecycle.config, ...cfg.lifecycle };
    try {
      if (paths.lifecycle !== this.objects.lifecycle.path || safeHash(paths.lifecycle) !== this.objects.lifecycle.hash) this.opts.lifecycle.preflightSuccessor(lcConfig, paths.lifecycle);
    } catch (e) {
      const err = toReloadError(e);
      return { sensor: 'lifecycle', code: err.code, reason: err.message };
    }
    const st = this.objects.state;
    if (this.opts.states && st && (paths.state !== st.path || safeHash(paths.state) !== st.hash)) {
      try {
        this.opts.states.preflightSuccessor({ ...this.opts.states.config, ...cfg.state }, paths.state);
      } catch (e) {
        const err = toReloadError(e);
        return { sensor: 'state', code: err.code, reason: err.message };
      }
    }
    return null;
  }

  status(): { version: string | null; generation: number } {
    return { version: this.version(), generation: this.generation };
  }

  private version(): string {
    const parts: Array<[string, string]> = [['lifecycle', this.objects.lifecycle.hash]];
    if (this.objects.state) parts.push(['state', this.objects.state.hash]);
    return versionOf(parts);
  }

  async reload(cfg: AgentConfig, why: 'forced' | 'objects' | 'config'): Promise<SensorsPartReport> {
    const log = this.opts.log;
    const prevVersion = this.version();
    const gen = this.generation + 1;
    const paths = objectPaths(cfg.agent.bpfDir);
    const lcConfig: LifecycleSettings = { ...this.opts.lifecycle.config, ...cfg.lifecycle };
    const stConfig = this.opts.states ? { ...this.opts.states.config, ...cfg.state } : null;
    const report = (result: SensorsPartReport['result'], sensors: Record<string, SensorObjectReport>, extra: Partial<SensorsPartReport> = {}): SensorsPartReport => ({
      result, version: this.version(), previous_version: prevVersion, generation: this.generation, reason_loaded: why, overlap_ms: null, duplicates: null, sensors, ...extra,
    });

    // 1. load both successors (pre-flight included); nothing is attached yet
    let lc: { sensor: Sensor; reused: string[] } | null = null;
    let st: { sensor: Sensor; reused: string[] } | null = null;
    const hashes = { lifecycle: safeHash(paths.lifecycle), state: this.opts.states ? safeHash(paths.state) : null };
    try {
      lc = await this.opts.lifecycle.prepareSuccessor(lcConfig, paths.lifecycle, gen);
      if (this.opts.states && stConfig) st = await this.opts.states.prepareSuccessor(stConfig, paths.state, gen);
    } catch (e) {
      lc?.sensor.close();
      const err = toReloadError(e);
      const which = lc ? 'state' : 'lifecycle';
      log.error({ sensor: which, code: err.code, err: err.message, ...(err.log.length ? { log: err.log.slice(-20) } : {}) }, 'sensor reload refused; the running sensors stay');
      return report('rejected', { [which]: { result: 'rejected', version: null, code: err.code, reason: err.message } }, { code: err.code, reason: err.message });
    }

    // 2-4, one sensor at a time
    const sensors: Record<string, SensorObjectReport> = {};
    let failure: SensorReloadError | null = null;
    let overlap = 0;
    const lifecycle = this.opts.lifecycle;
    lifecycle.overlap.open();
    const r1 = await this.swap('lifecycle', lifecycle.currentSensor, lc.sensor, gen);
    if (r1.error) {
      lifecycle.overlap.closeAfter(0);
      failure = r1.error;
      st?.sensor.close();
      st = null;
      sensors.lifecycle = { result: 'rejected', version: null, code: r1.error.code, reason: r1.error.message };
    } else {
      lifecycle.overlap.closeAfter(OVERLAP_GRACE_MS);
      await lifecycle.adopt(lc.sensor, lcConfig, r1.attached);
      this.objects.lifecycle = { path: paths.lifecycle, hash: hashes.lifecycle };
      overlap = Math.max(overlap, r1.overlapMs);
      sensors.lifecycle = { result: 'applied', version: hashes.lifecycle, maps_reused: lc.reused, programs: r1.attached, overlap_ms: round(r1.overlapMs), detach_ms: round(r1.detachMs) };
    }
    if (st && this.opts.states && stConfig) {
      const r2 = await this.swap('state', this.opts.states.currentSensor, st.sensor, gen);
      if (r2.error) {
        failure ??= r2.error;
        sensors.state = { result: 'rejected', version: null, code: r2.error.code, reason: r2.error.message };
      } else {
        await this.opts.states.adopt(st.sensor, stConfig);
        this.objects.state = { path: paths.state, hash: hashes.state! };
        overlap = Math.max(overlap, r2.overlapMs);
        sensors.state = { result: 'applied', version: hashes.state!, maps_reused: st.reused, programs: r2.attached, overlap_ms: round(r2.overlapMs), detach_ms: round(r2.detachMs) };
      }
    }
    const applied = Object.values(sensors).some((x) => x.result === 'applied');
    if (applied) {
      this.generation = gen;
      this.overlaps.push(overlap);
    }
    // duplicates are counted as the filter sees them: the window is still open for a moment
    const duplicates = lifecycle.overlap.lastDuplicates;
    const out = report(failure ? 'rejected' : 'applied', sensors, {
      overlap_ms: applied ? round(overlap) : null,
      duplicates: applied ? duplicates : null,
      ...(failure ? { code: failure.code, reason: failure.message } : {}),
    });
    log.info({ generation: this.generation, overlap_ms: out.overlap_ms, why, sensors: Object.fromEntries(Object.entries(sensors).map(([k, v]) => [k, v.result])) }, failure ? 'sensor reload partly refused' : 'sensors reloaded');
    return out;
  }

  /** Make-before-break for one sensor. The overlap is measured from the first attach of the
   *  successor until the last old program is unhooked (its detach begins: the kernel stops
   *  calling it there, and only then waits for calls in flight to end). */
  private async swap(name: string, old: Sensor, next: Sensor, gen: number): Promise<{ error: SensorReloadError | null; attached: string[]; overlapMs: number; detachMs: number }> {
    // attach → flip → detach runs as SCHED_FIFO when allowed: on a busy machine a normal
    // thread can lose its CPU between two of these calls for tens of ms, all of it overlap
    const rt = realtimeFor(this.opts.lifecycle.config.consumerRealtimePriority);
    const t0 = performance.now();
    let attached: string[];
    try {
      attached = next.attachAll();
    } catch (e) {
      rt.end();
      next.close();
      return { error: toReloadError(e), attached: [], overlapMs: 0, detachMs: 0 };
    }
    try {
      if (this.forceOverlapMs > 0) {
        next.setGeneration(GENERATION_ALL);
        rt.end();
        await new Promise((r) => setTimeout(r, this.forceOverlapMs));
      }
      next.setGeneration(gen);
      if (name === 'lifecycle') this.flips.push(boottimeNs());
    } catch (e) {
      rt.end();
      // the word could not be written: the old generation still emits; undo the successor
      try {
        old.setGeneration(this.generation);
      } catch {
        /* it held the old value */
      }
      next.close();
      return { error: new SensorReloadError('E_SENSOR_GENERATION', `${name}: cannot write the generation word: ${(e as Error).message}`), attached: [], overlapMs: 0, detachMs: 0 };
    }
    const t1 = performance.now();
    const detached = old.detachAsync(); // its threads are started before this returns
    rt.end();
    const d = await detached;
    this.opts.log.debug({ sensor: name, attach_flip_ms: t1 - t0, unhooked_ms: d.unhookedMs, released_ms: d.doneMs }, 'sensor generation swapped');
    // the overlap ends when the last old program is unhooked; its release may take a grace
    // period more (detach_ms), during which the kernel calls it no longer
    return { error: null, attached, overlapMs: t1 - t0 + d.unhookedMs, detachMs: d.doneMs };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** The calling (JS) thread as SCHED_FIFO 1 until end(), unless it runs realtime already (the
 *  consumer's priority) or may not (then nothing changes). */
function realtimeFor(consumerPriority: number): { end(): void } {
  const n = native();
  if (consumerPriority > 0 || !n.setThreadRealtime || n.setThreadRealtime(1) !== null) return { end() {} };
  let on = true;
  return {
    end() {
      if (on) n.setThreadRealtime!(0);
      on = false;
    },
  };
}

function fileHash(path: string): string {
  return sha256Hex(readFileSync(path));
}

/** The hash of an object file, or a marker that never equals one when it cannot be read (the
 *  reload then reports why). */
function safeHash(path: string): string {
  try {
    return fileHash(path);
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

function toReloadError(e: unknown): SensorReloadError {
  if (e instanceof SensorReloadError) return e;
  return new SensorReloadError('E_SENSOR_LOAD', (e as Error)?.message ?? String(e));
}
