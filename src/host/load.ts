// /proc/loadavg, /proc/uptime and /proc/sys/fs/file-nr.
import { DEFAULT_ROOTS, readText } from './proc.js';

export interface LoadAvg {
  load1: number;
  load5: number;
  load15: number;
  runnable: number;
  threads: number;
}

export function parseLoadavg(text: string): LoadAvg {
  const [a, b, c, rt] = text.trim().split(/\s+/);
  const [runnable, threads] = (rt ?? '0/0').split('/').map(Number);
  return { load1: Number(a), load5: Number(b), load15: Number(c), runnable: runnable ?? 0, threads: threads ?? 0 };
}

export function readLoadavg(procRoot = DEFAULT_ROOTS.proc): LoadAvg {
  return parseLoadavg(readText(`${procRoot}/loadavg`));
}

export function readUptimeSeconds(procRoot = DEFAULT_ROOTS.proc): number {
  return Number(readText(`${procRoot}/uptime`).trim().split(/\s+/)[0]);
}

export interface FileHandles {
  allocated: number;
  max: number;
  usagePct: number;
}

export function parseFileNr(text: string): FileHandles {
  const [allocated, , max] = text.trim().split(/\s+/).map(Number);
  const a = allocated ?? 0;
  const m = max ?? 0;
  return { allocated: a, max: m, usagePct: m > 0 ? (100 * a) / m : 0 };
}

export function readFileNr(procRoot = DEFAULT_ROOTS.proc): FileHandles {
  return parseFileNr(readText(`${procRoot}/sys/fs/file-nr`));
}
