// /proc/meminfo, in bytes.
import { DEFAULT_ROOTS, readText } from './proc.js';

export interface MemInfo {
  totalBytes: number;
  availableBytes: number;
  usedBytes: number;
  /** (total − available) / total, 0–100: what the kernel could not hand out without reclaim pain. */
  usagePct: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
  swapUsagePct: number;
  /** Every field of the file, in bytes (fields without a kB unit are counts). */
  fields: Record<string, number>;
}

export function parseMeminfo(text: string): MemInfo {
  const fields: Record<string, number> = {};
  for (const line of text.split('\n')) {
    // "Name:   123 kB" by hand: a regex match per line was most of what this parse allocated
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const v = parseInt(line.slice(colon + 1), 10);
    if (Number.isNaN(v)) continue;
    fields[line.slice(0, colon)] = line.endsWith(' kB') ? v * 1024 : v;
  }
  const total = fields.MemTotal ?? 0;
  const available = fields.MemAvailable ?? (fields.MemFree ?? 0) + (fields.Cached ?? 0);
  const swapTotal = fields.SwapTotal ?? 0;
  const swapFree = fields.SwapFree ?? 0;
  return {
    totalBytes: total,
    availableBytes: available,
    usedBytes: total - available,
    usagePct: total > 0 ? (100 * (total - available)) / total : 0,
    swapTotalBytes: swapTotal,
    swapFreeBytes: swapFree,
    swapUsagePct: swapTotal > 0 ? (100 * (swapTotal - swapFree)) / swapTotal : 0,
    fields,
  };
}

export function readMeminfo(procRoot = DEFAULT_ROOTS.proc): MemInfo {
  return parseMeminfo(readText(`${procRoot}/meminfo`));
}
