// Desired state: one watch over `desired/` (per prefix, not per node). Each revision that
// touches a key relevant to this node (its own key, a selector its labels match, `all`) is
// applied exactly once, in revision order: the applied entry and the new watch position are
// saved together (state-file.ts), a restart resumes from the saved revision, and after a
// compaction (or any cancellation) everything under `desired/` is read again at one revision.
//
// Which key wins (docs/fleet.md): `desired/node/<node>`, then the matching selector with the
// most terms, then `desired/all`; between equal selectors, the newest write. Bundle application
// itself is issue 15: here an applied entry records what the node should run.
import type { Logger } from '../shared/log.js';
import { prefixEnd, type EtcdClient, type RevisionWatch, type WatchEvent } from './client.js';
import { DesiredValue, decode, parseSelector, selectorMatches, type Keys, type Labels } from './keys.js';
import { HISTORY_MAX, RESYNCS_MAX, type AppliedEntry, type FleetStateFile } from './state-file.js';
import { FleetError } from './errors.js';

export type DesiredEntries = Record<string, { bundle: string | null; mod_revision: number }>;

/** Precedence of a relevant key; 0: not relevant to this node. */
export function desiredRank(key: string, keys: Keys, node: string, labels: Labels): number {
  if (key === keys.desiredNode(node)) return 1_000_000;
  if (key === keys.desiredAll) return 1;
  const sel = keys.tail(key, 'desired/selector/');
  if (sel === null) return 0;
  let parsed: Labels;
  try {
    parsed = parseSelector(sel);
  } catch {
    return 0;
  }
  return selectorMatches(parsed, labels) ? 1 + Object.keys(parsed).length : 0;
}

export function effectiveDesired(entries: DesiredEntries, keys: Keys, node: string, labels: Labels): { bundle: string | null; key: string | null } {
  let best: { key: string; rank: number; rev: number; bundle: string } | null = null;
  for (const [key, e] of Object.entries(entries)) {
    if (e.bundle === null) continue;
    const rank = desiredRank(key, keys, node, labels);
    if (rank === 0) continue;
    if (best === null || rank > best.rank || (rank === best.rank && e.mod_revision > best.rev)) best = { key, rank, rev: e.mod_revision, bundle: e.bundle };
  }
  return best === null ? { bundle: null, key: null } : { bundle: best.bundle, key: best.key };
}

export class DesiredWatcher {
  private watch: RevisionWatch | null = null;
  private starting: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private persistTimer: NodeJS.Timeout | null = null;
  private closed = false;
  badValues = 0;
  lastError: string | null = null;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: Keys,
    private readonly node: string,
    private readonly labels: Labels,
    private readonly state: FleetStateFile,
    private readonly log: Logger,
    private readonly onApply: (e: AppliedEntry) => void = () => {},
  ) {}

  get running(): boolean {
    return this.watch !== null;
  }

  /** Starts the watch (resuming, or after a full read); safe to call again at any time. */
  ensure(): Promise<void> {
    if (this.closed || this.watch) return Promise.resolve();
    this.starting ??= this.start().finally(() => (this.starting = null));
    return this.starting;
  }

  private async start(): Promise<void> {
    try {
      const head = await this.client.range(this.keys.desired, { end: prefixEnd(this.keys.desired), countOnly: true });
      const s = this.state.data;
      if (s.cluster_id === head.clusterId && s.revision > 0 && s.revision <= head.revision) {
        this.startWatch(s.revision + 1);
      } else {
        await this.resync(s.cluster_id === '' ? 'start' : s.cluster_id !== head.clusterId ? 'cluster changed' : 'revision ahead of the cluster');
      }
      this.lastError = null;
    } catch (e) {
      this.lastError = (e as Error).message;
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.ensure();
    }, 1000);
    this.retry.unref();
  }

  /** Reads all of desired/ at one revision and applies the result once, if it changed. */
  private async resync(reason: string): Promise<void> {
    const snap = await this.client.readPrefix(this.keys.desired);
    if (this.closed) return;
    const s = this.state.data;
    const entries: DesiredEntries = {};
    for (const kv of snap.kvs) {
      if (desiredRank(kv.key, this.keys, this.node, this.labels) === 0) continue;
      entries[kv.key] = { bundle: this.bundleOf(kv.key, kv.value), mod_revision: kv.modRevision };
    }
    s.cluster_id = snap.clusterId;
    s.entries = entries;
    s.resyncs.push({ revision: snap.revision, reason, at: Date.now() });
    if (s.resyncs.length > RESYNCS_MAX) s.resyncs.splice(0, s.resyncs.length - RESYNCS_MAX);
    const eff = effectiveDesired(entries, this.keys, this.node, this.labels);
    const prev = s.effective;
    let applied: AppliedEntry | null = null;
    if (prev === null || prev.bundle !== eff.bundle || prev.key !== eff.key) {
      applied = { revision: snap.revision, bundle: eff.bundle, key: eff.key, cause: 'resync', at: Date.now() };
      this.record(applied);
    }
    s.revision = snap.revision;
    this.state.save();
    this.log.info({ reason, revision: snap.revision, keys: Object.keys(entries).length, bundle: eff.bundle }, 'fleet: desired state read in full');
    if (applied) this.onApply(applied);
    this.startWatch(snap.revision + 1);
  }

  private bundleOf(key: string, value: Buffer): string | null {
    const v = decode(DesiredValue, value);
    if (v === null) {
      this.badValues++;
      this.log.warn({ key }, 'fleet: a desired value that is not {schema: 1, bundle, ...}; ignored');
      return null;
    }
    return v.bundle;
  }

  private record(e: AppliedEntry): void {
    const s = this.state.data;
    s.effective = { bundle: e.bundle, key: e.key, revision: e.revision };
    s.applied_total++;
    s.history.push(e);
    if (s.history.length > HISTORY_MAX) s.history.splice(0, s.history.length - HISTORY_MAX);
  }

  private startWatch(from: number): void {
    if (this.closed) return;
    const end = prefixEnd(this.keys.desired);
    this.watch = this.client.watch(this.keys.desired, end, from, {
      onRevision: (rev, events) => this.onRevision(rev, events),
      onCanceled: (why) => {
        this.watch = null;
        void this.afterCancel(why);
      },
    });
  }

  private onRevision(rev: number, events: WatchEvent[]): void {
    const s = this.state.data;
    if (rev <= s.revision) return; // belt and braces: RevisionWatch already delivers each once
    let relevant = false;
    for (const ev of events) {
      if (desiredRank(ev.kv.key, this.keys, this.node, this.labels) === 0) continue;
      relevant = true;
      if (ev.type === 'delete') delete s.entries[ev.kv.key];
      else s.entries[ev.kv.key] = { bundle: this.bundleOf(ev.kv.key, ev.kv.value), mod_revision: rev };
    }
    s.revision = rev;
    if (!relevant) {
      this.persistSoon();
      return;
    }
    const eff = effectiveDesired(s.entries, this.keys, this.node, this.labels);
    const e: AppliedEntry = { revision: rev, bundle: eff.bundle, key: eff.key, cause: 'watch', at: Date.now() };
    this.record(e);
    this.state.save();
    this.onApply(e);
  }

  /** Revisions of other nodes' keys move the resume point too; saved within a second. */
  private persistSoon(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      this.state.save();
    }, 1000);
    this.persistTimer.unref();
  }

  private async afterCancel(why: string): Promise<void> {
    if (this.closed) return;
    let reason = why ? `watch canceled: ${why}` : 'watch canceled';
    try {
      // The package does not say why etcd canceled; a read at the resume revision does.
      await this.client.range(this.keys.desired, { end: prefixEnd(this.keys.desired), countOnly: true, revision: this.state.data.revision + 1 });
    } catch (e) {
      if (e instanceof FleetError && e.code === 'E_FLEET_COMPACTED') reason = 'compacted';
    }
    try {
      await this.resync(reason);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.log.warn({ err: this.lastError, reason }, 'fleet: desired state re-read failed; retrying');
      this.scheduleRetry();
    }
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
    this.watch = null;
    if (this.retry) clearTimeout(this.retry);
    if (this.persistTimer) {
      clearTimeout(this.persistTimer);
      this.persistTimer = null;
      this.state.save();
    }
  }
}
