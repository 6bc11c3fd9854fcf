import type { BundleReport } from './bundle-keeper.js';

// What the agent tells the fleet module about itself. src/app implements it (src/app/fleet.ts);
// the fleet module only reads it, on its own timers, never on the event path.

export interface PartVersion {
  /** content version (hot reload: sha256 of the part's canonical content); null: unknown */
  version: string | null;
  /** when this version started running (ISO); null: unknown */
  since: string | null;
}

export interface ReloadInfo {
  /** sensors, rules, checks, config: what each runs */
  parts: Record<string, PartVersion>;
  /** the sensors' generation word; null until hot reload exists */
  generation: number | null;
  /** the last reload: when, and applied / rejected: <code> / unknown */
  lastReload: { at: string | null; result: string };
}

export interface FiringAlert {
  /** stable id of the firing alert */
  id: string;
  check_id: string;
  name: string;
  /** warning or critical */
  state: string;
  /** ms since the epoch */
  since: number;
  message: string;
  labels: Record<string, string>;
}

export interface FleetInputs {
  reload(): ReloadInfo;
  health(): { status: 'ok' | 'degraded'; reasons: Array<{ kind: string; message: string }> };
  /** records lost so far, kernel and user space */
  lostTotal(): number;
  /** how many checks are in each state now (ok, warning, critical, unknown, timeout) */
  checkStates(): Record<string, number>;
  /** the alerts firing now, one per check at most */
  firingAlerts(): FiringAlert[];
  /** host:port of the agent's TCP API, null when it has none */
  apiAddress(): string | null;
  /** the agent's CPU (% of one CPU, recent) and RSS (bytes); default: this process's own */
  usage?(): { cpuPct: number; rssBytes: number };
  /** the bundle the node runs and the last application's outcome (bundle-keeper.ts) */
  bundle?(): BundleReport | null;
}

/** Inputs for members without an agent behind them (bench, tests): all quiet. */
export const quietInputs: FleetInputs = {
  reload: () => ({ parts: {}, generation: null, lastReload: { at: null, result: 'unknown' } }),
  health: () => ({ status: 'ok', reasons: [] }),
  lostTotal: () => 0,
  checkStates: () => ({}),
  firingAlerts: () => [],
  apiAddress: () => null,
};
