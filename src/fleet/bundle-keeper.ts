// The node's side of bundles (docs/fleet.md, "Applying a bundle"): follows the effective desired
// bundle, fetches it from etcd (or finds it on disk), verifies it against fleet.trusted_keys,
// unpacks it, and hands it to the host (the agent applies it through hot reload; a simulated
// member only validates it). Keeps the bundle it runs and the one before on disk, so going back
// to the previous bundle is local and immediate. Reports the outcome for observed/<node>:
// `applied` or `rejected: <code>`, and whether the node is incompatible with it (its kernel or
// BTF cannot run it: a rollout skips such a node rather than failing its gate).
//
// One bundle at a time, the newest target wins: targets that change while one is being applied
// are not applied in between.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import { FleetError } from './errors.js';
import { BundleError, kernelAtLeast, parseBundle, unpackBundle, verifyBundle, type Manifest, type TrustedKey } from './bundle.js';
import { fetchBundle } from './bundle-store.js';
import type { EtcdClient } from './client.js';
import type { Keys } from './keys.js';

export interface StagedBundle {
  id: string;
  /** where it is unpacked: rules/, checks/, bpf/, config.yaml, manifest.json */
  dir: string;
  manifest: Manifest;
  keyId: string;
}

export interface BundleApplyOutcome {
  result: 'applied' | 'rejected';
  code?: string;
  reason?: string;
  /** this node cannot run it (kernel too old, a BTF type missing): skipped by a rollout */
  incompatible?: boolean;
}

/** What applies a bundle on this node. `next` null: back to the node's own configuration. It
 *  must leave `current` running when it refuses. */
export interface BundleHost {
  apply(next: StagedBundle | null, current: StagedBundle | null): Promise<BundleApplyOutcome>;
}

/** The node's bundle, as observed/<node> (bundle_apply) and `patrol status` show it. */
export interface BundleReport {
  /** the bundle running; null: the node's own configuration */
  id: string | null;
  /** when it started running (ISO) */
  since: string | null;
  /** the bundle before it (kept on disk) */
  previous: string | null;
  /** the desired bundle last acted on; null: none desired */
  target: string | null;
  /** applied, rejected: <code>, pending (being fetched or applied), none (nothing desired yet) */
  result: string;
  code: string | null;
  reason: string | null;
  incompatible: boolean;
  /** when `result` was reached (ISO) */
  at: string | null;
}

interface KeeperState {
  schema: 1;
  current: { id: string; since: string } | null;
  previous: { id: string; since: string } | null;
  last: { target: string | null; result: 'applied' | 'rejected'; code: string | null; reason: string | null; incompatible: boolean; at: string } | null;
}

/** Codes that say the node cannot run the bundle, as opposed to a bundle that is wrong. */
export const INCOMPATIBLE_CODES = new Set(['E_SENSOR_BTF', 'E_BUNDLE_KERNEL']);

const dirName = (id: string) => id.replace(/[^A-Za-z0-9._-]/g, '_');

function readKeeperState(dir: string): KeeperState {
  const fresh: KeeperState = { schema: 1, current: null, previous: null, last: null };
  try {
    const d = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as KeeperState;
    if (d.schema !== 1) return fresh;
    // a bundle whose directory is gone cannot be what runs after a restart
    if (d.current && !existsSync(join(dir, dirName(d.current.id), 'manifest.json'))) d.current = null;
    return { ...fresh, ...d };
  } catch {
    return fresh;
  }
}

function stagedIn(root: string, id: string): StagedBundle | null {
  const dir = join(root, dirName(id));
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest & { id: string; key_id: string };
    if (m.id !== id) return null;
    return { id, dir, manifest: m, keyId: m.key_id };
  } catch {
    return null;
  }
}

export interface BundleKeeperOptions {
  /** where bundles are unpacked and state.json kept */
  dir: string;
  client: EtcdClient;
  keys: Keys;
  trusted: readonly TrustedKey[];
  host: BundleHost;
  log: Logger;
  /** called when the report changed (observed/<node> is then written at once); `applied`: a
   *  different bundle (or none) runs now */
  onChange?: (applied: boolean) => void;
  /** uname -r (tests) */
  kernel?: string;
}

export class BundleKeeper {
  private state: KeeperState;
  private wanted: string | null | undefined = undefined;
  private acted: string | null | undefined = undefined;
  private busy: Promise<void> | null = null;
  private pending: string | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = 1000;
  private closed = false;
  /** outcomes of every apply attempt, newest last (tests and the benchmark) */
  readonly applies: Array<{ target: string | null; result: string; ms: number; at: number }> = [];

  constructor(private readonly o: BundleKeeperOptions) {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.state = this.load();
    this.acted = this.state.last ? this.state.last.target : (this.state.current?.id ?? null);
  }

  private get stateFile(): string {
    return join(this.o.dir, 'state.json');
  }

  private load(): KeeperState {
    return readKeeperState(this.o.dir);
  }

  private save(): void {
    const tmp = `${this.stateFile}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(this.state), { mode: 0o600 });
      renameSync(tmp, this.stateFile);
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'fleet: cannot write the bundle state file');
    }
  }

  /** The bundle the node runs (its directory), from the state file: what it starts with. */
  static startup(dir: string): StagedBundle | null {
    const c = readKeeperState(dir).current;
    return c ? stagedIn(dir, c.id) : null;
  }

  private staged(id: string): StagedBundle | null {
    return stagedIn(this.o.dir, id);
  }

  report(): BundleReport {
    const s = this.state;
    const pending = this.busy !== null || this.retryTimer !== null ? this.pending : undefined;
    if (pending !== undefined && pending !== null && pending !== s.last?.target) {
      return { id: s.current?.id ?? null, since: s.current?.since ?? null, previous: s.previous?.id ?? null, target: pending, result: 'pending', code: null, reason: null, incompatible: false, at: null };
    }
    const l = s.last;
    return {
      id: s.current?.id ?? null,
      since: s.current?.since ?? null,
      previous: s.previous?.id ?? null,
      target: l ? l.target : (s.current?.id ?? null),
      result: !l ? (s.current ? 'applied' : 'none') : l.result === 'applied' ? 'applied' : `rejected: ${l.code ?? 'E_BUNDLE'}`,
      code: l?.code ?? null,
      reason: l?.reason ?? null,
      incompatible: l?.incompatible ?? false,
      at: l?.at ?? null,
    };
  }

  /** The effective desired bundle changed (or is being stated at start). */
  want(target: string | null): void {
    if (this.closed) return;
    this.wanted = target;
    this.kick();
  }

  private kick(): void {
    if (this.busy || this.closed) return;
    if (this.wanted === undefined || this.wanted === this.acted) return;
    const t = this.wanted;
    this.pending = t;
    this.o.onChange?.(false);
    this.busy = this.process(t).finally(() => {
      this.busy = null;
      this.kick();
    });
  }

  /** Resolves when nothing is being applied (tests, stop). */
  async settled(): Promise<void> {
    while (this.busy) await this.busy;
  }

  private record(target: string | null, o: BundleApplyOutcome): void {
    const l = this.state.last;
    // the same outcome again (a retry): nothing new to report
    if (l && l.target === target && l.result === o.result && l.code === (o.code ?? null) && o.result === 'rejected') return;
    this.state.last = { target, result: o.result, code: o.code ?? null, reason: o.reason ?? null, incompatible: o.incompatible ?? false, at: new Date().toISOString() };
    this.save();
  }

  private async process(target: string | null): Promise<void> {
    const t0 = performance.now();
    const log = this.o.log;
    const cur = this.state.current ? this.staged(this.state.current.id) : null;
    let outcome: BundleApplyOutcome;
    let next: StagedBundle | null = null;
    try {
      if (target !== null && target === cur?.id) {
        outcome = { result: 'applied' };
      } else {
        if (target !== null) next = await this.stage(target);
        outcome = await this.o.host.apply(next, cur);
      }
    } catch (e) {
      if (e instanceof FleetError && e.code === 'E_FLEET_UNAVAILABLE') {
        // etcd out of reach: not the bundle's fault; try again (the target may change meanwhile)
        log.warn({ bundle: target, err: e.message }, 'fleet: cannot fetch the bundle now; retrying');
        this.retry();
        return;
      }
      const code = e instanceof PatrolError ? e.code : 'E_BUNDLE';
      outcome = { result: 'rejected', code, reason: (e as Error).message, incompatible: INCOMPATIBLE_CODES.has(code) };
    }
    if (this.closed) return;
    this.acted = target;
    const changed = outcome.result === 'applied' && target !== (cur?.id ?? null);
    // not pushed yet, perhaps: look again, less and less often
    if (outcome.code === 'E_BUNDLE_MISSING') this.retry();
    else this.retryMs = 1000;
    if (changed) {
      const now = new Date().toISOString();
      if (this.state.current) this.state.previous = this.state.current;
      this.state.current = target === null ? null : { id: target, since: now };
    }
    if (outcome.result === 'rejected') outcome.incompatible ||= INCOMPATIBLE_CODES.has(outcome.code ?? '');
    this.record(target, outcome);
    this.cleanup();
    const ms = Math.round(performance.now() - t0);
    this.applies.push({ target, result: outcome.result === 'applied' ? 'applied' : `rejected: ${outcome.code}`, ms, at: Date.now() });
    if (this.applies.length > 256) this.applies.splice(0, this.applies.length - 256);
    if (outcome.result === 'applied') log.info({ bundle: target, previous: cur?.id ?? null, ms }, 'fleet: bundle applied');
    else log.error({ bundle: target, code: outcome.code, reason: outcome.reason, incompatible: outcome.incompatible ?? false, ms }, 'fleet: bundle rejected; the running one stays');
    this.o.onChange?.(changed);
  }

  /** On disk already (the previous bundle: a rollback is local) or fetched, verified, unpacked. */
  private async stage(id: string): Promise<StagedBundle> {
    const have = this.staged(id);
    if (have) {
      if (!this.o.trusted.some((k) => k.id === have.keyId)) throw new BundleError('E_BUNDLE_UNTRUSTED', `signed by key ${have.keyId}, which is no longer among fleet.trusted_keys`);
      this.checkKernel(have.manifest);
      return have;
    }
    const bytes = await fetchBundle(this.o.client, this.o.keys, id);
    const b = parseBundle(bytes);
    if (b.id !== id) throw new BundleError('E_BUNDLE_CORRUPT', `stored under ${id}, but its content is ${b.id}`);
    verifyBundle(b, this.o.trusted);
    this.checkKernel(b.manifest);
    unpackBundle(b, join(this.o.dir, dirName(id)));
    const s = this.staged(id);
    if (!s) throw new BundleError('E_BUNDLE_FORMAT', `${id}: unpacked, but its manifest cannot be read back`);
    return s;
  }

  private checkKernel(m: Manifest): void {
    const k = this.o.kernel ?? release();
    if (m.min_kernel !== null && !kernelAtLeast(k, m.min_kernel)) throw new BundleError('E_BUNDLE_KERNEL', `the bundle needs kernel ${m.min_kernel} or later; this is ${k}`);
  }

  /** Keeps the running bundle and the one before; removes the others' directories. */
  private cleanup(): void {
    const keep = new Set([this.state.current?.id, this.state.previous?.id].filter((x): x is string => !!x).map(dirName));
    try {
      for (const d of readdirSync(this.o.dir)) {
        if (d === 'state.json' || d.endsWith('.tmp') || keep.has(d)) continue;
        rmSync(join(this.o.dir, d), { recursive: true, force: true });
      }
    } catch {
      /* the next apply tries again */
    }
  }

  private retry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.acted = undefined;
      this.kick();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(30_000, this.retryMs * 2);
  }

  /** The agent could not start with the bundle it ran (its objects no longer load here, say):
   *  it starts with its own configuration, and the state file says why. */
  static demoteCurrent(dir: string, code: string, reason: string): void {
    const f = join(dir, 'state.json');
    try {
      const d = JSON.parse(readFileSync(f, 'utf8')) as KeeperState;
      if (!d.current) return;
      const at = new Date().toISOString();
      const next: KeeperState = { schema: 1, current: null, previous: d.current, last: { target: d.current.id, result: 'rejected', code, reason: `at start: ${reason}`, incompatible: INCOMPATIBLE_CODES.has(code), at } };
      writeFileSync(`${f}.tmp`, JSON.stringify(next), { mode: 0o600 });
      renameSync(`${f}.tmp`, f);
    } catch {
      /* nothing to demote */
    }
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}
