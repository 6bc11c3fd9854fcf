// NDJSON schema of `patrol trace --json` and the agent's event stream. Field names are a
// contract (docs/ndjson.md): add fields, never rename or retype them.
import type { KText, LifecycleEvent, StateStreamEvent } from '../shared/events.js';
import type { Enriched, ProcessIdentity } from '../process/index.js';

export const SCHEMA_VERSION = 1;

export interface TimeSource {
  iso(ktimeNs: bigint): string;
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 8: 'ENOEXEC', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 26: 'ETXTBSY', 36: 'ENAMETOOLONG', 40: 'ELOOP',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

type Json = Record<string, unknown>;

/** Adds `<name>_raw` (base64 of the exact bytes) only when the text was not valid UTF-8. */
function raw(o: Json, name: string, k: KText | undefined): void {
  if (k?.raw) o[`${name}_raw`] = k.raw.toString('base64');
}

const num = (v: bigint | undefined | null): number | null => (v === undefined || v === null ? null : Number(v));

export function eventRecord(ev: LifecycleEvent, en: Enriched, clock: TimeSource): Json {
  const o: Json = {
    type: ev.type,
    time: clock.iso(ev.ktimeNs),
    ktime_ns: ev.ktimeNs.toString(),
    exec_id: en.execId,
    parent_exec_id: en.parentExecId,
    pid: ev.pid,
    ppid: en.ppid,
    uid: en.entry.uid,
    comm: en.comm,
    filename: en.entry.filename,
    args: en.entry.args,
    args_truncated: en.entry.argsTruncated,
    exit_code: null,
    signal: null,
    duration_ns: num(en.durationNs),
    zombie_ns: num(en.zombieNs),
  };
  if (en.entry.argsRedacted) o.args_redacted = true;
  const id = en.entry.identity;
  if (id !== null) identityFields(o, id);
  switch (ev.type) {
    case 'exec':
      o.tid = ev.oldTid;
      o.gid = ev.gid;
      o.euid = ev.euid;
      o.cgroup_id = ev.cgroupId.toString();
      o.args_full_len = ev.argsFullLen;
      o.filename_truncated = ev.filenameTruncated;
      if (ev.argsFault) o.args_fault = true;
      raw(o, 'comm', ev.comm);
      raw(o, 'filename', ev.filename);
      if (ev.args.some((a) => a.raw)) o.args_raw = ev.args.map((a) => (a.raw ? a.raw.toString('base64') : null));
      break;
    case 'fork':
      o.tid = ev.tid;
      o.thread = ev.thread;
      o.parent_tid = ev.parentTid;
      raw(o, 'comm', ev.comm);
      break;
    case 'exit':
      o.tid = ev.tid;
      o.exit_code = ev.exitCode;
      o.signal = ev.signal;
      o.core_dumped = ev.coreDumped;
      o.status = ev.status;
      o.usage = {
        cpu_ns: Number(ev.usage.cpuNs),
        utime_ns: Number(ev.usage.utimeNs),
        stime_ns: Number(ev.usage.stimeNs),
        max_rss_kb: ev.usage.maxRssKb,
        read_bytes: Number(ev.usage.readBytes),
        write_bytes: Number(ev.usage.writeBytes),
        rchar: Number(ev.usage.rchar),
        wchar: Number(ev.usage.wchar),
        minflt: Number(ev.usage.minflt),
        majflt: Number(ev.usage.majflt),
        nvcsw: Number(ev.usage.nvcsw),
        nivcsw: Number(ev.usage.nivcsw),
      };
      raw(o, 'comm', ev.comm);
      break;
    case 'reap':
      break;
    case 'exec_failed':
      o.tid = ev.tid;
      o.errno = ev.errno;
      o.error = errnoName(ev.errno);
      o.filename = ev.filename.text;
      raw(o, 'filename', ev.filename);
      o.path_probe = ev.pathProbe === true;
      break;
  }
  return o;
}

/** What the cgroup path proves (src/process/identity.ts), as record fields; absent when unknown. */
export function identityFields(o: Json, id: ProcessIdentity): void {
  o.cgroup = id.cgroup;
  if (id.unit !== undefined) o.unit = id.unit;
  if (id.containerRuntime !== undefined) o.container_runtime = id.containerRuntime;
  if (id.containerId !== undefined) o.container_id = id.containerId;
  if (id.podUid !== undefined) o.pod_uid = id.podUid;
  if (id.podQos !== undefined) o.pod_qos = id.podQos;
  // from the CRI socket, once it answered (src/process/cri-identity.ts)
  if (id.podName !== undefined) o.pod_name = id.podName;
  if (id.podNamespace !== undefined) o.pod_namespace = id.podNamespace;
  if (id.containerName !== undefined) o.container_name = id.containerName;
  if (id.image !== undefined) o.image = id.image;
}

export function toLine(o: Json): string {
  return JSON.stringify(o) + '\n';
}

export interface SummaryInput {
  perType: Record<string, { generated: bigint; captured: bigint; lostReserve: bigint; lostUserspace: bigint }>;
  identityHolds: boolean;
  seqGaps: bigint;
  malformed: number;
  threadExits: bigint;
  threadForks: bigint;
  shown: number;
  elapsedMs: number;
}

/** The last record of a stream: per-type accounting, so a consumer can check the identity. */
export function summaryRecord(s: SummaryInput, timeIso: string): Json {
  const pick = (f: (t: SummaryInput['perType'][string]) => bigint) =>
    Object.fromEntries(Object.entries(s.perType).map(([k, v]) => [k, Number(f(v))]));
  const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  const generated = pick((t) => t.generated);
  const captured = pick((t) => t.captured);
  const lost = pick((t) => t.lostReserve + t.lostUserspace);
  return {
    type: 'summary',
    time: timeIso,
    elapsed_ms: Math.round(s.elapsedMs),
    generated,
    captured,
    lost,
    lost_reserve: pick((t) => t.lostReserve),
    lost_userspace: pick((t) => t.lostUserspace),
    totals: { generated: sum(generated), captured: sum(captured), lost: sum(lost) },
    identity_holds: s.identityHolds,
    seq_gaps: Number(s.seqGaps),
    malformed: s.malformed,
    thread_exits: Number(s.threadExits),
    thread_forks: Number(s.threadForks),
    shown: s.shown,
  };
}

/** A state record (transition of interest) or a throttle record of the state sensor. */
export function stateRecord(ev: StateStreamEvent, execId: string | null, clock: TimeSource): Json {
  if (ev.type === 'throttle') {
    return {
      type: 'throttle',
      time: clock.iso(ev.ktimeNs),
      ktime_ns: ev.ktimeNs.toString(),
      cpu: ev.cpu,
      phase: ev.phase,
      suppressed: Number(ev.suppressed),
      budget: ev.budget,
    };
  }
  const o: Json = {
    type: 'state',
    time: clock.iso(ev.ktimeNs),
    ktime_ns: ev.ktimeNs.toString(),
    exec_id: execId,
    pid: ev.pid,
    tid: ev.tid,
    comm: ev.comm.text,
    from: ev.from,
    to: ev.to,
    duration_ns: Number(ev.durationNs),
    reason: ev.reason,
  };
  raw(o, 'comm', ev.comm);
  return o;
}
