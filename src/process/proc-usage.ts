// The /proc fallback of the live resource sweep, for kernels without BPF task iterators (< 5.8)
// or when the iterator fails. Per process it reads stat, io and status: three files, against one
// iterator read for the whole machine (bench/sweep.mjs compares them). CPU time here is
// tick-sampled utime+stime (10 ms resolution), not the exact sum_exec_runtime.
import { readFileSync, readdirSync } from 'node:fs';
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
    const io = read(`${root}/${name}/io`)?.toString('latin1') ?? '';
    const status = read(`${root}/${name}/status`)?.toString('latin1') ?? '';
    const kthread = (n(9) & 0x00200000) !== 0;
    out.push({
      pid: st.pid,
      ppid: st.ppid,
      startNs: BigInt(st.startTicks) * NS_PER_TICK,
      cgroupId: 0n,
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
