// What a rule can name: the fields each source provides, the process facts of the joined process,
// and the window/history figures (functions of a duration). Types drive literal conversion at
// load time and formatting in explanations.
import { parseDuration, type FieldType } from './units.js';

export const SOURCES = ['kmsg', 'log', 'exec', 'exit', 'exec_failed', 'reap', 'state', 'check'] as const;
export type SourceKind = (typeof SOURCES)[number];

/** Sources whose events carry an exec_id: the process join is implicit. */
export const PROCESS_SOURCES: ReadonlySet<SourceKind> = new Set(['exec', 'exit', 'exec_failed', 'reap', 'state']);

export const SOURCE_FIELDS: Record<SourceKind, Record<string, FieldType>> = {
  kmsg: { line: 'string', level: 'int', facility: 'int', seq: 'int' },
  log: { line: 'string', file: 'string' },
  exec: { pid: 'int', ppid: 'int', comm: 'string', filename: 'string', args: 'string' },
  exit: {
    pid: 'int', ppid: 'int', comm: 'string', exit_code: 'int', signal: 'int', signal_name: 'string', core_dumped: 'bool',
    failed: 'bool', max_rss: 'bytes', duration: 'duration', write_bytes: 'bytes', read_bytes: 'bytes',
  },
  exec_failed: { pid: 'int', comm: 'string', filename: 'string', errno: 'int' },
  reap: { pid: 'int', zombie: 'duration' },
  state: { pid: 'int', tid: 'int', comm: 'string', from: 'string', to: 'string', state_duration: 'duration', reason: 'string' },
  check: { check: 'string', state: 'string', alert_id: 'string' },
};

/** Facts of the process the event is joined to (implicit for lifecycle/state, `process: FIELD` otherwise). */
export const PROC_FIELDS: Record<string, FieldType> = {
  'proc.exec_id': 'string',
  'proc.pid': 'int',
  'proc.ppid': 'int',
  'proc.comm': 'string',
  'proc.args': 'string',
  'proc.cgroup': 'string',
  'proc.exit_code': 'int',
  'proc.signal': 'int',
  'proc.parent_comm': 'string',
  'proc.parent_exec_id': 'string',
  /** comms of the ancestors, parent first, joined by " ← "; `contains` tests one of them */
  'proc.ancestry': 'string',
  'proc.age': 'duration',
  'proc.max_rss': 'bytes',
};

/** Figures over a window ending at the event: `window.rss_growth(5m)`. */
export const WINDOW_FUNCS: Record<string, { type: FieldType; needsProc: boolean; doc: string }> = {
  'window.rss_growth': { type: 'bytes', needsProc: true, doc: 'RSS at the end of the window minus RSS at its start (or the first sample)' },
  'window.rss_first': { type: 'bytes', needsProc: true, doc: 'first RSS sample in the window' },
  'window.rss_max': { type: 'bytes', needsProc: true, doc: 'largest RSS sample in the window (or max RSS at exit)' },
  'history.failures': { type: 'int', needsProc: false, doc: 'non-zero exits of the same command (comm + filename) in the window, this one included' },
  'history.execs_by_parent': { type: 'int', needsProc: false, doc: 'execs whose parent is this event\'s parent, in the window' },
  'history.top_writer_bytes': { type: 'bytes', needsProc: false, doc: 'bytes written by the heaviest writer among processes that exited in the window' },
};

/** Figures about the node now. */
export const NOW_FIELDS: Record<string, FieldType> = {
  'zombies.count': 'int',
  'zombies.top_parent_count': 'int',
  'zombies.top_parent_comm': 'string',
  'stuck_d.count': 'int',
  'stuck_d.longest': 'duration',
};

export const EVIDENCE_KINDS = ['line', 'event', 'process', 'ancestry', 'rss', 'exit', 'failures', 'children', 'zombies', 'stuck_d', 'top_writers', 'check'] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

export interface FieldRef {
  /** as written: `pid`, `proc.comm`, `window.rss_growth(5m)` */
  name: string;
  type: FieldType;
  /** function name for window/history refs */
  fn?: string;
  /** window length, ms */
  windowMs?: number;
  needsProc: boolean;
  /** a history count compared with a constant: the comparison needs the count only up to here
   *  (tree.ts compareTest), so the history stops counting there */
  countLimit?: number;
}

/** Resolves a field name against a rule's captures and source. A string is the reason it is unknown. */
export function resolveField(name: string, source: SourceKind, captures: ReadonlyMap<string, FieldType>): FieldRef | string {
  const cap = captures.get(name);
  if (cap) return { name, type: cap, needsProc: false };
  const sf = SOURCE_FIELDS[source][name];
  if (sf) return { name, type: sf, needsProc: false };
  if (name === 'exec_id') return { name, type: 'string', needsProc: true };
  const pf = PROC_FIELDS[name];
  if (pf) return { name, type: pf, needsProc: true };
  const nf = NOW_FIELDS[name];
  if (nf) return { name, type: nf, needsProc: false };
  const m = /^((?:window|history)\.[a-z_]+)\(([^)]*)\)$/.exec(name);
  if (m) {
    const fn = WINDOW_FUNCS[m[1]!];
    if (!fn) return `unknown figure ${m[1]}(); known: ${Object.keys(WINDOW_FUNCS).join(', ')}`;
    const ms = parseDuration(m[2]!);
    if (ms === null || ms <= 0 || ms > 86_400_000) return `${m[1]}() takes a window from 1ms to 24h, e.g. ${m[1]}(5m)`;
    return { name, type: fn.type, fn: m[1]!, windowMs: ms, needsProc: fn.needsProc };
  }
  if (/^(?:window|history)\.[a-z_]+$/.test(name) && WINDOW_FUNCS[name]) return `${name} needs a window: ${name}(5m)`;
  const known = [...captures.keys(), ...Object.keys(SOURCE_FIELDS[source])];
  return `unknown field '${name}'; this rule has ${known.length ? known.join(', ') : 'no fields'}, plus exec_id, proc.*, window.*(D), history.*(D), zombies.*, stuck_d.*`;
}
