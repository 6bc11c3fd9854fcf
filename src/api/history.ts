// GET /v1/node (the node's figures and samples over a window: the dashboard's node strip) and
// GET /v1/history (the samples of some processes over a window: charts and sparklines). Both
// read the resource windows, like /v1/top; 404 E_METRICS_DISABLED without them.
import type { FastifyInstance } from 'fastify';
import { formatDurationMs, parseDurationMs } from '../shared/duration.js';
import type { NodeStrip, ProcessHistory } from '../metrics/index.js';
import { ApiRequestError } from './errors.js';
import type { AgentView, ResourcesView } from './view.js';

/** Processes one /v1/history request may name (a screenful of sparklines and then some). */
export const HISTORY_MAX_IDS = 200;

const windowParam = { type: 'string', maxLength: 32 } as const;
const fig = { type: ['object', 'null'], properties: { avg: { type: 'number' }, p95: { type: 'number' }, max: { type: 'number' }, last: { type: 'number' } } } as const;
const points = { type: 'array', items: { type: 'array', items: { type: 'number' } } } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

export const nodeRoute = {
  querystring: { type: 'object', additionalProperties: false, properties: { window: windowParam } },
  response: {
    200: {
      type: 'object',
      properties: {
        window: { type: 'string' },
        window_ms: { type: 'integer' },
        cpu: fig,
        iowait: fig,
        steal: fig,
        cpus: { type: ['integer', 'null'] },
        memory: fig,
        memory_bytes: fig,
        memory_total_bytes: nullableNumber,
        swap: fig,
        load1: fig,
        load5: fig,
        load15: fig,
        psi: { type: 'array', items: { type: 'object', properties: { resource: { type: 'string' }, some: fig, full: fig } } },
        disk_read_bytes_per_s: nullableNumber,
        disk_write_bytes_per_s: nullableNumber,
        disks: { type: 'array', items: { type: 'object', properties: { device: { type: 'string' }, read_bytes_per_s: { type: 'number' }, write_bytes_per_s: { type: 'number' }, busy: fig } } },
        filesystems: { type: 'array', items: { type: 'object', properties: { mount: { type: 'string' }, usage: fig, inode_usage: fig } } },
        net: { type: 'array', items: { type: 'object', properties: { interface: { type: 'string' }, rx_bytes_per_s: { type: 'number' }, tx_bytes_per_s: { type: 'number' } } } },
        series: {
          type: 'object',
          properties: {
            cpu: points,
            memory: points,
            load1: points,
            psi_cpu: points,
            psi_memory: points,
            psi_io: points,
            disk_read: points,
            disk_write: points,
          },
        },
      },
      required: ['window', 'window_ms', 'series'],
    },
  },
} as const;

export const historyRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      exec_id: { type: 'array', items: { type: 'string', pattern: '^[0-9a-f]{16}$' }, minItems: 1, maxItems: HISTORY_MAX_IDS },
      window: windowParam,
    },
    required: ['exec_id'],
  },
  response: {
    200: {
      type: 'object',
      properties: {
        window: { type: 'string' },
        window_ms: { type: 'integer' },
        processes: {
          type: 'array',
          items: {
            type: 'object',
            properties: { exec_id: { type: 'string' }, cpu: points, rss: points, io_read: points, io_write: points },
            required: ['exec_id', 'cpu', 'rss', 'io_read', 'io_write'],
          },
        },
        missing: { type: 'array', items: { type: 'string' } },
      },
      required: ['window', 'window_ms', 'processes', 'missing'],
    },
  },
} as const;

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
