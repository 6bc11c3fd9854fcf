// The lifecycle object with only bench_produce (fork-shaped records through bpf_loop, run with
// BPF_PROG_TEST_RUN): drives a ring far past what real exec storms reach. Shared by the ring
// consumer tests.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as Native from '../../native/patrol_native.js';
import { kernelVersion } from '../../src/kernel/probes.js';
import { decodeCounters, encodeRodata } from '../../src/wire/index.js';
import { LAYOUT } from '../../src/wire/generated/lifecycle.js';

const required = process.env.PATROL_REQUIRE_BPF === '1';
const v = kernelVersion();
const hasBpfLoop = v.major > 5 || (v.major === 5 && v.minor >= 17);
if (required && !hasBpfLoop) throw new Error(`PATROL_REQUIRE_BPF=1 but bench_produce needs bpf_loop (5.17+); kernel ${v.major}.${v.minor}`);
/** Root (or required) and a kernel with bpf_loop. */
export const benchProduceEnabled = (required || process.getuid?.() === 0) && hasBpfLoop;

const OBJECT = fileURLToPath(new URL('../../bpf/.output/lifecycle.bpf.o', import.meta.url));
const field = (name: string) => LAYOUT.structs.pt_hdr.fields.find((f) => f.name === name)!.offset;
export const OP_OFFSET = field('op');
export const KTIME_OFFSET = field('ktime_ns');
const OTHER_PROGS = [
  'handle_exec', 'handle_fork', 'handle_exit', 'handle_switch', 'handle_free',
  'handle_wait4_exit', 'handle_waitid_enter', 'handle_waitid_exit',
  'handle_execve_enter', 'handle_execveat_enter', 'handle_execve_exit', 'handle_execveat_exit',
  'snapshot_tasks', 'usage_tasks',
];

export const addon = (): typeof Native => createRequire(import.meta.url)('../../native/build/Release/patrol_native.node') as typeof Native;

/** Opens and loads the object with bench_produce emitting `burst` records per run. `token`
 *  (filename_cap, unused by bench_produce) lets bench/build/bpf-produce find this object's
 *  program from another process; `ringBytes` sizes its ring. */
export function loadBenchProduce(native: typeof Native, burst: number, opts: { token?: number; ringBytes?: number } = {}): Native.BpfObject {
  const o = native.open(OBJECT, {
    maxEntries: { pt_scratch: native.numPossibleCpus, ...(opts.ringBytes ? { pt_events: opts.ringBytes } : {}) },
    autoload: Object.fromEntries([...OTHER_PROGS.map((p) => [p, false]), ['bench_produce', true]]),
  });
  native.load(o, { rodata: encodeRodata(native.readRodata(o), { benchBurst: burst, pageKb: native.pageSize / 1024, ...(opts.token ? { filenameCap: opts.token } : {}) }) });
  return o;
}

/** Records generated and lost to a full ring so far, all types. */
export function produced(native: typeof Native, o: Native.BpfObject): { generated: number; lost: number } {
  const c = decodeCounters(native.mapLookup(o, 'pt_counters', Buffer.alloc(4))!, native.numPossibleCpus).total;
  return { generated: Number(c.generated.reduce((a, b) => a + b, 0n)), lost: Number(c.lostReserve.reduce((a, b) => a + b, 0n)) };
}
