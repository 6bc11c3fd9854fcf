// ExitEvent + what the process table knows → the summary the store keeps.
import type { ExitEvent } from '../shared/events.js';
import type { Enriched } from '../process/index.js';
import type { ExitSummary } from './types.js';

/** The summary of a process exit, from the exit event and the table's enrichment of it. */
export function exitSummary(ev: ExitEvent, en: Enriched): ExitSummary {
  const e = en.entry;
  const u = ev.usage;
  return {
    execId: en.execId,
    pid: ev.pid,
    ppid: en.ppid,
    parentExecId: en.parentExecId,
    comm: en.comm,
    filename: e.filename,
    args: e.args,
    argsRedacted: e.argsRedacted,
    uid: e.uid,
    cgroupId: e.cgroupId,
    startNs: e.startNs,
    exitNs: ev.ktimeNs,
    durationNs: en.durationNs ?? ev.ktimeNs - e.startNs,
    exitCode: ev.exitCode,
    signal: ev.signal,
    coreDumped: ev.coreDumped,
    cpuNs: u.cpuNs,
    utimeNs: u.utimeNs,
    stimeNs: u.stimeNs,
    maxRssKb: u.maxRssKb,
    readBytes: u.readBytes,
    writeBytes: u.writeBytes,
    minflt: u.minflt,
    majflt: u.majflt,
    zombieNs: null,
  };
}
