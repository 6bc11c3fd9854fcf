// Node-wide windows: CPU, memory, swap, load, PSI, disks, filesystems, network, file handles.
// Counters (CPU ticks, disk and network bytes) become per-interval samples; gauges are sampled.
import {
  cpuUsage, fsUsage, PSI_RESOURCES, readCpuStat, readDiskstats, readFileNr, readLoadavg, readMeminfo, readMounts,
  readNetDev, readPsi, type CpuStat, type DiskStats, type FsUsage, type LoadAvg, type MemInfo, type NetDev, type Psi,
  type PsiResource, type FileHandles, type Mount,
} from '../host/index.js';
import { KeyedWindows } from './keyed.js';
import { DEFAULT_SERIES_OPTIONS, type SeriesOptions } from './series.js';

export type NodeMetric =
  | 'cpu' | 'iowait' | 'steal' | 'memory' | 'memory_bytes' | 'swap' | 'load1' | 'load5' | 'load15'
  | 'psi_some' | 'psi_full' | 'read_bytes' | 'write_bytes' | 'busy' | 'usage' | 'inode_usage'
  | 'rx_bytes' | 'tx_bytes' | 'fd_usage' | 'disk_read_bytes' | 'disk_write_bytes';

/** The latest raw readings, for /metrics counters and the check collectors. */
export interface NodeSnapshot {
  tNs: bigint;
  cpu: CpuStat;
  memory: MemInfo;
  load: LoadAvg;
  psi: Partial<Record<PsiResource, Psi>>;
  disks: DiskStats[];
  filesystems: FsUsage[];
  net: NetDev[];
  files: FileHandles;
}

/** Filesystems whose usage is read every sweep: local, block-backed ones. Network and FUSE
 *  filesystems can hang statfs (a dead NFS server), and tmpfs/overlay mounts multiply with
 *  containers; `disk_usage(mount)` checks still read any mount on demand. The root mount is
 *  always read, whatever its type. */
export const SWEPT_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'zfs', 'f2fs', 'vfat', 'exfat', 'ntfs', 'ntfs3', 'jfs', 'reiserfs', 'bcachefs']);
/** How often the swept mounts are read again from mountinfo: a new filesystem's usage appears
 *  within this (`disk_usage(mount)` checks read any mount on demand). */
export const MOUNTS_REREAD_NS = 30_000_000_000n;
/** Bounds on per-mount and per-interface keys (and /metrics label values). */
export const MAX_MOUNTS = 64;
export const MAX_INTERFACES = 64;
export const MAX_DISKS = 64;
/** Host-side ends of container links: one per container, and their traffic is the containers'. */
const CONTAINER_LINK = /^(veth|cali|lxc|tap|vnet|flannel\.|cni|kube-ipvs)/;

/** Keys: "node", "disk:<dev>", "fs:<mount>", "net:<iface>", "psi:<resource>". */
export class NodeWindows {
  readonly windows: KeyedWindows<NodeMetric, { kind: string; name: string }>;
  last: NodeSnapshot | undefined;
  errors = 0;

  constructor(series: SeriesOptions = DEFAULT_SERIES_OPTIONS, private readonly procRoot = '/proc') {
    this.windows = new KeyedWindows({ series, maxKeys: 1024, resolution: { memory_bytes: 4096, read_bytes: 1, write_bytes: 1, rx_bytes: 1, tx_bytes: 1, disk_read_bytes: 1, disk_write_bytes: 1 } });
  }

  /** The swept mounts and when they were read (boottime ns). */
  private mounts: Mount[] = [];
  private mountsReadNs: bigint | null = null;

  read(tNs: bigint): NodeSnapshot {
    // mountinfo holds hundreds of lines on a container host, and mounts of swept (block-backed)
    // filesystems rarely change: parsed every MOUNTS_REREAD_NS, statfs'd every sweep
    if (this.mountsReadNs === null || tNs - this.mountsReadNs >= MOUNTS_REREAD_NS || tNs < this.mountsReadNs) {
      this.mounts = readMounts(this.procRoot).filter((m) => m.mountPoint === '/' || SWEPT_FS.has(m.fsType)).slice(0, MAX_MOUNTS);
      this.mountsReadNs = tNs;
    }
    const mounts = this.mounts;
    const filesystems: FsUsage[] = [];
    for (const m of mounts) {
      try {
        filesystems.push(fsUsage(m.mountPoint));
      } catch {
        this.errors++; // a mount that went away or is not ours to stat (EACCES on fuse)
      }
    }
    const psi: Partial<Record<PsiResource, Psi>> = {};
    for (const r of PSI_RESOURCES) {
      const p = readPsi(r, this.procRoot);
      if (p) psi[r] = p;
    }
    return {
      tNs,
      cpu: readCpuStat(this.procRoot),
      memory: readMeminfo(this.procRoot),
      load: readLoadavg(this.procRoot),
      psi,
      disks: readDiskstats(this.procRoot).slice(0, MAX_DISKS),
      filesystems,
      net: readNetDev(this.procRoot).filter((n) => !CONTAINER_LINK.test(n.iface)).slice(0, MAX_INTERFACES),
      files: readFileNr(this.procRoot),
    };
  }

  sample(tNs: bigint, tMs: number): NodeSnapshot {
    const cur = this.read(tNs);
    const prev = this.last;
    const w = this.windows;
    // 'node' is the first key ever made, so the bound can never refuse it
    const node = w.entry('node', tMs, () => ({ kind: 'node', name: 'node' }))!;
    const dtS = prev ? Number(tNs - prev.tNs) / 1e9 : 0;
    if (prev && dtS > 0) {
      const u = cpuUsage(prev.cpu.total, cur.cpu.total);
      w.record(node, 'cpu', tMs, u.busyPct, dtS);
      w.record(node, 'iowait', tMs, u.iowaitPct, dtS);
      w.record(node, 'steal', tMs, u.stealPct, dtS);
      const byDev = new Map(prev.disks.map((d) => [d.device, d]));
      // all whole disks together on the node key: one series for the dashboard's disk strip
      let diskRead = 0;
      let diskWrite = 0;
      for (const d of cur.disks) {
        const p = byDev.get(d.device);
        if (!p) continue;
        diskRead += Math.max(0, d.readBytes - p.readBytes);
        diskWrite += Math.max(0, d.writeBytes - p.writeBytes);
        const e = w.entry(`disk:${d.device}`, tMs, () => ({ kind: 'disk', name: d.device }));
        if (!e) continue;
        w.record(e, 'read_bytes', tMs, Math.max(0, d.readBytes - p.readBytes), dtS);
        w.record(e, 'write_bytes', tMs, Math.max(0, d.writeBytes - p.writeBytes), dtS);
        w.record(e, 'busy', tMs, Math.min(100, (100 * (d.ioTicksMs - p.ioTicksMs)) / (dtS * 1000)), dtS);
      }
      w.record(node, 'disk_read_bytes', tMs, diskRead, dtS);
      w.record(node, 'disk_write_bytes', tMs, diskWrite, dtS);
      const byIf = new Map(prev.net.map((n) => [n.iface, n]));
      for (const n of cur.net) {
        const p = byIf.get(n.iface);
        if (!p) continue;
        const e = w.entry(`net:${n.iface}`, tMs, () => ({ kind: 'net', name: n.iface }));
        if (!e) continue;
        w.record(e, 'rx_bytes', tMs, Math.max(0, n.rxBytes - p.rxBytes), dtS);
        w.record(e, 'tx_bytes', tMs, Math.max(0, n.txBytes - p.txBytes), dtS);
      }
    }
    w.record(node, 'memory', tMs, cur.memory.usagePct, 1);
    w.record(node, 'memory_bytes', tMs, cur.memory.usedBytes, 1);
    w.record(node, 'swap', tMs, cur.memory.swapUsagePct, 1);
    w.record(node, 'load1', tMs, cur.load.load1, 1);
    w.record(node, 'load5', tMs, cur.load.load5, 1);
    w.record(node, 'load15', tMs, cur.load.load15, 1);
    w.record(node, 'fd_usage', tMs, cur.files.usagePct, 1);
    for (const [r, p] of Object.entries(cur.psi) as [PsiResource, Psi][]) {
      const e = w.entry(`psi:${r}`, tMs, () => ({ kind: 'psi', name: r }));
        if (!e) continue;
      // avg10 is the kernel's own 10 s average; sampling it keeps percentiles over our windows.
      w.record(e, 'psi_some', tMs, p.some.avg10, 1);
      if (p.full) w.record(e, 'psi_full', tMs, p.full.avg10, 1);
    }
    for (const f of cur.filesystems) {
      const e = w.entry(`fs:${f.mountPoint}`, tMs, () => ({ kind: 'fs', name: f.mountPoint }));
        if (!e) continue;
      w.record(e, 'usage', tMs, f.usagePct, 1);
      w.record(e, 'inode_usage', tMs, f.inodeUsagePct, 1);
    }
    this.last = cur;
    w.expire(tMs);
    return cur;
  }
}
