// Memory limits of cgroups, for predictions (`eta(rss, memory_limit, 10m) by cgroup`): the v2
// memory.max of the cgroup and its ancestors (the tightest applies), or, where the memory
// controller is bound to the v1 hierarchy (hybrid hosts such as CI VMs), the v1 group's
// hierarchical_memory_limit (memory.limit_in_bytes, ancestors included).
import { readFileSync } from 'node:fs';
import { readOptional } from './proc.js';
import { cgroup2Root } from './cgroup.js';

/** v1 reports "no limit" as PAGE_COUNTER_MAX pages, about 2^63: anything this large is none. */
const UNLIMITED = 2 ** 60;

const limitValue = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) && n > 0 && n < UNLIMITED ? n : undefined;
};

/** The effective v2 limit of a cgroup path ("/a/b"): the smallest memory.max on the path from
 *  it to the root; undefined when none is set or the v2 hierarchy has no memory controller. */
export function cgroupV2MemoryLimit(path: string, root = cgroup2Root()): number | undefined {
  let best: number | undefined;
  const parts = path.split('/').filter(Boolean);
  for (let k = parts.length; k >= 1; k--) {
    const v = limitValue(readOptional(`${root}/${parts.slice(0, k).join('/')}/memory.max`));
    if (v !== undefined && (best === undefined || v < best)) best = v;
  }
  return best;
}

/** Where the v1 memory controller is mounted (the super options of a `cgroup` mount list
 *  `memory`), or undefined on a pure v2 host. */
export function findMemoryV1Root(procRoot = '/proc'): string | undefined {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/self/mountinfo`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const right = line.slice(sep + 3).split(' ');
    if (right[0] !== 'cgroup') continue;
    if ((right[2] ?? '').split(',').includes('memory')) return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

let v1Root: string | null | undefined;
/** The v1 memory root, looked up once. */
export function memoryV1Root(): string | undefined {
  if (v1Root === undefined) v1Root = findMemoryV1Root() ?? null;
  return v1Root ?? undefined;
}

/** The effective v1 limit of a memory cgroup path: hierarchical_memory_limit (ancestors
 *  included), else memory.limit_in_bytes; undefined when unlimited. */
export function cgroupV1MemoryLimit(path: string, root: string | undefined = memoryV1Root()): number | undefined {
  if (root === undefined) return undefined;
  const dir = `${root}${path === '/' ? '' : path}`;
  const m = /^hierarchical_memory_limit (\d+)$/m.exec(readOptional(`${dir}/memory.stat`) ?? '');
  if (m) return limitValue(m[1]);
  return limitValue(readOptional(`${dir}/memory.limit_in_bytes`));
}

/** A process's cgroups from /proc/PID/cgroup: the v2 path and the v1 memory controller's. */
export function processCgroups(pid: number, procRoot = '/proc'): { v2: string | null; memoryV1: string | null } | null {
  const text = readOptional(`${procRoot}/${pid}/cgroup`);
  if (text === undefined) return null;
  let v2: string | null = null;
  let memoryV1: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') v2 = m[2]!;
    else if (m[1]!.split(',').includes('memory')) memoryV1 = m[2]!;
  }
  return { v2, memoryV1 };
}
