// Process identity from the cgroup (issue 17): what a process's cgroup v2 path proves about it:
// the systemd unit, the container runtime and container id, the Kubernetes pod uid and QoS
// class. Resolved once per cgroup (cached by cgroup id) when a process of it first appears.
// Names a path does not prove (pod name, namespace, container name, image) are absent, never
// guessed; they come later from the CRI socket, when one answers (cri-identity.ts).
//
// Path shapes recognised (systemd and cgroupfs drivers):
//   /system.slice/nginx.service                                              unit
//   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//   /kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope                  (guaranteed: no QoS slice)
//   /kubepods/besteffort/pod<uid>/<id>                                        (runtime unknown)
//   /system.slice/docker-<id>.scope · /docker/<id>                            docker
//   /machine.slice/libpod-<id>.scope · /libpod_parent/libpod-<id>             podman
//   /system.slice/nerdctl-<id>.scope                                          containerd
// conmon's scopes (crio-conmon-, libpod-conmon-) are the runtime's monitor, not the container.
import { readFileSync, statSync } from 'node:fs';
import { CgroupResolver, cgroup2Root } from '../host/index.js';

export type ContainerRuntime = 'containerd' | 'crio' | 'docker' | 'podman';
export type PodQos = 'guaranteed' | 'burstable' | 'besteffort';

export interface ProcessIdentity {
  /** the cgroup v2 path, relative to the hierarchy's root */
  cgroup: string;
  /** innermost systemd unit (.service or .scope) at or above the container, if any */
  unit?: string;
  containerRuntime?: ContainerRuntime;
  /** 64 hex digits */
  containerId?: string;
  podUid?: string;
  podQos?: PodQos;
  // From the CRI socket (cri-identity.ts), written in once the runtime answered:
  podName?: string;
  podNamespace?: string;
  /** the container's name in the pod spec */
  containerName?: string;
  /** as the pod spec names it (`nginx:1.25`) */
  image?: string;
}

const HEX64 = '([0-9a-f]{64})';
const CONTAINER_SEGMENTS: ReadonlyArray<readonly [RegExp, ContainerRuntime | null]> = [
  [new RegExp(`^cri-containerd-${HEX64}\\.scope$`), 'containerd'],
  [new RegExp(`^nerdctl-${HEX64}\\.scope$`), 'containerd'],
  [new RegExp(`^crio-${HEX64}\\.scope$`), 'crio'],
  [new RegExp(`^crio-${HEX64}$`), 'crio'],
  [new RegExp(`^docker-${HEX64}\\.scope$`), 'docker'],
  [new RegExp(`^libpod-${HEX64}\\.scope$`), 'podman'],
  [new RegExp(`^libpod-${HEX64}$`), 'podman'],
  // a bare id: the runtime shows only in the parent (/docker/<id>) or not at all (kubepods)
  [new RegExp(`^${HEX64}$`), null],
];
// kubepods-burstable-pod<uid>.slice (systemd driver, also kind's kubelet-kubepods-…) or pod<uid>
// below a kubepods level (cgroupfs driver)
const POD = /^(?:[a-z0-9]+-)*?(?:kubepods(?:-(besteffort|burstable))?-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;
const KUBEPODS = /(?:^|-)kubepods(?:\.slice)?$/;
const UNIT = /\.(service|scope)$/;

/** What `path` (a cgroup v2 path) proves. Pure. */
export function identityFromPath(path: string): ProcessIdentity {
  const id: ProcessIdentity = { cgroup: path === '' ? '/' : path };
  const parts = path.split('/').filter(Boolean);
  // the innermost container: a pod's container inside a node container (kind) is the process's own
  let containerAt = -1;
  for (let i = parts.length - 1; i >= 0 && containerAt < 0; i--) {
    const seg = parts[i]!;
    for (const [re, runtime] of CONTAINER_SEGMENTS) {
      const m = re.exec(seg);
      if (m === null) continue;
      containerAt = i;
      id.containerId = m[1]!;
      const parent = parts[i - 1];
      const rt = runtime ?? (parent === 'docker' ? 'docker' : null);
      if (rt !== null) id.containerRuntime = rt;
      break;
    }
  }
  // a pod level: below a kubepods level, above the container
  const kube = parts.findIndex((p) => KUBEPODS.test(p) || /(?:^|-)kubepods-(?:besteffort|burstable)(?:\.slice)?$/.test(p));
  if (kube >= 0) {
    for (let i = kube + 1; i < parts.length && (containerAt < 0 || i < containerAt); i++) {
      const m = POD.exec(parts[i]!);
      if (m === null) continue;
      id.podUid = m[2]!.replace(/_/g, '-');
      // cgroupfs driver: /kubepods/<qos>/pod<uid>; systemd: kubepods-<qos>-pod<uid>.slice; no QoS level: guaranteed
      const qos = m[1] ?? (parts[i - 1] === 'besteffort' || parts[i - 1] === 'burstable' ? parts[i - 1] : undefined);
      id.podQos = (qos as PodQos | undefined) ?? 'guaranteed';
      break;
    }
  }
  const top = containerAt >= 0 ? containerAt : parts.length - 1;
  for (let i = top; i >= 0; i--) {
    if (UNIT.test(parts[i]!)) {
      id.unit = parts[i]!;
      break;
    }
  }
  return id;
}

export interface IdentityCacheOptions {
  /** cgroup v2 mount (default: found in /proc/self/mounts) */
  root?: string;
  procRoot?: string;
  /** entries kept at most (cgroups are few; past it the cache starts over) */
  maxEntries?: number;
  /** an id no source could resolve is tried again after this long */
  retryMs?: number;
  now?: () => number;
  /** the fallback walk of the hierarchy (tests inject one) */
  resolver?: CgroupResolver;
  /** called with each identity when it is first resolved (the CRI lookup: cri-identity.ts) */
  onResolved?: (id: ProcessIdentity) => void;
  /** the path the kernel recorded when the cgroup was made (the lifecycle sensor's
   *  pt_cgroup_paths), asked when neither process shows the cgroup: it may be gone already */
  fromKernel?: (cgroupId: bigint) => string | null;
}

export interface IdentityStats {
  cached: number;
  /** resolved from /proc/<pid>/cgroup, checked against the id */
  fromProc: number;
  /** resolved by walking the hierarchy */
  fromWalk: number;
  /** resolved from the path the kernel recorded at the cgroup's mkdir */
  fromKernel: number;
  unresolved: number;
}

/** cgroup id → identity, resolved on first sight: /proc/<pid>/cgroup of the process that shows the
 *  id (checked: the path's inode must be the id), else a rate-limited walk of the hierarchy. */
export class IdentityCache {
  private readonly byId = new Map<bigint, ProcessIdentity>();
  private readonly misses = new Map<bigint, number>();
  private readonly root: string;
  private readonly procRoot: string;
  private readonly maxEntries: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private readonly resolver: CgroupResolver;
  private readonly onResolved: ((id: ProcessIdentity) => void) | undefined;
  private readonly fromKernel: ((cgroupId: bigint) => string | null) | undefined;
  readonly stats: IdentityStats = { cached: 0, fromProc: 0, fromWalk: 0, fromKernel: 0, unresolved: 0 };

  constructor(opts: IdentityCacheOptions = {}) {
    this.root = opts.root ?? cgroup2Root();
    this.procRoot = opts.procRoot ?? '/proc';
    this.maxEntries = opts.maxEntries ?? 4096;
    this.retryMs = opts.retryMs ?? 2000;
    this.now = opts.now ?? Date.now;
    this.resolver = opts.resolver ?? new CgroupResolver(this.root, this.retryMs, this.now);
    this.onResolved = opts.onResolved;
    this.fromKernel = opts.fromKernel;
  }

  /** The identity of cgroup `cgroupId`, as process `pid` shows it; null when unknown. On the
   *  event path: a hit is one Map lookup. */
  get(cgroupId: bigint, pid: number, ppid?: number): ProcessIdentity | null {
    const hit = this.byId.get(cgroupId);
    if (hit !== undefined) return hit;
    return this.resolve(cgroupId, pid, ppid);
  }

  /** The cached identity of `cgroupId`, resolving nothing (the API's filters). */
  peek(cgroupId: bigint): ProcessIdentity | null {
    return this.byId.get(cgroupId) ?? null;
  }

  private resolve(cgroupId: bigint, pid: number, ppid?: number): ProcessIdentity | null {
    const missedAt = this.misses.get(cgroupId);
    const now = this.now();
    if (missedAt !== undefined && now - missedAt < this.retryMs) return null;
    // The process may be gone by the time its exec is handled (the agent drains every 250 ms
    // while nobody follows the stream): its parent, often in the same cgroup (a shell in a
    // container), is asked next; fromProc checks the cgroup's inode, so a parent elsewhere
    // answers nothing.
    let path = this.fromProc(cgroupId, pid) ?? (ppid !== undefined && ppid > 0 ? this.fromProc(cgroupId, ppid) : null);
    if (path !== null) this.stats.fromProc++;
    else {
      // the kernel's record of the cgroup's mkdir: exact, and there even when the cgroup went
      // with its first process (a `docker run --rm` container)
      path = this.kernelPath(cgroupId);
      if (path !== null) this.stats.fromKernel++;
      else {
        path = this.resolver.resolve(cgroupId) ?? null;
        if (path !== null) this.stats.fromWalk++;
      }
    }
    if (path === null) {
      this.stats.unresolved++;
      if (this.misses.size >= this.maxEntries) this.misses.clear();
      this.misses.set(cgroupId, now);
      return null;
    }
    this.misses.delete(cgroupId);
    if (this.byId.size >= this.maxEntries) this.byId.clear();
    const id = identityFromPath(path);
    this.byId.set(cgroupId, id);
    this.stats.cached = this.byId.size;
    this.onResolved?.(id);
    return id;
  }

  private kernelPath(cgroupId: bigint): string | null {
    if (this.fromKernel === undefined) return null;
    try {
      return this.fromKernel(cgroupId);
    } catch {
      return null;
    }
  }

  /** The v2 path in /proc/<pid>/cgroup, if its directory's inode is `cgroupId` (the process may
   *  have moved, or the pid been reused, since the event). */
  private fromProc(cgroupId: bigint, pid: number): string | null {
    if (pid <= 0) return null;
    let text: string;
    try {
      text = readFileSync(`${this.procRoot}/${pid}/cgroup`, 'utf8');
    } catch {
      return null;
    }
    const line = text.split('\n').find((l) => l.startsWith('0::'));
    if (line === undefined) return null;
    const path = line.slice(3);
    // outside our cgroup namespace (a container's view: "/../../kubepods.slice/…"): not a host path
    if (path.startsWith('/..')) return null;
    try {
      return statSync(`${this.root}${path === '/' ? '' : path}`, { bigint: true }).ino === cgroupId ? path : null;
    } catch {
      return null;
    }
  }
}

/** `--unit`, `--container`, `--pod` (trace, events, ps, top). */
export interface IdentityFilter {
  /** a systemd unit: exact, or without its `.service` suffix */
  unit?: string | undefined;
  /** a container id or a prefix of it (docker's 12-digit short ids) */
  container?: string | undefined;
  /** a pod uid or a prefix of it, or a pod's name (`name` or `namespace/name`, once the CRI
   *  socket told it) */
  pod?: string | undefined;
}

export function hasIdentityFilter(f: IdentityFilter): boolean {
  return f.unit !== undefined || f.container !== undefined || f.pod !== undefined;
}

/** Whether `id` passes every filter given; an unknown identity passes none. */
export function identityMatches(id: ProcessIdentity | null, f: IdentityFilter): boolean {
  if (f.unit !== undefined && (id?.unit === undefined || (id.unit !== f.unit && id.unit !== `${f.unit}.service`))) return false;
  if (f.container !== undefined && (id?.containerId === undefined || !id.containerId.startsWith(f.container.toLowerCase()))) return false;
  if (f.pod !== undefined && !podMatches(id, f.pod)) return false;
  return true;
}

function podMatches(id: ProcessIdentity | null, pod: string): boolean {
  if (id?.podUid === undefined) return false;
  if (id.podUid.startsWith(pod.toLowerCase())) return true;
  const name = id.podName;
  if (name === undefined) return false;
  return pod === name || (id.podNamespace !== undefined && pod === `${id.podNamespace}/${name}`);
}
