// memory_limit for the checks' eta (docs/dsl.md, "Trends"): the limit that applies to a process,
// a cgroup or the node, read from cgroupfs (src/host) and cached, so a check over a thousand
// rising processes reads each cgroup's files once per 30 s, not each process's.
import { cgroupV1MemoryLimit, cgroupV2MemoryLimit, memoryV1Root, processCgroups } from '../host/index.js';
import type { CgroupWindows, ProcessWindows } from '../metrics/index.js';

/** A limit changes rarely: read again after this long. */
const LIMIT_TTL_MS = 30_000;
/** A process rarely moves between cgroups: its paths are read again after this long. */
const PATHS_TTL_MS = 300_000;
const MAX_CACHED = 10_000;

export class MemoryLimits {
  private readonly paths = new Map<string, { at: number; v2: string | null; v1: string | null }>();
  private readonly limits = new Map<string, { at: number; bytes: number | undefined }>();

  constructor(
    private readonly processes: ProcessWindows,
    private readonly cgroups: CgroupWindows,
    /** the node's memory, bytes (null: unknown) */
    readonly node: () => number | null,
    private readonly now: () => number = Date.now,
  ) {}

  /** The limit of a process's cgroup (v2, or v1 where memory is on v1), else the node's. */
  ofProcess(execId: string): number | null {
    const e = this.processes.windows.get(execId);
    if (e === undefined) return this.node();
    const p = this.pathsOf(execId, e.meta.pid);
    return min(p.v2 === null ? undefined : this.v2(p.v2), p.v1 === null ? undefined : this.v1(p.v1)) ?? this.node();
  }

  /** A cgroup's limit: its v2 memory.max (the tightest up to the root); with memory on v1, the
   *  tightest v1 limit among its live members; else the node's. */
  ofCgroup(path: string): number | null {
    const v2 = this.v2(path);
    if (v2 !== undefined || memoryV1Root() === undefined) return v2 ?? this.node();
    let id: bigint | null = null;
    for (const e of this.cgroups.windows.values()) if (e.meta.path === path) id = BigInt(e.meta.id);
    let best: number | undefined;
    if (id !== null) {
      for (const e of this.processes.windows.values()) {
        if (e.meta.cgroupId !== id || e.endedT !== undefined) continue;
        const v1 = this.pathsOf(e.meta.execId, e.meta.pid).v1;
        if (v1 !== null) best = min(best, this.v1(v1));
      }
    }
    return best ?? this.node();
  }

  private pathsOf(execId: string, pid: number): { v2: string | null; v1: string | null } {
    const t = this.now();
    const hit = this.paths.get(execId);
    if (hit !== undefined && t - hit.at < PATHS_TTL_MS) return hit;
    const cg = processCgroups(pid);
    const p = { at: t, v2: cg?.v2 ?? null, v1: cg?.memoryV1 ?? null };
    if (this.paths.size >= MAX_CACHED) this.paths.clear();
    this.paths.set(execId, p);
    return p;
  }

  private v2(path: string): number | undefined {
    return this.cached(`2:${path}`, () => cgroupV2MemoryLimit(path));
  }

  private v1(path: string): number | undefined {
    return this.cached(`1:${path}`, () => cgroupV1MemoryLimit(path));
  }

  private cached(key: string, read: () => number | undefined): number | undefined {
    const t = this.now();
    const hit = this.limits.get(key);
    if (hit !== undefined && t - hit.at < LIMIT_TTL_MS) return hit.bytes;
    let bytes: number | undefined;
    try {
      bytes = read();
    } catch {
      bytes = undefined; // an unreadable file is no limit we know of
    }
    if (this.limits.size >= MAX_CACHED) this.limits.clear();
    this.limits.set(key, { at: t, bytes });
    return bytes;
  }
}

const min = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
