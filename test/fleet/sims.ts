// Simulated members for the rollout tests: the fleet module an agent runs (FleetNode, the bundle
// keeper, the rollout controller when they lead), with SimulatedHost applying bundles (rules and
// checks compiled, objects checked against a kernel's BTF) and inputs the test sets: CPU, RSS
// and loss, per bundle run, so a "bad" bundle can raise a simulated node's CPU.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../src/shared/log.js';
import { BundleKeeper, FleetNode, createBundle, quietInputs, type TrustedKey } from '../../src/fleet/index.js';
import { loadTrustedKeys } from '../../src/fleet/bundle.js';
import { SimulatedHost } from '../../src/fleet/sim-host.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface Keypair {
  dir: string;
  priv: string;
  pub: string;
}

/** An ed25519 key pair in PEM files. */
export function keypair(): Keypair {
  const dir = mkdtempSync(join(tmpdir(), 'patrol-key-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, 'key.pem');
  const pub = join(dir, 'key.pub.pem');
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { dir, priv, pub };
}

const dirs: string[] = [];
/** The directories bundleDir and makeBundle made (the tests remove them). */
export const made = (): string[] => [...dirs];

/** A bundle directory: `files` maps bundle paths to contents (or a source file to copy). */
export function bundleDir(files: Record<string, string | { copy: string }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'patrol-bundle-src-'));
  dirs.push(dir);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    if (typeof c === 'string') writeFileSync(join(dir, p), c);
    else cpSync(c.copy, join(dir, p));
  }
  return dir;
}

/** Packs and signs `files`; the file path and id. */
export function makeBundle(files: Record<string, string | { copy: string }>, key: Keypair): { file: string; id: string; bytes: Buffer } {
  const dir = bundleDir(files);
  const b = createBundle(dir, createPrivateKey(readFileSync(key.priv)));
  const file = join(dir, 'bundle.out');
  writeFileSync(file, b.bytes);
  return { file, id: b.id, bytes: b.bytes };
}

export interface SimOptions {
  endpoints: string[];
  prefix: string;
  labels?: Record<string, string>;
  trusted: string[];
  log: Logger;
  /** the simulated kernel's BTF tracepoints */
  tracepoints?: ReadonlySet<string>;
  leaseTtlMs?: number;
  refreshMs?: number;
  /** a directory of an earlier Sim of this name: a restart keeps its state */
  dir?: string;
  /** what to report as its agent's CPU and RSS (default: cpuPct/rssBytes, per bundle cpuOn) */
  usage?: () => { cpuPct: number; rssBytes: number } | null;
}

export class Sim {
  readonly node: FleetNode;
  readonly keeper: BundleKeeper;
  readonly host: SimulatedHost;
  /** CPU % and RSS the member reports; per bundle it runs when set in `cpuOn` */
  cpuPct = 1;
  rssBytes = 120 << 20;
  cpuOn = new Map<string, number>();
  lost = 0;
  lossOn = new Map<string, number>();
  readonly dir: string;
  private stopped = false;

  constructor(
    readonly name: string,
    o: SimOptions,
  ) {
    this.dir = o.dir ?? mkdtempSync(join(tmpdir(), `patrol-sim-${name}-`));
    this.host = new SimulatedHost(o.tracepoints ? { tracepoints: o.tracepoints } : {});
    const trusted: TrustedKey[] = loadTrustedKeys(o.trusted);
    let keeper: BundleKeeper | null = null;
    const running = () => keeper?.report().id ?? null;
    this.node = new FleetNode({
      endpoints: o.endpoints,
      node: name,
      labels: o.labels ?? { role: 'web' },
      prefix: o.prefix,
      leaseTtlMs: o.leaseTtlMs ?? 2000,
      observedIntervalMs: 1000,
      skewBoundMs: 3_600_000,
      tls: null,
      stateFile: join(this.dir, 'fleet-state.json'),
      version: '1.0.0',
      startedAt: Date.now(),
      pid: process.pid,
      inputs: {
        ...quietInputs,
        usage: () => o.usage?.() ?? { cpuPct: this.cpuOn.get(running() ?? '') ?? this.cpuPct, rssBytes: this.rssBytes },
        lostTotal: () => (this.lost += this.lossOn.get(running() ?? '') ?? 0),
        bundle: () => keeper?.report() ?? null,
      },
      log: o.log.child({ sim: name }),
      timing: { refreshMs: o.refreshMs ?? 300 },
      onDesired: (e) => keeper?.want(e.bundle),
    });
    keeper = new BundleKeeper({ dir: join(this.dir, 'bundles'), client: this.node.client, keys: this.node.keys, trusted, host: this.host, log: o.log.child({ sim: name }), onChange: (applied) => this.node.bundleChanged(applied) });
    this.keeper = keeper;
  }

  start(): this {
    this.node.start();
    this.keeper.want(this.node.local().desired.bundle);
    return this;
  }

  get running(): string | null {
    return this.keeper.report().id;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.keeper.close();
    await this.node.stop();
  }
}

/** A process's CPU (% of one CPU over the last 10 s, as an agent reads its own) and RSS, from
 *  /proc: simulated members report a real agent's figures (a baseline from this machine). */
export function procUsage(pid: () => number): () => { cpuPct: number; rssBytes: number } | null {
  let samples: Array<{ t: number; ticks: number }> = [];
  let last: { cpuPct: number; rssBytes: number } | null = null;
  let seen = 0;
  return () => {
    const p = pid();
    if (!p) return last;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(f[11]) + Number(f[12]); // utime + stime, in 1/100 s
      const rssBytes = Number(f[21]) * 4096;
      // killed: its memory is released (exit_mm) while it still closes a loaded agent's BPF maps
      // and programs, and stays 0 as a zombie. A 0 would stick as the last figure, making the
      // baseline 0 B and every real agent fail the RSS gate.
      if (rssBytes === 0) return last;
      const t = performance.now();
      if (p !== seen) samples = []; // another process (a restart)
      seen = p;
      samples.push({ t, ticks });
      while (samples.length > 2 && samples[1]!.t <= t - 10_000) samples.shift();
      const a = samples[0]!;
      const cpuPct = t - a.t >= 500 ? ((ticks - a.ticks) * 1000) / (t - a.t) : (last?.cpuPct ?? 0);
      last = { cpuPct, rssBytes };
      return last;
    } catch {
      return last;
    }
  };
}
