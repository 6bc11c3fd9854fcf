// Fleet routes (docs/api.md, docs/fleet.md): this agent's place in the fleet, and the fleet-wide
// view read from etcd through the agent's own client, for `patrol fleet ...` run on a node.
// 404 when the agent has no `fleet` section; 503 while it is local-only (etcd unreachable or
// without quorum), with the time it went local-only.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { API_PREFIX } from './defaults.js';

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
}

const anyObject = { type: 'object', additionalProperties: true } as const;
const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;
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
    if (code === 'E_FLEET_USAGE') return send(reply, 400, msg);
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
}
