// The human log format (log.format: pretty): one pino record as lines for a terminal. Log
// records carry text from processes (comm, filenames, argv, cgroup paths, unit names, alert
// messages built from them), so every string, key and message goes through term(): a process
// named `\e[2J…` cannot clear the operator's screen, and a newline in a field cannot forge a log
// line. The JSON format stays lossless (JSON escapes what it must; the bytes are all there).
//
//   [08:24:22.618] WARN: check alert: workers is critical
//       alert_id: "3f2a…"
//       comm: "\x1b[2Jevil"
//
// Strings are quoted (so a value's end is visible), numbers and booleans bare, objects and arrays
// inline; an `err` with a stack prints the stack indented below, one escaped line per frame.
import { term } from './terminal.js';

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '34' },
  30: { name: 'INFO', color: '32' },
  40: { name: 'WARN', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '41' },
};

/** Nesting beyond this prints as `…` (log fields are shallow; a cycle cannot come from JSON). */
const MAX_DEPTH = 6;

function quote(s: string): string {
  // term() doubles backslashes only when it escaped something; quoted, they always are, and so
  // is `"`, so a value's end can never be forged
  const t = term(s);
  return `"${(t === s ? s.replace(/\\/g, '\\\\') : t).replace(/"/g, '\\"')}"`;
}

function value(v: unknown, depth: number): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (depth >= MAX_DEPTH) return '…';
  if (Array.isArray(v)) return `[${v.map((x) => value(x, depth + 1)).join(', ')}]`;
  if (typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${key(k)}: ${value(x, depth + 1)}`);
    return `{${parts.join(', ')}}`;
  }
  return quote(String(v));
}

const key = (k: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : quote(k));

const pad2 = (n: number) => String(n).padStart(2, '0');

function clock(ms: number): string {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** One pino record (parsed JSON) → the lines a person reads, ending with a newline. */
export function formatPretty(rec: Record<string, unknown>, colorize = false): string {
  const { level, time, msg, err, ...rest } = rec;
  const lv = LEVELS[level as number] ?? { name: typeof level === 'string' ? term(level) : String(level), color: '0' };
  const paint = (code: string, s: string) => (colorize ? `\x1b[${code}m${s}\x1b[39m` : s);
  let out = `[${clock(typeof time === 'number' ? time : Date.now())}] ${paint(lv.color, lv.name)}:`;
  if (msg !== undefined) out += ` ${paint('36', term(typeof msg === 'string' ? msg : String(msg)))}`;
  out += '\n';
  for (const [k, v] of Object.entries(rest)) out += `    ${paint('35', key(k))}: ${value(v, 0)}\n`;
  if (err !== undefined) {
    const e = err as { stack?: unknown };
    if (typeof err === 'object' && err !== null && typeof e.stack === 'string') {
      out += `    ${paint('35', 'err')}:\n`;
      for (const line of e.stack.split('\n')) out += `        ${term(line)}\n`;
    } else out += `    ${paint('35', 'err')}: ${value(err, 0)}\n`;
  }
  return out;
}

/** A pino destination (anything with write(line)) that prints the human format to `write`. */
export function prettyDestination(write: (s: string) => void, colorize: boolean): { write(line: string): void } {
  return {
    write(line: string) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        write(term(line.replace(/\n$/, '')) + '\n');
        return;
      }
      write(formatPretty(rec, colorize));
    },
  };
}
