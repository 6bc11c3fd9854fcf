// Pressure stall information (/proc/pressure/{cpu,memory,io}), kernel 4.20+ with CONFIG_PSI.
import { DEFAULT_ROOTS, readOptional } from './proc.js';

export type PsiResource = 'cpu' | 'memory' | 'io';
export const PSI_RESOURCES: readonly PsiResource[] = ['cpu', 'memory', 'io'];

export interface PsiLine {
  /** Share of wall time stalled, 0–100, over 10 s, 60 s and 300 s. */
  avg10: number;
  avg60: number;
  avg300: number;
  /** Total stall time, µs. */
  totalUs: number;
}

export interface Psi {
  some: PsiLine;
  /** Absent for cpu on older kernels. */
  full?: PsiLine;
}

export function parsePsi(text: string): Psi {
  const out: Partial<Psi> = {};
  for (const line of text.split('\n')) {
    const m = /^(some|full)\s+avg10=([\d.]+)\s+avg60=([\d.]+)\s+avg300=([\d.]+)\s+total=(\d+)/.exec(line);
    if (m) out[m[1] as 'some' | 'full'] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), totalUs: Number(m[5]) };
  }
  return { some: out.some ?? { avg10: 0, avg60: 0, avg300: 0, totalUs: 0 }, ...(out.full ? { full: out.full } : {}) };
}

/** undefined when the kernel has no PSI (or it is disabled with psi=0). */
export function readPsi(resource: PsiResource, procRoot = DEFAULT_ROOTS.proc): Psi | undefined {
  const text = readOptional(`${procRoot}/pressure/${resource}`);
  return text === undefined ? undefined : parsePsi(text);
}
