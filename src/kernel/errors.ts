import { PatrolError } from '../shared/errors.js';

/** A kernel feature patrol needs is missing. */
export class KernelFeatureError extends PatrolError {
  constructor(
    readonly feature: string,
    readonly what: string,
    readonly minKernel: string,
    readonly running: string,
  ) {
    super('E_KERNEL_FEATURE', `this kernel (${running}) lacks ${what}; patrol needs Linux ${minKernel} or newer`);
  }
}

/** Loading BPF needs privileges the process does not have. */
export class PrivilegeError extends PatrolError {
  constructor() {
    super('E_PRIVILEGE', 'needs root or CAP_BPF+CAP_PERFMON to load its BPF sensors');
  }
}

/** A libbpf call failed; carries the errno the addon reported. */
export class BpfError extends PatrolError {
  constructor(
    readonly op: string,
    readonly errno: number,
    readonly errnoCode: string,
    detail: string,
  ) {
    super('E_BPF', `${op} failed: ${detail}`);
  }

  /** Verifier log lines, when the kernel rejected a program. */
  log: string[] = [];

  static from(op: string, err: unknown): BpfError | PrivilegeError {
    const e = err as { errno?: number; code?: string; message?: string; program?: string; log?: string[] };
    const errno = typeof e?.errno === 'number' ? Math.abs(e.errno) : 0;
    const code = typeof e?.code === 'string' ? e.code : '';
    // The verifier also answers EACCES; only a rejection that names no program is about privileges.
    if (!e?.program && (code === 'EPERM' || code === 'EACCES')) return new PrivilegeError();
    const detail = e?.program ? `program ${e.program} rejected: ${e.message ?? ''}` : (e?.message ?? String(err));
    const b = new BpfError(op, errno, code, detail);
    b.log = e?.log ?? [];
    return b;
  }
}
