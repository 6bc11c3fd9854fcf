// The leader's view of the fleet: nodes/, observed/ and members/ read once (paged, one revision),
// then kept current by one watch over the prefix, so fleet-level checks cost no reads per round
// however many nodes there are. A cancellation (compaction) means a fresh read.
import type { Logger } from '../shared/log.js';
import { prefixEnd, type EtcdClient, type KV, type RevisionWatch, type WatchEvent } from './client.js';
import { MemberValue, NodeValue, ObservedValue, decode, type Keys } from './keys.js';
import { RolloutValue } from './rollout.js';
import type { FleetSnapshot } from './findings.js';

export class FleetMirror implements FleetSnapshot {
  nodes = new Map<string, NodeValue>();
  observed = new Map<string, ObservedValue>();
  members = new Map<string, MemberValue>();
  /** rollouts/<id>, for the rollout controller */
  rollouts = new Map<string, { value: RolloutValue; modRevision: number }>();
  downSince = new Map<string, number>();
  ready = false;
  badValues = 0;
  private watch: RevisionWatch | null = null;
  private closed = false;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: Keys,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads (or reloads after a cancellation); resolves when ready or failed. */
  load(): Promise<void> {
    if (this.closed || this.ready) return Promise.resolve();
    this.loading ??= this.read().finally(() => (this.loading = null));
    return this.loading;
  }

  private async read(): Promise<void> {
    const k = this.keys;
    const nodes = await this.client.readPrefix(k.nodes);
    const [obs, mem, ro] = await Promise.all([
      this.client.readPrefix(k.observedAll, { revision: nodes.revision }),
      this.client.readPrefix(k.members, { revision: nodes.revision }),
      this.client.readPrefix(k.rollouts, { revision: nodes.revision }),
    ]);
    if (this.closed) return;
    this.nodes.clear();
    this.observed.clear();
    this.members.clear();
    this.rollouts.clear();
    for (const kv of nodes.kvs) this.apply('put', kv);
    for (const kv of obs.kvs) this.apply('put', kv);
    for (const kv of mem.kvs) this.apply('put', kv);
    for (const kv of ro.kvs) this.apply('put', kv);
    this.ready = true;
    this.watch = this.client.watch(k.prefix, prefixEnd(k.prefix), nodes.revision + 1, {
      onRevision: (_rev, evs: WatchEvent[]) => {
        for (const e of evs) this.apply(e.type, e.kv);
      },
      onCanceled: (why) => {
        this.watch = null;
        this.ready = false;
        this.log.info({ why }, 'fleet: leader view re-read');
        void this.load().catch(() => undefined);
      },
    });
  }

  private apply(type: 'put' | 'delete', kv: KV): void {
    const k = this.keys;
    let name: string | null;
    if ((name = k.tail(kv.key, 'nodes/')) !== null) {
      if (type === 'delete') {
        if (this.nodes.delete(name)) this.downSince.set(name, this.now());
      } else {
        const v = decode(NodeValue, kv.value);
        if (v) {
          this.nodes.set(name, v);
          this.downSince.delete(name);
        } else this.badValues++;
      }
    } else if ((name = k.tail(kv.key, 'observed/')) !== null) {
      if (type === 'delete') this.observed.delete(name);
      else {
        const v = decode(ObservedValue, kv.value);
        if (v) this.observed.set(name, v);
        else this.badValues++;
      }
    } else if ((name = k.tail(kv.key, 'rollouts/')) !== null) {
      if (type === 'delete') this.rollouts.delete(name);
      else {
        const v = decode(RolloutValue, kv.value);
        // a write of our own may already be here, newer than this event
        const have = this.rollouts.get(name);
        if (v && (!have || have.modRevision <= kv.modRevision)) this.rollouts.set(name, { value: v, modRevision: kv.modRevision });
        else if (!v) this.badValues++;
      }
    } else if ((name = k.tail(kv.key, 'members/')) !== null) {
      if (type === 'delete') {
        this.members.delete(name);
        this.downSince.delete(name);
      } else {
        const v = decode(MemberValue, kv.value);
        if (v) this.members.set(name, v);
        else this.badValues++;
      }
    }
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
    this.watch = null;
  }
}
