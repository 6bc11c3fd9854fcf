// Check results and alerts (docs/api.md): GET /v1/checks, /v1/checks/results, /v1/alerts.
// Served from the agent's store through ChecksView; 404 with a clear message when the agent
// runs no checks (no checks.dir).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { API_PREFIX } from './defaults.js';
import { alertsRoute, checkResultsRoute, checksRoute } from './schemas.js';

/** A stored check run (shape of src/store's CheckRunRecord). */
export interface CheckRunJson {
  id: number;
  check_id: string;
  name: string;
  file: string;
  state: string;
  at: number;
  duration_ms: number;
  message: string;
  evidence: unknown;
  labels: Record<string, string>;
}

/** A stored alert (shape of src/store's AlertRecord): `id` is stable, `seq` orders. */
export interface AlertJson {
  seq: number;
  id: string;
  check_id: string;
  name: string;
  kind: string;
  state: string;
  previous: string;
  at: number;
  message: string;
  labels: Record<string, string>;
  evidence: unknown;
  /** {causes: [...]} from the attribution engine when the alert fired, or null */
  attribution?: unknown;
}

export interface ChecksStatusJson {
  dir: string;
  checks: { id: string; name: string; file: string; line: number; every_ms: number; timeout_ms: number; labels: Record<string, string> }[];
  last_reload: { at: number; ok: boolean; checks: number; files: number; errors: number; diagnostics: string[] } | null;
}

export interface ChecksView {
  status(): ChecksStatusJson;
  results(q: { checkId?: string; state?: string; latest?: boolean; since?: number; beforeId?: number; limit: number }): CheckRunJson[];
  alerts(q: { checkId?: string; since?: number; beforeSeq?: number; limit: number }): AlertJson[];
}

function none(reply: FastifyReply) {
  return reply.code(404).send({ error: 'not_found', message: 'this agent runs no checks (start it with --checks DIR or set checks.dir)', status: 404 });
}

export function registerCheckRoutes(app: FastifyInstance, checks: ChecksView | undefined): void {
  const P = API_PREFIX;
  app.get(`${P}/checks`, { schema: checksRoute }, async (_req, reply) => (checks ? checks.status() : none(reply)));

  app.get<{ Querystring: { check_id?: string; state?: string; latest?: boolean; since?: number; before_id?: number; limit: number } }>(
    `${P}/checks/results`,
    { schema: checkResultsRoute },
    async (req, reply) => {
      if (!checks) return none(reply);
      const q = req.query;
      return {
        results: checks.results({
          limit: q.limit,
          ...(q.check_id ? { checkId: q.check_id } : {}),
          ...(q.state ? { state: q.state } : {}),
          ...(q.latest ? { latest: true } : {}),
          ...(q.since !== undefined ? { since: q.since } : {}),
          ...(q.before_id !== undefined ? { beforeId: q.before_id } : {}),
        }),
      };
    },
  );

  app.get<{ Querystring: { check_id?: string; since?: number; before_seq?: number; limit: number } }>(
    `${P}/alerts`,
    { schema: alertsRoute },
    async (req, reply) => {
      if (!checks) return none(reply);
      const q = req.query;
      return {
        alerts: checks.alerts({
          limit: q.limit,
          ...(q.check_id ? { checkId: q.check_id } : {}),
          ...(q.since !== undefined ? { since: q.since } : {}),
          ...(q.before_seq !== undefined ? { beforeSeq: q.before_seq } : {}),
        }),
      };
    },
  );
}
