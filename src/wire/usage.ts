// The live resource sweep: usage_tasks writes one pt_task_usage per task; a group's totals are
// the sum of its tasks (the leader's record carries exited threads and the memory figures).
// It sees every thread on the machine each interval, so it reads fields in place (offsets from
// the generated layout) as numbers, and the per-group fields once per group, not per thread.
import type { ProcUsage } from '../shared/usage.js';
import { LAYOUT, PT_TASK_USAGE_SIZE, PT_USAGE_KTHREAD, PT_USAGE_LEADER, PT_USAGE_ZOMBIE } from './generated/lifecycle.js';
import { WireError } from './errors.js';
import { fieldLength, fieldOffset } from './offsets.js';
import { cstrText, u64b, u64n } from './text.js';

const at = (f: string) => fieldOffset(LAYOUT, 'pt_task_usage', f);
const U = {
  start: at('start_ns'), cgroup: at('cgroup_id'), cpu: at('cpu_ns'), read: at('read_bytes'), write: at('write_bytes'),
  rchar: at('rchar'), wchar: at('wchar'), minflt: at('minflt'), majflt: at('majflt'), rss: at('rss_kb'), hiwater: at('hiwater_kb'),
  pid: at('pid'), ppid: at('ppid'), flags: at('flags'), comm: at('comm'), commLen: fieldLength(LAYOUT, 'pt_task_usage', 'comm'),
};

export function decodeUsageSweep(buf: Buffer): ProcUsage[] {
  if (buf.length % PT_TASK_USAGE_SIZE !== 0) {
    throw new WireError('E_WIRE_USAGE_SIZE', `usage sweep of ${buf.length} bytes is not a multiple of ${PT_TASK_USAGE_SIZE}`);
  }
  // CPU summed as a number (a bigint add allocates), converted once per group
  const groups = new Map<number, { g: ProcUsage; cpuNs: number }>();
  for (let off = 0; off < buf.length; off += PT_TASK_USAGE_SIZE) {
    const pid = buf.readUInt32LE(off + U.pid);
    const flags = buf.readUInt32LE(off + U.flags);
    const leader = (flags & PT_USAGE_LEADER) !== 0;
    let acc = groups.get(pid);
    if (!acc) {
      acc = { g: {
        pid, ppid: 0, startNs: u64b(buf, off + U.start), cgroupId: 0n, comm: cstrText(buf, off + U.comm, U.commLen), cpuNs: 0n,
        readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0, minflt: 0, majflt: 0,
        rssBytes: 0, peakRssBytes: 0, threads: 0, kthread: false, zombie: false,
      }, cpuNs: 0 };
      groups.set(pid, acc);
    } else if (leader) {
      acc.g.comm = cstrText(buf, off + U.comm, U.commLen);
    }
    const g = acc.g;
    g.threads++;
    acc.cpuNs += u64n(buf, off + U.cpu);
    g.readBytes += u64n(buf, off + U.read);
    g.writeBytes += u64n(buf, off + U.write);
    g.rchar += u64n(buf, off + U.rchar);
    g.wchar += u64n(buf, off + U.wchar);
    g.minflt += u64n(buf, off + U.minflt);
    g.majflt += u64n(buf, off + U.majflt);
    if (flags & PT_USAGE_KTHREAD) g.kthread = true;
    if (leader) {
      g.ppid = buf.readUInt32LE(off + U.ppid);
      g.cgroupId = u64b(buf, off + U.cgroup);
      g.rssBytes = u64n(buf, off + U.rss) * 1024;
      g.peakRssBytes = u64n(buf, off + U.hiwater) * 1024;
      g.zombie = (flags & PT_USAGE_ZOMBIE) !== 0;
    }
  }
  const out: ProcUsage[] = [];
  for (const { g, cpuNs } of groups.values()) {
    g.cpuNs = BigInt(cpuNs);
    out.push(g);
  }
  return out;
}
