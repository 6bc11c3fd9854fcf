// Lease keepalives as request/response with a deadline (client.ts says why), on one
// LeaseKeepAlive stream of the client's stream connections.
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { FleetError, describeEtcdError, toFleetError } from './errors.js';
import type { EtcdClient } from './client.js';

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
          s.cancel();
          throw new FleetError('E_FLEET_UNAVAILABLE', 'keepalive channel closed');
        }
        this.stream = s;
        s.on('data', (res) => {
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
    if (s) {
      try {
        s.cancel();
      } catch {
        /* already gone */
      }
    }
    const ps = this.pending;
    this.pending = [];
    for (const p of ps) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** TTL in seconds etcd granted on this keepalive; 0 when the lease no longer exists. */
  async keepalive(id: string, deadlineMs: number): Promise<number> {
    const started = Date.now();
    const s = await withDeadline(this.open(), deadlineMs, 'keepalive stream');
    return new Promise<number>((resolve, reject) => {
      const left = Math.max(1, deadlineMs - (Date.now() - started));
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
