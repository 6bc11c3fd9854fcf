// Fleet state on etcd (docs/fleet.md): the agent's only etcd client and everything it keeps there.
export { EtcdClient, prefixEnd, type EtcdOptions, type KV } from './client.js';
export { FleetError, type FleetErrorCode } from './errors.js';
export { Keys, parseSelector, formatSelector, selectorMatches, leaseHex, SCHEMA, NODE_RE, type Labels, type Finding } from './keys.js';
export { FleetNode, type FleetNodeOptions, type FleetLocalJson, type FleetTiming, type FleetConnState } from './node.js';
export { readFleetStatus, readFleetAlerts, readLeader, writeDesired, describeTarget, type FleetStatusJson, type FleetNodeStatus, type FleetAlertsJson, type DesiredTarget } from './reader.js';
export { quietInputs, type FleetInputs, type FiringAlert, type ReloadInfo, type PartVersion } from './inputs.js';
export type { AppliedEntry } from './state-file.js';
