// Attribution routes: GET /v1/explain/:id (one alert's ranked causes), GET /v1/explain?recent=1
// (latest alerts and notable findings), GET /v1/rules (the active set and its cost profile).
// The agent provides an ExplainView; without one (rules disabled) the routes answer 503.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { explainRecentRoute, explainRoute, rulesRoute } from './schemas.js';

export interface EvidenceJson {
  kind: string;
  ts: string;
  summary: string;
  exec_id?: string;
  data?: Record<string, unknown>;
}

export interface CauseJson {
  cause: string;
  confidence: number;
  explanation: string;
  evidence: EvidenceJson[];
  rule: string;
  score: number;
  ts: string;
  count: number;
  /** distinct processes behind the cause (a crash loop has many) */
  processes: number;
  exec_id: string | null;
  pid: number | null;
  /** the finding's number in the engine (stable while it is kept) */
  finding_id: number;
}

export interface AlertJson {
  id: string;
  check: string;
  state: string;
  /** epoch ms */
  ts: number;
  evidence: unknown;
}

export interface ExplainJson {
  alert: AlertJson | null;
  causes: CauseJson[];
}

export interface ExplainRecentJson {
  alerts: ExplainJson[];
  causes: CauseJson[];
}

export interface RuleProfileJson {
  rule: string;
  source: string;
  /** times the index offered the rule an event (its gate ran), or its pattern/alert was tried */
  evaluations: number;
  pattern_matches: number;
  /** decision-tree walks: only when the gate (or pattern) let the event through */
  tree_runs: number;
  matches: number;
  time_ms: number;
  max_us: number;
}

export interface RulesJson {
  dir: string;
  rules: number;
  /** diagnostics of the last rejected reload, empty when the active set is the latest */
  diagnostics: string[];
  profile: RuleProfileJson[];
  stats: Record<string, unknown>;
}

/** What the routes need from the agent. */
export interface ExplainView {
  explain(alertId: string): { alert: AlertJson | null; causes: CauseJson[] } | null;
  explainRecent(limit: number): ExplainRecentJson;
  rules(): RulesJson;
}


const bigintSafe = (_k: string, v: unknown) => (typeof v === 'bigint' ? Number(v) : v);

function send(reply: FastifyReply, body: unknown) {
  // evidence data may carry kernel bigints: serialize them as numbers
  return reply.type('application/json').send(JSON.stringify(body, bigintSafe));
}

export function registerExplainRoutes(app: FastifyInstance, prefix: string, view: () => ExplainView | null): void {
  const unavailable = (reply: FastifyReply) =>
    reply.code(503).send({ error: 'unavailable', message: 'attribution is not running in this agent (rules disabled)', status: 503 });

  app.get<{ Params: { id: string } }>(
    `${prefix}/explain/:id`,
    { schema: explainRoute },
    async (req, reply) => {
      const v = view();
      if (!v) return unavailable(reply);
      const r = v.explain(req.params.id);
      if (!r) return reply.code(404).send({ error: 'not_found', message: `no alert ${req.params.id}`, status: 404 });
      return send(reply, r);
    },
  );

  app.get<{ Querystring: { recent?: string; limit?: number } }>(
    `${prefix}/explain`,
    { schema: explainRecentRoute },
    async (req, reply) => {
      const v = view();
      if (!v) return unavailable(reply);
      if (req.query.recent !== '1' && req.query.recent !== 'true') return reply.code(400).send({ error: 'bad_request', message: 'use /explain/ALERT_ID or /explain?recent=1', status: 400 });
      return send(reply, v.explainRecent(req.query.limit ?? 10));
    },
  );

  app.get(`${prefix}/rules`, { schema: rulesRoute }, async (_req, reply) => {
    const v = view();
    if (!v) return unavailable(reply);
    return send(reply, v.rules());
  });
}
