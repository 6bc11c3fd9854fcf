// POST /v1/reload (`patrol reload`) and GET /v1/status (versions, generation, last reload).
// The agent's reload coordinator (src/app/reload.ts) builds both bodies; docs/api.md documents
// every field and test/unit/api-docs.test.ts holds the two to each other.
import type { FastifyInstance } from 'fastify';
import type { AgentView } from './view.js';
import { uptimeS } from './json.js';
import { noQuery } from './schemas.js';

const anyObject = { type: 'object', additionalProperties: true } as const;
const nullableString = { type: ['string', 'null'] } as const;

export const reloadRoute = {
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      sensors: { type: 'boolean' },
    },
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: true,
      properties: {
        ok: { type: 'boolean' },
        trigger: { type: 'string', enum: ['api', 'signal', 'bundle'] },
        at: { type: 'string' },
        duration_ms: { type: 'number' },
        parts: {
          type: 'object',
          additionalProperties: true,
          properties: { config: anyObject, sensors: anyObject, rules: anyObject, checks: anyObject },
        },
      },
      required: ['ok', 'trigger', 'at', 'duration_ms', 'parts'],
    },
  },
} as const;

/** Fields of one part of the reply (docs/api.md lists them; config and sensors add theirs). */
export const PART_FIELDS = ['result', 'version', 'previous_version', 'code', 'reason', 'diagnostics'] as const;
export const CONFIG_PART_FIELDS = ['sections'] as const;
export const SECTION_FIELDS = ['result', 'keys', 'applied', 'not_live', 'code', 'reason'] as const;
export const SENSORS_PART_FIELDS = ['generation', 'reason_loaded', 'overlap_ms', 'duplicates', 'sensors'] as const;
export const SENSOR_OBJECT_FIELDS = ['result', 'version', 'code', 'reason', 'maps_reused', 'programs', 'overlap_ms', 'detach_ms'] as const;

/** `last_reload` of GET /v1/status. */
export const lastReloadFields = {
  at: { type: 'string' },
  trigger: { type: 'string' },
  ok: { type: 'boolean' },
  duration_ms: { type: 'number' },
  results: { type: 'object', additionalProperties: { type: 'string' } },
  codes: { type: 'array', items: { type: 'string' } },
  overlap_ms: { type: ['number', 'null'] },
  duplicates: { type: ['integer', 'null'] },
} as const;

export const statusRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      additionalProperties: true,
      properties: {
        version: { type: 'string' },
        pid: { type: 'integer' },
        uptime_s: { type: 'integer' },
        versions: {
          type: 'object',
          additionalProperties: true,
          properties: { config: nullableString, sensors: nullableString, rules: nullableString, checks: nullableString },
        },
        generation: { type: 'integer' },
        reloads: { type: 'integer' },
        last_reload: { type: ['object', 'null'], additionalProperties: true, properties: lastReloadFields },
      },
      required: ['version', 'versions', 'generation', 'reloads', 'last_reload'],
    },
  },
} as const;

/** Fields of `last_reload` in GET /v1/status. */
export const LAST_RELOAD_FIELDS = Object.keys(lastReloadFields) as (keyof typeof lastReloadFields)[];

export function registerReloadRoutes(app: FastifyInstance, prefix: string, view: AgentView): void {
  app.post<{ Body: { sensors?: boolean } | undefined }>(
    `${prefix}/reload`,
    {
      schema: reloadRoute,
      // `curl -X POST --unix-socket ... /v1/reload` sends no body: that is a plain reload
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req, reply) => {
      if (!view.reload) return reply.code(404).send({ error: 'not_found', message: 'this agent cannot reload', status: 404 });
      return view.reload({ ...(req.body?.sensors ? { sensors: true } : {}) });
    },
  );

  app.get(`${prefix}/status`, { schema: statusRoute }, async () => ({
    version: view.version,
    pid: view.pid,
    uptime_s: uptimeS(view.startedAt),
    ...(view.reloadStatus?.() ?? { versions: { config: null, sensors: null, rules: null, checks: null }, generation: 0, reloads: 0, last_reload: null }),
  }));
}
