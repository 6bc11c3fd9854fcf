// GET /v1/top (resource windows: the top processes or cgroups over a window) and GET /v1/metrics
// (the Prometheus exposition, also served on the metrics listener).
import type { FastifyInstance } from 'fastify';
import { PatrolError } from '../shared/errors.js';
import { formatDurationMs, parseDurationMs } from '../shared/duration.js';
import type { AgentView } from './view.js';
import type { TopJson } from './json.js';
import { metricsRoute, topRoute } from './schemas.js';

/** An error the client caused or can act on; fastify's error handler uses statusCode. */
export class ApiRequestError extends PatrolError {
  constructor(code: string, message: string, readonly statusCode: number) {
    super(code, message);
  }
}

export function registerTopRoutes(app: FastifyInstance, view: AgentView, prefix: string): void {
  app.get<{ Querystring: { window?: string; sort?: 'cpu' | 'rss' | 'io'; limit?: number; group?: 'process' | 'cgroup' } }>(
    `${prefix}/top`,
    { schema: topRoute },
    async (req): Promise<TopJson> => {
      const r = view.resources;
      if (!r) throw new ApiRequestError('E_METRICS_DISABLED', 'resource windows are disabled in this agent (metrics.enabled: false)', 404);
      const windowMs = req.query.window === undefined ? 60_000 : parseDurationMs(req.query.window);
      if (windowMs === null || windowMs <= 0) throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window must be a duration like 10s, 1m, 5m (got ${JSON.stringify(req.query.window)})`, 400);
      if (windowMs > r.maxWindowMs) {
        throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window ${req.query.window} is longer than the longest kept window (${formatDurationMs(r.maxWindowMs)})`, 400);
      }
      const byCgroup = req.query.group === 'cgroup';
      const rows = r.top({ windowMs, sort: req.query.sort ?? 'cpu', limit: req.query.limit ?? 20, byCgroup });
      return { window: formatDurationMs(windowMs), window_ms: windowMs, sort: req.query.sort ?? 'cpu', group: byCgroup ? 'cgroup' : 'process', sweep: r.sweep, rows };
    },
  );
  app.get(`${prefix}/metrics`, { schema: metricsRoute }, async (_req, reply) => {
    const r = view.resources;
    if (!r) throw new ApiRequestError('E_METRICS_DISABLED', 'resource windows are disabled in this agent (metrics.enabled: false)', 404);
    reply.header('content-type', r.metricsContentType);
    return r.metricsText();
  });
}
