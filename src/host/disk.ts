// Block device counters (/proc/diskstats), mounts (/proc/self/mountinfo) and filesystem usage
// (statfs per mount).
import { statfsSync } from 'node:fs';
import { DEFAULT_ROOTS, HostReadError, readText } from './proc.js';

export interface DiskStats {
  device: string;
  readsCompleted: number;
  readBytes: number;
  writesCompleted: number;
  writeBytes: number;
  /** Time the device had IO in flight, ms (utilisation = Δ / Δwall). */
  ioTicksMs: number;
  inFlight: number;
}

// Partitions and virtual devices would double-count the whole disks' traffic.
const SKIP_DEVICE = /^(loop|ram|zram|sr|fd)\d*$/;
const DEVICE_NAME = /^\s*\d+\s+\d+\s+(\S+)/;

export function parseDiskstats(text: string, includePartitions = false): DiskStats[] {
  const out: DiskStats[] = [];
  for (const line of text.split('\n')) {
    // the device name first: most lines of a host are loop and ram devices, skipped unsplit
    const name = DEVICE_NAME.exec(line);
    if (name === null || SKIP_DEVICE.test(name[1]!)) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 14) continue;
    const device = f[2]!;
    if (!includePartitions && /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)\d+$|^(nvme\d+n\d+|mmcblk\d+)p\d+$/.test(device)) continue;
    // Sectors in diskstats are always 512 bytes, whatever the device's sector size.
    out.push({
      device,
      readsCompleted: Number(f[3]),
      readBytes: Number(f[5]) * 512,
      writesCompleted: Number(f[7]),
      writeBytes: Number(f[9]) * 512,
      inFlight: Number(f[11]),
      ioTicksMs: Number(f[12]),
    });
  }
  return out;
}

export function readDiskstats(procRoot = DEFAULT_ROOTS.proc, includePartitions = false): DiskStats[] {
  return parseDiskstats(readText(`${procRoot}/diskstats`), includePartitions);
}

export interface Mount {
  mountPoint: string;
  fsType: string;
  source: string;
}

// Kernel pseudo filesystems have no capacity worth watching.
const PSEUDO_FS = new Set([
  'proc', 'sysfs', 'devpts', 'cgroup', 'cgroup2', 'bpf', 'tracefs', 'debugfs', 'securityfs', 'pstore',
  'configfs', 'fusectl', 'mqueue', 'hugetlbfs', 'autofs', 'binfmt_misc', 'rpc_pipefs', 'nsfs', 'efivarfs', 'devtmpfs', 'selinuxfs', 'squashfs', 'overlay',
]);

/** mountinfo's octal escapes (\040 for a space) back to characters. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string, includePseudo = false): Mount[] {
  const out: Mount[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const mountPoint = unescape(left[4] ?? '');
    const fsType = right[0] ?? '';
    if (!includePseudo && PSEUDO_FS.has(fsType)) continue;
    // A mount point mounted over keeps only its top mount visible; the last line wins.
    if (seen.has(mountPoint)) {
      const i = out.findIndex((m) => m.mountPoint === mountPoint);
      out.splice(i, 1);
    }
    seen.add(mountPoint);
    out.push({ mountPoint, fsType, source: unescape(right[1] ?? '') });
  }
  return out;
}

export function readMounts(procRoot = DEFAULT_ROOTS.proc, includePseudo = false): Mount[] {
  return parseMountinfo(readText(`${procRoot}/self/mountinfo`), includePseudo);
}

export interface FsUsage {
  mountPoint: string;
  totalBytes: number;
  usedBytes: number;
  /** Space available to unprivileged users. */
  availableBytes: number;
  /** used / (used + available), 0–100, as df computes it (root's reserve counts as unavailable). */
  usagePct: number;
  inodesTotal: number;
  inodesUsed: number;
  inodeUsagePct: number;
}

export function fsUsage(mountPoint: string): FsUsage {
  let s;
  try {
    s = statfsSync(mountPoint);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new HostReadError('E_HOST_STATFS', `cannot statfs ${mountPoint}: ${err.code ?? err.message}`);
  }
  const total = s.blocks * s.bsize;
  const used = (s.blocks - s.bfree) * s.bsize;
  const avail = s.bavail * s.bsize;
  const inodesUsed = s.files - s.ffree;
  return {
    mountPoint,
    totalBytes: total,
    usedBytes: used,
    availableBytes: avail,
    usagePct: used + avail > 0 ? (100 * used) / (used + avail) : 0,
    inodesTotal: s.files,
    inodesUsed,
    inodeUsagePct: s.files > 0 ? (100 * inodesUsed) / s.files : 0,
  };
}
