// Human-readable lines for `patrol trace` and `patrol events`.
import type { LifecycleEvent, StateStreamEvent } from '../shared/events.js';
import type { Enriched } from '../process/index.js';
import { errnoName } from '../export/index.js';
import { TERM_UNSAFE, term, termText, utf8SeqLen } from '../shared/terminal.js';

export const HEADER = `${'TIME'.padEnd(13)} ${'EVENT'.padEnd(11)} ${'PID'.padEnd(7)} ${'PPID'.padEnd(7)} ${'COMM'.padEnd(16)} DETAILS`;

export function fmtNs(ns: bigint | number | null | undefined): string {
  if (ns === null || ns === undefined) return '?';
  const n = Number(ns);
  if (n < 1_000) return `${n}ns`;
  if (n < 1_000_000) return `${(n / 1_000).toFixed(1)}us`;
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(1)}ms`;
  if (n < 120_000_000_000) return `${(n / 1_000_000_000).toFixed(2)}s`;
  return `${(n / 60_000_000_000).toFixed(1)}m`;
}

export function fmtBytes(b: number): string {
  if (b < 1024) return `${b}B`;
  if (b < 1 << 20) return `${(b / 1024).toFixed(1)}KB`;
  if (b < 1 << 30) return `${(b / (1 << 20)).toFixed(1)}MB`;
  return `${(b / (1 << 30)).toFixed(2)}GB`;
}

export function localTime(epochMs: number): string {
  const d = new Date(epochMs);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Quote an argument only when a shell would need it, so lines stay copy-pasteable. */
export function shellQuote(a: string): string {
  // Control characters (and C1, bidi overrides, invalid UTF-8) would reach the terminal or
  // break the one-line-per-event layout: use bash's $'..' escapes.
  if (term(a) !== a) {
    return `$'${a.replace(/[\\']/g, (c) => `\\${c}`).replace(TERM_UNSAFE, (c) => {
      const cp = c.charCodeAt(0);
      return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
    })}'`;
  }
  return a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a;
}

/** shellQuote for an argument whose bytes were not UTF-8: bash's $'..' with each byte of an
 *  invalid sequence as \xHH, so the line shows (and, pasted, passes) the very bytes. */
export function shellQuoteRaw(text: string, raw: Uint8Array | null | undefined): string {
  if (!raw) return shellQuote(text);
  let out = '';
  const dec = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < raw.length; ) {
    const n = utf8SeqLen(raw, i);
    if (n === 0) {
      out += `\\x${raw[i]!.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    const ch = dec.decode(raw.subarray(i, i + n));
    out += ch === '\\' || ch === "'" ? `\\${ch}` : ch.replace(TERM_UNSAFE, (c) => {
      const cp = c.charCodeAt(0);
      return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
    });
    i += n;
  }
  return `$'${out}'`;
}

/** An argv (text, and raw bytes where they were not UTF-8) as a copy-pasteable command line. */
export function argvText(args: readonly string[], raw?: readonly (Uint8Array | null | undefined)[] | null): string {
  return args.map((a, i) => shellQuoteRaw(a, raw?.[i])).join(' ');
}

function details(ev: LifecycleEvent, en: Enriched): string {
  switch (ev.type) {
    case 'exec': {
      const argv = en.entry.argv ?? [];
      return argvText(argv.map((a) => a.text), argv.map((a) => a.raw)) + (ev.argsTruncated ? ' [truncated]' : '');
    }
    case 'fork':
      return ev.thread ? `thread tid=${ev.tid}` : `from ${ev.ppid}`;
    case 'exit': {
      const how = ev.signal !== null ? `signal=${ev.signal}${ev.coreDumped ? ' (core)' : ''}` : `code=${ev.exitCode}`;
      return `${how} dur=${fmtNs(en.durationNs)} cpu=${fmtNs(ev.usage.cpuNs)} rss=${fmtBytes(ev.usage.maxRssKb * 1024)}`;
    }
    case 'reap':
      return `zombie=${fmtNs(en.zombieNs)}`;
    case 'exec_failed':
      return `${errnoName(ev.errno)} ${termText(ev.filename)}`;
  }
}

export function humanLine(ev: LifecycleEvent, en: Enriched, epochMs: number): string {
  return `${localTime(epochMs).padEnd(13)} ${ev.type.padEnd(11)} ${String(ev.pid).padEnd(7)} ${String(en.ppid).padEnd(7)} ${term(en.comm).padEnd(16)} ${details(ev, en)}`;
}

/** A state or throttle record of the state sensor, in the trace layout. */
export function stateLine(ev: StateStreamEvent, ppid: number, epochMs: number): string {
  const t = localTime(epochMs).padEnd(13);
  if (ev.type === 'throttle') {
    const what = ev.phase === 'start' ? `budget of ${ev.budget}/s spent on cpu ${ev.cpu}: transitions counted, not sent` : `${ev.suppressed} transitions were suppressed`;
    return `${t} ${'throttle'.padEnd(11)} ${'-'.padEnd(7)} ${'-'.padEnd(7)} ${'-'.padEnd(16)} ${what}`;
  }
  const who = ev.tid !== ev.pid ? ` tid=${ev.tid}` : '';
  return `${t} ${'state'.padEnd(11)} ${String(ev.pid).padEnd(7)} ${String(ppid).padEnd(7)} ${termText(ev.comm).padEnd(16)} ${ev.from}→${ev.to} after ${fmtNs(ev.durationNs)}${who}${ev.reason === 'd_long' ? ' (long D)' : ''}`;
}
