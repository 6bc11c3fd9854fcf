// ExitEvent + what the process table knows → the summary the store keeps.
import type { ExitEvent } from '../shared/events.js';
import type { Enriched, ProcessEntry } from '../process/index.js';
import type { ExitSummary } from './types.js';

/** What a summary reads of the table's enrichment: an Enriched, or a copy of these fields. */
export type ExitEnrichment = Pick<Enriched, 'execId' | 'parentExecId' | 'ppid' | 'comm' | 'durationNs'> & {
  entry: Pick<ProcessEntry, 'filename' | 'argv' | 'argsRedacted' | 'uid' | 'cgroupId' | 'startNs'>;
};

/** The summary of a process exit, from the exit event and the table's enrichment of it. */
export function exitSummary(ev: ExitEvent, en: ExitEnrichment): ExitSummary {
  const e = en.entry;
  const u = ev.usage;
  return {
    execId: en.execId,
    pid: ev.pid,
    ppid: en.ppid,
    parentExecId: en.parentExecId,
    comm: en.comm,
    filename: e.filename,
    args: e.argv === null ? null : e.argv.map((k) => k.text),
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
