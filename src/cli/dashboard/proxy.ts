// /api/v1/... → the agent's /v1/... on its unix socket, GET only. The dashboard is a client of
// the local API like the CLI: the socket stays root-only and this process (run by root) is the
// one that may open it. Streams (the NDJSON events) pass through as they come; when the browser
// goes away the upstream request is dropped, which ends the agent's subscription.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nodeHttp } from '../../shared/node-http.js';
import { constants, createGzip } from 'node:zlib';
import { connectError } from '../client.js';

/** JSON answers this large are gzipped when the browser accepts it: the process list of a big
 *  node is megabytes a second, which level 1 shrinks ~8× for a few ms (and over an ssh tunnel
 *  the bytes are what counts). The event stream is never compressed (it must flow as it comes). */
const GZIP_MIN_BYTES = 16 << 10;

export const API_MOUNT = '/api';

/** Upstream timeout until the response head arrives (a stream may then last forever). */
const HEAD_TIMEOUT_MS = 10_000;

function sendError(res: ServerResponse, status: number, error: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ error, message, status }));
}

/** Forwards `req` to the agent as GET `path` (/v1/…, with its query). */
export function proxy(socket: string, path: string, req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>): void {
  const accept = req.headers.accept ?? 'application/json';
  const up = nodeHttp.request({ socketPath: socket, path, method: 'GET', headers: { accept } }, (ur) => {
    up.setTimeout(0);
    const headers: Record<string, string> = { ...extraHeaders };
    const type = ur.headers['content-type'];
    if (type !== undefined) headers['content-type'] = type;
    if (type?.includes('ndjson')) headers['x-accel-buffering'] = 'no';
    const length = Number(ur.headers['content-length'] ?? NaN);
    const gzip = type?.includes('application/json') && length >= GZIP_MIN_BYTES && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzip) {
      headers['content-encoding'] = 'gzip';
      headers.vary = 'accept-encoding';
      res.writeHead(ur.statusCode ?? 502, headers);
      const z = createGzip({ level: 1, strategy: constants.Z_DEFAULT_STRATEGY });
      z.on('error', () => res.destroy());
      ur.pipe(z).pipe(res);
    } else {
      if (!Number.isNaN(length)) headers['content-length'] = String(length);
      res.writeHead(ur.statusCode ?? 502, headers);
      res.flushHeaders();
      ur.pipe(res);
    }
    ur.on('error', () => res.destroy());
    ur.on('aborted', () => res.destroy());
  });
  up.setTimeout(HEAD_TIMEOUT_MS, () => up.destroy(Object.assign(new Error('the agent did not answer in time'), { code: 'ETIMEDOUT' })));
  up.on('error', (e: NodeJS.ErrnoException) => {
    const m = e.code === 'ETIMEDOUT' ? `the agent did not answer within ${HEAD_TIMEOUT_MS / 1000}s` : connectError(e, socket).message;
    sendError(res, 502, 'agent_unreachable', m);
  });
  // the browser left (tab closed, stream paused by navigation): end the upstream request too
  res.on('close', () => up.destroy());
  up.end();
}

export { sendError };
