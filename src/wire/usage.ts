// The live resource sweep: usage_tasks writes one pt_task_usage per task; a group's totals are
// the sum of its tasks (the leader's record carries exited threads and the memory figures).
import type { ProcUsage } from '../shared/usage.js';
import { PT_TASK_USAGE_SIZE, PT_USAGE_KTHREAD, PT_USAGE_LEADER, PT_USAGE_ZOMBIE, readPtTaskUsage } from './generated/lifecycle.js';
import { WireError } from './errors.js';

export function decodeUsageSweep(buf: Buffer): ProcUsage[] {
  if (buf.length % PT_TASK_USAGE_SIZE !== 0) {
    throw new WireError('E_WIRE_USAGE_SIZE', `usage sweep of ${buf.length} bytes is not a multiple of ${PT_TASK_USAGE_SIZE}`);
  }
  const groups = new Map<number, ProcUsage>();
  for (let off = 0; off < buf.length; off += PT_TASK_USAGE_SIZE) {
    const r = readPtTaskUsage(buf, off);
    let g = groups.get(r.pid);
    if (!g) {
      g = {
        pid: r.pid, ppid: 0, startNs: r.startNs, cgroupId: 0n, comm: r.comm, cpuNs: 0n,
        readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0, minflt: 0, majflt: 0,
        rssBytes: 0, peakRssBytes: 0, threads: 0, kthread: false, zombie: false,
      };
      groups.set(r.pid, g);
    }
    g.threads++;
    g.cpuNs += r.cpuNs;
    g.readBytes += Number(r.readBytes);
    g.writeBytes += Number(r.writeBytes);
    g.rchar += Number(r.rchar);
    g.wchar += Number(r.wchar);
    g.minflt += Number(r.minflt);
    g.majflt += Number(r.majflt);
    if (r.flags & PT_USAGE_KTHREAD) g.kthread = true;
    if (r.flags & PT_USAGE_LEADER) {
      g.ppid = r.ppid;
      g.cgroupId = r.cgroupId;
      g.comm = r.comm;
      g.rssBytes = Number(r.rssKb) * 1024;
      g.peakRssBytes = Number(r.hiwaterKb) * 1024;
      g.zombie = (r.flags & PT_USAGE_ZOMBIE) !== 0;
    }
  }
  return [...groups.values()];
}
