// GET /v1/node (the node's figures and samples over a window: the dashboard's node strip) and
// GET /v1/history (the samples of some processes over a window: charts and sparklines). Both
// read the resource windows, like /v1/top; 404 E_METRICS_DISABLED without them.
import type { FastifyInstance } from 'fastify';
import { formatDurationMs, parseDurationMs } from '../shared/duration.js';
import type { NodeStrip, ProcessHistory } from '../metrics/index.js';
import { ApiRequestError } from './errors.js';
import { historyRoute, nodeRoute } from './schemas.js';
import type { AgentView, ResourcesView } from './view.js';

export interface NodeJson extends NodeStrip {
  window: string;
  window_ms: number;
}

export interface HistoryJson {
  window: string;
  window_ms: number;
  processes: ProcessHistory[];
  /** exec_ids the windows do not hold (never swept, exited and summarized, or unknown) */
  missing: string[];
}

function resources(view: AgentView): ResourcesView {
  const r = view.resources;
  if (!r) throw new ApiRequestError('E_METRICS_DISABLED', 'resource windows are disabled in this agent (metrics.enabled: false)', 404);
  return r;
}

function windowOf(r: ResourcesView, text: string | undefined): number {
  const ms = text === undefined ? 60_000 : parseDurationMs(text);
  if (ms === null || ms <= 0) throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window must be a duration like 10s, 1m, 5m (got ${JSON.stringify(text)})`, 400);
  if (ms > r.maxWindowMs) throw new ApiRequestError('E_BAD_REQUEST', `invalid query: window ${text} is longer than the longest kept window (${formatDurationMs(r.maxWindowMs)})`, 400);
  return ms;
}

export function registerHistoryRoutes(app: FastifyInstance, view: AgentView, prefix: string): void {
  app.get<{ Querystring: { window?: string } }>(`${prefix}/node`, { schema: nodeRoute }, async (req): Promise<NodeJson> => {
    const r = resources(view);
    const ms = windowOf(r, req.query.window);
    return { window: formatDurationMs(ms), window_ms: ms, ...r.node(ms) };
  });

  app.get<{ Querystring: { exec_id: string[]; window?: string } }>(`${prefix}/history`, { schema: historyRoute }, async (req): Promise<HistoryJson> => {
    const r = resources(view);
    const ms = windowOf(r, req.query.window);
    const processes: ProcessHistory[] = [];
    const missing: string[] = [];
    for (const id of new Set(req.query.exec_id)) {
      const h = r.history(id, ms);
      if (h === null) missing.push(id);
      else processes.push(h);
    }
    return { window: formatDurationMs(ms), window_ms: ms, processes, missing };
  });
}
