// /proc/stat CPU times, in USER_HZ ticks, and busy percentages between two readings.
import { DEFAULT_ROOTS, readText } from './proc.js';

export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

export interface CpuStat {
  total: CpuTimes;
  perCpu: CpuTimes[];
  contextSwitches: number;
  processesForked: number;
  procsRunning: number;
  procsBlocked: number;
}

function parseTimes(fields: string[]): CpuTimes {
  const n = (i: number) => Number(fields[i] ?? 0);
  // guest and guest_nice are already included in user and nice.
  return { user: n(0), nice: n(1), system: n(2), idle: n(3), iowait: n(4), irq: n(5), softirq: n(6), steal: n(7) };
}

export function parseCpuStat(text: string): CpuStat {
  const out: CpuStat = { total: parseTimes([]), perCpu: [], contextSwitches: 0, processesForked: 0, procsRunning: 0, procsBlocked: 0 };
  for (const line of text.split('\n')) {
    // The intr and softirq lines hold one counter per interrupt (hundreds, thousands on a big
    // host) and none is read: skip them unsplit, they were most of what a sweep allocated idle.
    const c = line.charCodeAt(0);
    if (c !== 99 /* c */ && c !== 112 /* p */) continue;
    const parts = line.trim().split(/\s+/);
    const key = parts[0];
    if (key === 'cpu') out.total = parseTimes(parts.slice(1));
    else if (key?.startsWith('cpu')) out.perCpu.push(parseTimes(parts.slice(1)));
    else if (key === 'ctxt') out.contextSwitches = Number(parts[1]);
    else if (key === 'processes') out.processesForked = Number(parts[1]);
    else if (key === 'procs_running') out.procsRunning = Number(parts[1]);
    else if (key === 'procs_blocked') out.procsBlocked = Number(parts[1]);
  }
  return out;
}

export function readCpuStat(procRoot = DEFAULT_ROOTS.proc): CpuStat {
  return parseCpuStat(readText(`${procRoot}/stat`));
}

const busyOf = (t: CpuTimes) => t.user + t.nice + t.system + t.irq + t.softirq + t.steal;
const allOf = (t: CpuTimes) => busyOf(t) + t.idle + t.iowait;

export interface CpuUsage {
  /** Busy share of all CPUs, 0–100. */
  busyPct: number;
  iowaitPct: number;
  stealPct: number;
}

/** Usage between two readings; 0 when no tick elapsed. */
export function cpuUsage(prev: CpuTimes, cur: CpuTimes): CpuUsage {
  const all = allOf(cur) - allOf(prev);
  if (all <= 0) return { busyPct: 0, iowaitPct: 0, stealPct: 0 };
  return {
    busyPct: (100 * (busyOf(cur) - busyOf(prev))) / all,
    iowaitPct: (100 * (cur.iowait - prev.iowait)) / all,
    stealPct: (100 * (cur.steal - prev.steal)) / all,
  };
}
