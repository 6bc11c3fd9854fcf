// Minimal synchronous /proc reader for the process table. Synchronous on purpose: the table
// reads /proc only at bootstrap, when reparenting the live children of an exiting process,
// and when evicting under pressure, and each read is a few microseconds on a pseudo file.
import { readFileSync, readdirSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { PatrolError } from '../shared/errors.js';

/** USER_HZ: the unit of /proc/<pid>/stat times. 100 on every architecture Linux supports today. */
export const USER_HZ = 100;
/** One USER_HZ clock tick in ns (10 ms). */
export const NS_PER_TICK = 10_000_000n;

/** The fields of /proc/<pid>/stat the table needs. */
export interface ProcStat {
  pid: number;
  /** task comm as UTF-8 text (U+FFFD for invalid bytes) */
  comm: string;
  /** exact comm bytes, only when they were not valid UTF-8 */
  commRaw?: Buffer;
  /** one-letter state: R S D Z T t X I ... */
  state: string;
  ppid: number;
  /** field 22: start time in USER_HZ ticks since boot (CLOCK_BOOTTIME, truncated) */
  startTicks: number;
}

/** What the table reads from /proc. Injectable so tests never need a real /proc. */
export interface ProcFs {
  /** numeric entries of /proc (thread-group ids visible in our pid namespace) */
  listPids(): number[];
  /** null when the process is gone or the file cannot be parsed */
  readStat(pid: number): ProcStat | null;
  /** argv; [] for kernel threads and zombies; null when the process is gone */
  readCmdline(pid: number): string[] | null;
  /** real uid from /proc/<pid>/status; null when the process is gone */
  readUid(pid: number): number | null;
}

const RPAREN = 0x29;
const LPAREN = 0x28;
const SPACE = 0x20;

/** Parse the content of /proc/<pid>/stat. comm sits between the first '(' and the LAST ')':
 *  it may itself contain ')', spaces and any byte but NUL, so everything after the last ')'
 *  is the space-separated field list starting at field 3 (state). */
export function parseStat(buf: Buffer): ProcStat | null {
  const open = buf.indexOf(LPAREN);
  const close = buf.lastIndexOf(RPAREN);
  if (open <= 0 || close < open) return null;
  const pid = Number.parseInt(buf.toString('latin1', 0, open).trim(), 10);
  const commBytes = buf.subarray(open + 1, close);
  // after ") " come fields 3.. (state is field 3, ppid 4, starttime 22)
  if (close + 1 >= buf.length || buf[close + 1] !== SPACE) return null;
  const rest = buf.toString('latin1', close + 2).trimEnd().split(' ');
  if (rest.length < 20) return null;
  const state = rest[0]!;
  const ppid = Number.parseInt(rest[1]!, 10);
  const startTicks = Number(rest[19]!);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isSafeInteger(startTicks)) return null;
  const st: ProcStat = { pid, comm: commBytes.toString('utf8'), state, ppid, startTicks };
  if (!isUtf8(commBytes)) st.commRaw = Buffer.from(commBytes);
  return st;
}

/** Split /proc/<pid>/cmdline (NUL-separated, normally NUL-terminated) into argv. */
export function parseCmdline(buf: Buffer): string[] {
  if (buf.length === 0) return [];
  const end = buf[buf.length - 1] === 0 ? buf.length - 1 : buf.length;
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i <= end; i++) {
    if (i === end || buf[i] === 0) {
      out.push(buf.toString('utf8', start, i));
      start = i + 1;
    }
  }
  return out;
}

/** Real uid from the "Uid:\treal\teffective\tsaved\tfs" line of /proc/<pid>/status. */
export function parseStatusUid(text: string): number | null {
  const at = text.indexOf('\nUid:');
  const from = at >= 0 ? at + 5 : text.startsWith('Uid:') ? 4 : -1;
  if (from < 0) return null;
  const m = /^\s*(\d+)/.exec(text.slice(from, from + 64));
  return m ? Number(m[1]) : null;
}

function readOrNull(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null; // ENOENT/ESRCH: the process is gone; EACCES: treat as unknown
  }
}

/** The real /proc (or a procfs mounted elsewhere). */
export class RealProcFs implements ProcFs {
  constructor(private readonly root = '/proc') {}

  listPids(): number[] {
    const out: number[] = [];
    for (const name of readdirSync(this.root)) {
      const c = name.charCodeAt(0);
      if (c >= 0x30 && c <= 0x39) {
        const pid = Number(name);
        if (Number.isInteger(pid)) out.push(pid);
      }
    }
    return out;
  }

  readStat(pid: number): ProcStat | null {
    const buf = readOrNull(`${this.root}/${pid}/stat`);
    return buf ? parseStat(buf) : null;
  }

  readCmdline(pid: number): string[] | null {
    const buf = readOrNull(`${this.root}/${pid}/cmdline`);
    return buf ? parseCmdline(buf) : null;
  }

  readUid(pid: number): number | null {
    const buf = readOrNull(`${this.root}/${pid}/status`);
    return buf ? parseStatusUid(buf.toString('latin1')) : null;
  }
}

/** CLOCK_BOOTTIME in ns, read from /proc/uptime (10 ms resolution; the kernel computes it from
 *  the boottime clock, so it keeps counting across suspend like bpf_ktime_get_boot_ns). Node
 *  has no clock_gettime(CLOCK_BOOTTIME); the table only needs this for grace-period sweeps. */
export function readUptimeNs(path = '/proc/uptime'): bigint {
  const text = readFileSync(path, 'latin1');
  const m = /^(\d+)\.(\d+)/.exec(text);
  if (!m) throw new PatrolError('E_PROC_UPTIME', `cannot parse ${path}: ${JSON.stringify(text.slice(0, 40))}`);
  const frac = m[2]!.padEnd(9, '0').slice(0, 9);
  return BigInt(m[1]!) * 1_000_000_000n + BigInt(frac);
}
