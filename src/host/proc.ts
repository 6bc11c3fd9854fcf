// Readers of node facts from procfs, sysfs and cgroupfs. Every reader takes the filesystem root
// as an optional argument so tests can point it at a recorded tree.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { PatrolError } from '../shared/errors.js';

export class HostReadError extends PatrolError {}

/** The soft limit on open descriptors (/proc/self/limits), 1024 when it cannot be read. */
function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? 1 << 20 : Number(m[1]);
  } catch {
    // no procfs: the conservative default
  }
  return 1024;
}

export interface HostRoots {
  proc: string;
  sys: string;
}

export const DEFAULT_ROOTS: HostRoots = { proc: '/proc', sys: '/sys' };

// Kept descriptors. A procfs, sysfs or cgroupfs file makes its text anew on every read from
// offset 0, so the sweeps, which read the same few dozen files every second, keep them open and
// read each with preads, instead of open, fstat, two reads and close: about half the CPU (60-68
// against 108-121 µs for the node's nine files, measured here). Only the kernel's own trees
// under /proc and /sys are kept (a recorded tree in a test may be rewritten under the same
// name), and never a /proc/<pid>/ file: a pid is reused, and its files are read once per
// process anyway.
// The bound: a node's own files are a dozen, and a cgroup v2 node's sweep reads up to seven files
// of each of up to metrics.cgroups_max (256) cgroups. A quarter of the descriptor limit at most,
// so the agent's sockets and database never meet EMFILE because of it.
const KEEP_MAX = Math.min(4096, Math.floor(openFileLimit() / 4));
const kept = new Map<string, number>();
let readBuf = Buffer.allocUnsafe(64 << 10);

const keepable = (path: string): boolean =>
  (path.startsWith('/proc/') && !/^\/proc\/(\d+|self|thread-self)\//.test(path)) || path.startsWith('/sys/');

/** Opens `path` and keeps it, unless the table is full: a sweep reads the same files in the same
 *  order, so evicting the oldest would make every read of a large sweep miss; the files already
 *  kept stay, and the rest are read by path as before (-1). */
function openKept(path: string): number {
  if (kept.size >= KEEP_MAX) return -1;
  const fd = openSync(path, 'r');
  kept.set(path, fd);
  return fd;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}

/** The whole text of a kept file, read from offset 0 until a read returns nothing: a seq_file
 *  of many records (diskstats, net/dev) hands over at most a page or so per read. Each read asks
 *  for at most READ_STEP bytes: a sysctl file allocates in the kernel what a read asks for, and
 *  fails with ENOMEM past a few MB. A buffer grown past BUF_KEEP for one large file is let go. */
const READ_STEP = 64 << 10;
const BUF_KEEP = 1 << 20;
function preadAll(fd: number): string {
  let len = 0;
  for (;;) {
    if (len === readBuf.length) {
      const bigger = Buffer.allocUnsafe(readBuf.length * 2);
      readBuf.copy(bigger, 0, 0, len);
      readBuf = bigger;
    }
    const n = readSync(fd, readBuf, len, Math.min(readBuf.length - len, READ_STEP), len);
    if (n === 0) break;
    len += n;
  }
  const text = readBuf.toString('utf8', 0, len);
  if (readBuf.length > BUF_KEEP) readBuf = Buffer.allocUnsafe(READ_STEP);
  return text;
}

/** Reads through a kept descriptor; a file that went away (a removed cgroup: ENODEV) or any
 *  other failure drops it, and the caller's path read then says what is wrong. */
function readKept(path: string): string | undefined {
  let fd = kept.get(path);
  try {
    if (fd === undefined) {
      fd = openKept(path);
      if (fd < 0) return undefined;
    }
    return preadAll(fd);
  } catch {
    if (fd !== undefined) {
      kept.delete(path);
      closeQuietly(fd);
    }
    return undefined;
  }
}

/** Closes every kept descriptor (tests). */
export function closeKeptFiles(): void {
  for (const fd of kept.values()) closeQuietly(fd);
  kept.clear();
}

/** How many descriptors are kept now (tests). */
export const keptFileCount = (): number => kept.size;

/** Whether `path` is read through a kept descriptor (tests). */
export const isKeptFile = (path: string): boolean => kept.has(path);

export function readText(path: string): string {
  if (keepable(path)) {
    const text = readKept(path);
    if (text !== undefined) return text;
  }
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new HostReadError('E_HOST_READ', `cannot read ${path}: ${err.code ?? err.message}`);
  }
}

/** Like readText, but undefined when the file does not exist (optional kernel features). */
export function readOptional(path: string): string | undefined {
  if (kept.has(path)) {
    const text = readKept(path);
    if (text !== undefined) return text;
  }
  // Ask first: a missing file is the common case for optional interfaces (cgroup files of
  // controllers not enabled), and a thrown ENOENT costs an Error with a stack, every sweep.
  if (!existsSync(path)) return undefined;
  if (keepable(path)) {
    const text = readKept(path);
    if (text !== undefined) return text;
  }
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
