// Process table stage: exec_id identity, the table itself, and the /proc reader it uses.
export { PathProbeMarker, PATH_PROBE_HOLD_NS } from './path-probe.js';
export { execId, execIdFactory, readBootId, BOOT_ID_PATH, type ExecIdFn } from './exec-id.js';
export {
  ProcessTable,
  ProcessEntry,
  DEFAULT_DEAD_MAX,
  MIN_DEAD_MAX,
  SubtreeFilter,
  EXIT_DEAD,
  EXIT_ZOMBIE,
  type Enriched,
  type EntrySource,
  type ExitInfo,
  type ProcessFilter,
  type ProcessState,
  type ProcessTableOptions,
  type ProcessTableStats,
  type TaskSnapshot,
} from './table.js';
export type { DeadFields } from './dead-records.js';
export {
  RealProcFs,
  parseStat,
  parseCmdline,
  parseStatusUid,
  readUptimeNs,
  USER_HZ,
  NS_PER_TICK,
  type ProcFs,
  type ProcStat,
} from './procfs.js';
export { StateMachine, validTransition, normalize, type Anomaly, type ProcState } from './state-machine.js';
export { ProcessStates, STATE_LOG_MAX, histPercentile, type RqStats, type ZombieInfo, type StuckD } from './states.js';
export { readProcUsage } from './proc-usage.js';
export { IdentityCache, identityFromPath, identityMatches, hasIdentityFilter, type IdentityFilter, type ProcessIdentity, type ContainerRuntime, type PodQos, type IdentityStats, type IdentityCacheOptions } from './identity.js';
export { CriIdentity, type CriSource, type CriStats, type CriState, type CriIdentityOptions } from './cri-identity.js';
