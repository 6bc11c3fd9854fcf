// Real agents for the fleet tests: each `patrol agent` with its own socket, lock, store, BPF pin
// directory and fleet state file, against the test's etcd cluster (etcd-cluster.mjs).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bpfEnabled, bpfRequired } from '../bpf/helpers.js';
import type { EtcdClient, KV } from '../../src/fleet/index.js';
import { EtcdCluster, etcdAvailable } from './etcd-cluster.mjs';

export { EtcdCluster };
export const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fleet tests need etcd (scripts/etcd-server.sh) and, with agents, BPF. In CI
 *  (PATROL_REQUIRE_BPF=1) a missing etcd fails the run instead of skipping it. */
export const etcdReady: boolean = bpfRequired || etcdAvailable();
export const agentsReady: boolean = etcdReady && bpfEnabled;

export async function until<T>(what: string, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms: number, stepMs = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== null && v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(stepMs);
  }
}

export function apiGet<T = any>(socket: string, path: string, timeoutMs = 5000): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, timeout: timeoutMs }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

export interface AgentOpts {
  labels?: Record<string, string>;
  leaseTtl?: string;
  checksDir?: string;
  /** attribution on (default off) */
  rules?: boolean;
  /** fleet.trusted_keys */
  trustedKeys?: string[];
}

/** One real agent; `start()` again after a kill runs it on the same directories. */
export class FleetAgent {
  readonly dir: string;
  readonly socket: string;
  readonly config: string;
  proc: ChildProcess | null = null;
  log = '';
  stoppedBySignal = false;

  constructor(
    readonly name: string,
    cluster: EtcdCluster,
    o: AgentOpts = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `patrol-fleet-${name}-`));
    mkdirSync(join(this.dir, 'state'));
    this.socket = join(this.dir, 'patrol.sock');
    this.config = join(this.dir, 'patrol.yaml');
    const labels = Object.entries(o.labels ?? { role: 'web' })
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    writeFileSync(
      this.config,
      [
        `store: { path: ${join(this.dir, 'state', 'patrol.db')}, flush_interval: 100ms }`,
        `api: { socket: ${this.socket} }`,
        `agent: { lock_file: ${join(this.dir, 'patrol.pid')}, pin_dir: /sys/fs/bpf/patrol-fleet-${process.pid}-${name} }`,
        'log: { level: info, format: json }',
        'metrics: { enabled: false }',
        `rules: { enabled: ${o.rules === true} }`,
        ...(o.checksDir ? [`checks: { dir: ${o.checksDir} }`] : []),
        `fleet: { endpoints: [${(cluster.endpoints as string[]).join(', ')}], node: ${name}, labels: { ${labels} }, lease_ttl: ${o.leaseTtl ?? '2s'}, observed_interval: 1s, skew_bound: 1h${o.trustedKeys ? `, trusted_keys: [${o.trustedKeys.join(', ')}]` : ''} }`,
        '',
      ].join('\n'),
    );
  }

  start(): void {
    if (this.proc) throw new Error(`${this.name} is running`);
    const p = spawn(PATROL, ['agent', '--config', this.config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-200_000);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    p.once('exit', () => {
      if (this.proc === p) this.proc = null;
    });
    this.proc = p;
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p) return;
    const gone = new Promise((r) => p.once('exit', r));
    if (signal === 'SIGKILL') p.kill('SIGCONT'); // a stopped process dies on SIGKILL too, but be explicit
    p.kill(signal);
    await gone;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  async fleet(): Promise<any> {
    const r = await apiGet(this.socket, '/v1/fleet', 3000);
    if (r.status !== 200) throw new Error(`GET /v1/fleet: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async stats(): Promise<any> {
    const r = await apiGet(this.socket, '/v1/stats', 3000);
    return r.body;
  }

  /** ready, registered and connected */
  async waitConnected(ms = 30_000): Promise<any> {
    try {
      return await until(`${this.name} connected`, async () => {
        if (this.proc === null) throw new Error(`${this.name} is not running`);
        const f = await this.fleet();
        return f.state === 'connected' && f.registered && f.lease_usable ? f : null;
      }, ms, 100);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- ${this.name} log (tail) ---\n${this.log.slice(-3000)}`);
    }
  }
}

/** Every event under `prefix` from revision `from` to `to`, in order (the history etcd keeps
 *  until a compaction), through the module's own exactly-once watch. Revision `to` must be a
 *  write under `prefix` (the watch ends when it arrives). */
export async function history(client: EtcdClient, prefix: string, from: number, to: number): Promise<Array<{ rev: number; type: 'put' | 'delete'; kv: KV }>> {
  const out: Array<{ rev: number; type: 'put' | 'delete'; kv: KV }> = [];
  if (to < from) return out;
  await new Promise<void>((resolve, reject) => {
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const timer = setTimeout(() => {
      w.close();
      reject(new Error('history watch: timed out'));
    }, 30_000);
    const w = client.watch(prefix, end.toString(), from, {
      onRevision: (rev, evs) => {
        if (rev <= to) for (const e of evs) out.push({ rev, type: e.type, kv: e.kv });
        if (rev >= to) {
          clearTimeout(timer);
          w.close();
          resolve();
        }
      },
      onCanceled: (why) => {
        clearTimeout(timer);
        reject(new Error(`history watch canceled: ${why}`));
      },
    });
  });
  return out;
}
