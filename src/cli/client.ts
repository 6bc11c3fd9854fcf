// A small HTTP client for the agent's API over its unix socket (node:http, no dependencies), and
// the options every client command shares. Connection failures become one clear line.
import type { IncomingMessage, ClientRequest } from 'node:http';
import { nodeHttp } from '../shared/node-http.js';
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { API_PREFIX, defaultSocket } from '../api/defaults.js';

export interface ClientOptions {
  json?: boolean;
  socket?: string;
}

/** --json and --socket, shared by status, ps and events. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable output')
    .option('--socket <path>', 'agent API socket (default: $PATROL_SOCKET, else /run/patrol/patrol.sock)');
}

export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

export function queryString(q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === false) continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

/** A connection error → the one line the user sees. */
export function connectError(err: NodeJS.ErrnoException, socket: string): PatrolError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new PatrolError('E_NO_AGENT', `no agent is running (no socket at ${socket}); start it with: sudo patrol agent`);
    case 'EACCES':
    case 'EPERM':
      return new PatrolError('E_AGENT_ACCESS', `cannot reach the agent socket ${socket}: permission denied (the API is root-only)`);
    default:
      return new PatrolError('E_AGENT', `cannot reach the agent at ${socket}: ${err.message}`);
  }
}

export class ApiError extends PatrolError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('E_API', message);
  }
}

export class ApiClient {
  readonly socket: string;

  constructor(
    socket?: string,
    /** connect + response timeout for requests; for streams, until the response starts */
    readonly timeoutMs = 5000,
  ) {
    this.socket = socket ?? defaultSocket();
  }

  /** Sends GET /v1<path>; resolves when the response head arrives. Non-2xx responses are read
   *  and thrown as ApiError with the agent's message. */
  private open(path: string, query: Query | undefined, accept: string): { req: ClientRequest; res: Promise<IncomingMessage> } {
    const socket = this.socket;
    let req!: ClientRequest;
    const res = new Promise<IncomingMessage>((resolve, reject) => {
      req = nodeHttp.request({ socketPath: socket, path: API_PREFIX + path + queryString(query), method: 'GET', headers: { accept } }, (r) => {
        req.setTimeout(0);
        const status = r.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(r);
          return;
        }
        readAll(r).then(
          (text) => reject(new ApiError(status, apiMessage(status, text))),
          (e: Error) => reject(new PatrolError('E_AGENT', `the agent's answer broke off: ${e.message}`)),
        );
      });
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(
          new PatrolError('E_AGENT_TIMEOUT', `the agent did not answer within ${this.timeoutMs / 1000}s (socket ${socket})`),
        );
      });
      req.on('error', (e: NodeJS.ErrnoException) => reject(e instanceof PatrolError ? e : connectError(e, socket)));
      req.end();
    });
    return { req, res };
  }

  /** GET a JSON document. */
  async get<T>(path: string, query?: Query): Promise<T> {
    const { req, res } = this.open(path, query, 'application/json');
    const r = await res;
    // the whole body is bounded by the same timeout as the head
    const t = setTimeout(() => req.destroy(new Error('timeout reading the answer')), this.timeoutMs);
    let text: string;
    try {
      text = await readAll(r);
    } catch (e) {
      throw new PatrolError('E_AGENT', `the agent's answer broke off: ${(e as Error).message}`);
    } finally {
      clearTimeout(t);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PatrolError('E_AGENT', `the agent sent invalid JSON for ${path}`);
    }
  }

  /** POST a JSON body (a Buffer goes as application/octet-stream), read a JSON answer (non-2xx:
   *  ApiError with the agent's message). */
  post<T>(path: string, body: unknown): Promise<T> {
    const socket = this.socket;
    const raw = Buffer.isBuffer(body);
    const data = raw ? body : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = nodeHttp.request(
        { socketPath: socket, path: API_PREFIX + path, method: 'POST', headers: { accept: 'application/json', 'content-type': raw ? 'application/octet-stream' : 'application/json', 'content-length': data.length } },
        (r) => {
          const status = r.statusCode ?? 0;
          readAll(r).then(
            (text) => {
              clearTimeout(t);
              if (status < 200 || status >= 300) return reject(new ApiError(status, apiMessage(status, text)));
              try {
                resolve(JSON.parse(text) as T);
              } catch {
                reject(new PatrolError('E_AGENT', `the agent sent invalid JSON for ${path}`));
              }
            },
            (e: Error) => reject(new PatrolError('E_AGENT', `the agent's answer broke off: ${e.message}`)),
          );
        },
      );
      const t = setTimeout(() => req.destroy(new PatrolError('E_AGENT_TIMEOUT', `the agent did not answer within ${this.timeoutMs / 1000}s (socket ${socket})`)), this.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        reject(e instanceof PatrolError ? e : connectError(e, socket));
      });
      req.end(data);
    });
  }

  /** GET a stream (the NDJSON event stream); `close()` ends it. */
  async stream(path: string, query?: Query): Promise<{ res: IncomingMessage; close(): void }> {
    const { req, res } = this.open(path, query, 'application/x-ndjson');
    const r = await res;
    return { res: r, close: () => req.destroy() };
  }
}

function readAll(r: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (c: string) => (text += c));
    r.on('end', () => resolve(text));
    r.on('error', reject);
    r.on('aborted', () => reject(new Error('connection closed')));
  });
}

function apiMessage(status: number, text: string): string {
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j.message === 'string' && j.message !== '') return j.message;
  } catch {
    /* not JSON */
  }
  return `the agent answered HTTP ${status}`;
}
