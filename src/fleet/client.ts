// The agent's only etcd client: the `etcd3` package (its connection pool, fault policies and
// typed RPC clients) behind a small surface with what the fleet needs and the package lacks:
//   - a deadline on every unary call (the package has none by default, and a read on a member
//     without quorum waits for the server's own timeout);
//   - fault policies tuned for fail-fast: a dead member is skipped for 1 s, not 5; a call is
//     tried on at most two members; a broken watch stream reconnects within 1 s, not 30;
//   - a watch that resumes from the last revision it delivered (the package moves its resume
//     point to the newest header it saw, which can skip events when a stream breaks right
//     after it was re-created) and reports a cancellation (compaction) instead of going quiet;
//   - lease keepalives as request/response with a deadline, so the caller knows when its lease
//     was last confirmed (the package's Lease declares a lease lost only after 2 × TTL);
//   - streams (watches, keepalives) on connections of their own: the package closes every
//     connection to a member when one call to it fails in a retryable way (a probe past its
//     deadline), which would cut the watch and keepalive streams along with it.
import { Etcd3, isRecoverableError, type IOptions, type IRequestOp, type ICompare } from 'etcd3';
import { ConsecutiveBreaker, ConstantBackoff, ExponentialBackoff, circuitBreaker, handleWhen, isBrokenCircuitError, retry, type IBackoff } from 'cockatiel';
import { FleetError, describeEtcdError, toFleetError } from './errors.js';
import { keyBuf, kvOf, type KV } from './kv.js';
import { KeepAliveChannel } from './keepalive.js';
import { RevisionWatch, type WatchHandlers } from './watch.js';

export type { KV } from './kv.js';
export { KeepAliveChannel } from './keepalive.js';
export { RevisionWatch, type WatchEvent, type WatchHandlers } from './watch.js';

export interface EtcdOptions {
  /** member URLs: http://host:port or https://host:port (all of one kind) */
  endpoints: string[];
  /** PEM contents; with https endpoints and no `ca`, the system roots are used */
  tls?: { ca: Buffer | null; cert: Buffer | null; key: Buffer | null } | null;
  /** deadline of unary calls, ms (default 2000) */
  timeoutMs?: number;
}


export interface RangeResult {
  kvs: KV[];
  more: boolean;
  count: number;
  revision: number;
  clusterId: string;
}

export interface RangeOptions {
  /** end of the range (exclusive); prefixEnd(key) for a prefix */
  end?: string;
  limit?: number;
  /** read at this revision (a consistent page of a larger read) */
  revision?: number;
  /** serializable reads are answered by one member from its local state (no quorum) */
  serializable?: boolean;
  countOnly?: boolean;
  maxCreateRevision?: number;
  sort?: { target: 'KEY' | 'CREATE' | 'MOD'; order: 'ASCEND' | 'DESCEND' };
  deadlineMs?: number;
}

export type Compare =
  | { key: string; target: 'create'; op: '=' | '<' | '>' | '!='; value: number }
  | { key: string; target: 'mod'; op: '=' | '<' | '>' | '!='; value: number }
  | { key: string; target: 'lease'; op: '=' | '!='; value: string };

export type Op = { put: string; value: string | Buffer; lease?: string } | { del: string; end?: string };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
}

const CMP_RESULT = { '=': 'Equal', '<': 'Less', '>': 'Greater', '!=': 'NotEqual' } as const;

/** The first key after every key that starts with `prefix` (keys here are ASCII: the prefix
 *  is checked by the config, node names and labels by keys.ts). */
export function prefixEnd(prefix: string): string {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0x7f) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return '\0';
}


export class EtcdClient {
  /** unary calls */
  readonly raw: Etcd3;
  /** watch and keepalive streams (see the header) */
  readonly streams: Etcd3;
  readonly timeoutMs: number;
  readonly endpoints: readonly string[];
  private closed = false;

  constructor(opts: EtcdOptions) {
    if (opts.endpoints.length === 0) throw new FleetError('E_FLEET_USAGE', 'no etcd endpoints');
    const secure = opts.endpoints.filter((e) => e.startsWith('https://')).length;
    if (secure !== 0 && secure !== opts.endpoints.length) {
      throw new FleetError('E_FLEET_USAGE', 'etcd endpoints mix http:// and https://: use one scheme for all');
    }
    this.endpoints = opts.endpoints;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    const tls = opts.tls;
    const options: IOptions = {
      hosts: [...opts.endpoints],
      dialTimeout: this.timeoutMs,
      ...(tls && (tls.ca || tls.cert)
        ? { credentials: { rootCertificate: tls.ca ?? Buffer.alloc(0), ...(tls.key ? { privateKey: tls.key } : {}), ...(tls.cert ? { certChain: tls.cert } : {}) } }
        : {}),
      grpcOptions: {
        // A member that comes back is found within a second or two, not after gRPC's 2-minute
        // reconnect backoff; a connection to a frozen member is declared dead by pings.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
      },
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(2) }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.min(2, opts.endpoints.length), backoff: new ConstantBackoff(20) }),
        // the package calls .next() on this itself (typed as a backoff, used as a factory)
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as unknown as IBackoff<unknown>,
      },
    };
    // https:// with no CA: the system roots (the package's own default for secure hosts)
    if (tls && tls.ca === null && tls.cert === null) delete options.credentials;
    this.raw = new Etcd3(options);
    this.streams = new Etcd3(options);
  }

  /** The last failure that reached a member, for the errors of calls a circuit breaker then
   *  refused without trying (which would otherwise only say "the circuit breaker is open"). */
  private lastCause: string | null = null;

  /** etcd/gRPC error → FleetError, naming the real cause behind an open circuit breaker. */
  fail(e: unknown, what: string): FleetError {
    if (isBrokenCircuitError(e)) {
      return new FleetError('E_FLEET_UNAVAILABLE', `${what}: every member tried failed just before${this.lastCause ? ` (last error: ${this.lastCause})` : ''}; retrying within 1 s`);
    }
    const f = toFleetError(e, what);
    if (f.code === 'E_FLEET_UNAVAILABLE') this.lastCause = describeEtcdError(e);
    return f;
  }

  private opts(deadlineMs?: number) {
    return { deadline: Date.now() + (deadlineMs ?? this.timeoutMs) };
  }

  async range(key: string, o: RangeOptions = {}): Promise<RangeResult> {
    try {
      const r = await this.raw.kv.range(
        {
          key: keyBuf(key),
          ...(o.end !== undefined ? { range_end: keyBuf(o.end) } : {}),
          ...(o.limit ? { limit: o.limit } : {}),
          ...(o.revision ? { revision: o.revision } : {}),
          ...(o.serializable ? { serializable: true } : {}),
          ...(o.countOnly ? { count_only: true } : {}),
          ...(o.maxCreateRevision !== undefined ? { max_create_revision: o.maxCreateRevision } : {}),
          ...(o.sort ? { sort_target: o.sort.target === 'CREATE' ? 'Create' : o.sort.target === 'MOD' ? 'Mod' : 'Key', sort_order: o.sort.order === 'ASCEND' ? 'Ascend' : 'Descend' } : {}),
        },
        this.opts(o.deadlineMs),
      );
      return { kvs: r.kvs.map(kvOf), more: r.more, count: Number(r.count), revision: Number(r.header.revision), clusterId: r.header.cluster_id };
    } catch (e) {
      throw this.fail(e, `read ${key}`);
    }
  }

  async get(key: string, o: Omit<RangeOptions, 'end'> = {}): Promise<{ kv: KV | null; revision: number; clusterId: string }> {
    const r = await this.range(key, o);
    return { kv: r.kvs[0] ?? null, revision: r.revision, clusterId: r.clusterId };
  }

  /** Everything under `prefix`, read in pages of `pageSize` at one revision (a consistent
   *  snapshot of a large range without one huge response). */
  async readPrefix(prefix: string, o: { pageSize?: number; deadlineMs?: number; serializable?: boolean; revision?: number } = {}): Promise<{ kvs: KV[]; revision: number; clusterId: string }> {
    const end = prefixEnd(prefix);
    const pageSize = o.pageSize ?? 500;
    const kvs: KV[] = [];
    let from = prefix;
    let revision = o.revision ?? 0;
    let clusterId = '';
    for (;;) {
      const r = await this.range(from, { end, limit: pageSize, ...(revision ? { revision } : {}), ...(o.serializable ? { serializable: true } : {}), ...(o.deadlineMs ? { deadlineMs: o.deadlineMs } : {}) });
      if (!revision) {
        revision = r.revision;
        clusterId = r.clusterId;
      }
      kvs.push(...r.kvs);
      if (!r.more || r.kvs.length === 0) break;
      from = `${r.kvs[r.kvs.length - 1]!.key}\0`;
    }
    return { kvs, revision, clusterId };
  }

  async put(key: string, value: string | Buffer, o: { lease?: string; deadlineMs?: number } = {}): Promise<number> {
    try {
      const r = await this.raw.kv.put({ key: keyBuf(key), value: Buffer.isBuffer(value) ? value : Buffer.from(value), ...(o.lease ? { lease: o.lease } : {}) }, this.opts(o.deadlineMs));
      return Number(r.header.revision);
    } catch (e) {
      throw this.fail(e, `write ${key}`);
    }
  }

  /** if every compare holds: success ops, else failure ops; one revision, atomically */
  async txn(compare: Compare[], success: Op[], failure: Op[] = [], o: { deadlineMs?: number; what?: string } = {}): Promise<TxnResult> {
    const cmp = (c: Compare): ICompare => {
      const base = { key: keyBuf(c.key), result: CMP_RESULT[c.op] };
      if (c.target === 'create') return { ...base, target: 'Create', create_revision: c.value };
      if (c.target === 'mod') return { ...base, target: 'Mod', mod_revision: c.value };
      return { ...base, target: 'Lease', lease: c.value } as ICompare;
    };
    const op = (x: Op): IRequestOp =>
      'put' in x
        ? { request_put: { key: keyBuf(x.put), value: Buffer.isBuffer(x.value) ? x.value : Buffer.from(x.value), ...(x.lease ? { lease: x.lease } : {}) } }
        : { request_delete_range: { key: keyBuf(x.del), ...(x.end !== undefined ? { range_end: keyBuf(x.end) } : {}) } };
    try {
      const r = await this.raw.kv.txn({ compare: compare.map(cmp), success: success.map(op), failure: failure.map(op) }, this.opts(o.deadlineMs));
      return { succeeded: r.succeeded, revision: Number(r.header.revision) };
    } catch (e) {
      throw this.fail(e, o.what ?? `transaction on ${compare[0]?.key ?? success.map((s) => ('put' in s ? s.put : s.del)).join(', ')}`);
    }
  }

  async grant(ttlS: number, deadlineMs?: number): Promise<{ id: string; ttlS: number }> {
    try {
      const r = await this.raw.leaseClient.leaseGrant({ TTL: ttlS, ID: 0 }, this.opts(deadlineMs));
      if (r.error) throw new FleetError('E_FLEET_ETCD', `lease grant: ${r.error}`);
      return { id: String(r.ID), ttlS: Number(r.TTL) };
    } catch (e) {
      throw this.fail(e, 'lease grant');
    }
  }

  async revoke(id: string, deadlineMs?: number): Promise<void> {
    try {
      await this.raw.leaseClient.leaseRevoke({ ID: id }, this.opts(deadlineMs));
    } catch (e) {
      const f = this.fail(e, 'lease revoke');
      if (f.code !== 'E_FLEET_LEASE_LOST') throw f;
    }
  }

  /** seconds left on a lease; -1 when etcd does not know it */
  async timeToLive(id: string, deadlineMs?: number): Promise<number> {
    try {
      const r = await this.raw.leaseClient.leaseTimeToLive({ ID: id }, this.opts(deadlineMs));
      return Number(r.TTL);
    } catch (e) {
      throw this.fail(e, 'lease time-to-live');
    }
  }

  async compact(revision: number, deadlineMs?: number): Promise<void> {
    try {
      await this.raw.kv.compact({ revision, physical: true }, this.opts(deadlineMs ?? 10_000));
    } catch (e) {
      throw this.fail(e, `compact to ${revision}`);
    }
  }

  keepAlives(): KeepAliveChannel {
    return new KeepAliveChannel(this);
  }

  /** Watches [key, end) from `startRevision`. See RevisionWatch. */
  watch(key: string, end: string | null, startRevision: number, h: WatchHandlers): RevisionWatch {
    return new RevisionWatch(this, key, end, startRevision, h);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.close();
    this.streams.close();
  }
}
