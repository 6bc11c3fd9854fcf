// Pod name, namespace, container name and image from the container runtime's CRI socket
// (issue 17). What a cgroup path proves (identity.ts) comes first and synchronously; these come
// later: the first identity of a pod's container queues one lookup, and the answer is written
// into the identity objects of that container (the cache's, which the processes share). An event
// emitted before the answer lacks the fields; later ones have them. Nothing here runs on the
// event path: want() is called when an identity is first resolved, and is a Map lookup or a push.
//
// Bounded everywhere: answers kept (per container id), containers waiting, lookups in flight.
// A runtime that cannot be asked (no socket, refused, too slow) is retried with backoff while
// containers wait, and reported in stats (state, last_error); it never breaks anything else.
// Fields are absent, never wrong: a pod uid from the runtime that differs from the one the path
// proves puts nothing in (counted as `mismatched`).
import type { CriContainerFacts, CriRuntimeInfo } from '../host/cri.js';
import type { ProcessIdentity } from './identity.js';

/** What cri-identity asks (src/host/cri.ts CriClient). */
export interface CriSource {
  describe(containerId: string): Promise<CriContainerFacts | null>;
  /** the socket in use, once found */
  readonly socket: string | null;
  readonly runtime: CriRuntimeInfo | null;
  close(): void;
}

export type CriState = 'off' | 'idle' | 'ok' | 'absent' | 'failing';

export interface CriStats {
  /** the configured socket: a path, `auto`, or null (off) */
  socket: string | null;
  /** the socket asked (under `auto`, the one found) */
  socket_in_use: string | null;
  /** `containerd 1.7.27`, once the runtime answered */
  runtime: string | null;
  /** off: no socket configured; idle: no pod container seen yet; ok: the last lookup succeeded;
   *  absent: `auto` found no CRI endpoint (no socket, or one without the CRI: Docker's own
   *  containerd); failing: the last lookup failed (last_error says why) */
  state: CriState;
  /** containers the runtime described */
  resolved: number;
  /** containers the runtime does not know */
  not_found: number;
  /** lookups that failed (each is retried) */
  failed: number;
  /** answers whose pod uid differed from the cgroup path's (nothing was taken from them) */
  mismatched: number;
  /** containers not looked up because too many were waiting */
  dropped: number;
  /** containers waiting for an answer */
  pending: number;
  /** answers kept */
  cached: number;
  last_error: string | null;
}

export interface CriIdentityOptions {
  /** answers kept at most (default 4096; the oldest goes first) */
  maxEntries?: number;
  /** lookups in flight at most (default 4) */
  concurrency?: number;
  /** containers waiting at most (default 1024) */
  maxWaiting?: number;
  /** first retry delay after a failure, doubling up to retryMaxMs (defaults 1 s, 60 s) */
  retryMinMs?: number;
  retryMaxMs?: number;
}

type Answer = CriContainerFacts | null;

export class CriIdentity {
  private source: CriSource | null;
  private configured: string | null;
  private readonly answers = new Map<string, Answer>();
  private readonly waiting = new Map<string, ProcessIdentity[]>();
  private queue: string[] = [];
  private inFlight = 0;
  private gen = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private state: CriState;
  private lastError: string | null = null;
  private readonly counts = { resolved: 0, not_found: 0, failed: 0, mismatched: 0, dropped: 0 };
  private readonly maxEntries: number;
  private readonly concurrency: number;
  private readonly maxWaiting: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;

  /** `configured`: the socket setting as the config has it (for stats); null source: off. */
  constructor(source: CriSource | null, configured: string | null, opts: CriIdentityOptions = {}) {
    this.source = source;
    this.configured = configured;
    this.maxEntries = opts.maxEntries ?? 4096;
    this.concurrency = opts.concurrency ?? 4;
    this.maxWaiting = opts.maxWaiting ?? 1024;
    this.retryMinMs = opts.retryMinMs ?? 1000;
    this.retryMaxMs = opts.retryMaxMs ?? 60_000;
    this.backoffMs = this.retryMinMs;
    this.state = source === null ? 'off' : 'idle';
  }

  /** A newly resolved identity: fills it now from a kept answer, or queues its container's
   *  lookup. Only a pod's containers are asked about (the CRI runs nothing else). */
  want(id: ProcessIdentity): void {
    const cid = id.containerId;
    if (this.source === null || cid === undefined || id.podUid === undefined) return;
    const a = this.answers.get(cid);
    if (a !== undefined) {
      if (a !== null) this.apply(id, a);
      return;
    }
    const w = this.waiting.get(cid);
    if (w !== undefined) {
      // a container's few cgroups (nested ones below its scope) share the answer
      if (w.length < 16 && !w.includes(id)) w.push(id);
      return;
    }
    if (this.waiting.size >= this.maxWaiting) {
      this.counts.dropped++;
      return;
    }
    this.waiting.set(cid, [id]);
    this.queue.push(cid);
    this.pump();
  }

  /** Another socket (a reload): answers already applied stay; containers the old runtime did
   *  not know, and those still waiting, are asked again. */
  setSource(source: CriSource | null, configured: string | null): void {
    this.source?.close();
    this.source = source;
    this.configured = configured;
    this.gen++;
    this.inFlight = 0;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.backoffMs = this.retryMinMs;
    this.lastError = null;
    for (const [cid, a] of this.answers) if (a === null) this.answers.delete(cid);
    if (source === null) {
      this.waiting.clear();
      this.queue = [];
      this.state = 'off';
      return;
    }
    this.state = this.answers.size > 0 ? 'ok' : 'idle';
    this.queue = [...this.waiting.keys()];
    this.pump();
  }

  stats(): CriStats {
    const rt = this.source?.runtime ?? null;
    return {
      socket: this.configured,
      socket_in_use: this.source?.socket ?? null,
      runtime: rt === null ? null : `${rt.name}${rt.version ? ` ${rt.version}` : ''}`,
      state: this.state,
      ...this.counts,
      pending: this.waiting.size,
      cached: this.answers.size,
      last_error: this.lastError,
    };
  }

  /** Why identity lacks pod names now, for the health report; null when nothing is wrong.
   *  `auto` finding no socket is not a fault (a node without Kubernetes). */
  problem(): string | null {
    if (this.state !== 'failing') return null;
    return `${this.lastError ?? 'CRI lookups failing'}; pod name, namespace and image are absent meanwhile`;
  }

  close(): void {
    this.setSource(null, this.configured);
  }

  private pump(): void {
    const src = this.source;
    if (src === null || this.retryTimer !== null) return;
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const cid = this.queue.shift()!;
      if (!this.waiting.has(cid)) continue;
      this.inFlight++;
      const gen = this.gen;
      src.describe(cid).then(
        (facts) => this.settle(gen, () => this.answered(cid, facts)),
        (e: unknown) => this.settle(gen, () => this.failed(cid, e)),
      );
    }
  }

  private settle(gen: number, f: () => void): void {
    // an answer from a socket replaced meanwhile: its container was queued again
    if (gen !== this.gen) return;
    this.inFlight--;
    f();
    this.pump();
  }

  private answered(cid: string, facts: Answer): void {
    if (this.answers.size >= this.maxEntries) this.answers.delete(this.answers.keys().next().value as string);
    this.answers.set(cid, facts);
    if (facts === null) this.counts.not_found++;
    else this.counts.resolved++;
    for (const id of this.waiting.get(cid) ?? []) if (facts !== null) this.apply(id, facts);
    this.waiting.delete(cid);
    this.state = 'ok';
    this.lastError = null;
    this.backoffMs = this.retryMinMs;
  }

  private failed(cid: string, e: unknown): void {
    this.counts.failed++;
    const code = (e as { code?: unknown }).code;
    // under `auto`, a socket that does not serve the CRI (Docker's containerd, whose CRI plugin
    // is off, on a host running kind) is no CRI endpoint, not a fault
    const none = code === 'E_CRI_ABSENT' || (this.configured === 'auto' && code === 'E_CRI_UNIMPLEMENTED');
    this.state = none ? 'absent' : 'failing';
    this.lastError = (e as Error).message ?? String(e);
    // asked again first, once the backoff is over
    if (this.waiting.has(cid)) this.queue.unshift(cid);
    if (this.retryTimer === null) {
      const ms = this.backoffMs;
      this.backoffMs = Math.min(this.retryMaxMs, this.backoffMs * 2);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.pump();
      }, ms * (0.5 + Math.random() / 2));
      this.retryTimer.unref();
    }
  }

  private apply(id: ProcessIdentity, f: CriContainerFacts): void {
    if (f.podUid !== undefined && id.podUid !== undefined && f.podUid !== id.podUid) {
      this.counts.mismatched++;
      return;
    }
    if (f.containerName !== undefined) id.containerName = f.containerName;
    if (f.image !== undefined) id.image = f.image;
    if (f.podName !== undefined) id.podName = f.podName;
    if (f.podNamespace !== undefined) id.podNamespace = f.podNamespace;
  }
}
