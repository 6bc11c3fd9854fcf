// A watch that delivers each revision exactly once, in order, and resumes from the revision
// after the last one it delivered (client.ts says what the etcd3 package does instead).
import type { IWatchResponse, Watcher } from 'etcd3';
import { describeEtcdError } from './errors.js';
import { keyBuf, kvOf, type KV } from './kv.js';
import type { EtcdClient } from './client.js';

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KV;
}

export interface WatchHandlers {
  /** every revision after the start, once, in order, with all of its events in the range */
  onRevision(revision: number, events: WatchEvent[]): void;
  /** the server canceled the watch (compaction below the start, or another reason); nothing
   *  more arrives: the owner re-reads and starts a new watch */
  onCanceled(reason: string): void;
  onConnected?(): void;
  onDisconnected?(err: Error): void;
}

interface WatcherInternals {
  request: { start_revision?: number | string };
}

/** A watch over [key, end) that delivers each revision exactly once, in order, resuming from
 *  the revision after the last one it delivered whenever the package reconnects. */
export class RevisionWatch {
  /** the next revision to deliver (resume point) */
  next: number;
  private readonly watcher: Watcher;
  private done = false;

  constructor(
    client: EtcdClient,
    key: string,
    end: string | null,
    startRevision: number,
    private readonly h: WatchHandlers,
  ) {
    this.next = startRevision;
    let b = client.streams.watch();
    b = end === null ? b.key(keyBuf(key)) : b.inRange({ start: keyBuf(key), end: keyBuf(end) });
    b = b.startRevision(String(startRevision));
    this.watcher = b.watcher();
    const pin = () => {
      (this.watcher as unknown as WatcherInternals).request.start_revision = String(this.next);
    };
    // Registered after the package's own handlers, which move start_revision to the newest
    // header: put it back to ours.
    this.watcher.on('connected', () => {
      pin();
      this.h.onConnected?.();
    });
    this.watcher.on('disconnected', (err: Error) => {
      pin();
      this.h.onDisconnected?.(err);
    });
    this.watcher.on('data', (res: IWatchResponse) => {
      this.deliver(res);
      pin();
    });
    this.watcher.on('error', (err: Error) => {
      if (this.done) return;
      this.done = true;
      this.h.onCanceled(describeEtcdError(err));
    });
  }

  private deliver(res: IWatchResponse): void {
    if (this.done) return;
    const evs = res.events;
    if (evs.length === 0) {
      // a progress notification: everything up to its header revision was sent
      const hr = Number(res.header.revision);
      if (!res.created && hr + 1 > this.next) this.next = hr + 1;
      return;
    }
    let i = 0;
    while (i < evs.length) {
      const rev = Number(evs[i]!.kv.mod_revision);
      const batch: WatchEvent[] = [];
      while (i < evs.length && Number(evs[i]!.kv.mod_revision) === rev) {
        const e = evs[i]!;
        batch.push({ type: e.type === 'Delete' ? 'delete' : 'put', kv: kvOf(e.kv) });
        i++;
      }
      if (rev < this.next) continue; // replayed after a reconnect: already delivered
      this.next = rev + 1;
      this.h.onRevision(rev, batch);
      if (this.done) return;
    }
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    void this.watcher.cancel().catch(() => undefined);
  }
}
