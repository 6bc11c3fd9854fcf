// One pino logger for the process. CLI commands print their data on stdout, so logs go to
// stderr; the agent may switch to stdout. PATROL_LOG_LEVEL overrides the level.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; fd?: 1 | 2; pretty?: boolean } = {}): Logger {
  const level = process.env.PATROL_LOG_LEVEL ?? opts.level ?? 'info';
  const fd = opts.fd ?? 2;
  if (opts.pretty) {
    return pino({ level, base: undefined }, pino.transport({ target: 'pino-pretty', options: { destination: fd, colorize: true } }));
  }
  return pino({ level, base: undefined }, pino.destination({ fd, sync: true }));
}

let root: Logger | undefined;

export function logger(): Logger {
  root ??= createLogger({ pretty: process.stderr.isTTY === true });
  return root;
}

export function setLogger(l: Logger): void {
  root = l;
}
