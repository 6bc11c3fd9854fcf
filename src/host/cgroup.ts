// cgroup v2: id → path (the id of a v2 cgroup is the inode number of its directory), path → a
// readable owner (systemd unit, container, Kubernetes pod), and per-cgroup usage counters.
import { readdirSync, statSync } from 'node:fs';
import { readMounts } from './disk.js';
import { readOptional } from './proc.js';

/**
 * Where the v2 hierarchy is mounted: /sys/fs/cgroup on unified systems, /sys/fs/cgroup/unified on
 * hybrid ones (v1 controllers plus v2). BPF's cgroup ids are v2 ids either way.
 */
export function findCgroup2Root(procRoot = '/proc'): string | undefined {
  try {
    return readMounts(procRoot, true).find((m) => m.fsType === 'cgroup2')?.mountPoint;
  } catch {
    return undefined;
  }
}

let cachedRoot: string | undefined;
/** The v2 root, looked up once. */
export function cgroup2Root(): string {
  cachedRoot ??= findCgroup2Root() ?? '/sys/fs/cgroup';
  return cachedRoot;
}

export interface CgroupOwner {
  kind: 'systemd' | 'docker' | 'containerd' | 'crio' | 'podman' | 'kubernetes' | 'root' | 'other';
  /** Unit name, short container id or pod uid. */
  name: string;
  podUid?: string;
  containerId?: string;
}

const HEX64 = /([0-9a-f]{64})/;

/** The most specific owner a human would recognise in a cgroup path. */
export function cgroupOwner(path: string): CgroupOwner {
  if (path === '/' || path === '') return { kind: 'root', name: '/' };
  const parts = path.split('/').filter(Boolean);
  const last = parts[parts.length - 1]!;
  const pod = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(path);
  const container = HEX64.exec(last);
  const containerId = container ? container[1]!.slice(0, 12) : undefined;
  if (pod) {
    const podUid = pod[1]!.replace(/_/g, '-');
    return { kind: 'kubernetes', name: podUid, podUid, ...(containerId ? { containerId } : {}) };
  }
  if (containerId) {
    if (/^docker-|(^|\/)docker\//.test(last) || parts.includes('docker')) return { kind: 'docker', name: containerId, containerId };
    if (/^cri-containerd-/.test(last) || parts.includes('containerd')) return { kind: 'containerd', name: containerId, containerId };
    if (/^crio-/.test(last)) return { kind: 'crio', name: containerId, containerId };
    if (/^libpod-/.test(last)) return { kind: 'podman', name: containerId, containerId };
    return { kind: 'other', name: containerId, containerId };
  }
  // The innermost systemd unit: a .service or .scope, else the slice.
  for (let i = parts.length - 1; i >= 0; i--) {
    if (/\.(service|scope|socket|mount)$/.test(parts[i]!)) return { kind: 'systemd', name: parts[i]! };
  }
  if (/\.slice$/.test(last)) return { kind: 'systemd', name: last };
  return { kind: 'other', name: path };
}

/**
 * Maps cgroup ids to paths by walking the v2 hierarchy. A miss triggers a rescan, at most one per
 * `minRescanMs`, so a burst of new containers costs one walk and an unknown id cannot make us
 * walk the tree for every event.
 */
export class CgroupResolver {
  private byId = new Map<string, string>();
  private lastScan = -Infinity;
  scans = 0;

  constructor(
    private readonly root = cgroup2Root(),
    private readonly minRescanMs = 2000,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The cgroup path relative to the hierarchy root ("/system.slice/x.service"), or undefined. */
  resolve(id: bigint | string): string | undefined {
    const key = String(id);
    const hit = this.byId.get(key);
    if (hit !== undefined) return hit;
    if (this.now() - this.lastScan < this.minRescanMs) return undefined;
    this.rescan();
    return this.byId.get(key);
  }

  rescan(): void {
    this.lastScan = this.now();
    this.scans++;
    const next = new Map<string, string>();
    const walk = (dir: string, rel: string) => {
      let ino: bigint;
      try {
        ino = statSync(dir, { bigint: true }).ino;
      } catch {
        return; // removed while we walked
      }
      next.set(String(ino), rel || '/');
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(`${dir}/${e.name}`, `${rel}/${e.name}`);
    };
    walk(this.root, '');
    this.byId = next;
  }

  get size(): number {
    return this.byId.size;
  }
}

export interface CgroupStats {
  /** Total CPU time of the cgroup's tasks, µs (cpu.stat usage_usec), including exited ones. */
  cpuUsageUs?: number;
  memoryCurrentBytes?: number;
  /** undefined when unlimited ("max"). */
  memoryMaxBytes?: number;
  memoryPeakBytes?: number;
  ioReadBytes?: number;
  ioWriteBytes?: number;
  oomKills?: number;
  pids?: number;
}

// The counters' lines, compiled once (a RegExp made per read is a cache lookup and an object
// per cgroup per sweep).
const USAGE_USEC = /^usage_usec (\d+)$/m;
const OOM_KILL = /^oom_kill (\d+)$/m;
const IO_BYTES = /rbytes=(\d+) wbytes=(\d+)/g;

function keyed(text: string | undefined, re: RegExp): number | undefined {
  if (text === undefined) return undefined;
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

function single(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  return t === 'max' || t === '' ? undefined : Number(t);
}

/** The files readCgroupStats reads, by bit of CgroupFileMemo.absent. */
export const CGROUP_STAT_FILES = ['io.stat', 'cpu.stat', 'memory.current', 'memory.max', 'memory.peak', 'memory.events', 'pids.current'] as const;

/** Bit masks of CGROUP_STAT_FILES: every file, and the ones the resource sweep reads every second
 *  (usage: CPU, memory, IO). The limit, the peak, the OOM count and pids.current have no reader
 *  in the sweep's windows or /metrics, and on a cgroup v2 node with the memory, io and pids
 *  controllers they were four of the seven reads per cgroup per second. */
export const CGROUP_ALL_FILES = (1 << CGROUP_STAT_FILES.length) - 1;
const fileBit = (f: (typeof CGROUP_STAT_FILES)[number]): number => 1 << CGROUP_STAT_FILES.indexOf(f);
export const CGROUP_USAGE_FILES = fileBit('cpu.stat') | fileBit('memory.current') | fileBit('io.stat');

/** An absent file is asked about again after this long. */
export const CGROUP_ABSENT_RECHECK_MS = 30_000;

/** Which of one cgroup's files were absent at the last look. A file of a controller the cgroup
 *  does not have (every memory, io and pids file on a hybrid v1/v2 host) is absent, and asking
 *  again every sweep was an access(2) per file per cgroup per second: most of the sweep's cost
 *  on a node with a few hundred cgroups. The sweep keeps one memo per cgroup (a new cgroup, a
 *  new memo) and asks about absent files again every CGROUP_ABSENT_RECHECK_MS: a controller
 *  enabled on a running cgroup shows within that. */
export interface CgroupFileMemo {
  /** bit i: CGROUP_STAT_FILES[i] was absent */
  absent: number;
  /** when absent files are asked about again (ms, the caller's clock) */
  recheckAtMs: number;
}

/** Usage counters of one cgroup; a controller that is not enabled leaves its fields undefined,
 *  and so does a file outside `files` (a mask of CGROUP_STAT_FILES). With `memo`, files it
 *  records as absent are not asked about before its recheck time. */
export function readCgroupStats(path: string, root = cgroup2Root(), memo?: CgroupFileMemo, nowMs = 0, files = CGROUP_ALL_FILES): CgroupStats {
  const dir = `${root}${path === '/' ? '' : path}`;
  let skip = ~files;
  if (memo !== undefined) {
    if (nowMs >= memo.recheckAtMs) memo.recheckAtMs = nowMs + CGROUP_ABSENT_RECHECK_MS;
    else skip |= memo.absent;
  }
  const texts: (string | undefined)[] = [];
  for (let i = 0; i < CGROUP_STAT_FILES.length; i++) {
    const bit = 1 << i;
    if ((skip & bit) !== 0) {
      texts.push(undefined);
      continue;
    }
    const text = readOptional(`${dir}/${CGROUP_STAT_FILES[i]}`);
    texts.push(text);
    if (memo !== undefined) memo.absent = text === undefined ? memo.absent | bit : memo.absent & ~bit;
  }
  const [io, cpu, current, max, peak, events, pids] = texts;
  let ioReadBytes: number | undefined;
  let ioWriteBytes: number | undefined;
  if (io !== undefined) {
    ioReadBytes = 0;
    ioWriteBytes = 0;
    for (const m of io.matchAll(IO_BYTES)) {
      ioReadBytes += Number(m[1]);
      ioWriteBytes += Number(m[2]);
    }
  }
  return {
    cpuUsageUs: keyed(cpu, USAGE_USEC),
    memoryCurrentBytes: single(current),
    memoryMaxBytes: single(max),
    memoryPeakBytes: single(peak),
    ioReadBytes,
    ioWriteBytes,
    oomKills: keyed(events, OOM_KILL),
    pids: single(pids),
  };
}
