// The dashboard's HTTP server (127.0.0.1 only): the one-time token for a cookie, 401 for any
// request without it, the built app from memory, and /api/v1/... proxied to the agent. Every
// answer carries a strict Content-Security-Policy: scripts and styles from this origin only,
// nothing inline, no frames, no forms.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { nodeHttp } from '../../shared/node-http.js';
import type { AddressInfo } from 'node:net';
import { PatrolError } from '../../shared/errors.js';
import { loadAssets, type Asset } from './assets.js';
import { API_MOUNT, proxy, sendError } from './proxy.js';
import { Sessions } from './session.js';

export const DEFAULT_DASHBOARD_PORT = 9466;
export const DASHBOARD_HOST = '127.0.0.1';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export interface DashboardOptions {
  /** the agent's API socket */
  socket: string;
  /** 0: any free port */
  port: number;
  host?: string;
  /** web/dist by default */
  webRoot?: string;
  /** fixed token (tests); random by default */
  token?: string;
}

export interface DashboardHandle {
  port: number;
  /** the one-time URL: http://127.0.0.1:PORT/?token=… */
  url: string;
  close(): Promise<void>;
}

function unauthorized(res: ServerResponse, why: string): void {
  res.writeHead(401, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
  res.end(`401 Unauthorized: ${why}\n`);
}

function handler(sessions: Sessions, assets: Map<string, Asset>, socket: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('405 Method Not Allowed\n');
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard');
    } catch {
      res.writeHead(400, SECURITY_HEADERS).end();
      return;
    }
    const authed = sessions.valid(req.headers.cookie);
    const token = url.pathname === '/' ? url.searchParams.get('token') : null;
    if (token !== null) {
      if (authed) {
        // the same browser opened the link again: it already has its session
        res.writeHead(303, { ...SECURITY_HEADERS, location: '/' }).end();
        return;
      }
      const r = sessions.redeem(token);
      if (!r.ok) {
        unauthorized(res, r.reason === 'spent' ? 'this link was already used; restart patrol dashboard for a new one' : 'wrong token');
        return;
      }
      // the token leaves the address bar at once (history, screenshots, Referer)
      res.writeHead(303, { ...SECURITY_HEADERS, 'set-cookie': r.cookie, location: '/' }).end();
      return;
    }
    if (!authed) {
      if (url.pathname.startsWith(`${API_MOUNT}/`)) {
        res.writeHead(401, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: 'unauthorized', message: 'no dashboard session: open the URL patrol dashboard printed', status: 401 }));
      } else {
        unauthorized(res, 'no dashboard session: open the URL `patrol dashboard` printed');
      }
      return;
    }
    if (url.pathname.startsWith(`${API_MOUNT}/v1/`)) {
      // the normalized path: what was checked is what is forwarded
      proxy(socket, `${url.pathname.slice(API_MOUNT.length)}${url.search}`, req, res, SECURITY_HEADERS);
      return;
    }
    if (url.pathname.startsWith(`${API_MOUNT}/`)) {
      sendError(res, 404, 'not_found', `no such endpoint: ${url.pathname}`);
      return;
    }
    const a = assets.get(url.pathname);
    if (a === undefined) {
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
      res.end('404 Not Found\n');
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': a.type, 'content-length': a.body.length });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  };
}

export async function startDashboard(opts: DashboardOptions): Promise<DashboardHandle> {
  const assets = loadAssets(opts.webRoot);
  const sessions = new Sessions(opts.token);
  const host = opts.host ?? DASHBOARD_HOST;
  const server: Server = nodeHttp.createServer(handler(sessions, assets, opts.socket));
  // event streams stay open: nothing here times out on its own
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new PatrolError('E_DASHBOARD_PORT', `cannot listen on ${host}:${opts.port}: address in use (another dashboard? choose one with --port)`)
          : new PatrolError('E_DASHBOARD_LISTEN', `cannot listen on ${host}:${opts.port}: ${e.message}`),
      ),
    );
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host}:${port}/?token=${sessions.token}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
