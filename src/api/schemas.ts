// JSON schemas of the routes: fastify validates params and query strings with them (ajv) and
// serializes responses with them (fast-json-stringify). Plain JSON Schema objects: the TypeScript
// shapes live in json.ts and the route generics in server.ts.
//
// Response objects allow additional properties, so fields added to the converters in json.ts are
// served before the schema learns about them (fields are only added, never renamed).

import type { CheckRunJson, AlertJson as CheckAlertJson, ChecksStatusJson } from './checks.js';
import type { AlertJson as ExplainAlertJson, CauseJson, EvidenceJson, ExplainJson, ExplainRecentJson, RuleProfileJson, RulesJson } from './explain.js';
import type { HealthJson, ProcessDetailJson, ProcessJson, StatsJson, StuckDJson, TopJson, TreeJson, TreeNodeJson, ZombieJson } from './json.js';
import type { Fig, NodeStrip, ProcessHistory, TopGroup, TopRow } from '../metrics/index.js';
import type { HistoryJson, NodeJson } from './history.js';
import { fieldsParam } from './fields.js';

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
    state: { type: 'string', enum: ['R', 'S', 'D', 'T', 'I', 'P', 'Z', 'X'] },
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
    args_redacted: { type: 'boolean' },
    cgroup: nullable('string'),
    unit: nullable('string'),
    container_runtime: nullable('string'),
    container_id: nullable('string'),
    pod_uid: nullable('string'),
    pod_qos: nullable('string'),
    pod_name: nullable('string'),
    pod_namespace: nullable('string'),
    container_name: nullable('string'),
    image: nullable('string'),
  } satisfies Fields<ProcessJson>,
  required: ['exec_id', 'pid', 'ppid', 'parent_exec_id', 'comm', 'state', 'start_time', 'start_ns'],
} as const;

export const treeNodeSchema = {
  $id: 'patrol.treeNode',
  type: 'object',
  properties: {
    process: { $ref: 'patrol.process#' },
    children: { type: 'array', items: { $ref: 'patrol.treeNode#' } },
    children_truncated: { type: 'boolean' },
  } satisfies Fields<TreeNodeJson>,
  required: ['process', 'children'],
} as const;

export const SHARED_SCHEMAS = [errorSchema, processSchema, treeNodeSchema];

const errors = {
  400: { $ref: 'patrol.error#' },
  401: { $ref: 'patrol.error#' },
  404: { $ref: 'patrol.error#' },
} as const;

export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

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
      } satisfies Fields<HealthJson>,
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
            duplicates: counts,
          },
        },
        table: counts,
        ring: { type: ['object', 'null'], additionalProperties: true },
        store: { type: ['object', 'null'], additionalProperties: true },
        health: { type: 'object', properties: { status: { type: 'string', enum: ['ok', 'degraded'] }, reasons: HEALTH_REASONS } },
        alerts: { type: 'object', additionalProperties: { type: 'object', additionalProperties: true } },
        export: { type: 'object', additionalProperties: true },
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
      } satisfies Fields<StatsJson>,
    },
    ...errors,
  },
} as const;

const commFilter = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 }, maxItems: 64 } as const;
const uidFilter = { type: 'integer', minimum: 0, maximum: UID_MAX } as const;
const pidFilter = { type: 'integer', minimum: 1, maximum: PID_MAX } as const;
/** A pod filter: a uid or a prefix of it, or a pod's name, alone or after its namespace. */
export const POD_FILTER_PATTERN = '^(?:[0-9a-fA-F-]{1,36}|(?:[a-z0-9][-a-z0-9]{0,62}/)?[a-z0-9][-a-z0-9.]{0,252})$';

/** cgroup identity filters (issue 17): a unit name, a container id (or a prefix), a pod uid (or a
 *  prefix) or name */
export const identityFilters = {
  unit: { type: 'string', minLength: 1, maxLength: 256 },
  container: { type: 'string', pattern: '^[0-9a-fA-F]{1,64}$' },
  pod: { type: 'string', pattern: POD_FILTER_PATTERN },
} as const;

export const processesRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      comm: commFilter,
      uid: uidFilter,
      pid: pidFilter,
      state: { type: 'string', enum: ['R', 'S', 'D', 'T', 'I', 'P', 'Z', 'X'] },
      lifecycle: { type: 'string', enum: ['live', 'zombie', 'dead'] },
      sort: { type: 'string', enum: ['pid', 'start', 'comm', 'state_ms', 'rq_p95', 'state'], default: 'pid' },
      limit: { type: 'integer', minimum: 1, maximum: 1_000_000 },
      fields: fieldsParam,
      ...identityFilters,
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
        states: { type: 'array', items: { type: 'object', properties: { state: { type: 'string' }, since: { type: 'string' } }, required: ['state', 'since'] } },
      } satisfies Fields<ProcessDetailJson>,
      required: ['process', 'ancestry', 'children', 'states'],
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
      } satisfies Fields<TreeJson>,
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
      ...identityFilters,
    },
  },
  // 200 is an NDJSON stream, not serialized by fastify
  response: errors,
} as const;

// ------------------------------------------------------------------ the other routes
// Each schema below lists every field docs/api.md documents (test/unit/api-docs.test.ts checks
// both ways); `satisfies Fields<T>` makes the compiler hold it to the TypeScript shape the route
// returns, so code, schema and docs cannot drift apart silently.

/** Exactly the keys of T, each with a JSON schema. */
type Fields<T> = { [K in keyof Required<T>]: object };

const any = {} as const;
const labelsSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;
const checkIdParam = { type: 'string', pattern: '^[0-9a-f]{16}$' } as const;

export const zombieFields = {
  pid: { type: 'integer' },
  exec_id: { type: 'string' },
  comm: { type: 'string' },
  ppid: { type: 'integer' },
  parent_exec_id: nullable('string'),
  parent_comm: nullable('string'),
  zombie_ms: { type: 'integer' },
  exit_time: { type: 'string' },
} as const satisfies Fields<ZombieJson>;

export const stuckDFields = {
  pid: { type: 'integer' },
  tid: { type: 'integer' },
  exec_id: nullable('string'),
  comm: { type: 'string' },
  d_ms: { type: 'integer' },
} as const satisfies Fields<StuckDJson>;

// --- checks (src/api/checks.ts)

export const checkFields = {
  id: { type: 'string' },
  name: { type: 'string' },
  file: { type: 'string' },
  line: { type: 'integer' },
  every_ms: { type: 'integer' },
  timeout_ms: { type: 'integer' },
  labels: labelsSchema,
} as const satisfies Fields<ChecksStatusJson['checks'][number]>;

export const reloadFields = {
  at: { type: 'integer' },
  ok: { type: 'boolean' },
  checks: { type: 'integer' },
  files: { type: 'integer' },
  errors: { type: 'integer' },
  diagnostics: { type: 'array', items: { type: 'string' } },
  version: nullable('string'),
  changed: { type: 'boolean' },
  code: { type: 'string' },
} as const satisfies Fields<NonNullable<ChecksStatusJson['last_reload']>>;

export const checksRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        dir: { type: 'string' },
        checks: { type: 'array', items: { type: 'object', additionalProperties: true, properties: checkFields } },
        version: nullable('string'),
        last_reload: { type: ['object', 'null'], additionalProperties: true, properties: reloadFields },
      } satisfies Fields<ChecksStatusJson>,
    },
    ...errors,
  },
} as const;

export const checkRunFields = {
  id: { type: 'integer' },
  check_id: { type: 'string' },
  name: { type: 'string' },
  file: { type: 'string' },
  state: { type: 'string' },
  at: { type: 'integer' },
  duration_ms: { type: 'number' },
  message: { type: 'string' },
  evidence: any,
  labels: labelsSchema,
  version: nullable('string'),
} as const satisfies Fields<CheckRunJson>;

export const checkResultsRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      latest: { type: 'boolean' },
      check_id: checkIdParam,
      state: { type: 'string', enum: ['ok', 'warning', 'critical', 'unknown', 'timeout'] },
      since: { type: 'integer', minimum: 0 },
      before_id: { type: 'integer', minimum: 1 },
      limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
    },
  },
  response: {
    200: { type: 'object', properties: { results: { type: 'array', items: { type: 'object', additionalProperties: true, properties: checkRunFields } } }, required: ['results'] },
    ...errors,
  },
} as const;

export const alertFields = {
  id: { type: 'string' },
  seq: { type: 'integer' },
  check_id: { type: 'string' },
  name: { type: 'string' },
  kind: { type: 'string' },
  state: { type: 'string' },
  previous: { type: 'string' },
  at: { type: 'integer' },
  message: { type: 'string' },
  labels: labelsSchema,
  evidence: any,
  attribution: any,
  version: nullable('string'),
} as const satisfies Fields<CheckAlertJson>;

export const alertsRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      check_id: checkIdParam,
      since: { type: 'integer', minimum: 0 },
      before_seq: { type: 'integer', minimum: 1 },
      limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
    },
  },
  response: {
    200: { type: 'object', properties: { alerts: { type: 'array', items: { type: 'object', additionalProperties: true, properties: alertFields } } }, required: ['alerts'] },
    ...errors,
  },
} as const;

// --- attribution (src/api/explain.ts): these routes send pre-serialized JSON (kernel bigints
// become numbers there), so the schemas document and check, and do not serialize.

export const evidenceFields = {
  kind: { type: 'string' },
  ts: { type: 'string' },
  summary: { type: 'string' },
  exec_id: { type: 'string' },
  data: { type: 'object', additionalProperties: true },
} as const satisfies Fields<EvidenceJson>;

export const causeFields = {
  cause: { type: 'string' },
  confidence: { type: 'number' },
  explanation: { type: 'string' },
  evidence: { type: 'array', items: { type: 'object', additionalProperties: true, properties: evidenceFields } },
  rule: { type: 'string' },
  score: { type: 'number' },
  ts: { type: 'string' },
  count: { type: 'integer' },
  processes: { type: 'integer' },
  exec_id: nullable('string'),
  pid: nullable('integer'),
  finding_id: { type: 'integer' },
  version: { type: 'string' },
} as const satisfies Fields<CauseJson>;

export const explainAlertFields = {
  id: { type: 'string' },
  check: { type: 'string' },
  state: { type: 'string' },
  ts: { type: 'integer' },
  evidence: any,
} as const satisfies Fields<ExplainAlertJson>;

const cause = { type: 'object', additionalProperties: true, properties: causeFields } as const;
export const explainFields = {
  alert: { type: ['object', 'null'], additionalProperties: true, properties: explainAlertFields },
  causes: { type: 'array', items: cause },
  version: { type: 'string' },
} as const satisfies Fields<ExplainJson>;

export const explainRoute = {
  params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 200 } }, required: ['id'] },
  querystring: noQuery,
  response: { 200: { type: 'object', properties: explainFields }, ...errors },
} as const;

export const explainRecentRoute = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      recent: { type: 'string', enum: ['1', 'true', '0', 'false'] },
      limit: { type: 'integer', minimum: 1, maximum: 500 },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        alerts: { type: 'array', items: { type: 'object', additionalProperties: true, properties: explainFields } },
        causes: { type: 'array', items: cause },
        version: { type: 'string' },
      } satisfies Fields<ExplainRecentJson>,
    },
    ...errors,
  },
} as const;

export const ruleProfileFields = {
  rule: { type: 'string' },
  source: { type: 'string' },
  evaluations: { type: 'integer' },
  pattern_matches: { type: 'integer' },
  tree_runs: { type: 'integer' },
  matches: { type: 'integer' },
  time_ms: { type: 'number' },
  max_us: { type: 'number' },
} as const satisfies Fields<RuleProfileJson>;

export const rulesRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        dir: { type: 'string' },
        version: { type: 'string' },
        rules: { type: 'integer' },
        diagnostics: { type: 'array', items: { type: 'string' } },
        profile: { type: 'array', items: { type: 'object', additionalProperties: true, properties: ruleProfileFields } },
        stats: { type: 'object', additionalProperties: true },
      } satisfies Fields<RulesJson>,
    },
    ...errors,
  },
} as const;

// --- resource windows (src/api/top.ts; rows are documented in docs/metrics.md)

export const topRowFields = {
  pid: { type: 'integer' },
  ppid: { type: 'integer' },
  exec_id: { type: 'string' },
  comm: { type: 'string' },
  cgroup_id: nullable('string'),
  cgroup: nullable('string'),
  owner: nullable('string'),
  exited: { type: 'boolean' },
  cpu: { type: 'object', additionalProperties: true },
  cpu_seconds: { type: 'number' },
  rss_bytes: { type: 'object', additionalProperties: true },
  io_read_bytes: { type: 'number' },
  io_write_bytes: { type: 'number' },
  exit: { type: ['object', 'null'], additionalProperties: true },
  aggregate: { type: ['object', 'null'], additionalProperties: true },
} as const satisfies Fields<TopRow>;

export const topGroupFields = {
  cgroup: nullable('string'),
  cgroup_id: nullable('string'),
  owner: nullable('string'),
  processes: { type: 'integer' },
  cpu: { type: 'object', additionalProperties: true },
  cpu_seconds: { type: 'number' },
  rss_bytes: { type: 'object', additionalProperties: true },
  io_read_bytes: { type: 'number' },
  io_write_bytes: { type: 'number' },
  rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
} as const satisfies Fields<TopGroup>;

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
      ...identityFilters,
    },
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: true,
      properties: {
        window: { type: 'string' },
        window_ms: { type: 'integer' },
        sort: { type: 'string' },
        group: { type: 'string' },
        sweep: { type: 'object', additionalProperties: true },
        // TopRow (group=process) or TopGroup (group=cgroup): topRowFields, topGroupFields
        rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
      } satisfies Fields<TopJson>,
    },
    ...errors,
  },
} as const;

export const metricsRoute = { querystring: noQuery } as const;

// --- the node and process samples (src/api/history.ts): the dashboard's charts

const windowParam = { type: 'string', maxLength: 32 } as const;
/** [wall ms, value] pairs */
const points = { type: 'array', items: { type: 'array', items: { type: 'number' } } } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

export const figFields = {
  avg: { type: 'number' },
  p95: { type: 'number' },
  max: { type: 'number' },
  last: { type: 'number' },
} as const satisfies Fields<Fig>;
const fig = { type: ['object', 'null'], properties: figFields } as const;

/** Processes one /v1/history request may name (a screenful of sparklines and then some). */
export const HISTORY_MAX_IDS = 200;

const nodeStripFields = {
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
    } satisfies Fields<NodeStrip['series']>,
  },
} as const satisfies Fields<NodeStrip>;

export const nodeRoute = {
  querystring: { type: 'object', additionalProperties: false, properties: { window: windowParam } },
  response: {
    200: {
      type: 'object',
      properties: { window: { type: 'string' }, window_ms: { type: 'integer' }, ...nodeStripFields } satisfies Fields<NodeJson>,
      required: ['window', 'window_ms', 'series'],
    },
    ...errors,
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
            properties: { exec_id: { type: 'string' }, cpu: points, rss: points, io_read: points, io_write: points } satisfies Fields<ProcessHistory>,
            required: ['exec_id', 'cpu', 'rss', 'io_read', 'io_write'],
          },
        },
        missing: { type: 'array', items: { type: 'string' } },
      } satisfies Fields<HistoryJson>,
      required: ['window', 'window_ms', 'processes', 'missing'],
    },
    ...errors,
  },
} as const;

export const zombiesRoute = {
  querystring: noQuery,
  response: {
    200: {
      type: 'object',
      properties: {
        zombies: { type: 'array', items: { type: 'object', additionalProperties: true, properties: zombieFields, required: ['pid', 'exec_id', 'comm', 'ppid', 'parent_exec_id', 'parent_comm', 'zombie_ms'] } },
        stuck_d: { type: 'array', items: { type: 'object', additionalProperties: true, properties: stuckDFields } },
      },
      required: ['zombies'],
    },
  },
} as const;

