// `patrol events`: the agent's live event stream, formatted like `patrol trace` (or NDJSON as
// the agent sends it). Unlike trace, it needs no privileges beyond the socket and loads nothing
// into the kernel.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { HEADER, argvText, fmtBytes, fmtNs, localTime } from './format.js';
import { collectList, parseIntArg } from './parse.js';
import { term } from '../shared/terminal.js';
import { addIdentityOptions, identityQuery, type IdentityOptions } from './identity.js';

export interface EventsOptions extends ClientOptions, IdentityOptions {
  comm?: string[];
  pid?: number;
  uid?: number;
  failed?: boolean;
  threads?: boolean;
}

export function registerEvents(program: Command): void {
  addIdentityOptions(addClientOptions(program.command('events').description("the agent's live event stream (like trace, without loading BPF)")))
    .option('--comm <name>', 'only these process names (repeatable or comma-separated)', collectList)
    .option('--pid <pid>', 'only this pid and its descendants', parseIntArg('--pid', 1))
    .option('--uid <uid>', 'only processes of this uid', parseIntArg('--uid', 0, 0xffffffff))
    .option('--failed', 'only failures: non-zero exits, signals, failed execs')
    .option('--threads', 'also show thread creation (when the agent emits it)')
    .action(async (opts: EventsOptions) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await runEvents(opts, { signal: ac.signal });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}

/** The fields of an NDJSON event record (docs/ndjson.md) the human format uses. */
export interface EventRecordJson {
  type: string;
  time: string;
  pid: number;
  ppid: number;
  comm: string;
  args?: string[] | null;
  args_raw?: (string | null)[];
  args_truncated?: boolean;
  thread?: boolean;
  tid?: number;
  exit_code?: number | null;
  signal?: number | null;
  core_dumped?: boolean;
  duration_ns?: number | null;
  zombie_ns?: number | null;
  usage?: { cpu_ns: number; max_rss_kb: number };
  error?: string;
  filename?: string | null;
  count?: number;
  programs?: string[];
}

function details(r: EventRecordJson): string {
  switch (r.type) {
    case 'exec':
      return argvText(r.args ?? [], r.args_raw?.map((b) => (b ? Buffer.from(b, 'base64') : null))) + (r.args_truncated ? ' [truncated]' : '');
    case 'fork':
      return r.thread ? `thread tid=${r.tid}` : `from ${r.ppid}`;
    case 'exit': {
      const how = r.signal != null ? `signal=${r.signal}${r.core_dumped ? ' (core)' : ''}` : `code=${r.exit_code}`;
      return `${how} dur=${fmtNs(r.duration_ns)} cpu=${fmtNs(r.usage?.cpu_ns)} rss=${fmtBytes((r.usage?.max_rss_kb ?? 0) * 1024)}`;
    }
    case 'reap':
      return `zombie=${fmtNs(r.zombie_ns)}`;
    case 'exec_failed':
      return `${r.error} ${term(r.filename)}`;
    default:
      return '';
  }
}

/** One event record as `patrol trace` prints the event (same columns, same details). */
export function recordLine(r: EventRecordJson): string {
  return `${localTime(Date.parse(r.time)).padEnd(13)} ${r.type.padEnd(11)} ${String(r.pid).padEnd(7)} ${String(r.ppid).padEnd(7)} ${term(r.comm).padEnd(16)} ${details(r)}`;
}

const EVENT_TYPES = new Set(['exec', 'fork', 'exit', 'reap', 'exec_failed']);

export interface EventsIo {
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** ends the stream cleanly (Ctrl-C) */
  signal?: AbortSignal;
}

/** Streams until `signal` aborts (returns normally) or the agent ends the stream (throws). */
export async function runEvents(opts: EventsOptions, io: EventsIo = {}): Promise<void> {
  const out = io.out ?? process.stdout;
  const err = io.err ?? process.stderr;
  const signal = io.signal;
  if (signal?.aborted) return;
  const client = new ApiClient(opts.socket);
  const { res, close } = await client.stream('/events', {
    comm: opts.comm,
    pid: opts.pid,
    uid: opts.uid,
    failed: opts.failed,
    threads: opts.threads,
    ...identityQuery(opts),
  });
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    close();
  };
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.json) {
      // NDJSON passes through byte for byte; a slow stdout slows the socket (the agent then
      // drops events for us and says so with a `dropped` record)
      res.pipe(out, { end: false });
      await new Promise<void>((resolve) => {
        res.once('end', resolve);
        res.once('close', resolve);
        res.once('error', () => resolve());
      });
    } else {
      const rl = createInterface({ input: res, crlfDelay: Infinity });
      res.on('error', () => rl.close());
      try {
        for await (const line of rl) {
          if (line === '') continue;
          let r: EventRecordJson;
          try {
            r = JSON.parse(line) as EventRecordJson;
          } catch {
            continue;
          }
          let text: string | null = null;
          if (r.type === 'ready') {
            err.write(`patrol: connected to the agent (${r.programs?.length ?? 0} programs attached); Ctrl-C to stop\n`);
            text = HEADER;
          } else if (r.type === 'dropped') {
            err.write(`patrol: ${r.count} events dropped: this client did not keep up\n`);
          } else if (EVENT_TYPES.has(r.type)) {
            text = recordLine(r);
          }
          if (text !== null && !out.write(text + '\n')) await once(out, 'drain');
        }
      } catch {
        /* connection reset: handled below */
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (!aborted) throw new PatrolError('E_AGENT_GONE', 'the agent ended the event stream (it stopped or restarted)');
}
