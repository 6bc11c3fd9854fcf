// What the agent shows the local API: a read-only view of its state and its live event stream.
// src/app implements it; src/api serves it. src/api never imports src/app (architecture.md).
import type { EventType, LifecycleEvent, StateStreamEvent, TypeAccounting } from '../shared/events.js';
import type { Enriched, ProcessTable, ProcessTableStats, ProcState, RqStats, StuckD, ZombieInfo } from '../process/index.js';
import type { RingStats } from '../kernel/index.js';
import type { ExplainView } from './explain.js';
import type { ProcessIdentity } from '../process/index.js';
import type { ChecksView } from './checks.js';
import type { FleetView } from './fleet.js';
import type { NodeStrip, ProcessHistory, TopGroup, TopRow, TopSort } from '../metrics/index.js';

/** Resource windows, when the agent runs them (metrics.enabled). */
export interface ResourcesView {
  top(req: { windowMs: number; sort: TopSort; limit: number; byCgroup: boolean }): TopRow[] | TopGroup[];
  /** configured windows, ms */
  windowsMs: readonly number[];
  /** the longest window a query may ask for, ms */
  maxWindowMs: number;
  sweep: { sweeps: number; source: 'bpf' | 'proc'; lastMs: number; lastProcesses: number; errors: number };
  /** the node's figures and samples over a window (wall-clock times) */
  node(windowMs: number): NodeStrip;
  /** the samples of one process over a window; null when the windows do not hold it */
  history(execId: string, windowMs: number): ProcessHistory | null;
  /** Prometheus text exposition */
  metricsText(): Promise<string>;
  metricsContentType: string;
}

/** Loss accounting, as the lifecycle pipeline reports it (app's AccountingReport is a superset,
 *  so `pipeline.accounting()` can be passed as is). Exact only after the programs are detached;
 *  while running, records in flight may be missing from `captured`. */
export interface AccountingStats {
  perType: Record<EventType, TypeAccounting>;
  /** generated = captured + lost_reserve + lost_userspace for every type */
  identityHolds: boolean;
  /** generated but not yet decoded (in the ring or queue) at the time of the snapshot */
  inFlight?: bigint;
  /** records numbered by the kernel but never received (should equal lost_userspace) */
  seqGaps: bigint;
  malformed: number;
  threadExits: bigint;
  threadForks: bigint;
  /** per type: records captured twice during a sensor reload's overlap, removed */
  duplicates?: Record<EventType, bigint>;
}

/** A snapshot of the agent's counters. Served by GET /v1/stats in snake_case (see docs/api.md);
 *  `uptime_s`, `version`, `pid` and `started_at` are added from the view itself. */
export interface AgentStats {
  /** BPF programs attached */
  programs: readonly string[];
  accounting: AccountingStats;
  table: ProcessTableStats;
  /** ring consumer statistics; null when no ring is running */
  ring: RingStats | null;
  /** opaque store statistics (keys are converted to snake_case, bigints to numbers); null when
   *  there is no store */
  store: Record<string, unknown> | null;
  /** ok, or degraded with reasons (store failing, a consumer erroring, loss, a sensor missing) */
  health?: HealthReportView;
  /** throws caught at each event consumer's boundary (states, rules, checks, store, ...) */
  consumers?: Record<string, { errors: number; lastError: string | null; lastErrorAt: number | null }>;
  /** alert delivery per output (issue 17): delivered, pending, dropped, failures, ...; absent
   *  without outputs (opaque: keys converted to snake_case) */
  alerts?: Record<string, unknown>;
  /** redaction, identity and OTLP counters (opaque, snake_case) */
  export?: Record<string, unknown>;
}

export interface HealthReportView {
  status: 'ok' | 'degraded';
  reasons: Array<{ kind: 'store' | 'consumer' | 'loss' | 'sensor' | 'identity'; message: string }>;
}

export type EventListener = (ev: LifecycleEvent, en: Enriched) => void;

/** Scheduler states, when the state sensor runs. */
export interface StatesView {
  stateOf(execId: string, nowNs: bigint): { state: ProcState; stateMs: number; rq: RqStats; nvcsw: number; nivcsw: number } | null;
  zombies(nowNs: bigint): ZombieInfo[];
  stuckD(nowNs: bigint, thresholdNs: bigint): StuckD[];
  /** stuck-D threshold, ns */
  dThresholdNs: bigint;
  /** the process's recent states as observed (oldest first, bounded); absent: not kept */
  history?(execId: string): { state: ProcState; sinceNs: bigint }[];
}

export interface AgentView {
  /** scheduler states (null without the state sensor) */
  states: StatesView | null;
  /** CLOCK_BOOTTIME now, ns */
  nowNs(): bigint;
  version: string;
  /** ms since the epoch */
  startedAt: number;
  pid: number;
  /** static configuration echoed in the `ready` record of the event stream */
  config: { ringBytes: number; argsCap: number };
  stats(): AgentStats;
  /** the health report; absent: always ok (tests, fakes) */
  health?(): HealthReportView;
  /** read-only use: the API never calls apply(), bootstrap() or sweep() */
  table: ProcessTable;
  clock: { iso(ktimeNs: bigint): string };
  /** Live events, called synchronously right after table.apply(ev) on the event path, in order.
   *  Returns the unsubscribe function. The listener must be cheap and never throws. */
  subscribe(listener: EventListener): () => void;
  /** Called before every request is handled: the agent hands its consumers what the kernel has
   *  written so far, so an answer reads current state (absent: nothing to do). */
  freshen?(): void;
  /** Live transitions of interest and throttle notices from the state sensor, if it runs. */
  subscribeState?(listener: (ev: StateStreamEvent) => void): () => void;
  /** attribution (rules engine), when it runs */
  explain?: ExplainView;
  /** inspection checks, results and alerts, when the agent runs checks */
  checks?: ChecksView;
  /** Resource windows and /metrics; absent when metrics are disabled. */
  resources?: ResourcesView;
  /** the identity of a cgroup id as the agent has it (with the CRI's pod names), without
   *  resolving anything; absent or null: what the cgroup path proves is used */
  identityOf?(cgroupId: bigint): ProcessIdentity | null;
  /** fleet state on etcd, when the config has a `fleet` section */
  fleet?: FleetView;
  /** `patrol reload` (POST /v1/reload): config, sensors, rules and checks; absent: 404 */
  reload?(req: { sensors?: boolean }): Promise<ReloadReplyJson>;
  /** versions, generation and the last reload (GET /v1/status) */
  reloadStatus?(): ReloadStatusJson;
}

/** The reply of a reload, as src/app/reload.ts builds it (served as is). */
export interface ReloadReplyJson {
  ok: boolean;
  parts: { [part: string]: { result: 'applied' | 'unchanged' | 'rejected'; version: string | null; code?: string } };
}

/** Versions and the last reload, as src/app/reload.ts reports them. */
export interface ReloadStatusJson {
  versions: { [part: string]: string | null };
  generation: number;
}
