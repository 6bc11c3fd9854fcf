// The fault suite's harness: a real `patrol agent` (bin/patrol, as an operator runs it) in a
// private directory, its API over the unix socket, the benchmark load generators (bench/build),
// and what the kernel says about the programs an agent held. Shared with bench/soak.mjs's
// figures only by intent: the soak is plain JS and keeps its own copy of the few it needs.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PATROL = join(ROOT, 'bin/patrol');
export const FORKEXEC = join(ROOT, 'bench/build/forkexec');
export const BPF_PRODUCE = join(ROOT, 'bench/build/bpf-produce');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The benchmark helpers the faults drive (make -C bench; gitignored, so built on first use).
 *  Always through make: it rebuilds a helper whose source changed since, cheaply otherwise. */
export function buildBenchHelpers(): void {
  execFileSync('make', ['-s', '-C', join(ROOT, 'bench'), 'build/forkexec', 'build/bpf-produce'], { stdio: 'inherit' });
}

export interface AgentDir {
  dir: string;
  socket: string;
  db: string;
  lock: string;
  config: string;
  pinDir: string;
}

/** A private agent directory and config. `yaml` is appended (sections it names replace the
 *  defaults here: write whole sections). */
export function agentDir(yaml: { store?: string; lifecycle?: string; metrics?: string; log?: string } = {}, db?: string): AgentDir {
  const dir = mkdtempSync(join(tmpdir(), 'patrol-fault-'));
  chmodSync(dir, 0o755);
  const d = {
    dir,
    socket: join(dir, 'patrol.sock'),
    db: db ?? join(dir, 'state', 'patrol.db'),
    lock: join(dir, 'patrol.pid'),
    config: join(dir, 'patrol.yaml'),
    pinDir: `/sys/fs/bpf/patrol-fault-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  };
  writeFileSync(
    d.config,
    [
      `store: ${yaml.store ?? `{ path: ${d.db}, flush_interval: 50ms }`}`,
      `api: { socket: ${d.socket} }`,
      `agent: { lock_file: ${d.lock}, pin_dir: ${d.pinDir} }`,
      `log: ${yaml.log ?? '{ level: warn, format: json }'}`,
      `metrics: ${yaml.metrics ?? '{ sweep_interval: 200ms, prometheus: { port: 0 } }'}`,
      ...(yaml.lifecycle ? [`lifecycle: ${yaml.lifecycle}`] : []),
    ].join('\n') + '\n',
  );
  return d;
}

export interface Agent {
  proc: ChildProcess;
  /** what the agent wrote (stdout and stderr), for failure messages */
  output(): string;
}

export function startAgent(d: AgentDir, args: string[] = [], env: NodeJS.ProcessEnv = {}): Agent {
  const proc = spawn(PATROL, ['agent', '--config', d.config, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, output: () => out };
}

export function get(socket: string, path: string, timeoutMs = 10_000): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const json = (res.headers['content-type'] ?? '').includes('json');
        resolve({ status: res.statusCode ?? 0, body: json && text ? JSON.parse(text) : text, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function waitReady(d: AgentDir, a: Agent, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (a.proc.exitCode !== null) throw new Error(`agent exited (${a.proc.exitCode}) before it was ready:\n${a.output()}`);
    try {
      if ((await get(d.socket, '/v1/health', 2000)).status === 200) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`agent did not become ready:\n${a.output()}`);
    await sleep(50);
  }
}

export const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

export async function stopAgent(a: Agent | undefined): Promise<void> {
  if (!a || a.proc.exitCode !== null || a.proc.signalCode !== null) return;
  a.proc.kill('SIGTERM');
  await exited(a.proc);
}

export async function until(cond: () => boolean | Promise<boolean>, ms: number, step = 20): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(step)) if (await cond()) return true;
  return cond();
}

/** The agent's stats (GET /v1/stats). */
export async function stats(d: AgentDir): Promise<any> {
  const r = await get(d.socket, '/v1/stats');
  if (r.status !== 200) throw new Error(`/v1/stats: ${r.status} ${r.text}`);
  return r.body;
}

/** generated = captured + lost, type by type; the failures named. */
export function identityFailures(acc: { generated: Record<string, number>; captured: Record<string, number>; lost: Record<string, number> }): string[] {
  const out: string[] = [];
  for (const t of Object.keys(acc.generated)) {
    const g = acc.generated[t]!;
    const c = acc.captured[t] ?? 0;
    const l = acc.lost[t] ?? 0;
    if (g !== c + l) out.push(`${t}: generated ${g} != captured ${c} + lost ${l}`);
  }
  return out;
}

/** Stats once nothing is in flight (records generated but not yet read), up to `ms`. */
export async function settledStats(d: AgentDir, ms = 5000): Promise<any> {
  let s = await stats(d);
  for (const end = Date.now() + ms; s.accounting.in_flight !== 0 && Date.now() < end; await sleep(50)) s = await stats(d);
  return s;
}

/** BPF program ids a process holds, from the fdinfo of its program and link fds. */
export function heldProgIds(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* fd closed meanwhile */
    }
  }
  return ids;
}

/** Which of these program ids are still loaded, and how many links still point at them. */
export function stillLoaded(ids: Set<number>): { progs: number; links: number } {
  const progs = (JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j']).toString()) as Array<{ id: number }>).filter((p) => ids.has(p.id));
  const links = (JSON.parse(execFileSync('bpftool', ['link', 'show', '-j']).toString()) as Array<{ prog_id: number }>).filter((l) => ids.has(l.prog_id));
  return { progs: progs.length, links: links.length };
}

/** Resident set of a process, bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Runs a program to completion, collecting stdout. */
export function runOut(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<{ code: number | null; out: string; err: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    c.stdout!.on('data', (b) => (out += b));
    c.stderr!.on('data', (b) => (err += b));
    c.on('error', reject);
    c.on('exit', (code) => resolve({ code, out, err, pid: c.pid! }));
  });
}

/** A Prometheus sample's value (summed over label sets that match `labels`). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** One line per figure, so a CI log shows what the fault measured. */
export function figure(fault: string, figures: Record<string, unknown>): void {
  process.stdout.write(`[fault] ${fault}: ${JSON.stringify(figures)}\n`);
}
