// /dev/kmsg: one record per read(2), "pri,seq,usec,flags[,…];message\n" followed by optional
// " KEY=value" continuation lines. Opened read-only and non-blocking; EAGAIN means caught up,
// EPIPE means the ring overwrote records we had not read yet (the next read resumes at the
// oldest record still there; the gap is visible in the sequence numbers).
import { closeSync, openSync, readSync, constants } from 'node:fs';

export interface KmsgRecord {
  /** syslog level 0 (emerg) … 7 (debug) */
  level: number;
  facility: number;
  seq: bigint;
  /** the kernel's timestamp: local_clock() µs, i.e. monotonic since boot */
  usec: bigint;
  /** usec as CLOCK_BOOTTIME ns (equal unless the machine was suspended; see docs/rules.md) */
  tNs: bigint;
  /** 'c' (continuation) or '-' */
  flags: string;
  message: string;
  /** " SUBSYSTEM=…", " DEVICE=…" dictionary lines */
  dict: Record<string, string>;
}

/** Decodes kmsg's escaping: non-printable bytes are written as \xNN. */
function unescape(s: string): string {
  return s.includes('\\x') ? s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))) : s;
}

/** Parses one record; null for text that is not one. */
export function parseKmsgRecord(text: string): KmsgRecord | null {
  const semi = text.indexOf(';');
  if (semi < 0) return null;
  const head = text.slice(0, semi).split(',');
  if (head.length < 4) return null;
  const [pri, seq, usec, flags] = head as [string, string, string, string];
  if (!/^\d+$/.test(pri) || !/^\d+$/.test(seq) || !/^\d+$/.test(usec)) return null;
  const body = text.slice(semi + 1);
  const lines = body.split('\n');
  const message = unescape(lines[0] ?? '');
  const dict: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    if (!l.startsWith(' ')) continue;
    const eq = l.indexOf('=');
    if (eq > 1) dict[l.slice(1, eq)] = unescape(l.slice(eq + 1));
  }
  const p = Number(pri);
  const us = BigInt(usec);
  return { level: p & 7, facility: p >> 3, seq: BigInt(seq), usec: us, tNs: us * 1000n, flags, message, dict };
}

export interface KmsgStats {
  records: number;
  /** EPIPE: records overwritten before we read them */
  overruns: number;
  /** sequence numbers skipped (overwritten records) */
  missed: number;
  malformed: number;
  /** unexpected read errors (the reader keeps polling) */
  errors: number;
}

export interface KmsgReaderOptions {
  path?: string;
  /** skip records older than this boottime ns (the backlog from before start) */
  sinceNs?: bigint;
  /** poll period, ms (default 200) */
  intervalMs?: number;
  /** readiness probe of the fd (src/app passes the addon's poll); without it, every poll reads */
  readable?: (fd: number) => boolean;
  /** calls `onReadable` whenever the fd has records (src/app passes the addon's libuv poll
   *  handle): the reader then runs only when the kernel logged something, and has no timer */
  watch?: (fd: number, onReadable: () => void) => { close(): void };
}

/** Polls /dev/kmsg (read-only, O_NONBLOCK) and hands each record to `onRecord`. */
export class KmsgReader {
  readonly stats: KmsgStats = { records: 0, overruns: 0, missed: 0, malformed: 0, errors: 0 };
  private fd: number;
  private timer: NodeJS.Timeout | null = null;
  private watcher: { close(): void } | null = null;
  private readonly buf = Buffer.allocUnsafe(16384);
  private lastSeq: bigint | null = null;

  constructor(
    private readonly onRecord: (r: KmsgRecord) => void,
    private readonly opts: KmsgReaderOptions = {},
  ) {
    this.fd = openSync(opts.path ?? '/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  }

  start(): this {
    const tick = () => {
      try {
        this.poll();
      } catch {
        this.stats.errors++; // never let a timer callback throw into the agent
      }
    };
    tick();
    if (this.opts.watch && this.fd >= 0) {
      try {
        this.watcher = this.opts.watch(this.fd, tick);
        return this;
      } catch {
        this.stats.errors++; // fall back to polling on a timer
      }
    }
    this.timer = setInterval(tick, this.opts.intervalMs ?? 200);
    this.timer.unref();
    return this;
  }

  /** Reads every record available now. */
  poll(): number {
    let n = 0;
    // Nothing new (nearly every poll): skip the read, whose EAGAIN would be thrown.
    if (this.fd >= 0 && this.opts.readable && !this.opts.readable(this.fd)) return 0;
    for (;;) {
      let len: number;
      try {
        len = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return n;
        if (code === 'EPIPE') {
          this.stats.overruns++;
          continue;
        }
        if (code === 'EBADF') return n; // closed
        throw e;
      }
      if (len === 0) return n;
      const rec = parseKmsgRecord(this.buf.toString('utf8', 0, len));
      if (!rec) {
        this.stats.malformed++;
        continue;
      }
      if (this.lastSeq !== null && rec.seq > this.lastSeq + 1n) this.stats.missed += Number(rec.seq - this.lastSeq - 1n);
      this.lastSeq = rec.seq;
      if (this.opts.sinceNs !== undefined && rec.tNs < this.opts.sinceNs) continue;
      this.stats.records++;
      n++;
      this.onRecord(rec);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // stop polling before the fd closes: a closed fd number can be reused
    this.watcher?.close();
    this.watcher = null;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
