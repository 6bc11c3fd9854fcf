// JSON schemas of the routes: fastify validates params and query strings with them (ajv) and
// serializes responses with them (fast-json-stringify). Plain JSON Schema objects: the TypeScript
// shapes live in json.ts and the route generics in server.ts.
//
// Response objects allow additional properties, so fields added to the converters in json.ts are
// served before the schema learns about them (fields are only added, never renamed).

const PID_MAX = 4194304; // PID_MAX_LIMIT on 64-bit kernels
const UID_MAX = 4294967295;

const nullable = (type: string) => ({ type: [type, 'null'] });
const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const;

export const errorSchema = {
  $id: 'patrol.error',
  type: 'object',
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    status: { type: 'integer' },
  },
  required: ['error', 'message', 'status'],
} as const;

export const processSchema = {
  $id: 'patrol.process',
  type: 'object',
  additionalProperties: true,
  properties: {
    exec_id: { type: 'string' },
    pid: { type: 'integer' },
    ppid: { type: 'integer' },
    parent_exec_id: nullable('string'),
    comm: { type: 'string' },
    filename: nullable('string'),
    args: { type: ['array', 'null'], items: { type: 'string' } },
    args_truncated: { type: 'boolean' },
    uid: nullable('integer'),
    gid: nullable('integer'),
    euid: nullable('integer'),
    cgroup_id: nullable('string'),
    state: { type: 'string', enum: ['R', 'S', 'D', 'T', 'I', 'Z', 'X'] },
    state_ms: nullable('integer'),
    lifecycle: { type: 'string', enum: ['live', 'zombie', 'dead'] },
    rq_p50_us: nullable('integer'),
    rq_p95_us: nullable('integer'),
    rq_max_us: nullable('integer'),
    nvcsw: nullable('integer'),
    nivcsw: nullable('integer'),
    start_time: { type: 'string' },
    start_ns: { type: 'string' },
    coarse_start: { type: 'boolean' },
    source: { type: 'string' },
    exec_count: { type: 'integer' },
    exit_code: nullable('integer'),
    signal: nullable('integer'),
    core_dumped: nullable('boolean'),
    exit_time: nullable('string'),
    reap_time: nullable('string'),
    child_count: { type: 'integer' },
    comm_raw: { type: 'string' },
    filename_raw: { type: 'string' },
    args_raw: { type: 'array', items: nullable('string') },
  },
  required: ['exec_id', 'pid', 'ppid', 'parent_exec_id', 'comm', 'state', 'start_time', 'start_ns'],
} as const;

export const treeNodeSchema = {
  $id: 'patrol.treeNode',
  type: 'object',
  properties: {
    process: { $ref: 'patrol.process#' },
    children: { type: 'array', items: { $ref: 'patrol.treeNode#' } },
    children_truncated: { type: 'boolean' },
  },
  required: ['process', 'children'],
} as const;

export const SHARED_SCHEMAS = [errorSchema, processSchema, treeNodeSchema];

const errors = {
  400: { $ref: 'patrol.error#' },
  401: { $ref: 'patrol.error#' },
  404: { $ref: 'patrol.error#' },
} as const;

const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

const HEALTH_REASONS = { type: 'array', items: { type: 'object', properties: { kind: { type: 'string' }, message: { type: 'string' } }, required: ['kind', 'message'] } } as const;

export const healthRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['ok', 'degraded'] },
        reasons: HEALTH_REASONS,
        version: { type: 'string' },
        pid: { type: 'integer' },
        uptime_s: { type: 'integer' },
      },
      required: ['status', 'reasons', 'version', 'uptime_s'],
    },
    ...errors,
  },
} as const;

export const statsRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      additionalProperties: true,
      properties: {
        version: { type: 'string' },
        pid: { type: 'integer' },
        started_at: { type: 'string' },
        uptime_s: { type: 'integer' },
        programs: { type: 'array', items: { type: 'string' } },
        accounting: {
          type: 'object',
          additionalProperties: true,
          properties: {
            generated: counts,
            captured: counts,
            lost: counts,
            lost_reserve: counts,
            lost_userspace: counts,
            totals: counts,
            identity_holds: { type: 'boolean' },
            in_flight: { type: 'integer' },
            seq_gaps: { type: 'integer' },
            malformed: { type: 'integer' },
            thread_exits: { type: 'integer' },
            thread_forks: { type: 'integer' },
          },
        },
        table: counts,
        ring: { type: ['object', 'null'], additionalProperties: true },
        store: { type: ['object', 'null'], additionalProperties: true },
        health: { type: 'object', properties: { status: { type: 'string', enum: ['ok', 'degraded'] }, reasons: HEALTH_REASONS } },
        consumers: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            properties: {
              errors: { type: 'integer' },
              last_error: { type: ['string', 'null'] },
              last_error_at: { type: ['string', 'null'] },
            },
          },
        },
        fleet: { type: ['object', 'null'], additionalProperties: true },
      },
    },
    ...errors,
  },
} as const;

const commFilter = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 }, maxItems: 64 } as const;
const uidFilter = { type: 'integer', minimum: 0, maximum: UID_MAX } as const;
const pidFilter = { type: 'integer', minimum: 1, maximum: PID_MAX } as const;

export const zombiesRoute = {
  response: {
    200: {
      type: 'object',
      properties: {
        zombies: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: true,
            properties: {
              pid: { type: 'integer' },
              exec_id: { type: 'string' },
              comm: { type: 'string' },
              ppid: { type: 'integer' },
              parent_exec_id: nullable('string'),
              parent_comm: nullable('string'),
              zombie_ms: { type: 'integer' },
              exit_time: { type: 'string' },
            },
            required: ['pid', 'exec_id', 'comm', 'ppid', 'parent_exec_id', 'parent_comm', 'zombie_ms'],
          },
        },
        stuck_d: { type: 'array', items: { type: 'object', additionalProperties: true } },
      },
      required: ['zombies'],
    },
  },
} as const;

export const processesRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      comm: commFilter,
      uid: uidFilter,
      pid: pidFilter,
      state: { type: 'string', enum: ['R', 'S', 'D', 'T', 'I', 'Z', 'X'] },
      lifecycle: { type: 'string', enum: ['live', 'zombie', 'dead'] },
      sort: { type: 'string', enum: ['pid', 'start', 'comm', 'state_ms', 'rq_p95', 'state'], default: 'pid' },
      limit: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        total: { type: 'integer' },
        processes: { type: 'array', items: { $ref: 'patrol.process#' } },
      },
      required: ['total', 'processes'],
    },
    ...errors,
  },
} as const;

export const processRoute = {
  params: {
    type: 'object',
    properties: { exec_id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
    required: ['exec_id'],
  },
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        process: { $ref: 'patrol.process#' },
        ancestry: { type: 'array', items: { $ref: 'patrol.process#' } },
        children: { type: 'array', items: { $ref: 'patrol.process#' } },
      },
      required: ['process', 'ancestry', 'children'],
    },
    ...errors,
  },
} as const;

export const treeRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { pid: pidFilter },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        total: { type: 'integer' },
        roots: { type: 'array', items: { $ref: 'patrol.treeNode#' } },
      },
      required: ['total', 'roots'],
    },
    ...errors,
  },
} as const;

export const eventsRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      comm: commFilter,
      uid: uidFilter,
      pid: pidFilter,
      failed: { type: 'boolean' },
      threads: { type: 'boolean' },
    },
  },
  // 200 is an NDJSON stream, not serialized by fastify
  response: errors,
} as const;
