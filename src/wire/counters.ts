// Per-CPU map values. A lookup on a per-CPU map returns one value per possible CPU, each padded
// to 8 bytes; loss accounting needs both the sum and the per-CPU view (to spot a stuck CPU).
import { PT_COUNTERS_SIZE, readPtCounters } from './generated/lifecycle.js';
import { WireError } from './errors.js';

/** One pt_counters value. Arrays are indexed by pt_op (see OP_EVENT_TYPE). */
export interface CounterSet {
  generated: bigint[];
  lostReserve: bigint[];
  threadExits: bigint;
  threadForks: bigint;
  seqBurned: bigint;
}

export interface PerCpuCounters {
  total: CounterSet;
  perCpu: CounterSet[];
}

const stride = (size: number): number => (size + 7) & ~7;

function cpuCount(value: Buffer, size: number, nCpus: number | undefined, what: string): number {
  const n = nCpus ?? value.length / stride(size);
  if (!Number.isInteger(n) || n <= 0 || value.length !== n * stride(size)) {
    throw new WireError('E_WIRE_PERCPU_SIZE', `${what}: ${value.length} bytes is not ${nCpus ?? 'n'} CPUs x ${stride(size)}`);
  }
  return n;
}

export function decodeCounters(value: Buffer, nCpus?: number): PerCpuCounters {
  const n = cpuCount(value, PT_COUNTERS_SIZE, nCpus, 'pt_counters');
  const perCpu: CounterSet[] = [];
  for (let cpu = 0; cpu < n; cpu++) perCpu.push(readPtCounters(value, cpu * stride(PT_COUNTERS_SIZE)));
  const total: CounterSet = {
    generated: perCpu[0]!.generated.map((_, op) => perCpu.reduce((s, c) => s + c.generated[op]!, 0n)),
    lostReserve: perCpu[0]!.lostReserve.map((_, op) => perCpu.reduce((s, c) => s + c.lostReserve[op]!, 0n)),
    threadExits: perCpu.reduce((s, c) => s + c.threadExits, 0n),
    threadForks: perCpu.reduce((s, c) => s + c.threadForks, 0n),
    seqBurned: perCpu.reduce((s, c) => s + c.seqBurned, 0n),
  };
  return { total, perCpu };
}

/** A per-CPU __u64 value (map pt_seq: each CPU's next sequence number). */
export function decodePerCpuU64(value: Buffer, nCpus?: number): bigint[] {
  const n = cpuCount(value, 8, nCpus, 'per-CPU u64');
  const out: bigint[] = [];
  for (let cpu = 0; cpu < n; cpu++) out.push(value.readBigUInt64LE(cpu * 8));
  return out;
}
