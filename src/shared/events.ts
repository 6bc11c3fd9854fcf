// Decoded lifecycle events: what src/wire produces and every later stage consumes.
// Kernel u64 values that can pass 2^53 (ns since boot, sequence numbers, cgroup ids) are bigint.

export type EventType = 'exec' | 'fork' | 'exit' | 'reap' | 'exec_failed';

export const EVENT_TYPES: readonly EventType[] = ['exec', 'fork', 'exit', 'reap', 'exec_failed'];

/** Text from the kernel: `text` is UTF-8 with U+FFFD for invalid bytes; `raw` holds the exact
 *  bytes only when they were not valid UTF-8, so nothing is lost. */
export interface KText {
  text: string;
  raw?: Buffer;
}

export interface EventBase {
  type: EventType;
  /** CLOCK_BOOTTIME ns of the hook */
  ktimeNs: bigint;
  /** per-CPU sequence number */
  seq: bigint;
  cpu: number;
  flags: number;
}

export interface ExecEvent extends EventBase {
  type: 'exec';
  pid: number;
  oldTid: number;
  ppid: number;
  startNs: bigint;
  parentStartNs: bigint;
  cgroupId: bigint;
  uid: number;
  gid: number;
  euid: number;
  comm: KText;
  filename: KText;
  filenameTruncated: boolean;
  args: KText[];
  argsTruncated: boolean;
  /** argv could not be read from the new image (page not present) */
  argsFault: boolean;
  argsFullLen: number;
  /** low 32 bits of the task's exec counter: with pid and startNs, identifies this exec (how a
   *  record captured twice across a sensor reload is recognized); absent in old recordings */
  execSeq?: number;
  /** set when redaction (export.redact) masked part of args; args then hold the masked copy */
  argsRedacted?: boolean;
}

export interface ForkEvent extends EventBase {
  type: 'fork';
  pid: number;
  tid: number;
  startNs: bigint;
  ppid: number;
  parentTid: number;
  parentStartNs: bigint;
  comm: KText;
  thread: boolean;
}

/** The exit's resource totals. Numbers, not bigints: counters and sizes stay below 2^53 (ns of
 *  CPU time: 104 days; past that a double is still within a few ns), and a bigint per field
 *  would be an allocation per field per exit. */
export interface ExitUsage {
  cpuNs: number;
  utimeNs: number;
  stimeNs: number;
  maxRssKb: number;
  readBytes: number;
  writeBytes: number;
  rchar: number;
  wchar: number;
  minflt: number;
  majflt: number;
  nvcsw: number;
  nivcsw: number;
}

export interface ExitEvent extends EventBase {
  type: 'exit';
  pid: number;
  tid: number;
  ppid: number;
  startNs: bigint;
  /** raw wait status */
  status: number;
  /** exit code when exited normally, else null */
  exitCode: number | null;
  /** terminating signal, else null */
  signal: number | null;
  coreDumped: boolean;
  comm: KText;
  usage: ExitUsage;
}

export interface ReapEvent extends EventBase {
  type: 'reap';
  pid: number;
  startNs: bigint;
  /** ktime of the group exit as remembered in the kernel; 0n if unknown */
  exitNs: bigint;
}

export interface ExecFailedEvent extends EventBase {
  type: 'exec_failed';
  pid: number;
  tid: number;
  startNs: bigint;
  /** positive errno */
  errno: number;
  filename: KText;
  comm: KText;
  /** one step of a PATH search: the same task's next attempt named the same program
   *  (src/process/path-probe.ts); left out of failure counts by default */
  pathProbe?: boolean;
}

export type LifecycleEvent = ExecEvent | ForkEvent | ExitEvent | ReapEvent | ExecFailedEvent;

/** Per-event-type loss accounting. Identity: generated = captured + lostReserve + lostUserspace. */
export interface TypeAccounting {
  generated: bigint;
  captured: bigint;
  lostReserve: bigint;
  lostUserspace: bigint;
}

export type Accounting = Record<EventType, TypeAccounting>;

/** Scheduler state letters as ps shows them; X = gone (reaped). */
export type StateLetter = 'R' | 'S' | 'D' | 'T' | 'I' | 'P' | 'Z' | 'X';

/** A transition of interest from the state sensor. */
export interface StateEvent {
  type: 'state';
  ktimeNs: bigint;
  seq: bigint;
  cpu: number;
  pid: number;
  tid: number;
  startNs: bigint;
  from: StateLetter;
  to: StateLetter;
  /** time spent in `from` */
  durationNs: bigint;
  reason: 'd_long' | 'watched';
  comm: KText;
}

/** The state sensor's per-CPU budget ran out (start) or recovered (end). */
export interface ThrottleEvent {
  type: 'throttle';
  ktimeNs: bigint;
  seq: bigint;
  cpu: number;
  phase: 'start' | 'end';
  /** end: transitions suppressed while throttled */
  suppressed: bigint;
  budget: number;
}

export type StateStreamEvent = StateEvent | ThrottleEvent;

/** A failure, as `--failed` filters mean it: a non-zero exit, a death by signal, a failed exec. */
export function isFailure(ev: LifecycleEvent): boolean {
  // a PATH-search probe is a step of a search that went on, not a failure
  return (ev.type === 'exec_failed' && ev.pathProbe !== true) || (ev.type === 'exit' && (ev.signal !== null || ev.exitCode !== 0));
}
