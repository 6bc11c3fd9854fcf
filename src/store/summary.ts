// ExitEvent + what the process table knows → the summary the store keeps.
import type { ExitEvent } from '../shared/events.js';
import type { Enriched, ProcessEntry } from '../process/index.js';
import type { ExitSummary } from './types.js';
import { DOUBLE_ZERO } from '../shared/numbers.js';

/** What a summary reads of the table's enrichment: an Enriched, or a copy of these fields. */
export type ExitEnrichment = Pick<Enriched, 'execId' | 'parentExecId' | 'ppid' | 'comm' | 'durationNs' | 'zombieNs'> & {
  entry: Pick<ProcessEntry, 'filename' | 'argv' | 'argsRedacted' | 'uid' | 'cgroupId' | 'startNs'>;
};

/** The summary of a process exit, from the exit event and the table's enrichment of it. With
 *  `into`, that object is filled and returned instead of a new one: Store.recordExit copies what
 *  it is given, so a caller recording exit after exit can reuse one summary (the agent does). */
export function exitSummary(ev: ExitEvent, en: ExitEnrichment, into: ExitSummary = blankSummary()): ExitSummary {
  const e = en.entry;
  const u = ev.usage;
  const s = into;
  s.execId = en.execId;
  s.pid = ev.pid;
  s.ppid = en.ppid;
  s.parentExecId = en.parentExecId;
  s.comm = en.comm;
  s.filename = e.filename;
  s.args = e.argv === null ? null : e.argv.map((k) => k.text);
  s.argsRedacted = e.argsRedacted;
  s.uid = e.uid;
  s.cgroupId = e.cgroupId;
  s.startNs = e.startNs;
  s.exitNs = ev.ktimeNs;
  s.durationNs = en.durationNs ?? ev.ktimeNs - e.startNs;
  s.exitCode = ev.exitCode;
  s.signal = ev.signal;
  s.coreDumped = ev.coreDumped;
  s.cpuNs = u.cpuNs;
  s.utimeNs = u.utimeNs;
  s.stimeNs = u.stimeNs;
  s.maxRssKb = u.maxRssKb;
  s.readBytes = u.readBytes;
  s.writeBytes = u.writeBytes;
  s.minflt = u.minflt;
  s.majflt = u.majflt;
  // known when the reap came with the exit (the agent's exit batch pairs them); else set later
  s.zombieNs = en.zombieNs ?? null;
  s.recordedAt = undefined;
  return s;
}

/** An empty summary, every field present (one shape for all of them; counters as doubles from the
 *  start, src/shared/numbers.ts). */
export function blankSummary(): ExitSummary {
  return {
    execId: '', pid: 0, ppid: 0, parentExecId: null, comm: '', filename: null, args: null, argsRedacted: false, uid: null, cgroupId: null,
    startNs: 0n, exitNs: 0n, durationNs: 0n, exitCode: null, signal: null, coreDumped: false, cpuNs: DOUBLE_ZERO, utimeNs: DOUBLE_ZERO, stimeNs: DOUBLE_ZERO, maxRssKb: DOUBLE_ZERO,
    readBytes: DOUBLE_ZERO, writeBytes: DOUBLE_ZERO, minflt: DOUBLE_ZERO, majflt: DOUBLE_ZERO, zombieNs: null, recordedAt: undefined,
  };
}
