// Store stage: the embedded SQLite store of process exits and agent runs.
export { Store, MAX_QUERY_LIMIT, ROWS_PER_INSERT } from './store.js';
export { StoreError, MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion, type Migration } from './schema.js';
export { blankSummary, exitSummary, type ExitEnrichment } from './summary.js';
export type {
  ExitQuery,
  ExitRecord,
  ExitSummary,
  FlushResult,
  RetentionOptions,
  RunRecord,
  StoreOptions,
  StoreStats,
} from './types.js';
export {
  CheckStore,
  type AlertInput,
  type AlertQuery,
  type AlertRecord,
  type CheckRunInput,
  type CheckRunQuery,
  type CheckRunRecord,
  type CheckStoreOptions,
  type CheckStoreStats,
} from './checks.js';
export { Outbox, type OutboxAlert, type OutboxCounterValues, type OutboxOptions, type OutboxRowOf } from './outbox.js';
