// One fleet member: the agent's registration, observed state, alerts, desired-state watch and
// its part in the leader election, against an etcd cluster. Everything runs on timers and
// promises of its own: the agent's event path never waits on etcd (docs/fleet.md, "Degraded").
//
// Lease. Granted with fleet.lease_ttl and kept alive every third of it. The lease is *usable*
// only until the last confirmed keepalive's send time + TTL: past that (etcd unreachable, or
// this process stopped), nothing bound to it is written and leadership stops at once, before
// any request, until etcd confirms the lease again (TTL > 0) or says it is gone (TTL 0), in
// which case the agent registers afresh with a new lease.
//
// Connection. A linearizable read with a deadline (the "probe") runs every second: a watch on a
// member without quorum just goes silent, a linearizable read fails. No successful probe for
// detect_ms (3 s) means local-only; the next success re-registers and republishes.
//
// Leader: election.ts (fenced writes, the leader's checks), given the usable lease by this file.
import { release } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../shared/log.js';
import { EtcdClient, prefixEnd, type KeepAliveChannel, type Op } from './client.js';
import { FleetError, describeEtcdError } from './errors.js';
import { Keys, NodeValue, SCHEMA, decode, encode, leaseHex, type AlertValue, type Labels } from './keys.js';
import { DesiredWatcher } from './desired.js';
import { ObservedBuilder, observedSignature } from './observed.js';
import { Election } from './election.js';
import { FleetStateFile, type AppliedEntry } from './state-file.js';
import type { FiringAlert, FleetInputs } from './inputs.js';
import { readFleetAlerts, readFleetStatus, writeDesired, type DesiredTarget, type FleetAlertsJson, type FleetStatusJson } from './reader.js';

export interface FleetTiming {
  /** linearizable probe period and deadline, ms */
  probeMs: number;
  probeDeadlineMs: number;
  /** no successful probe for this long: local-only */
  detectMs: number;
  /** observed/alerts refresh (observed is still written at most once per interval) */
  refreshMs: number;
  /** deadline of other requests */
  rpcDeadlineMs: number;
}

export interface FleetNodeOptions {
  endpoints: string[];
  node: string;
  labels: Labels;
  prefix: string;
  leaseTtlMs: number;
  observedIntervalMs: number;
  skewBoundMs: number;
  tls: { ca: Buffer | null; cert: Buffer | null; key: Buffer | null } | null;
  /** where the instance id and the desired watch position are kept (null: memory only) */
  stateFile: string | null;
  version: string;
  /** ms since the epoch */
  startedAt: number;
  pid: number;
  inputs: FleetInputs;
  log: Logger;
  timing?: Partial<FleetTiming>;
  /** share one client between simulated members (bench); default: a client of its own */
  client?: EtcdClient;
  /** called after each desired revision is applied (tests, issue 15) */
  onDesired?: (e: AppliedEntry) => void;
}

export type FleetConnState = 'connecting' | 'connected' | 'local-only';

/** This agent's fleet state, as GET /v1/fleet and `patrol status` show it. */
export interface FleetLocalJson {
  node: string;
  labels: Labels;
  prefix: string;
  endpoints: string[];
  state: FleetConnState;
  /** ISO time the state began */
  since: string;
  reason: string | null;
  lease: string | null;
  lease_ttl_s: number;
  /** false while the lease is not confirmed within its TTL (nothing bound to it is written) */
  lease_usable: boolean;
  registered: boolean;
  is_leader: boolean;
  term: number | null;
  leader: { node: string; term: number } | null;
  desired: {
    bundle: string | null;
    key: string | null;
    revision: number;
    watching: boolean;
    applied_total: number;
    history: AppliedEntry[];
    resyncs: Array<{ revision: number; reason: string; at: number }>;
  };
  counters: {
    registrations: number;
    lease_losses: number;
    local_only_episodes: number;
    leader_terms: number;
    fenced_rejects: number;
    leader_writes: number;
    observed_writes: number;
    alert_writes: number;
  };
  last_error: string | null;
}

const DEFAULT_TIMING: FleetTiming = { probeMs: 1000, probeDeadlineMs: 1500, detectMs: 3000, refreshMs: 2000, rpcDeadlineMs: 2000 };

interface LeaseInfo {
  id: string;
  ttlS: number;
  /** performance.now() until which the lease is known to live */
  validUntil: number;
}

export class FleetNode {
  readonly keys: Keys;
  readonly client: EtcdClient;
  readonly timing: FleetTiming;
  private readonly ownsClient: boolean;
  private readonly ka: KeepAliveChannel;
  private readonly state: FleetStateFile;
  private readonly desired: DesiredWatcher;
  private readonly observed: ObservedBuilder;
  private conn: FleetConnState = 'connecting';
  private since = Date.now();
  private reason: string | null = 'starting';
  private readonly startPerf = performance.now();
  private lease: LeaseInfo | null = null;
  private registered = false;
  private readonly election: Election;
  private publishedAlerts = new Map<string, string>();
  private lastObservedSig: string | null = null;
  private lastObservedAt = -Infinity;
  private forcePublish = false;
  private waitCpu = false;
  private inFlight = { keepalive: false, probe: false, observed: false, alerts: false };
  private lastProbeOk = -Infinity;
  private lastProbeStart = -Infinity;
  private reconciling: Promise<void> | null = null;
  private needReconcile = true;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private lastError: string | null = null;
  private registeredAt: string | null = null;
  /** the revision our registration landed at: an older read cannot contradict it */
  private registeredRev = 0;
  private loggedError: string | null = null;
  readonly counters = { registrations: 0, lease_losses: 0, local_only_episodes: 0, leader_terms: 0, fenced_rejects: 0, leader_writes: 0, observed_writes: 0, alert_writes: 0 };

  constructor(private readonly o: FleetNodeOptions) {
    this.keys = new Keys(o.prefix);
    this.timing = { ...DEFAULT_TIMING, refreshMs: Math.min(DEFAULT_TIMING.refreshMs, o.observedIntervalMs), ...o.timing };
    this.ownsClient = o.client === undefined;
    this.client = o.client ?? new EtcdClient({ endpoints: o.endpoints, tls: o.tls, timeoutMs: this.timing.rpcDeadlineMs });
    this.ka = this.client.keepAlives();
    this.state = new FleetStateFile(o.stateFile, o.log);
    this.observed = new ObservedBuilder(o.node, o.inputs);
    this.election = new Election(this.client, this.keys, o.node, {
      usableLease: () => (this.usable() ? this.lease!.id : null),
      log: o.log,
      counters: this.counters,
      skewBoundMs: o.skewBoundMs,
      leaseTtlMs: o.leaseTtlMs,
      onError: (m: string) => (this.lastError = m),
      onFenced: () => (this.needReconcile = true),
    });
    this.desired = new DesiredWatcher(this.client, this.keys, o.node, o.labels, this.state, o.log, (e) => {
      o.log.info({ revision: e.revision, bundle: e.bundle, key: e.key, cause: e.cause }, 'fleet: desired state applied');
      o.onDesired?.(e);
    });
  }

  get node(): string {
    return this.o.node;
  }

  /** Starts in the background: the agent does not wait for etcd, and runs local-only if it
   *  cannot be reached. */
  start(): void {
    const every = (ms: number, f: () => void) => {
      const t = setInterval(f, ms);
      t.unref();
      this.timers.push(t);
    };
    this.observed.sample();
    every(Math.max(200, Math.floor(this.o.leaseTtlMs / 3)), () => void this.keepalive());
    every(this.timing.probeMs, () => void this.probe());
    every(250, () => this.watchdog());
    every(this.timing.refreshMs, () => this.refresh());
    void this.reconcile();
  }

  // ---------------------------------------------------------------- lease

  private usable(): boolean {
    return this.lease !== null && performance.now() < this.lease.validUntil;
  }

  private margin(): number {
    return Math.min(500, this.o.leaseTtlMs / 10);
  }

  private async keepalive(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.inFlight.keepalive || this.stopped) return;
    this.inFlight.keepalive = true;
    const sent = performance.now();
    try {
      const ttl = await this.ka.keepalive(lease.id, Math.min(this.timing.rpcDeadlineMs, Math.max(500, this.o.leaseTtlMs / 3)));
      if (this.lease !== lease) return;
      if (ttl <= 0) this.leaseLost('etcd says the lease expired');
      else lease.validUntil = sent + ttl * 1000 - this.margin();
    } catch {
      /* connectivity is the probe's business; the lease just stays unconfirmed */
    } finally {
      this.inFlight.keepalive = false;
    }
  }

  /** Forgets a lease etcd no longer has: everything bound to it is gone, leadership first. */
  private forgetLease(why: string): void {
    if (!this.lease) return;
    this.o.log.warn({ lease: leaseHex(this.lease.id), why }, 'fleet: lease lost; registering again');
    this.lease = null;
    this.registered = false;
    this.counters.lease_losses++;
    this.election.reset('lease lost');
  }

  private leaseLost(why: string): void {
    if (!this.lease) return;
    this.forgetLease(why);
    this.needReconcile = true;
    void this.reconcile();
  }

  // ---------------------------------------------------------------- connection

  private async probe(): Promise<void> {
    if (this.inFlight.probe || this.stopped) return;
    this.inFlight.probe = true;
    const t0 = performance.now();
    this.lastProbeStart = t0;
    try {
      const r = await this.client.get(this.keys.node(this.o.node), { deadlineMs: this.timing.probeDeadlineMs });
      this.lastProbeOk = t0;
      if (this.conn !== 'connected') this.needReconcile = true;
      // someone deleted our registration (etcdctl del, a restore): put it back
      if (this.registered && this.lease && r.revision >= this.registeredRev && (r.kv === null || r.kv.lease !== this.lease.id)) {
        this.registered = false;
        this.needReconcile = true;
      }
      if (this.needReconcile) void this.reconcile();
    } catch (e) {
      this.lastError = (e as Error).message;
    } finally {
      this.inFlight.probe = false;
    }
  }

  private watchdog(): void {
    if (this.stopped) return;
    const now = performance.now();
    // out of touch: probe four times as often, so the way back is found within a fraction of
    // the interval (costs etcd nothing while it is unreachable)
    if (this.conn !== 'connected' && now - this.lastProbeStart >= Math.max(200, this.timing.probeMs / 4)) void this.probe();
    if (this.election.leading && !this.usable()) this.election.drop('lease not confirmed within its TTL');
    const last = Math.max(this.lastProbeOk, this.startPerf);
    if (this.conn !== 'local-only' && now - last > this.timing.detectMs) {
      this.enterLocalOnly(this.conn === 'connecting' ? 'etcd unreachable since start' : `no linearizable read succeeded for ${Math.round((now - last) / 100) / 10} s (etcd unreachable or without quorum)`);
    }
  }

  private enterLocalOnly(reason: string): void {
    this.conn = 'local-only';
    this.since = Date.now();
    this.reason = reason + (this.lastError ? `: ${this.lastError}` : '');
    this.counters.local_only_episodes++;
    this.needReconcile = true;
    this.election.drop('local-only');
    this.o.log.warn({ reason: this.reason }, 'fleet: local-only (capturing, checking and storing go on)');
  }

  /** Brings registration, election and desired watch up to date; one at a time. */
  private reconcile(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.reconciling ??= this.doReconcile().finally(() => (this.reconciling = null));
    return this.reconciling;
  }

  private async doReconcile(): Promise<void> {
    const d = this.timing.rpcDeadlineMs;
    try {
      const held = this.lease;
      if (held) {
        const sent = performance.now();
        const ttl = await this.ka.keepalive(held.id, d);
        // the keepalive loop may have settled it meanwhile
        if (this.lease === held) {
          if (ttl <= 0) this.forgetLease('the lease expired while etcd was out of reach');
          else held.validUntil = sent + ttl * 1000 - this.margin();
        }
      }
      if (!this.lease) {
        const sent = performance.now();
        const g = await this.client.grant(Math.max(1, Math.round(this.o.leaseTtlMs / 1000)), d);
        this.lease = { id: g.id, ttlS: g.ttlS, validUntil: sent + g.ttlS * 1000 - this.margin() };
        this.registered = false;
        this.election.reset('new lease');
      }
      if (!this.registered) await this.register();
      if (this.election.term === null) await this.election.campaign(this.lease.id);
      await this.election.check();
      await this.election.follow();
      void this.desired.ensure();
      this.needReconcile = false;
      this.lastProbeOk = performance.now();
      this.lastError = null;
      this.loggedError = null;
      if (this.conn !== 'connected') {
        this.o.log.info({ lease: leaseHex(this.lease.id), term: this.election.term, after: this.conn }, 'fleet: connected');
        this.conn = 'connected';
        this.since = Date.now();
        this.reason = null;
      }
    } catch (e) {
      this.lastError = describeEtcdError(e);
      if (e instanceof FleetError && e.code === 'E_FLEET_LEASE_LOST') this.forgetLease('etcd no longer knows the lease');
      this.needReconcile = true;
      // said once per distinct failure, not once per second
      if (this.lastError !== this.loggedError) {
        this.loggedError = this.lastError;
        if (e instanceof FleetError && e.code === 'E_FLEET_NODE_TAKEN') this.o.log.error({ err: this.lastError }, 'fleet: cannot register');
        else this.o.log.warn({ err: this.lastError }, 'fleet: registration, election or desired watch not up to date; retrying');
      }
    }
  }

  private nodeValue(lease: LeaseInfo, now: string): NodeValue {
    return {
      schema: SCHEMA,
      node: this.o.node,
      version: this.o.version,
      kernel: release(),
      labels: this.o.labels,
      started_at: new Date(this.o.startedAt).toISOString(),
      registered_at: now,
      api: this.o.inputs.apiAddress(),
      pid: this.o.pid,
      instance: this.state.data.instance,
      lease: leaseHex(lease.id),
    };
  }

  /** nodes/, members/, observed/ and alerts/ of this node in one transaction: a registration is
   *  all there or not at all, and alerts of an earlier registration never linger beside it. */
  private async register(): Promise<void> {
    const lease = this.lease!;
    const k = this.keys;
    const node = this.o.node;
    const cur = await this.client.get(k.node(node));
    let modRev = 0;
    if (cur.kv) {
      if (cur.kv.lease !== lease.id) {
        const v = decode(NodeValue, cur.kv.value);
        if (v && v.instance !== this.state.data.instance) {
          throw new FleetError('E_FLEET_NODE_TAKEN', `node name ${node} is registered by another agent (pid ${v.pid}, lease ${v.lease}, since ${v.registered_at}); give each agent its own fleet.node`);
        }
        // our own earlier registration (a restart within its TTL, or a lease given up for
        // lost): end it, with everything bound to it
        await this.client.revoke(cur.kv.lease, this.timing.rpcDeadlineMs);
      } else modRev = cur.kv.modRevision;
    }
    const now = new Date().toISOString();
    this.observed.sample();
    const obs = this.observed.build(this.desiredSummary());
    const alerts = this.alertValues();
    // alerts of an earlier registration that no longer fire (a lease still alive after a
    // restart or an outage): deleted in the same transaction (etcd refuses a range delete
    // overlapping puts in one transaction, so the keys are named)
    const old = await this.client.range(k.alertsOf(node), { end: prefixEnd(k.alertsOf(node)), limit: 1000 });
    const first = [...alerts].slice(0, 100);
    const ops: Op[] = [
      { put: k.node(node), value: encode(this.nodeValue(lease, now)), lease: lease.id },
      { put: k.member(node), value: encode({ schema: SCHEMA, node, labels: this.o.labels, version: this.o.version, registered_at: now, stopped_at: null }) },
      { put: k.observed(node), value: encode(obs), lease: lease.id },
    ];
    const keep = new Set(first.map(([id]) => k.alert(node, id)));
    for (const kv of old.kvs) if (!keep.has(kv.key)) ops.push({ del: kv.key });
    for (const [id, json] of first) ops.push({ put: k.alert(node, id), value: json, lease: lease.id });
    const cmp = modRev ? [{ key: k.node(node), target: 'mod' as const, op: '=' as const, value: modRev }] : [{ key: k.node(node), target: 'create' as const, op: '=' as const, value: 0 }];
    const r = await this.client.txn(cmp, ops, [], { what: `register ${node}` });
    if (!r.succeeded) throw new FleetError('E_FLEET_ETCD', `registering ${node} raced with another writer; retrying`);
    this.registered = true;
    this.registeredAt = now;
    this.registeredRev = r.revision;
    this.counters.registrations++;
    this.publishedAlerts = new Map(first);
    this.lastObservedSig = observedSignature(obs);
    this.lastObservedAt = performance.now();
    this.o.log.info({ node, lease: leaseHex(lease.id), registrations: this.counters.registrations }, 'fleet: registered');
  }

  // ---------------------------------------------------------------- observed and alerts

  private desiredSummary(): { bundle: string | null; revision: number } | null {
    const e = this.state.data.effective;
    return e === null ? null : { bundle: e.bundle, revision: e.revision };
  }

  private alertValues(): Map<string, string> {
    const m = new Map<string, string>();
    let list: FiringAlert[];
    try {
      list = this.o.inputs.firingAlerts();
    } catch (e) {
      this.lastError = `reading the firing alerts: ${(e as Error).message}`;
      return new Map(this.publishedAlerts);
    }
    for (const a of list) {
      const v: AlertValue = { schema: SCHEMA, node: this.o.node, id: a.id, check_id: a.check_id, name: a.name, state: a.state, since: new Date(a.since).toISOString(), message: a.message, labels: a.labels };
      m.set(a.id, encode(v));
    }
    return m;
  }

  private refresh(): void {
    if (this.stopped) return;
    this.observed.sample();
    if (this.conn !== 'connected' || !this.registered || !this.usable()) return;
    void this.publishObserved();
    void this.publishAlerts();
    this.election.tick();
  }

  /** The bundle report changed (bundle-keeper.ts): observed/<node> is written now, not at the
   *  next interval, since a rollout waits on it. After a bundle was applied, the CPU reading
   *  starts over (observed.ts). */
  bundleChanged(applied: boolean): void {
    if (applied) {
      this.observed.restartCpuWindow();
      // the write that says "applied" carries a CPU reading from after the swap
      this.waitCpu = true;
    }
    this.forcePublish = true;
    if (this.conn === 'connected' && this.registered && this.usable()) void this.publishObserved();
  }

  private async publishObserved(): Promise<void> {
    if (this.inFlight.observed || (!this.forcePublish && performance.now() - this.lastObservedAt < this.o.observedIntervalMs)) return;
    if (this.waitCpu) {
      if (!this.observed.cpuReady()) return;
      this.waitCpu = false;
    }
    const v = this.observed.build(this.desiredSummary());
    const sig = observedSignature(v);
    this.forcePublish = false;
    if (sig === this.lastObservedSig) return;
    const lease = this.lease!;
    this.inFlight.observed = true;
    try {
      await this.client.put(this.keys.observed(this.o.node), encode(v), { lease: lease.id });
      this.lastObservedSig = sig;
      this.lastObservedAt = performance.now();
      this.counters.observed_writes++;
    } catch (e) {
      this.onWriteError(e, lease);
    } finally {
      this.inFlight.observed = false;
    }
  }

  private async publishAlerts(): Promise<void> {
    if (this.inFlight.alerts) return;
    const cur = this.alertValues();
    const ops: Op[] = [];
    for (const [id, json] of cur) if (this.publishedAlerts.get(id) !== json) ops.push({ put: this.keys.alert(this.o.node, id), value: json, lease: this.lease!.id });
    for (const id of this.publishedAlerts.keys()) if (!cur.has(id)) ops.push({ del: this.keys.alert(this.o.node, id) });
    if (ops.length === 0) return;
    const lease = this.lease!;
    this.inFlight.alerts = true;
    try {
      for (let i = 0; i < ops.length; i += 100) {
        await this.client.txn([], ops.slice(i, i + 100), [], { what: 'alerts' });
        for (const op of ops.slice(i, i + 100)) {
          const id = 'put' in op ? op.put.slice(this.keys.alertsOf(this.o.node).length) : op.del.slice(this.keys.alertsOf(this.o.node).length);
          if ('put' in op) this.publishedAlerts.set(id, cur.get(id)!);
          else this.publishedAlerts.delete(id);
        }
      }
      this.counters.alert_writes++;
    } catch (e) {
      this.onWriteError(e, lease);
    } finally {
      this.inFlight.alerts = false;
    }
  }

  private onWriteError(e: unknown, lease: LeaseInfo): void {
    this.lastError = describeEtcdError(e);
    if (e instanceof FleetError && e.code === 'E_FLEET_LEASE_LOST' && this.lease === lease) this.leaseLost('etcd no longer knows the lease');
  }

  // ---------------------------------------------------------------- views

  local(): FleetLocalJson {
    const s = this.state.data;
    return {
      node: this.o.node,
      labels: this.o.labels,
      prefix: this.o.prefix,
      endpoints: this.o.endpoints,
      state: this.conn,
      since: new Date(this.since).toISOString(),
      reason: this.reason,
      lease: this.lease ? leaseHex(this.lease.id) : null,
      lease_ttl_s: Math.round(this.o.leaseTtlMs / 1000),
      lease_usable: this.usable(),
      registered: this.registered,
      is_leader: this.election.leading,
      term: this.election.term,
      leader: this.election.leader(),
      desired: {
        bundle: s.effective?.bundle ?? null,
        key: s.effective?.key ?? null,
        revision: s.revision,
        watching: this.desired.running,
        applied_total: s.applied_total,
        history: s.history,
        resyncs: s.resyncs,
      },
      counters: { ...this.counters },
      last_error: this.lastError,
    };
  }

  private ensureReachable(): void {
    if (this.conn === 'local-only') throw new FleetError('E_FLEET_UNAVAILABLE', `fleet: local-only since ${new Date(this.since).toISOString()} (${this.reason ?? 'etcd unreachable'}); ask etcd directly with --endpoints`);
  }

  async fleetStatus(): Promise<FleetStatusJson> {
    this.ensureReachable();
    return readFleetStatus(this.client, this.keys);
  }

  async fleetAlerts(): Promise<FleetAlertsJson> {
    this.ensureReachable();
    return readFleetAlerts(this.client, this.keys);
  }

  /** An operator's read or write through this agent's client (bundles, rollouts, history);
   *  E_FLEET_UNAVAILABLE while local-only. */
  async withEtcd<T>(f: (client: EtcdClient, keys: Keys) => Promise<T>): Promise<T> {
    this.ensureReachable();
    return f(this.client, this.keys);
  }

  /** The rollout controller's last error, while this agent leads (status). */
  get controllerError(): string | null {
    return this.election.controller?.lastError ?? null;
  }

  async setDesired(bundle: string, target: DesiredTarget, setBy?: string): Promise<{ key: string; revision: number; bundle: string }> {
    this.ensureReachable();
    return writeDesired(this.client, this.keys, bundle, target, setBy);
  }

  /** Leaves the fleet: members/<node> says when, and revoking the lease removes the rest at
   *  once (others see the node down now, not after its TTL). Bounded: etcd may be gone. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.desired.close();
    this.election.close();
    const lease = this.lease;
    if (lease && this.registered && this.conn === 'connected') {
      const d = Math.min(1000, this.timing.rpcDeadlineMs);
      const now = new Date().toISOString();
      try {
        await this.client.put(this.keys.member(this.o.node), encode({ schema: SCHEMA, node: this.o.node, labels: this.o.labels, version: this.o.version, registered_at: this.registeredAt ?? now, stopped_at: now }), { deadlineMs: d });
        await this.client.revoke(lease.id, d);
      } catch (e) {
        this.o.log.warn({ err: describeEtcdError(e) }, 'fleet: could not deregister; the lease runs out by itself');
      }
    }
    this.lease = null;
    this.ka.close();
    if (this.ownsClient) this.client.close();
  }
}
