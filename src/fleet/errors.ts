// Errors of the fleet module. Each has a stable code; etcd and gRPC failures are translated here
// so callers never branch on a library's error classes or message text.
import { PatrolError } from '../shared/errors.js';

export type FleetErrorCode =
  /** no member answered in time, or the cluster has no quorum */
  | 'E_FLEET_UNAVAILABLE'
  /** the agent's lease expired or is not known to etcd */
  | 'E_FLEET_LEASE_LOST'
  /** a leader write whose fencing comparison failed: this agent no longer leads */
  | 'E_FLEET_FENCED'
  /** the revision asked for was compacted away */
  | 'E_FLEET_COMPACTED'
  /** another agent holds this node name */
  | 'E_FLEET_NODE_TAKEN'
  /** a value under the prefix that is not what docs/fleet.md describes */
  | 'E_FLEET_BAD_VALUE'
  /** bad input from an operator (selector, bundle id, endpoints) */
  | 'E_FLEET_USAGE'
  /** etcd refused the request for another reason */
  | 'E_FLEET_ETCD';

export class FleetError extends PatrolError {
  constructor(
    override readonly code: FleetErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

/** One line for an etcd client error (gRPC status names and etcd's own words, no stack). */
export function describeEtcdError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const m = e.message.replace(/\s+Please report this error at \S+/, '');
  return m.length > 300 ? `${m.slice(0, 297)}...` : m;
}

/** etcd errors → FleetError: lease and compaction errors keep their meaning, the rest is
 *  "unavailable" (timeouts, no leader, connection refused) or "etcd" (a refusal). */
export function toFleetError(e: unknown, what: string): FleetError {
  if (e instanceof FleetError) return e;
  const msg = describeEtcdError(e);
  if (/requested lease not found|lease not found|lease expired/i.test(msg)) return new FleetError('E_FLEET_LEASE_LOST', `${what}: ${msg}`);
  if (/required revision has been compacted|compacted/i.test(msg)) return new FleetError('E_FLEET_COMPACTED', `${what}: ${msg}`);
  const name = e instanceof Error ? e.constructor.name : '';
  if (/Deadline|Unavailable|Cancelled|BrokenCircuit|Timeout|Internal|Unknown|Aborted|ResourceExhast/i.test(name) || /no leader|timed out|deadline|unavailable|ECONNREFUSED|connect|closed/i.test(msg)) {
    return new FleetError('E_FLEET_UNAVAILABLE', `${what}: ${msg}`);
  }
  return new FleetError('E_FLEET_ETCD', `${what}: ${msg}`);
}
