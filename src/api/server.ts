// The agent's local HTTP API (docs/api.md): fastify on a root-only unix socket, optionally a
// second listener on TCP that requires a bearer token. Routes are versioned under /v1 and every
// one validates its input with a JSON schema.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { nodeHttp } from '../shared/node-http.js';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PatrolError } from '../shared/errors.js';
import { hasIdentityFilter, identityMatches, type ProcessEntry, type ProcessState } from '../process/index.js';
import type { AgentView } from './view.js';
import { bearerChecker } from './auth.js';
import { EventHub } from './events.js';
import { registerTopRoutes } from './top.js';
import { registerHistoryRoutes } from './history.js';
import { parseFields, pick, sendPlain } from './fields.js';
import { API_PREFIX, DEFAULT_EVENTS_BUFFER_BYTES, DEFAULT_TCP_HOST } from './defaults.js';
import {
  processJson,
  statsJson,
  uptimeS,
  type ErrorJson,
  type HealthJson,
  type ProcessDetailJson,
  type ProcessListJson,
  type ProcessJson,
  type TreeJson,
  type TreeNodeJson,
  type ZombiesJson,
} from './json.js';
import {
  SHARED_SCHEMAS,
  processSchema,
  eventsRoute,
  healthRoute,
  processRoute,
  processesRoute,
  statsRoute,
  treeRoute,
  zombiesRoute,
} from './schemas.js';
import { registerExplainRoutes } from './explain.js';
import { chmodOwnerOnly, ownerOnlyListen, prepareSocketPath } from './socket.js';
import { registerCheckRoutes } from './checks.js';
import { registerReloadRoutes } from './reload.js';
import { registerFleetRoutes } from './fleet.js';

export interface ApiOptions {
  /** unix socket path (root-only, mode 0600) */
  socket: string;
  /** optional TCP listener; every request needs `Authorization: Bearer <token>` */
  tcp?: { host?: string; port: number; token: string };
  log: Logger;
  /** per-client bound on queued event-stream bytes (default 1 MiB) */
  eventsBufferBytes?: number;
  /** sees every route as it is registered, with its schema (test/unit/api-docs.test.ts) */
  onRoute?: (route: { method: string | string[]; url: string; schema?: Record<string, unknown> }) => void;
}

export interface ApiAddresses {
  socket: string;
  tcp: { host: string; port: number } | null;
}

export interface ApiHandle {
  addresses: ApiAddresses;
  /** Ends the event streams (what is queued is still sent, for up to 1 s), then closes the
   *  listeners; the socket file is removed. */
  close(): Promise<void>;
}

const PROCESS_FIELDS = Object.keys(processSchema.properties);

/** Deepest tree level rendered; deeper descendants are cut (`children_truncated`). */
export const TREE_MAX_DEPTH = 256;

interface ProcessesQuery {
  comm?: string[];
  uid?: number;
  pid?: number;
  /** ps letter */
  state?: string;
  lifecycle?: ProcessState;
  sort: 'pid' | 'start' | 'comm' | 'state' | 'state_ms' | 'rq_p95';
  limit?: number;
  fields?: string;
  unit?: string;
  container?: string;
  pod?: string;
}

interface EventsQuery {
  comm?: string[];
  uid?: number;
  pid?: number;
  failed?: boolean;
  threads?: boolean;
  unit?: string;
  container?: string;
  pod?: string;
}

const ERROR_NAMES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  500: 'internal_error',
  503: 'unavailable',
};

function errorBody(status: number, message: string): ErrorJson {
  return { error: ERROR_NAMES[status] ?? (status >= 500 ? 'internal_error' : 'bad_request'), message, status };
}

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** ajv errors → one readable sentence: "invalid query: uid must be integer". */
export function formatValidation(errors: readonly ValidationIssue[], dataVar: string): string {
  const where = dataVar === 'querystring' ? 'query' : dataVar === 'params' ? 'path' : dataVar;
  const parts = errors.map((e) => {
    const name = e.instancePath.split('/').filter(Boolean)[0] ?? '';
    if (e.keyword === 'additionalProperties') return `unknown parameter '${String(e.params.additionalProperty)}'`;
    if (e.keyword === 'enum') return `${name} must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}`;
    if (e.keyword === 'pattern' && name === 'exec_id') return 'exec_id must be 16 lowercase hex digits';
    if (e.keyword === 'required') return `missing ${String(e.params.missingProperty)}`;
    return `${name ? name + ' ' : ''}${e.message ?? 'is invalid'}`;
  });
  return `invalid ${where}: ${parts.join('; ')}`;
}

const byPid = (a: ProcessEntry, b: ProcessEntry) => a.pid - b.pid || (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0);
const byStart = (a: ProcessEntry, b: ProcessEntry) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : a.pid - b.pid);
const JSON_SORTS: Record<string, (a: ProcessJson, b: ProcessJson) => number> = {
  pid: (a, b) => a.pid - b.pid,
  start: (a, b) => (BigInt(a.start_ns) < BigInt(b.start_ns) ? -1 : BigInt(a.start_ns) > BigInt(b.start_ns) ? 1 : a.pid - b.pid),
  comm: (a, b) => (a.comm < b.comm ? -1 : a.comm > b.comm ? 1 : a.pid - b.pid),
  state: (a, b) => (a.state < b.state ? -1 : a.state > b.state ? 1 : (b.state_ms ?? 0) - (a.state_ms ?? 0)),
  state_ms: (a, b) => (b.state_ms ?? -1) - (a.state_ms ?? -1),
  rq_p95: (a, b) => (b.rq_p95_us ?? -1) - (a.rq_p95_us ?? -1),
};

function buildApp(
  view: AgentView,
  hub: EventHub,
  log: Logger,
  streams: Set<ServerResponse>,
  kind: 'unix' | 'tcp',
  token?: string,
  onRoute?: ApiOptions['onRoute'],
): FastifyInstance {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    forceCloseConnections: true,
    bodyLimit: 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(formatValidation(errors as unknown as ValidationIssue[], dataVar)),
    ...(kind === 'unix'
      ? {
          serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => {
            const s = nodeHttp.createServer(handler);
            ownerOnlyListen(s);
            return s;
          },
        }
      : {}),
  });

  for (const s of SHARED_SCHEMAS) app.addSchema(s);
  if (onRoute) app.addHook('onRoute', (r) => onRoute({ method: r.method, url: r.url, ...(r.schema ? { schema: r.schema as Record<string, unknown> } : {}) }));

  if (token !== undefined) {
    const check = bearerChecker(token);
    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      const h = req.headers.authorization;
      if (check(h)) return;
      reply
        .code(401)
        .header('www-authenticate', h === undefined ? 'Bearer realm="patrol"' : 'Bearer realm="patrol", error="invalid_token"')
        .send(errorBody(401, h === undefined ? 'missing bearer token (Authorization: Bearer <token>)' : 'invalid bearer token'));
      return reply;
    });
  }

  // after the token check: an unauthenticated request costs no drain
  const freshen = view.freshen?.bind(view);
  if (freshen) {
    app.addHook('onRequest', (_req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      try {
        freshen();
      } catch (e) {
        // the consumers guard themselves; if the drain itself failed, a stale answer beats none
        log.warn({ err: (e as Error).message }, 'api: could not hand over the latest records before answering');
      }
      done();
    });
  }

  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'api request');
  });

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (err.validation) {
      void reply.code(400).send(errorBody(400, err.message));
      return;
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      log.error({ err, url: req.url }, 'api request failed');
      void reply.code(status).send(errorBody(status, status === 503 ? 'the agent is shutting down' : 'internal error; see the agent log'));
      return;
    }
    void reply.code(status).send(errorBody(status, err.message));
  });

  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    void reply.code(404).send(errorBody(404, `no such endpoint: ${req.method} ${req.url.split('?')[0]}`));
  });

  const P = API_PREFIX;
  registerExplainRoutes(app, P, () => view.explain ?? null);

  app.get(`${P}/health`, { schema: healthRoute }, async (): Promise<HealthJson> => ({
    ...(view.health?.() ?? { status: 'ok', reasons: [] }),
    version: view.version,
    pid: view.pid,
    uptime_s: uptimeS(view.startedAt),
  }));

  app.get(`${P}/stats`, { schema: statsRoute }, async () => statsJson(view));

  registerCheckRoutes(app, () => view.checks);
  registerReloadRoutes(app, P, view);
  registerFleetRoutes(app, view.fleet);

  app.get<{ Querystring: ProcessesQuery }>(`${P}/processes`, { schema: processesRoute }, async (req, reply): Promise<ProcessListJson | FastifyReply> => {
    const q = req.query;
    const fields = parseFields(q.fields, PROCESS_FIELDS);
    let list = view.table.list({ uid: q.uid, state: q.lifecycle, pidSubtree: q.pid });
    if (q.comm !== undefined && q.comm.length > 0) {
      const comms = new Set(q.comm);
      list = list.filter((e) => comms.has(e.comm));
    }
    if (hasIdentityFilter(q)) list = list.filter((e) => identityMatches(e.identity, q));
    const now = view.nowNs();
    let rows = list.map((e) => processJson(e, view.clock, view.states, now));
    if (q.state !== undefined) rows = rows.filter((r) => r.state === q.state);
    rows.sort(JSON_SORTS[q.sort] ?? JSON_SORTS.pid);
    const total = rows.length;
    if (q.limit !== undefined && rows.length > q.limit) rows.length = q.limit;
    if (fields !== null) return sendPlain(reply, { total, processes: pick(rows, fields) });
    return { total, processes: rows };
  });

  registerTopRoutes(app, view, P);
  registerHistoryRoutes(app, view, P);

  app.get(`${P}/zombies`, { schema: zombiesRoute }, async (): Promise<ZombiesJson> => {
    const now = view.nowNs();
    const st = view.states;
    return {
      zombies: (st?.zombies(now) ?? []).map((z) => ({
        pid: z.pid,
        exec_id: z.execId,
        comm: z.comm,
        ppid: z.ppid,
        parent_exec_id: z.parentExecId,
        parent_comm: z.parentComm,
        zombie_ms: z.zombieMs,
        exit_time: view.clock.iso(z.exitNs),
      })),
      stuck_d: (st?.stuckD(now, st.dThresholdNs) ?? []).map((d) => ({ pid: d.pid, tid: d.tid, exec_id: d.execId, comm: d.comm, d_ms: d.dMs })),
    };
  });

  app.get<{ Params: { exec_id: string } }>(
    `${P}/processes/:exec_id`,
    { schema: processRoute },
    async (req, reply): Promise<ProcessDetailJson | ErrorJson> => {
      const id = req.params.exec_id;
      const e = view.table.get(id);
      if (e === undefined) {
        reply.code(404);
        return errorBody(404, `no process with exec_id ${id} (unknown, or reaped and forgotten)`);
      }
      return {
        process: processJson(e, view.clock, view.states, view.nowNs()),
        ancestry: view.table.ancestry(id).slice(1).map((a) => processJson(a, view.clock, view.states, view.nowNs())),
        children: view.table.children(id).sort(byStart).map((c) => processJson(c, view.clock, view.states, view.nowNs())),
        states: view.states?.history?.(id).map((h) => ({ state: h.state, since: view.clock.iso(h.sinceNs) })) ?? [],
      };
    },
  );

  app.get<{ Querystring: { pid?: number } }>(`${P}/tree`, { schema: treeRoute }, async (req, reply): Promise<TreeJson | ErrorJson> => {
    const t = view.table;
    // one pass over every process (reaped ones kept as records included): children by parent
    const all = t.list();
    const byId = new Map<string, ProcessEntry>();
    for (const e of all) byId.set(e.execId, e);
    const kids = new Map<string, ProcessEntry[]>();
    for (const e of all) {
      if (e.parentExecId === null || e.parentExecId === e.execId || !byId.has(e.parentExecId)) continue;
      const l = kids.get(e.parentExecId);
      if (l === undefined) kids.set(e.parentExecId, [e]);
      else l.push(e);
    }
    let roots: ProcessEntry[];
    if (req.query.pid !== undefined) {
      const r = t.byPid(req.query.pid);
      if (r === undefined) {
        reply.code(404);
        return errorBody(404, `no live process with pid ${req.query.pid}`);
      }
      roots = [byId.get(r.execId) ?? r];
    } else {
      roots = all.filter((e) => e.parentExecId === null || e.parentExecId === e.execId || !byId.has(e.parentExecId));
      roots.sort(byPid);
    }
    const seen = new Set<string>();
    const node = (e: ProcessEntry, depth: number): TreeNodeJson => {
      seen.add(e.execId);
      const n: TreeNodeJson = { process: processJson(e, view.clock, view.states, view.nowNs()), children: [] };
      const cs = kids.get(e.execId);
      if (cs !== undefined) {
        if (depth >= TREE_MAX_DEPTH) n.children_truncated = true;
        else for (const c of cs.sort(byStart)) if (!seen.has(c.execId)) n.children.push(node(c, depth + 1));
      }
      return n;
    };
    const out = roots.filter((r) => !seen.has(r.execId)).map((r) => node(r, 0));
    return { total: seen.size, roots: out };
  });

  app.get<{ Querystring: EventsQuery }>(`${P}/events`, { schema: eventsRoute }, async (req, reply) => {
    const q = req.query;
    const stream = hub.open({ comm: q.comm, uid: q.uid, pid: q.pid, failed: q.failed, threads: q.threads, unit: q.unit, container: q.container, pod: q.pod });
    const res = reply.raw;
    streams.add(res);
    res.once('close', () => {
      streams.delete(res);
      stream.destroy();
    });
    req.raw.socket.setNoDelay(true);
    void reply
      .header('content-type', 'application/x-ndjson; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-accel-buffering', 'no')
      .send(stream);
    return reply;
  });

  return app;
}

function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException)?.code === code;
}

export async function startApi(view: AgentView, opts: ApiOptions): Promise<ApiHandle> {
  const log = opts.log.child({ component: 'api' });
  const hub = new EventHub(view, log, opts.eventsBufferBytes ?? DEFAULT_EVENTS_BUFFER_BYTES);
  const streams = new Set<ServerResponse>();
  if (opts.tcp !== undefined && opts.tcp.token.length === 0) {
    throw new PatrolError('E_CONFIG', 'the TCP API needs a non-empty bearer token');
  }

  const replaced = await prepareSocketPath(opts.socket);
  if (replaced === 'replaced-stale') log.info({ socket: opts.socket }, 'removed a stale API socket');

  const unix = buildApp(view, hub, log, streams, 'unix', undefined, opts.onRoute);
  try {
    await unix.listen({ path: opts.socket });
  } catch (e) {
    await unix.close().catch(() => {});
    if (isErrno(e, 'EADDRINUSE')) {
      throw new PatrolError('E_SOCKET_IN_USE', `another patrol agent is answering on ${opts.socket}; stop it first`);
    }
    throw e;
  }
  // already 0600 (created under umask 0177); made explicit before the first request is served
  chmodOwnerOnly(opts.socket);

  let tcp: FastifyInstance | null = null;
  let tcpAddr: ApiAddresses['tcp'] = null;
  if (opts.tcp !== undefined) {
    tcp = buildApp(view, hub, log, streams, 'tcp', opts.tcp.token);
    try {
      await tcp.listen({ host: opts.tcp.host ?? DEFAULT_TCP_HOST, port: opts.tcp.port });
    } catch (e) {
      await tcp.close().catch(() => {});
      await unix.close().catch(() => {});
      const where = `${opts.tcp.host ?? DEFAULT_TCP_HOST}:${opts.tcp.port}`;
      if (isErrno(e, 'EADDRINUSE')) throw new PatrolError('E_TCP_IN_USE', `cannot listen on ${where}: address in use`);
      throw new PatrolError('E_TCP', `cannot listen on ${where}: ${(e as Error).message}`);
    }
    const a = tcp.server.address() as AddressInfo;
    tcpAddr = { host: a.address, port: a.port };
  }
  log.info({ socket: opts.socket, tcp: tcpAddr }, 'API listening');

  let closing: Promise<void> | null = null;
  return {
    addresses: { socket: opts.socket, tcp: tcpAddr },
    close() {
      closing ??= (async () => {
        hub.close();
        const deadline = Date.now() + 1000;
        while (streams.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await Promise.all([unix.close(), tcp?.close()]);
      })();
      return closing;
    },
  };
}
