// The /proc fallback of the live resource sweep, for kernels without BPF task iterators (< 5.8)
// or when the iterator fails. Per process it reads stat, io and status: three files, against one
// iterator read for the whole machine (bench/windows.mjs compares them). CPU time here is
// tick-sampled utime+stime (10 ms resolution), not the exact sum_exec_runtime.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import type { ProcUsage } from '../shared/usage.js';
import { NS_PER_TICK, parseStat } from './procfs.js';

const PAGE = 4096;

function read(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

function field(text: string, key: string): number {
  const at = text.indexOf(key);
  if (at < 0) return 0;
  return Number(/\d+/.exec(text.slice(at + key.length, at + key.length + 32))?.[0] ?? 0);
}

// cgroup v2 path → id (the inode of its directory), cached: a sweep sees few distinct paths.
const cgroupIds = new Map<string, bigint>();
let cgroup2Root: string | null | undefined;

function cgroupIdOf(path: string): bigint {
  const text = read(path)?.toString('latin1');
  const m = text ? /^0::(.*)$/m.exec(text) : null;
  if (!m) return 0n;
  const rel = m[1]!;
  let id = cgroupIds.get(rel);
  if (id === undefined) {
    if (cgroup2Root === undefined) {
      const mi = read('/proc/self/mountinfo')?.toString('latin1') ?? '';
      cgroup2Root = / - cgroup2 /.test(mi) ? /^\S+ \S+ \S+ \S+ (\S+) [^\n]* - cgroup2 /m.exec(mi)?.[1] ?? null : null;
    }
    try {
      id = cgroup2Root ? statSync(`${cgroup2Root}${rel === '/' ? '' : rel}`, { bigint: true }).ino : 0n;
    } catch {
      id = 0n; // removed since
    }
    if (cgroupIds.size > 10_000) cgroupIds.clear();
    cgroupIds.set(rel, id);
  }
  return id;
}

export function readProcUsage(root = '/proc'): ProcUsage[] {
  const out: ProcUsage[] = [];
  for (const name of readdirSync(root)) {
    const c = name.charCodeAt(0);
    if (c < 0x30 || c > 0x39) continue;
    const statBuf = read(`${root}/${name}/stat`);
    if (!statBuf) continue;
    const st = parseStat(statBuf);
    if (!st) continue;
    const f = statBuf.toString('latin1', statBuf.lastIndexOf(0x29) + 2).trimEnd().split(' ');
    // fields from 3 (state): minflt 10, majflt 12, utime 14, stime 15, num_threads 20, rss 24, flags 9
    const n = (i: number) => Number(f[i - 3] ?? 0);
    // A process that vanished between its files, or whose io we may not read, is skipped: a
    // zero would be taken as a counter reset and its whole IO counted again at exit.
    const io = read(`${root}/${name}/io`)?.toString('latin1');
    const status = read(`${root}/${name}/status`)?.toString('latin1');
    if (io === undefined || status === undefined) continue;
    const kthread = (n(9) & 0x00200000) !== 0;
    out.push({
      pid: st.pid,
      ppid: st.ppid,
      startNs: BigInt(st.startTicks) * NS_PER_TICK,
      cgroupId: cgroupIdOf(`${root}/${name}/cgroup`),
      comm: { text: st.comm, ...(st.commRaw ? { raw: st.commRaw } : {}) } as ProcUsage['comm'],
      cpuNs: BigInt(n(14) + n(15)) * NS_PER_TICK,
      readBytes: field(io, 'read_bytes:'),
      writeBytes: field(io, '\nwrite_bytes:'),
      rchar: field(io, 'rchar:'),
      wchar: field(io, 'wchar:'),
      minflt: n(10),
      majflt: n(12),
      rssBytes: n(24) * PAGE,
      peakRssBytes: field(status, 'VmHWM:') * 1024,
      threads: n(20),
      kthread,
      zombie: st.state === 'Z',
    });
  }
  return out;
}
