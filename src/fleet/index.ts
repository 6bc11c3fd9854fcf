// Fleet state on etcd (docs/fleet.md): the agent's only etcd client and everything it keeps there.
export { EtcdClient, prefixEnd, type EtcdOptions, type KV } from './client.js';
export { FleetError, type FleetErrorCode } from './errors.js';
export { Keys, parseSelector, formatSelector, selectorMatches, leaseHex, SCHEMA, NODE_RE, type Labels, type Finding } from './keys.js';
export { FleetNode, type FleetNodeOptions, type FleetLocalJson, type FleetTiming, type FleetConnState } from './node.js';
export { readFleetStatus, readFleetAlerts, readLeader, writeDesired, describeTarget, type FleetStatusJson, type FleetNodeStatus, type FleetAlertsJson, type DesiredTarget } from './reader.js';
export { quietInputs, type FleetInputs, type FiringAlert, type ReloadInfo, type PartVersion } from './inputs.js';
export type { AppliedEntry } from './state-file.js';
export { BundleError, createBundle, parseBundle, verifyBundle, loadTrustedKeys, readPrivateKey, keyIdOf, shortId, partOf, kernelAtLeast, checkOverlayText, BPF_OBJECTS, type Bundle, type Manifest, type TrustedKey, type BundleErrorCode } from './bundle.js';
export { pushBundle, fetchBundle, readBundleMeta, CHUNK_BYTES, type PushResult, type BundleMetaValue } from './bundle-store.js';
export { BundleKeeper, INCOMPATIBLE_CODES, type BundleHost, type BundleApplyOutcome, type BundleReport, type StagedBundle, type BundleKeeperOptions } from './bundle-keeper.js';
export { rolloutSpec, waveTargets, parseShare, describeSpec, evalIntervalMs, RolloutValue, RolloutEvent, RolloutNodeValue, ACTIVE_STATES, DEFAULT_WAVES, DEFAULT_BAKE_MS, DEFAULT_FAILURE_LIMIT, DEFAULT_MAX_INCOMPATIBLE, type RolloutSpec, type Reading, type GateSummary } from './rollout.js';
export { createRollout, listRollouts, rolloutStatus, requestRollout, readHistory, newRolloutId, type CreatedRollout, type RolloutStatusJson, type RolloutNodeStatus, type HistoryJson } from './rollout-ops.js';
export { gateFields } from './rollout-controller.js';
