// Bootstrap snapshot: the task iterator writes pt_task_snap records back to back.
import type { KText } from '../shared/events.js';
import { PT_TASK_SNAP_SIZE, readPtTaskSnap } from './generated/lifecycle.js';
import { WireError } from './errors.js';

export interface TaskSnap {
  pid: number;
  ppid: number;
  startNs: bigint;
  parentStartNs: bigint;
  cgroupId: bigint;
  cpuNs: bigint;
  uid: number;
  /** task __state of the leader */
  state: number;
  /** EXIT_ZOMBIE (32) for a zombie */
  exitState: number;
  nrThreads: number;
  comm: KText;
}

export function decodeTaskSnaps(buf: Buffer): TaskSnap[] {
  if (buf.length % PT_TASK_SNAP_SIZE !== 0) {
    throw new WireError('E_WIRE_SNAPSHOT_SIZE', `task snapshot of ${buf.length} bytes is not a multiple of ${PT_TASK_SNAP_SIZE}`);
  }
  const out: TaskSnap[] = [];
  for (let off = 0; off < buf.length; off += PT_TASK_SNAP_SIZE) {
    const s = readPtTaskSnap(buf, off);
    out.push({
      pid: s.pid,
      ppid: s.ppid,
      startNs: s.startNs,
      parentStartNs: s.parentStartNs,
      cgroupId: s.cgroupId,
      cpuNs: s.cpuNs,
      uid: s.uid,
      state: s.state,
      exitState: s.exitState,
      nrThreads: s.nrThreads,
      comm: s.comm,
    });
  }
  return out;
}
