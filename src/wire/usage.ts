// The live resource sweep: usage_tasks writes one pt_task_usage per task; a group's totals are
// the sum of its tasks (the leader's record carries exited threads and the memory figures).
// It sees every thread on the machine each interval, so it reads fields in place (offsets from
// the generated layout) as numbers, and the per-group fields once per group, not per thread.
import type { ProcUsage } from '../shared/usage.js';
import { LAYOUT, PT_TASK_USAGE_SIZE, PT_USAGE_KTHREAD, PT_USAGE_LEADER, PT_USAGE_ZOMBIE } from './generated/lifecycle.js';
import { WireError } from './errors.js';
import { fieldLength, fieldOffset } from './offsets.js';
import { cstrText, u64b, u64n } from './text.js';
import { DOUBLE_ZERO as Z } from '../shared/numbers.js';

const at = (f: string) => fieldOffset(LAYOUT, 'pt_task_usage', f);
const U = {
  start: at('start_ns'), cgroup: at('cgroup_id'), cpu: at('cpu_ns'), read: at('read_bytes'), write: at('write_bytes'),
  rchar: at('rchar'), wchar: at('wchar'), minflt: at('minflt'), majflt: at('majflt'), rss: at('rss_kb'), hiwater: at('hiwater_kb'),
  pid: at('pid'), ppid: at('ppid'), flags: at('flags'), comm: at('comm'), commLen: fieldLength(LAYOUT, 'pt_task_usage', 'comm'),
};

// the comm is compared as four 32-bit words
if (U.commLen !== 16) throw new WireError('E_WIRE_USAGE_LAYOUT', `pt_task_usage.comm is ${U.commLen} bytes; UsageSweepDecoder compares 16`);

/** One sweep, decoded on its own: fresh objects (a decoder that has seen no sweep before). The
 *  agent's repeated sweeps keep one UsageSweepDecoder, which gives the same answers without
 *  rebuilding every process. */
export function decodeUsageSweep(buf: Buffer): ProcUsage[] {
  return [...new UsageSweepDecoder().decode(buf)];
}

/** What the decoder remembers of one process between sweeps: its answer object, and the raw
 *  words its bigint and text fields were made from, so an unchanged field is not made again. */
interface Slot {
  g: ProcUsage;
  /** CPU of the tasks read so far in this sweep, ns (a number: a bigint add allocates) */
  cpu: number;
  /** the number g.cpuNs was made from */
  madeCpu: number;
  startLo: number;
  startHi: number;
  cgLo: number;
  cgHi: number;
  /** the 16 comm bytes g.comm was decoded from, as four words */
  c0: number;
  c1: number;
  c2: number;
  c3: number;
  /** the sweep that last saw it */
  sweep: number;
  leaderSeen: boolean;
}

/**
 * The live sweep, decoded sweep after sweep. Its answers equal decodeUsageSweep's, but a process
 * keeps its answer object from one sweep to the next: its counters are refilled in place, and
 * its start, cgroup, CPU total and comm are made again only when their bytes changed.
 *
 * Why: the sweep reads every task on the node every second. With 1,000 processes, decoding each
 * afresh allocated ~0.5 MB a second at idle; the sweep's objects were alive whenever a scavenge
 * fell inside it, so they were promoted, and the old generation filled with them: a major GC
 * every ~14 s at idle, most of the agent's GC time (bench/README.md, "Session 13").
 *
 * The array and its objects belong to the decoder: they are valid until the next decode, and a
 * caller must copy what it keeps (the windows keep primitive fields, never the objects).
 */
export class UsageSweepDecoder {
  private readonly slots = new Map<number, Slot>();
  private readonly out: ProcUsage[] = [];
  /** the slot of each answer in `out`, at the same index */
  private readonly outSlots: Slot[] = [];
  private sweep = 0;

  /** processes the decoder remembers (tests) */
  get size(): number {
    return this.slots.size;
  }

  decode(buf: Buffer): ProcUsage[] {
    if (buf.length % PT_TASK_USAGE_SIZE !== 0) {
      throw new WireError('E_WIRE_USAGE_SIZE', `usage sweep of ${buf.length} bytes is not a multiple of ${PT_TASK_USAGE_SIZE}`);
    }
    const sweep = ++this.sweep;
    const out = this.out;
    const outSlots = this.outSlots;
    out.length = 0;
    outSlots.length = 0;
    const slots = this.slots;
    for (let off = 0; off < buf.length; off += PT_TASK_USAGE_SIZE) {
      const pid = buf.readUInt32LE(off + U.pid);
      const flags = buf.readUInt32LE(off + U.flags);
      const leader = (flags & PT_USAGE_LEADER) !== 0;
      let s = slots.get(pid);
      if (s === undefined || s.sweep !== sweep) {
        // the first task of this process in this sweep
        const lo = buf.readUInt32LE(off + U.start);
        const hi = buf.readUInt32LE(off + U.start + 4);
        if (s === undefined || s.startLo !== lo || s.startHi !== hi) {
          // new, or its pid was reused
          s = {
            g: {
              pid, ppid: 0, startNs: u64b(buf, off + U.start), cgroupId: 0n, comm: cstrText(buf, off + U.comm, U.commLen), cpuNs: 0n,
              // the sums as doubles from the start (src/shared/numbers.ts)
              readBytes: Z, writeBytes: Z, rchar: Z, wchar: Z, minflt: Z, majflt: Z, rssBytes: Z, peakRssBytes: Z, threads: 0, kthread: false, zombie: false,
            },
            cpu: 0, madeCpu: 0, startLo: lo, startHi: hi, cgLo: 0, cgHi: 0,
            c0: buf.readUInt32LE(off + U.comm), c1: buf.readUInt32LE(off + U.comm + 4), c2: buf.readUInt32LE(off + U.comm + 8), c3: buf.readUInt32LE(off + U.comm + 12),
            sweep, leaderSeen: false,
          };
          slots.set(pid, s);
        } else {
          const g = s.g;
          g.threads = 0;
          g.readBytes = g.writeBytes = g.rchar = g.wchar = g.minflt = g.majflt = 0;
          g.kthread = false;
          s.cpu = 0;
          s.sweep = sweep;
          s.leaderSeen = false;
          this.comm(s, buf, off);
        }
        out.push(s.g);
        outSlots.push(s);
      } else if (leader) {
        this.comm(s, buf, off);
      }
      const g = s.g;
      g.threads++;
      s.cpu += u64n(buf, off + U.cpu);
      g.readBytes += u64n(buf, off + U.read);
      g.writeBytes += u64n(buf, off + U.write);
      g.rchar += u64n(buf, off + U.rchar);
      g.wchar += u64n(buf, off + U.wchar);
      g.minflt += u64n(buf, off + U.minflt);
      g.majflt += u64n(buf, off + U.majflt);
      if (flags & PT_USAGE_KTHREAD) g.kthread = true;
      if (leader) {
        s.leaderSeen = true;
        g.ppid = buf.readUInt32LE(off + U.ppid);
        const cl = buf.readUInt32LE(off + U.cgroup);
        const ch = buf.readUInt32LE(off + U.cgroup + 4);
        if (cl !== s.cgLo || ch !== s.cgHi) {
          g.cgroupId = u64b(buf, off + U.cgroup);
          s.cgLo = cl;
          s.cgHi = ch;
        }
        g.rssBytes = u64n(buf, off + U.rss) * 1024;
        g.peakRssBytes = u64n(buf, off + U.hiwater) * 1024;
        g.zombie = (flags & PT_USAGE_ZOMBIE) !== 0;
      }
    }
    for (let i = 0; i < out.length; i++) {
      const g = out[i]!;
      const s = outSlots[i]!;
      if (s.cpu !== s.madeCpu) {
        g.cpuNs = BigInt(s.cpu);
        s.madeCpu = s.cpu;
      }
      if (!s.leaderSeen) {
        // no leader record this sweep: the group-wide fields are unknown, as decodeUsageSweep has them
        g.ppid = 0;
        g.cgroupId = 0n;
        s.cgLo = s.cgHi = 0;
        g.rssBytes = g.peakRssBytes = 0;
        g.zombie = false;
      }
    }
    // forget processes this sweep did not see (only when there are any)
    if (slots.size > out.length) for (const [pid, s] of slots) if (s.sweep !== sweep) slots.delete(pid);
    return out;
  }

  /** The comm of this task's record, made again only when its bytes changed. */
  private comm(s: Slot, buf: Buffer, off: number): void {
    const a = buf.readUInt32LE(off + U.comm);
    const b = buf.readUInt32LE(off + U.comm + 4);
    const c = buf.readUInt32LE(off + U.comm + 8);
    const d = buf.readUInt32LE(off + U.comm + 12);
    if (a === s.c0 && b === s.c1 && c === s.c2 && d === s.c3) return;
    s.g.comm = cstrText(buf, off + U.comm, U.commLen);
    s.c0 = a;
    s.c1 = b;
    s.c2 = c;
    s.c3 = d;
  }
}
