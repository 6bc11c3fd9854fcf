// Live resource usage of one process (thread group), as the sweep reads it: from the BPF task
// iterator (src/wire/usage.ts) or from /proc (src/process/proc-usage.ts). Counters are totals
// since the process started; the windows take differences between sweeps.
import type { KText } from './events.js';

export interface ProcUsage {
  pid: number;
  ppid: number;
  /** Group leader start, CLOCK_BOOTTIME ns: identity with pid. */
  startNs: bigint;
  /** cgroup v2 id; 0n when unknown (the /proc fallback fills it from the path when it can). */
  cgroupId: bigint;
  comm: KText;
  /** Exact on-CPU time of all threads, live and exited. */
  cpuNs: bigint;
  readBytes: number;
  writeBytes: number;
  rchar: number;
  wchar: number;
  minflt: number;
  majflt: number;
  rssBytes: number;
  /** Peak RSS so far. */
  peakRssBytes: number;
  threads: number;
  kthread: boolean;
  zombie: boolean;
}

export interface UsageSweep {
  /** CLOCK_BOOTTIME ns when the sweep was taken. */
  ktimeNs: bigint;
  processes: ProcUsage[];
  source: 'bpf' | 'proc';
}
