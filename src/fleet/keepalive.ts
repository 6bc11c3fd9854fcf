// Lease keepalives as request/response with a deadline (client.ts says why), on one
// LeaseKeepAlive stream of the client's stream connections.
import { performance } from 'node:perf_hooks';
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { FleetError, describeEtcdError, toFleetError } from './errors.js';
import type { EtcdClient } from './client.js';

/** pause before opening a failed stream again (all members down must not spin) */
const RETRY_PAUSE_MS = 25;
/** an attempt with less time than this left is not worth starting */
const MIN_ATTEMPT_MS = 50;

interface Pending {
  id: string;
  resolve: (ttl: number) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One LeaseKeepAlive stream used as request/response: `keepalive(id)` resolves with the TTL
 *  etcd gave back (0: the lease is gone). A response late past its deadline drops the stream
 *  (the next call opens a new one), so answers never pair with the wrong request. */
export class KeepAliveChannel {
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | null = null;
  private opening: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | null = null;
  private pending: Pending[] = [];
  private closed = false;

  constructor(private readonly client: EtcdClient) {}

  private open(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    if (this.stream) return Promise.resolve(this.stream);
    this.opening ??= this.client.streams.leaseClient.leaseKeepAlive().then(
      (s) => {
        this.opening = null;
        if (this.closed) {
          cancelQuietly(s);
          throw new FleetError('E_FLEET_UNAVAILABLE', 'keepalive channel closed');
        }
        this.stream = s;
        s.on('data', (res) => {
          if (this.stream !== s) return; // an answer left on a stream already dropped
          const i = this.pending.findIndex((p) => p.id === String(res.ID));
          if (i < 0) return;
          const [p] = this.pending.splice(i, 1);
          clearTimeout(p!.timer);
          p!.resolve(Number(res.TTL));
        });
        const broken = (e: Error) => {
          if (this.stream !== s) return;
          this.drop(new FleetError('E_FLEET_UNAVAILABLE', `keepalive stream: ${describeEtcdError(e)}`));
        };
        s.on('error', broken);
        s.on('end', () => broken(new Error('ended')));
        return s;
      },
      (e: unknown) => {
        this.opening = null;
        throw this.client.fail(e, 'keepalive stream');
      },
    );
    return this.opening;
  }

  private drop(err: Error): void {
    const s = this.stream;
    this.stream = null;
    if (s) cancelQuietly(s);
    const ps = this.pending;
    this.pending = [];
    for (const p of ps) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** TTL in seconds etcd granted on this keepalive; 0 when the lease no longer exists.
   *  A stream that fails before the deadline (a member that is down refuses at once) is
   *  opened again, on a member the package picks at random, while the deadline allows: one
   *  attempt per call would leave the lease to chance while a member is down (1 in 3 per call
   *  with three members, and a 2 s lease outlives only a few calls). */
  async keepalive(id: string, deadlineMs: number): Promise<number> {
    // the monotonic clock: a step of the wall clock must not stretch the deadline
    const end = performance.now() + deadlineMs;
    for (;;) {
      if (this.closed) throw new FleetError('E_FLEET_UNAVAILABLE', 'keepalive channel closed');
      try {
        return await this.attempt(id, end - performance.now());
      } catch (e) {
        // only a member out of reach is worth another stream (not a refusal that would repeat)
        const retriable = e instanceof FleetError && e.code === 'E_FLEET_UNAVAILABLE';
        if (!retriable || this.closed || end - performance.now() < RETRY_PAUSE_MS + MIN_ATTEMPT_MS) throw e;
        this.retries++;
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  /** streams opened again within a call (tests) */
  retries = 0;

  private async attempt(id: string, deadlineMs: number): Promise<number> {
    const started = performance.now();
    const s = await withDeadline(this.open(), deadlineMs, 'keepalive stream');
    return new Promise<number>((resolve, reject) => {
      const left = Math.max(1, deadlineMs - (performance.now() - started));
      const timer = setTimeout(() => {
        this.drop(new FleetError('E_FLEET_UNAVAILABLE', `lease keepalive: no answer within ${deadlineMs} ms`));
      }, left);
      this.pending.push({ id, resolve, reject, timer });
      try {
        s.write({ ID: id });
      } catch (e) {
        this.drop(toFleetError(e, 'lease keepalive'));
      }
    });
  }

  close(): void {
    this.closed = true;
    this.drop(new FleetError('E_FLEET_UNAVAILABLE', 'keepalive channel closed'));
  }
}

/** Cancels a stream of ours. Our own cancel is no fault of the member: with the package's error
 *  listener still on, it would count against the member and reset its connection, cutting the
 *  watches on it. (A gRPC ClientDuplexStream is an EventEmitter, which the package's type leaves
 *  out.) */
function cancelQuietly(s: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>): void {
  (s as unknown as NodeJS.EventEmitter).removeAllListeners('error');
  s.on('error', () => {});
  try {
    s.cancel();
  } catch {
    /* already gone */
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new FleetError('E_FLEET_UNAVAILABLE', `${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
