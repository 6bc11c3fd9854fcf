// GET /v1/top (resource windows: the top processes or cgroups over a window) and GET /v1/metrics
// (the Prometheus exposition, also served on the metrics listener).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { formatDurationMs, parseDurationMs } from '../shared/duration.js';
import type { AgentView } from './view.js';
import type { TopJson } from './json.js';
import { metricsRoute, topGroupFields, topRoute, topRowFields } from './schemas.js';
import { ApiRequestError } from './errors.js';
import { parseFields, pick, sendPlain } from './fields.js';
import { hasIdentityFilter, identityFromPath, identityMatches, type IdentityFilter } from '../process/index.js';

export { ApiRequestError } from './errors.js';

const TOP_ROW_FIELDS = Object.keys(topRowFields);
const TOP_GROUP_FIELDS = Object.keys(topGroupFields);

export function registerTopRoutes(app: FastifyInstance, view: AgentView, prefix: string): void {
  app.get<{ Querystring: { window?: string; sort?: 'cpu' | 'rss' | 'io'; limit?: number; group?: 'process' | 'cgroup'; fields?: string } & IdentityFilter }>(
    `${prefix}/top`,
    { schema: topRoute },
    async (req, reply): Promise<TopJson | FastifyReply> => {
      const r = view.resources;
      if (!r) throw new ApiRequestError('E_METRICS_DISABLED', 'resource windows are disabled in this agent (metrics.enabled: false)', 404);
      const windowMs = req.query.window === undefined ? 60_000 : parseDurationMs(req.query.window);
      if (windowMs === null || windowMs <= 0) throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window must be a duration like 10s, 1m, 5m (got ${JSON.stringify(req.query.window)})`, 400);
      if (windowMs > r.maxWindowMs) {
        throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window ${req.query.window} is longer than the longest kept window (${formatDurationMs(r.maxWindowMs)})`, 400);
      }
      const byCgroup = req.query.group === 'cgroup';
      const fields = parseFields(req.query.fields, byCgroup ? TOP_GROUP_FIELDS : TOP_ROW_FIELDS);
      const limit = req.query.limit ?? 20;
      let rows = r.top({ windowMs, sort: req.query.sort ?? 'cpu', limit: hasIdentityFilter(req.query) ? 10_000 : limit, byCgroup });
      if (hasIdentityFilter(req.query)) {
        // a row's identity: the agent's for its cgroup (with pod names from the CRI), else what its
        // cgroup path proves (exited and aggregated rows keep the path)
        const of = (x: { cgroup: string | null; cgroup_id: string | null }) => (x.cgroup_id !== null ? view.identityOf?.(BigInt(x.cgroup_id)) : null) ?? (x.cgroup !== null ? identityFromPath(x.cgroup) : null);
        rows = (rows as Array<{ cgroup: string | null; cgroup_id: string | null }>).filter((x) => identityMatches(of(x), req.query)).slice(0, limit) as typeof rows;
      }
      if (fields !== null) {
        return sendPlain(reply, { window: formatDurationMs(windowMs), window_ms: windowMs, sort: req.query.sort ?? 'cpu', group: byCgroup ? 'cgroup' : 'process', sweep: r.sweep, rows: pick(rows as object[], fields) });
      }
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
