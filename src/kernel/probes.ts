// Feature probes run before anything is loaded, so a missing feature or privilege becomes one
// clear, typed error naming what is missing and the minimum kernel, never a verifier dump.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { KernelFeatureError, PrivilegeError } from './errors.js';

export interface KernelVersion {
  major: number;
  minor: number;
  release: string;
}

export function kernelVersion(rel = release()): KernelVersion {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return { major: m ? Number(m[1]) : 0, minor: m ? Number(m[2]) : 0, release: rel };
}

function atLeast(v: KernelVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

// Capability bits from linux/capability.h.
const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

export function effectiveCaps(statusText?: string): bigint {
  const text = statusText ?? readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return m ? BigInt('0x' + m[1]) : 0n;
}

export function hasBpfPrivileges(caps = effectiveCaps()): boolean {
  const has = (bit: bigint) => (caps >> bit) & 1n;
  return Boolean(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)));
}

/** What each sensor needs, with the kernel that introduced it. */
export const FEATURES = {
  btf: { what: 'kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y)', minKernel: '5.8' },
  ringbuf: { what: 'BPF ring buffer', minKernel: '5.8' },
  tpBtf: { what: 'BTF-enabled tracepoints (tp_btf)', minKernel: '5.5' },
  bootNs: { what: 'bpf_ktime_get_boot_ns', minKernel: '5.8' },
  taskIter: { what: 'BPF task iterator (iter/task)', minKernel: '5.8' },
  taskStorage: { what: 'task storage for tracing programs (state sensor)', minKernel: '5.11' },
  tracefs: { what: 'tracefs at /sys/kernel/tracing (classic syscall tracepoints)', minKernel: '4.1' },
  /** Only bench_produce (the benchmarks' record generator) uses it; the sensors do not. */
  bpfLoop: { what: 'the bpf_loop helper (bench_produce, the benchmark record generator)', minKernel: '5.17' },
} as const;

export type FeatureName = keyof typeof FEATURES;

export interface ProbeResult {
  kernel: KernelVersion;
  tracefs: boolean;
}

/** Throws KernelFeatureError if this kernel predates the feature (by version: BPF helpers
 *  are not backported piecemeal, and the verifier's own message is no help to users). */
export function requireFeature(name: FeatureName, kernel = kernelVersion()): void {
  const [maj, min] = FEATURES[name].minKernel.split('.').map(Number) as [number, number];
  if (!atLeast(kernel, maj, min)) {
    throw new KernelFeatureError(name, FEATURES[name].what, FEATURES[name].minKernel, kernel.release);
  }
}

/** Throws PrivilegeError or KernelFeatureError; returns optional features found. */
export function probeKernel(opts: { btfPath?: string; kernel?: KernelVersion; caps?: bigint } = {}): ProbeResult {
  const kernel = opts.kernel ?? kernelVersion();
  if (!hasBpfPrivileges(opts.caps)) throw new PrivilegeError();
  if (!existsSync(opts.btfPath ?? '/sys/kernel/btf/vmlinux')) {
    throw new KernelFeatureError('btf', FEATURES.btf.what, FEATURES.btf.minKernel, kernel.release);
  }
  for (const name of ['ringbuf', 'bootNs', 'taskIter', 'tpBtf', 'taskStorage'] as const) requireFeature(name, kernel);
  return { kernel, tracefs: existsSync('/sys/kernel/tracing/events/syscalls/sys_enter_execve') };
}
