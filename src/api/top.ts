// GET /v1/top (resource windows: the top processes or cgroups over a window) and GET /v1/metrics
// (the Prometheus exposition, also served on the metrics listener).
import type { FastifyInstance } from 'fastify';
import { ApiRequestError } from './errors.js';
import type { TopGroup, TopRow } from '../metrics/index.js';
import { formatDurationMs, parseDurationMs } from '../shared/duration.js';
import type { AgentView } from './view.js';
import { fieldsParam, parseFields, pick, sendPlain } from './fields.js';

/** Fields of a TopRow and of a TopGroup (docs/metrics.md), for `fields=`. */
export const TOP_ROW_FIELDS = ['pid', 'ppid', 'exec_id', 'comm', 'cgroup_id', 'cgroup', 'owner', 'exited', 'cpu', 'cpu_seconds', 'rss_bytes', 'io_read_bytes', 'io_write_bytes', 'exit', 'aggregate'] as const satisfies readonly (keyof TopRow)[];
export const TOP_GROUP_FIELDS = ['cgroup', 'cgroup_id', 'owner', 'processes', 'cpu', 'cpu_seconds', 'rss_bytes', 'io_read_bytes', 'io_write_bytes', 'rows'] as const satisfies readonly (keyof TopGroup)[];

export { ApiRequestError } from './errors.js';

export const topRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      window: { type: 'string' },
      sort: { type: 'string', enum: ['cpu', 'rss', 'io'] },
      limit: { type: 'integer', minimum: 1, maximum: 10000 },
      group: { type: 'string', enum: ['process', 'cgroup'] },
      fields: fieldsParam,
    },
  },
} as const;

export function registerTopRoutes(app: FastifyInstance, view: AgentView, prefix: string): void {
  app.get<{ Querystring: { window?: string; sort?: 'cpu' | 'rss' | 'io'; limit?: number; group?: 'process' | 'cgroup'; fields?: string } }>(
    `${prefix}/top`,
    { schema: topRoute },
    async (req, reply) => {
      const r = view.resources;
      if (!r) throw new ApiRequestError('E_METRICS_DISABLED', 'resource windows are disabled in this agent (metrics.enabled: false)', 404);
      const windowMs = req.query.window === undefined ? 60_000 : parseDurationMs(req.query.window);
      if (windowMs === null || windowMs <= 0) throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window must be a duration like 10s, 1m, 5m (got ${JSON.stringify(req.query.window)})`, 400);
      if (windowMs > r.maxWindowMs) {
        throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window ${req.query.window} is longer than the longest kept window (${formatDurationMs(r.maxWindowMs)})`, 400);
      }
      const byCgroup = req.query.group === 'cgroup';
      const fields = parseFields(req.query.fields, byCgroup ? TOP_GROUP_FIELDS : TOP_ROW_FIELDS);
      const rows = r.top({ windowMs, sort: req.query.sort ?? 'cpu', limit: req.query.limit ?? 20, byCgroup });
      if (fields !== null) {
        return sendPlain(reply, { window: formatDurationMs(windowMs), window_ms: windowMs, sort: req.query.sort ?? 'cpu', group: byCgroup ? 'cgroup' : 'process', sweep: r.sweep, rows: pick(rows as object[], fields) });
      }
      return { window: formatDurationMs(windowMs), window_ms: windowMs, sort: req.query.sort ?? 'cpu', group: byCgroup ? 'cgroup' : 'process', sweep: r.sweep, rows };
    },
  );
  app.get(`${prefix}/metrics`, async (_req, reply) => {
    const r = view.resources;
    if (!r) throw new ApiRequestError('E_METRICS_DISABLED', 'resource windows are disabled in this agent (metrics.enabled: false)', 404);
    reply.header('content-type', r.metricsContentType);
    return r.metricsText();
  });
}
