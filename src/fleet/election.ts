// The leader election and the leader's work. Each agent holds election/<node>, bound to its lease;
// the key with the lowest create revision leads, and that create revision is its term. Each
// agent watches only the next older key (etcd's election recipe: a leader's death wakes one
// successor, not the fleet). Every leader write is a transaction comparing the leader's election
// key's create revision with its term: the fencing token, so a deposed leader's write fails
// whatever it believes. The leader mirrors the fleet (mirror.ts) and writes fleet/findings.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../shared/log.js';
import { prefixEnd, type Compare, type EtcdClient, type Op, type RevisionWatch } from './client.js';
import { FleetError, describeEtcdError } from './errors.js';
import { LeaderValue, SCHEMA, decode, encode, leaseHex, type Keys } from './keys.js';
import { FleetMirror } from './mirror.js';
import { fleetFindings, findingsSignature } from './findings.js';
import { RolloutController, type TxnOutcome } from './rollout-controller.js';

export interface ElectionHost {
  /** the lease to bind leader keys to when it is usable now, else null (then nothing is sent) */
  usableLease(): string | null;
  log: Logger;
  counters: { fenced_rejects: number; leader_writes: number; leader_terms: number };
  skewBoundMs: number;
  leaseTtlMs: number;
  onError(message: string): void;
  /** the fence refused a write: our election key is gone or not ours; campaign again */
  onFenced(): void;
}

export class Election {
  /** our election key's create revision; null before we campaigned with the current lease */
  term: number | null = null;
  leading = false;
  private seen: { node: string; term: number } | null = null;
  private predecessor: { key: string; watch: RevisionWatch } | null = null;
  private leaderWatch: RevisionWatch | null = null;
  private mirror: FleetMirror | null = null;
  /** the rollout controller, while leading */
  controller: RolloutController | null = null;
  private lastFindings: string | null = null;
  private lastCheck = -Infinity;
  private busy = { check: false, tick: false };
  private closed = false;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: Keys,
    private readonly node: string,
    private readonly h: ElectionHost,
  ) {}

  /** who leads, as this agent knows it */
  leader(): { node: string; term: number } | null {
    return this.leading && this.term !== null ? { node: this.node, term: this.term } : this.seen;
  }

  /** election/<node> bound to `lease`; an earlier key of ours (an older lease) goes first, so the
   *  new term is a new create revision (a re-put would keep the old one). */
  async campaign(lease: string): Promise<void> {
    const key = this.keys.election(this.node);
    const cur = await this.client.get(key);
    if (cur.kv && cur.kv.lease === lease) {
      this.term = cur.kv.createRevision;
      return;
    }
    if (cur.kv) await this.client.txn([{ key, target: 'lease', op: '=', value: cur.kv.lease }], [{ del: key }], [], { what: 'election: remove an earlier key' });
    const r = await this.client.txn([{ key, target: 'create', op: '=', value: 0 }], [{ put: key, value: encode({ schema: SCHEMA, node: this.node, lease: leaseHex(lease) }), lease }], [], { what: 'election: campaign' });
    if (!r.succeeded) throw new FleetError('E_FLEET_ETCD', 'election key raced with another writer; retrying');
    // created in this transaction: its create revision is the transaction's revision
    this.term = r.revision;
  }

  /** Follows the `leader` key (who leads, for status): read once, then watched. */
  async follow(): Promise<void> {
    if (this.leaderWatch || this.closed) return;
    const r = await this.client.get(this.keys.leader);
    if (this.leaderWatch || this.closed) return;
    const seen = (v: Buffer | null) => {
      const lv = v ? decode(LeaderValue, v) : null;
      if (!this.leading) this.seen = lv ? { node: lv.node, term: lv.term } : null;
    };
    seen(r.kv?.value ?? null);
    this.leaderWatch = this.client.watch(this.keys.leader, null, r.revision + 1, {
      onRevision: (_rev, evs) => {
        for (const e of evs) seen(e.type === 'put' ? e.kv.value : null);
      },
      onCanceled: () => {
        this.leaderWatch = null;
      },
    });
  }

  private closePredecessor(): void {
    this.predecessor?.watch.close();
    this.predecessor = null;
  }

  /** Leads when no election key older than ours exists; else watches the next older one. */
  async check(): Promise<void> {
    if (this.term === null || this.h.usableLease() === null || this.busy.check || this.closed) return;
    this.busy.check = true;
    this.lastCheck = performance.now();
    try {
      const k = this.keys;
      const term = this.term;
      const older = await this.client.range(k.elections, { end: prefixEnd(k.elections), maxCreateRevision: term - 1, sort: { target: 'CREATE', order: 'DESCEND' }, limit: 1 });
      if (this.term !== term) return;
      const pred = older.kvs[0];
      if (!pred) {
        this.closePredecessor();
        this.seen = { node: this.node, term };
        if (!this.leading) await this.lead();
        return;
      }
      if (this.leading) this.drop('an older election key exists');
      if (this.predecessor?.key === pred.key) return;
      this.closePredecessor();
      const w = this.client.watch(pred.key, null, older.revision + 1, {
        onRevision: (_rev, evs) => {
          if (evs.some((e) => e.type === 'delete')) {
            this.closePredecessor();
            void this.check();
          }
        },
        onCanceled: () => {
          this.predecessor = null;
          void this.check();
        },
      });
      this.predecessor = { key: pred.key, watch: w };
    } catch (e) {
      this.h.onError(describeEtcdError(e));
    } finally {
      this.busy.check = false;
    }
  }

  /** A leader write: applied only while our election key still has our term as its create
   *  revision. False (and leadership dropped) when the fence holds us off; nothing is sent
   *  while the lease is not usable. */
  async fenced(ops: Op[], what: string): Promise<boolean> {
    const term = this.term;
    if (term === null || this.h.usableLease() === null) return false;
    const r = await this.client.txn([{ key: this.keys.election(this.node), target: 'create', op: '=', value: term }], ops, [], { what });
    if (!r.succeeded) {
      this.h.counters.fenced_rejects++;
      this.h.log.warn({ term, what }, 'fleet: a leader write was fenced off: this agent no longer leads');
      this.drop('fenced');
      if (this.term === term) {
        this.term = null;
        this.h.onFenced();
      }
      return false;
    }
    this.h.counters.leader_writes++;
    return true;
  }

  /** A leader write with compares of the caller's besides the fence. 'stale' when one of
   *  those failed while our term still holds (then leadership stays); 'fenced' as fenced(). */
  async fencedIf(cmp: Compare[], ops: Op[], what: string): Promise<{ outcome: TxnOutcome; revision: number }> {
    const term = this.term;
    if (term === null || this.h.usableLease() === null) return { outcome: 'fenced', revision: 0 };
    const key = this.keys.election(this.node);
    const r = await this.client.txn([{ key, target: 'create', op: '=', value: term }, ...cmp], ops, [], { what });
    if (r.succeeded) {
      this.h.counters.leader_writes++;
      return { outcome: 'ok', revision: r.revision };
    }
    const e = await this.client.get(key);
    if (e.kv && e.kv.createRevision === term) return { outcome: 'stale', revision: r.revision };
    await this.fenced([], what); // the fence failed: drop leadership as fenced() does
    return { outcome: 'fenced', revision: r.revision };
  }

  private async lead(): Promise<void> {
    const term = this.term!;
    const lease = this.h.usableLease();
    if (lease === null) return;
    const ok = await this.fenced([{ put: this.keys.leader, value: encode({ schema: SCHEMA, node: this.node, term, since: new Date().toISOString() }), lease }], 'leader: announce');
    if (!ok || this.term !== term) return;
    this.leading = true;
    this.h.counters.leader_terms++;
    this.lastFindings = null;
    this.h.log.info({ term }, 'fleet: leading');
    this.mirror = new FleetMirror(this.client, this.keys, this.h.log);
    this.controller = new RolloutController(this.client, this.keys, this.mirror, {
      node: this.node,
      term: () => (this.leading ? this.term : null),
      txn: (cmp, ops, what) => this.fencedIf(cmp, ops, what),
      log: this.h.log,
    });
    void this.mirror.load().catch((e: unknown) => this.h.onError(describeEtcdError(e)));
  }

  /** Stops leading at once (the mirror, the findings); the election key stays. */
  drop(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.mirror?.close();
    this.mirror = null;
    this.controller = null;
    this.lastFindings = null;
    this.h.log.info({ why, term: this.term }, 'fleet: no longer leading');
  }

  /** The lease is gone, and the election key with it. */
  reset(why: string): void {
    this.drop(why);
    this.term = null;
    this.closePredecessor();
  }

  /** Every refresh: the leader's checks; a follower without a predecessor watch (its set-up
   *  failed) looks again once per TTL. */
  tick(): void {
    if (this.leading) void this.leaderTick();
    else if (this.term !== null && this.predecessor === null && performance.now() - this.lastCheck > this.h.leaseTtlMs) void this.check();
  }

  private async leaderTick(): Promise<void> {
    const m = this.mirror;
    if (!this.leading || !m || this.busy.tick) return;
    if (!m.ready) {
      void m.load().catch((e: unknown) => this.h.onError(describeEtcdError(e)));
      return;
    }
    void this.controller?.tick();
    const findings = fleetFindings(m, this.h.skewBoundMs, Date.now());
    const sig = findingsSignature(findings);
    if (sig === this.lastFindings) return;
    const lease = this.h.usableLease();
    if (lease === null) return;
    this.busy.tick = true;
    try {
      const v = { schema: SCHEMA, leader: this.node, term: this.term, at: new Date().toISOString(), findings };
      if (await this.fenced([{ put: this.keys.findings, value: encode(v), lease }], 'leader: findings')) this.lastFindings = sig;
    } catch (e) {
      this.h.onError(describeEtcdError(e));
    } finally {
      this.busy.tick = false;
    }
  }

  close(): void {
    this.closed = true;
    this.drop('stopping');
    this.closePredecessor();
    this.leaderWatch?.close();
    this.leaderWatch = null;
  }
}
