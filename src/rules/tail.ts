// Follows a log file across rotation: a new inode at the path (rename + create) is opened after
// the old file is read to its end; a file that shrank (copytruncate) is read again from 0.
// Polling, not inotify: it works on every filesystem and costs one stat per period.
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';

export interface TailStats {
  lines: number;
  rotations: number;
  truncations: number;
  /** lines longer than maxLineBytes, cut */
  longLines: number;
  /** unexpected I/O errors (the tailer reopens the path on the next poll) */
  errors: number;
}

export interface TailOptions {
  /** start at the end of an existing file (default true); a file created later is read from 0 */
  fromEnd?: boolean;
  intervalMs?: number;
  maxLineBytes?: number;
}

export class FileTailer {
  readonly stats: TailStats = { lines: 0, rotations: 0, truncations: 0, longLines: 0, errors: 0 };
  private fd = -1;
  private ino = -1;
  private pos = 0;
  private partial = '';
  /** the file's first bytes as we saw them: if they change, it was truncated and rewritten
   *  between two polls (copytruncate followed by writes past our position) */
  private head: Buffer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly buf = Buffer.allocUnsafe(65536);
  private readonly maxLine: number;

  constructor(
    readonly path: string,
    private readonly onLine: (line: string) => void,
    private readonly opts: TailOptions = {},
  ) {
    this.maxLine = opts.maxLineBytes ?? 65536;
    this.open(opts.fromEnd ?? true);
  }

  private open(fromEnd: boolean): boolean {
    try {
      this.fd = openSync(this.path, 'r');
      const st = fstatSync(this.fd);
      this.ino = st.ino;
      this.pos = fromEnd ? st.size : 0;
      this.head = this.readHead();
      return true;
    } catch {
      this.fd = -1;
      return false;
    }
  }

  start(): this {
    this.timer = setInterval(() => {
      try {
        this.poll();
      } catch {
        // e.g. the file's filesystem went away: start over from the path next time
        this.stats.errors++;
        if (this.fd >= 0) {
          try {
            closeSync(this.fd);
          } catch {
            /* already closed */
          }
        }
        this.fd = -1;
      }
    }, this.opts.intervalMs ?? 250);
    this.timer.unref();
    return this;
  }

  /** Reads what is new; handles rotation and truncation. */
  poll(): void {
    if (this.fd < 0) {
      if (!this.open(false)) return;
    }
    let atPath: { ino: number; size: number } | null = null;
    try {
      const st = statSync(this.path);
      atPath = { ino: st.ino, size: st.size };
    } catch {
      atPath = null;
    }
    const size = fstatSync(this.fd).size;
    if (size < this.pos || this.headChanged()) {
      this.stats.truncations++;
      this.pos = 0;
      this.partial = '';
      this.head = null;
    }
    this.drain();
    if (this.head === null || this.head.length < 64) this.head = this.readHead();
    if (atPath && atPath.ino !== this.ino) {
      // rotated: the old file is finished; a last partial line is a line
      if (this.partial) this.emit(this.partial);
      this.partial = '';
      closeSync(this.fd);
      this.stats.rotations++;
      if (this.open(false)) this.drain();
    }
  }

  private readHead(): Buffer | null {
    const b = Buffer.alloc(64);
    const n = readSync(this.fd, b, 0, 64, 0);
    return n > 0 ? b.subarray(0, n) : null;
  }

  private headChanged(): boolean {
    if (this.pos === 0) return false;
    const now = this.readHead();
    if (this.head === null || this.head.length < 64) {
      // a short head may legitimately have grown; compare the part we had
      if (this.head === null) return false;
      const changed = now === null || !now.subarray(0, this.head.length).equals(this.head);
      if (!changed) this.head = now;
      return changed;
    }
    return now === null || !now.equals(this.head);
  }

  private drain(): void {
    for (;;) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      if (n <= 0) return;
      this.pos += n;
      let text = this.partial + this.buf.toString('utf8', 0, n);
      let nl = text.indexOf('\n');
      while (nl >= 0) {
        this.emit(text.slice(0, nl));
        text = text.slice(nl + 1);
        nl = text.indexOf('\n');
      }
      if (text.length > this.maxLine) {
        this.stats.longLines++;
        this.emit(text.slice(0, this.maxLine));
        text = '';
      }
      this.partial = text;
    }
  }

  private emit(line: string): void {
    this.stats.lines++;
    this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
