// One pino logger for the process. CLI commands print their data on stdout, so logs go to
// stderr; the agent may switch to stdout. PATROL_LOG_LEVEL overrides the level.
// Two formats: JSON lines (lossless, for machines) and the human format (log-pretty.ts), which
// escapes every string, since log records carry text chosen by processes.
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type Logger } from 'pino';
import { prettyDestination } from './log-pretty.js';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  fd?: 1 | 2;
  pretty?: boolean;
  /** tests: where the lines go instead of fd (each call gets whole lines) */
  write?: (s: string) => void;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = process.env.PATROL_LOG_LEVEL ?? opts.level ?? 'info';
  const fd = opts.fd ?? 2;
  if (opts.pretty) {
    // In-process and synchronous: the human format is for a terminal, where logs are few, and a
    // worker-thread transport would cost its own heap.
    const write = opts.write ?? ((s: string) => writeAll(fd, s));
    return pino({ level, base: undefined }, prettyDestination(write, opts.write === undefined && isatty(fd)));
  }
  if (opts.write) return pino({ level, base: undefined }, { write: opts.write });
  return pino({ level, base: undefined }, pino.destination({ fd, sync: true }));
}

function writeAll(fd: number, s: string): void {
  const b = Buffer.from(s);
  for (let off = 0; off < b.length; ) {
    try {
      off += writeSync(fd, b, off);
    } catch (e) {
      // a full pipe on a non-blocking fd: try again; anything else loses this line, not the agent
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}

let root: Logger | undefined;

export function logger(): Logger {
  root ??= createLogger({ pretty: process.stderr.isTTY === true });
  return root;
}

export function setLogger(l: Logger): void {
  root = l;
}
