// Wiring of the fleet module (issue 14): what the agent tells it (health, loss, checks, alerts,
// versions) and the view the API serves. Created before the API (the view is part of the
// AgentView), started after it (its registration names the TCP API address).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import { VERSION } from '../shared/version.js';
import type { FleetView } from '../api/index.js';
import {
  BundleKeeper, FleetNode, createRollout, loadTrustedKeys, parseSelector, parseShare, pushBundle, readHistory, requestRollout, rolloutSpec, rolloutStatus,
  type BundleHost, type DesiredTarget, type FiringAlert, type FleetInputs, type ReloadInfo,
} from '../fleet/index.js';
import type { AgentConfig, FleetConfig } from './config.js';
import type { AgentChecks } from './checks.js';
import type { HealthReport } from './health.js';

export interface FleetDeps {
  health: () => HealthReport;
  /** records lost so far, kernel and user space */
  lostTotal: () => number;
  checks: AgentChecks | null;
  /** host:port of the TCP API, null without one */
  apiAddress: () => string | null;
  startedAt: number;
  /** hot reload's part versions and last result; until it exists, nulls and "unknown" */
  reload?: () => ReloadInfo;
  /** bundle application: where bundles are kept, and what applies them (AgentBundleHost) */
  bundles?: { dir: string; host: BundleHost };
}

/** Parts and their versions before hot reload reports them (issue 13 replaces this). */
export const unknownReload = (): ReloadInfo => ({
  parts: { sensors: { version: null, since: null }, rules: { version: null, since: null }, checks: { version: null, since: null }, config: { version: null, since: null } },
  generation: null,
  lastReload: { at: null, result: 'unknown' },
});

/** The firing alerts from the checks' store: per check, its newest alert, if it is not a
 *  resolution. */
export function firingFromChecks(checks: AgentChecks | null): FiringAlert[] {
  if (!checks) return [];
  const seen = new Set<string>();
  const out: FiringAlert[] = [];
  for (const a of checks.view.alerts({ limit: 500 })) {
    if (seen.has(a.check_id)) continue;
    seen.add(a.check_id);
    if (a.kind === 'resolved' || a.state === 'ok') continue;
    out.push({ id: a.id, check_id: a.check_id, name: a.name, state: a.state, since: a.at, message: a.message, labels: a.labels });
  }
  return out;
}

function checkStates(checks: AgentChecks | null): Record<string, number> {
  const counts: Record<string, number> = { ok: 0, warning: 0, critical: 0, unknown: 0, timeout: 0 };
  if (!checks) return counts;
  for (const r of checks.service.executor.latest()) counts[r.state] = (counts[r.state] ?? 0) + 1;
  return counts;
}

function readPem(path: string | null, what: string): Buffer | null {
  if (path === null) return null;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new PatrolError('E_CONFIG', `fleet.tls.${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export interface AgentFleet {
  node: FleetNode;
  keeper: BundleKeeper | null;
  view: FleetView;
  start(): void;
  stop(): Promise<void>;
}

export function createFleet(cfg: AgentConfig, fc: FleetConfig, log: Logger, deps: FleetDeps): AgentFleet {
  const inputs: FleetInputs = {
    reload: deps.reload ?? unknownReload,
    health: deps.health,
    lostTotal: deps.lostTotal,
    checkStates: () => checkStates(deps.checks),
    firingAlerts: () => firingFromChecks(deps.checks),
    apiAddress: deps.apiAddress,
  };
  const tls = fc.tls === null ? null : { ca: readPem(fc.tls.ca, 'ca'), cert: readPem(fc.tls.cert, 'cert'), key: readPem(fc.tls.key, 'key') };
  const trusted = loadTrustedKeys(fc.trustedKeys);
  let keeper: BundleKeeper | null = null;
  inputs.bundle = () => keeper?.report() ?? null;
  const node = new FleetNode({
    endpoints: fc.endpoints,
    node: fc.node,
    labels: fc.labels,
    prefix: fc.prefix,
    leaseTtlMs: fc.leaseTtlMs,
    observedIntervalMs: fc.observedIntervalMs,
    skewBoundMs: fc.skewBoundMs,
    tls,
    // beside the store: the agent's own state directory
    stateFile: join(dirname(cfg.store.path), 'fleet-state.json'),
    version: VERSION,
    startedAt: deps.startedAt,
    pid: process.pid,
    inputs,
    log: log.child({ component: 'fleet' }),
    timing: { probeMs: fc.probeIntervalMs, probeDeadlineMs: Math.max(500, Math.round(fc.probeIntervalMs * 1.5)), detectMs: Math.max(1000, 3 * fc.probeIntervalMs) },
    onDesired: (e) => keeper?.want(e.bundle),
  });
  if (deps.bundles) {
    keeper = new BundleKeeper({
      dir: deps.bundles.dir, client: node.client, keys: node.keys, trusted, host: deps.bundles.host, log: log.child({ component: 'bundles' }),
      onChange: (applied) => node.bundleChanged(applied),
    });
  }
  const k = keeper;
  const view: FleetView = {
    summary: () => {
      const l = node.local();
      return { node: l.node, state: l.state, since: l.since, reason: l.reason, lease: l.lease, registered: l.registered, is_leader: l.is_leader, leader: l.leader, desired_bundle: l.desired.bundle, bundle: k?.report() ?? null };
    },
    local: () => node.local(),
    status: () => node.fleetStatus(),
    alerts: () => node.fleetAlerts(),
    setDesired: (bundle, t) => {
      const target: DesiredTarget = t.node !== undefined ? { node: t.node } : t.selector !== undefined ? { selector: parseSelector(t.selector) } : { all: true };
      return node.setDesired(bundle, target);
    },
    pushBundle: (bytes) => node.withEtcd((c, keys) => pushBundle(c, keys, bytes)),
    createRollout: (b) =>
      node.withEtcd((c, keys) =>
        createRollout(
          c, keys,
          rolloutSpec({
            bundle: b.bundle,
            selector: b.selector !== undefined ? parseSelector(b.selector) : null,
            ...(b.waves !== undefined ? { waves: b.waves.split(',') } : {}),
            ...(b.bake !== undefined ? { bake: b.bake } : {}),
            ...(b.gates !== undefined ? { gates: b.gates } : {}),
            ...(b.failure_limit !== undefined ? { failureLimit: b.failure_limit } : {}),
            ...(b.max_incompatible !== undefined ? { maxIncompatible: parseShare(b.max_incompatible, 'max_incompatible') } : {}),
          }),
        ),
      ),
    rolloutStatus: (id) => node.withEtcd((c, keys) => rolloutStatus(c, keys, id)),
    requestRollout: (action, id) => node.withEtcd((c, keys) => requestRollout(c, keys, action, id)),
    history: (id, limit) => node.withEtcd((c, keys) => readHistory(c, keys, id, limit)),
  };
  return {
    node,
    keeper,
    view,
    start: () => {
      node.start();
      // what the state file says this node should run (a change while it was down)
      k?.want(node.local().desired.bundle);
    },
    stop: async () => {
      k?.close();
      await node.stop();
    },
  };
}
