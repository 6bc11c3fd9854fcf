// Fleet routes (docs/api.md, docs/fleet.md): this agent's place in the fleet, and the fleet-wide
// view read from etcd through the agent's own client, for `patrol fleet ...` run on a node.
// 404 when the agent has no `fleet` section; 503 while it is local-only (etcd unreachable or
// without quorum), with the time it went local-only.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { API_PREFIX } from './defaults.js';
import { noQuery } from './schemas.js';

/** This agent's fleet state, as `/v1/stats` carries it (the full form is GET /v1/fleet). */
export interface FleetSummaryJson {
  node: string;
  /** connecting, connected, or local-only */
  state: string;
  /** ISO time the state began */
  since: string;
  reason: string | null;
  lease: string | null;
  registered: boolean;
  is_leader: boolean;
  leader: { node: string; term: number } | null;
  desired_bundle: string | null;
  /** the bundle this agent runs and the last application's outcome; null without bundles */
  bundle: {
    id: string | null; since: string | null; previous: string | null; target: string | null;
    result: string; code: string | null; reason: string | null; incompatible: boolean; at: string | null;
  } | null;
}

/** POST /v1/fleet/rollouts: what `patrol fleet rollout BUNDLE …` asks for. */
export interface RolloutRequestBody {
  bundle: string;
  selector?: string;
  waves?: string;
  bake?: string;
  gates?: string[];
  failure_limit?: number;
  max_incompatible?: string;
}

/** What src/app gives the API; errors carry a `code` (E_FLEET_UNAVAILABLE → 503, E_FLEET_USAGE → 400). */
export interface FleetView {
  summary(): FleetSummaryJson;
  /** GET /v1/fleet */
  local(): object;
  /** GET /v1/fleet/status */
  status(): Promise<object>;
  /** GET /v1/fleet/alerts */
  alerts(): Promise<object>;
  /** POST /v1/fleet/desired; selector as written on the command line (role=web,zone=a) */
  setDesired(bundle: string, target: { node?: string; selector?: string; all?: boolean }): Promise<object>;
  /** POST /v1/fleet/bundles: a bundle file (bytes) stored in etcd */
  pushBundle(bytes: Buffer): Promise<object>;
  /** POST /v1/fleet/rollouts */
  createRollout(body: RolloutRequestBody): Promise<object>;
  /** GET /v1/fleet/rollouts: the active rollout (or `id`), its nodes */
  rolloutStatus(id?: string): Promise<object>;
  /** POST /v1/fleet/rollouts/request: pause, resume or abort */
  requestRollout(action: 'pause' | 'resume' | 'abort', id?: string): Promise<object>;
  /** GET /v1/fleet/history */
  history(id?: string, limit?: number): Promise<object>;
}

const anyObject = { type: 'object', additionalProperties: true } as const;
const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const strOrNull = { type: ['string', 'null'] } as const;
const labels = { type: 'object', additionalProperties: { type: 'string' } } as const;

/** GET /v1/fleet/status nodes[] (docs/api.md **Fleet node:**). */
export const fleetNodeFields = {
  node: str,
  up: { type: 'boolean' },
  labels,
  version: strOrNull,
  kernel: strOrNull,
  parts: { type: 'object', additionalProperties: { type: 'object', properties: { version: strOrNull, since: strOrNull } } },
  health: { type: ['object', 'null'], additionalProperties: true, properties: { status: str, reasons: { type: 'array', items: anyObject } } },
  lost_rate: { type: ['number', 'null'] },
  agent_cpu: { type: ['number', 'null'] },
  agent_rss: { type: ['integer', 'null'] },
  checks_critical: { type: ['integer', 'null'] },
  alerts_firing: { type: ['integer', 'null'] },
  last_seen: strOrNull,
  observed_at: strOrNull,
  registered_at: strOrNull,
  api: strOrNull,
  desired_bundle: strOrNull,
  bundle: strOrNull,
  bundle_result: strOrNull,
  leader: { type: 'boolean' },
} as const;

/** The leader's fleet-level findings (docs/api.md **Finding:**); fields by kind. */
export const findingFields = {
  kind: { type: 'string', enum: ['node_down', 'loss', 'version_skew'] },
  node: str,
  since: strOrNull,
  lost_rate: { type: 'number' },
  part: str,
  version: str,
  newest: str,
  newest_since: str,
} as const;

/** GET /v1/fleet/alerts alerts[] (docs/api.md **Fleet alert:**). */
export const fleetAlertFields = {
  schema: int,
  node: str,
  id: str,
  check_id: str,
  name: str,
  state: str,
  since: str,
  message: str,
  labels,
} as const;

const findings = { type: 'array', items: { type: 'object', additionalProperties: true, properties: findingFields } } as const;

export const fleetLocalRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      additionalProperties: true,
      properties: {
        node: str,
        labels,
        prefix: str,
        endpoints: { type: 'array', items: str },
        state: { type: 'string', enum: ['connecting', 'connected', 'local-only'] },
        since: str,
        reason: strOrNull,
        lease: strOrNull,
        lease_ttl_s: int,
        lease_usable: { type: 'boolean' },
        registered: { type: 'boolean' },
        is_leader: { type: 'boolean' },
        term: { type: ['integer', 'null'] },
        leader: { type: ['object', 'null'], properties: { node: str, term: int } },
        desired: {
          type: 'object',
          properties: {
            bundle: strOrNull,
            key: strOrNull,
            revision: int,
            watching: { type: 'boolean' },
            applied_total: int,
            history: { type: 'array', items: { type: 'object', properties: { revision: int, bundle: strOrNull, key: strOrNull, cause: str, at: int } } },
            resyncs: { type: 'array', items: { type: 'object', properties: { revision: int, reason: str, at: int } } },
          },
        },
        counters: {
          type: 'object',
          properties: {
            registrations: int, lease_losses: int, local_only_episodes: int, leader_terms: int, fenced_rejects: int, leader_writes: int, observed_writes: int, alert_writes: int,
          },
        },
        last_error: strOrNull,
      },
    },
  },
} as const;

export const fleetStatusRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        prefix: str,
        revision: int,
        leader: { type: ['object', 'null'], properties: { node: str, term: int, since: strOrNull } },
        counts: { type: 'object', properties: { nodes: int, up: int, down: int, degraded: int, losing: int } },
        nodes: { type: 'array', items: { type: 'object', additionalProperties: true, properties: fleetNodeFields } },
        findings,
        bad_values: int,
      },
    },
  },
} as const;

export const fleetAlertsRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        revision: int,
        alerts: { type: 'array', items: { type: 'object', additionalProperties: true, properties: fleetAlertFields } },
        findings,
      },
    },
  },
} as const;

export const fleetDesiredRoute = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['bundle'],
    properties: {
      bundle: { type: 'string', minLength: 1, maxLength: 128 },
      node: { type: 'string', minLength: 1, maxLength: 253 },
      selector: { type: 'string', minLength: 1, maxLength: 512 },
      all: { type: 'boolean' },
    },
  },
  response: { 200: { type: 'object', properties: { key: str, revision: int, bundle: str } } },
} as const;

/** A bundle file is at most this large (src/fleet/bundle.ts BUNDLE_MAX_BYTES). */
const BUNDLE_BODY_LIMIT = 64 << 20;

export const fleetBundlesRoute = {
  response: {
    200: {
      type: 'object',
      properties: {
        id: str,
        size: int,
        chunks: int,
        existed: { type: 'boolean' },
        revision: int,
        name: strOrNull,
        parts: { type: 'array', items: str },
      },
    },
  },
} as const;

/** The rollout document (docs/fleet.md, "Keys": rollouts/<id>); nested parts stay open. */
export const rolloutFields = {
  id: str,
  bundle: str,
  selector: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
  waves: { type: 'array', items: str },
  bake_ms: int,
  gates: { type: 'array', items: str },
  failure_limit: int,
  max_incompatible: { type: 'number' },
  created_at: str,
  created_by: str,
  state: { type: 'string', enum: ['pending', 'running', 'paused', 'rolling_back', 'completed', 'rolled_back', 'aborted', 'failed'] },
  started_at: strOrNull,
  order: { type: 'array', items: str },
  targets: { type: 'array', items: int },
  wave: int,
  told: int,
  bake_since: strOrNull,
  failures: int,
  incompatible: int,
  last_reading: { type: ['object', 'null'], additionalProperties: true },
  pause: { type: ['object', 'null'], additionalProperties: true },
  request: { type: ['object', 'null'], additionalProperties: true },
  rollback: { type: ['object', 'null'], additionalProperties: true },
  promoted_at: strOrNull,
  ended_at: strOrNull,
  result: strOrNull,
  baseline_start: { type: 'object', additionalProperties: true },
  controller: { type: ['object', 'null'], additionalProperties: true },
  seq: int,
  updated_at: str,
} as const;

const rollout = { type: 'object', additionalProperties: true, properties: rolloutFields } as const;

export const fleetRolloutCreateRoute = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['bundle'],
    properties: {
      bundle: { type: 'string', minLength: 1, maxLength: 128 },
      selector: { type: 'string', minLength: 1, maxLength: 512 },
      waves: { type: 'string', minLength: 1, maxLength: 256 },
      bake: { type: 'string', minLength: 1, maxLength: 32 },
      gates: { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 1024 } },
      failure_limit: { type: 'integer', minimum: 1, maximum: 100 },
      max_incompatible: { type: 'string', minLength: 1, maxLength: 16 },
    },
  },
  response: { 200: { type: 'object', properties: { rollout, revision: int, queued_behind: strOrNull } } },
} as const;

/** GET /v1/fleet/rollouts nodes[] (docs/api.md **Rollout node:**). */
export const rolloutNodeFields = {
  node: str,
  wave: int,
  told_at: str,
  up: { type: 'boolean' },
  bundle: strOrNull,
  result: strOrNull,
  incompatible: { type: ['object', 'null'], additionalProperties: true },
  restored_at: strOrNull,
  previous_bundle: strOrNull,
} as const;

export const fleetRolloutsRoute = {
  querystring: { type: 'object', additionalProperties: false, properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } },
  response: {
    200: {
      type: 'object',
      properties: {
        rollout: { ...rollout, type: ['object', 'null'] },
        nodes: { type: 'array', items: { type: 'object', additionalProperties: true, properties: rolloutNodeFields } },
        queued: { type: 'array', items: str },
        revision: int,
      },
    },
  },
} as const;

export const fleetRolloutRequestRoute = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['action'],
    properties: { action: { type: 'string', enum: ['pause', 'resume', 'abort'] }, id: { type: 'string', minLength: 1, maxLength: 64 } },
  },
  response: { 200: rollout },
} as const;

/** GET /v1/fleet/history events[] (docs/api.md **Rollout event:**). */
export const rolloutEventFields = {
  rollout: str,
  seq: int,
  at: str,
  by: str,
  term: { type: ['integer', 'null'] },
  kind: str,
  wave: int,
  message: str,
  evidence: {},
} as const;

export const fleetHistoryRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { id: { type: 'string', minLength: 1, maxLength: 64 }, limit: { type: 'integer', minimum: 1, maximum: 100_000, default: 1000 } },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        rollouts: { type: 'array', items: { type: 'object', additionalProperties: true } },
        events: { type: 'array', items: { type: 'object', additionalProperties: true, properties: rolloutEventFields } },
      },
    },
  },
} as const;

function send(reply: FastifyReply, status: number, message: string) {
  const error = status === 404 ? 'not_found' : status === 400 ? 'bad_request' : status === 503 ? 'unavailable' : 'internal_error';
  return reply.code(status).send({ error, message, status });
}

async function guarded(reply: FastifyReply, f: () => Promise<object>) {
  try {
    return await f();
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = (e as Error).message;
    if (code === 'E_FLEET_USAGE' || (typeof code === 'string' && code.startsWith('E_BUNDLE'))) return send(reply, 400, msg);
    if (typeof code === 'string' && code.startsWith('E_FLEET')) return send(reply, 503, msg);
    throw e;
  }
}

export function registerFleetRoutes(app: FastifyInstance, fleet: FleetView | undefined): void {
  const P = `${API_PREFIX}/fleet`;
  const none = (reply: FastifyReply) => send(reply, 404, 'this agent has no fleet section (docs/fleet.md)');
  app.get(P, { schema: fleetLocalRoute }, async (_req, reply) => (fleet ? fleet.local() : none(reply)));
  app.get(`${P}/status`, { schema: fleetStatusRoute }, async (_req, reply) => (fleet ? guarded(reply, () => fleet.status()) : none(reply)));
  app.get(`${P}/alerts`, { schema: fleetAlertsRoute }, async (_req, reply) => (fleet ? guarded(reply, () => fleet.alerts()) : none(reply)));
  app.post<{ Body: { bundle: string; node?: string; selector?: string; all?: boolean } }>(`${P}/desired`, { schema: fleetDesiredRoute }, async (req, reply) => {
    if (!fleet) return none(reply);
    const b = req.body;
    const n = (b.node !== undefined ? 1 : 0) + (b.selector !== undefined ? 1 : 0) + (b.all === true ? 1 : 0);
    if (n !== 1) return send(reply, 400, 'give exactly one of node, selector or all: true');
    return guarded(reply, () => fleet.setDesired(b.bundle, b));
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: BUNDLE_BODY_LIMIT }, (_req, body, done) => done(null, body));
  app.post<{ Body: Buffer }>(`${P}/bundles`, { schema: fleetBundlesRoute, bodyLimit: BUNDLE_BODY_LIMIT }, async (req, reply) => {
    if (!fleet) return none(reply);
    if (!Buffer.isBuffer(req.body)) return send(reply, 400, 'send the bundle file as application/octet-stream');
    return guarded(reply, () => fleet.pushBundle(req.body));
  });
  app.post<{ Body: RolloutRequestBody }>(`${P}/rollouts`, { schema: fleetRolloutCreateRoute, bodyLimit: 64 << 10 }, async (req, reply) => (fleet ? guarded(reply, () => fleet.createRollout(req.body)) : none(reply)));
  app.get<{ Querystring: { id?: string } }>(`${P}/rollouts`, { schema: fleetRolloutsRoute }, async (req, reply) => (fleet ? guarded(reply, () => fleet.rolloutStatus(req.query.id)) : none(reply)));
  app.post<{ Body: { action: 'pause' | 'resume' | 'abort'; id?: string } }>(`${P}/rollouts/request`, { schema: fleetRolloutRequestRoute }, async (req, reply) =>
    fleet ? guarded(reply, () => fleet.requestRollout(req.body.action, req.body.id)) : none(reply),
  );
  app.get<{ Querystring: { id?: string; limit?: number } }>(`${P}/history`, { schema: fleetHistoryRoute }, async (req, reply) => (fleet ? guarded(reply, () => fleet.history(req.query.id, req.query.limit)) : none(reply)));
}
