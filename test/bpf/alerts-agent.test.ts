// Alert delivery end to end (issue 17), as root, through the real agent: a real check
// (process_running of a process this test starts) fires and resolves, and its alerts reach
//   - a real Alertmanager (Debian's prometheus-alertmanager, started here on loopback): the
//     firing alert with its labels and annotations, then its resolution; restarting Alertmanager
//     mid-stream loses nothing (the refresh restores the firing alert; a resolution raised while
//     it is down is delivered once it is back, and Alertmanager notifies it);
//   - a webhook receiver failing its first 5 attempts: the alert arrives exactly once, by id;
//   - an NDJSON file;
// and an agent killed with -9 before it could deliver delivers after its restart, once.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, bpfRequired, sleep } from './helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
const AM_BIN = ['/usr/bin/prometheus-alertmanager', '/usr/bin/alertmanager', '/usr/local/bin/alertmanager'].find((p) => existsSync(p));
if (bpfRequired && AM_BIN === undefined) throw new Error('prometheus-alertmanager is not installed (scripts/test-deps.sh installs it)');

function getJson(socket: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000, log = () => ''): Promise<T> {
  let last: unknown;
  for (const end = Date.now() + ms; ; await sleep(100)) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}\n${log()}`);
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Received {
  status: number;
  at: number;
  body: any;
}

/** An HTTP receiver on `port` answering with the next status of `plan` (then 200). */
async function receiver(port: number, plan: number[] = []): Promise<{ hits: Received[]; close(): Promise<void> }> {
  const hits: Received[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const status = plan.shift() ?? 200;
      hits.push({ status, at: Date.now(), body: JSON.parse(raw) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { hits, close: () => new Promise((r) => server.close(() => r())) };
}

class Agent {
  proc: ChildProcess | null = null;
  out = '';
  constructor(
    readonly dir: string,
    readonly config: string,
    readonly checks: string,
  ) {}
  get socket() {
    return join(this.dir, 'patrol.sock');
  }
  async start(): Promise<void> {
    this.proc = spawn(PATROL, ['agent', '--config', this.config, '--checks', this.checks], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d) => (this.out += d));
    this.proc.stderr!.on('data', (d) => (this.out += d));
    await until('the agent to answer', async () => (await getJson(this.socket, '/v1/health')).status === 200, 30_000, () => this.out);
  }
  stats(): Promise<any> {
    return getJson(this.socket, '/v1/stats').then((r) => r.body);
  }
  async alerts(): Promise<Array<{ id: string; name: string; kind: string; state: string }>> {
    return (await getJson(this.socket, '/v1/alerts')).body.alerts;
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await done;
  }
}

function agentConfig(dir: string, tag: string, alerts: string): string {
  const config = join(dir, 'patrol.yaml');
  writeFileSync(
    config,
    `store: { path: ${join(dir, 'state', 'patrol.db')}, flush_interval: 50ms }
api: { socket: ${join(dir, 'patrol.sock')} }
agent: { lock_file: ${join(dir, 'patrol.pid')}, pin_dir: /sys/fs/bpf/patrol-alerts-${tag}-${process.pid} }
log: { level: warn, format: json }
metrics: { prometheus: { enabled: false } }
${alerts}
`,
  );
  return config;
}

/** A check that is critical while a process named `comm` runs. */
function checkDir(dir: string, name: string, comm: string): string {
  const d = join(dir, 'checks');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'e2e.patrol'), `check ${name} {\n  every 1s;\n  critical process_running("${comm}");\n  labels team = "sre", runbook = "https://runbooks.example/${name}";\n}\n`);
  return d;
}

/** A copy of sleep named `comm`, so process_running sees only ours. */
function sleeper(dir: string, comm: string): () => ChildProcess {
  const bin = join(dir, comm);
  copyFileSync('/bin/sleep', bin);
  chmodSync(bin, 0o755);
  return () => spawn(bin, ['600'], { stdio: 'ignore' });
}

class Alertmanager {
  proc: ChildProcess | null = null;
  log = '';
  constructor(
    readonly dir: string,
    readonly port: number,
    hookPort: number,
  ) {
    mkdirSync(join(dir, 'am-data'), { recursive: true });
    writeFileSync(
      join(dir, 'am.yml'),
      `route:
  receiver: hook
  group_by: [alertname, node]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:${hookPort}/am
        send_resolved: true
`,
    );
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(AM_BIN!, [`--config.file=${join(this.dir, 'am.yml')}`, `--storage.path=${join(this.dir, 'am-data')}`, `--web.listen-address=127.0.0.1:${this.port}`, '--cluster.listen-address='], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d) => (this.log += d));
    this.proc.stderr!.on('data', (d) => (this.log += d));
    await until('Alertmanager to be ready', async () => (await fetch(`${this.url}/-/ready`)).ok, 20_000, () => this.log);
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM'); // a clean stop: Alertmanager snapshots its notification log
    await done;
  }
  async alerts(): Promise<any[]> {
    return (await (await fetch(`${this.url}/api/v2/alerts`)).json()) as any[];
  }
}

describe.skipIf(!bpfEnabled || AM_BIN === undefined)('alert delivery through the agent (root, real Alertmanager)', () => {
  let dir: string;
  let agent: Agent;
  let am: Alertmanager;
  let amHook: Awaited<ReturnType<typeof receiver>>;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let hookPlan: number[];
  let proc: ChildProcess | null = null;
  let start: () => ChildProcess;
  const comm = `pam${process.pid % 100000}`;
  const check = `alert_e2e_${process.pid % 100000}`;
  let firingId = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-alerts-e2e-'));
    chmodSync(dir, 0o755);
    const amHookPort = await freePort();
    amHook = await receiver(amHookPort);
    am = new Alertmanager(dir, await freePort(), amHookPort);
    await am.start();
    hookPlan = [500, 500, 503, 500, 502];
    const hookPort = await freePort();
    hook = await receiver(hookPort, hookPlan);
    const config = agentConfig(
      dir,
      'am',
      `alerts:
  node: e2e-node
  retry: { initial: 200ms, max: 1s }
  outputs:
    - { type: alertmanager, url: "${am.url}", resend_interval: 2s, group_wait: 0s, timeout: 2s }
    - { type: webhook, url: "http://127.0.0.1:${hookPort}/hook", group_wait: 0s }
    - { type: file, path: ${join(dir, 'out', 'alerts.ndjson')}, group_wait: 0s }`,
    );
    agent = new Agent(dir, config, checkDir(dir, check, comm));
    start = sleeper(dir, comm);
    await agent.start();
  }, 60_000);

  afterAll(async () => {
    proc?.kill('SIGKILL');
    await agent?.stop();
    await am?.stop();
    await amHook?.close();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const amNotes = (status: string) => amHook.hits.filter((h) => h.body.alerts.some((a: any) => a.labels.alertname === check && a.status === status));

  it('a firing alert reaches Alertmanager (labels, annotations), the webhook exactly once by id after 5 failures, and the file', async () => {
    proc = start();
    const fired = await until('the alert to reach Alertmanager', async () => (await am.alerts()).find((a) => a.labels.alertname === check), 30_000, () => agent.out);
    expect(fired.labels).toEqual({ alertname: check, node: 'e2e-node', severity: 'critical', team: 'sre', runbook: `https://runbooks.example/${check}` });
    expect(fired.annotations.message).toMatch(/process_running/);
    expect(Date.parse(fired.endsAt)).toBeGreaterThan(Date.now());
    firingId = fired.annotations.patrol_alert_id;
    const stored = (await agent.alerts()).find((a) => a.name === check && a.kind === 'firing')!;
    expect(firingId).toBe(stored.id);
    await until('Alertmanager to notify the firing alert', () => amNotes('firing').length > 0, 15_000);

    await until('the webhook to accept the alert', () => hook.hits.some((h) => h.status === 200), 20_000, () => agent.out);
    await sleep(1500);
    const mine = hook.hits.filter((h) => h.body.alerts.some((a: any) => a.id === firingId));
    expect(mine.map((h) => h.status)).toEqual([500, 500, 503, 500, 502, 200]);
    const accepted = hook.hits.filter((h) => h.status === 200).flatMap((h) => h.body.alerts.map((a: any) => a.id));
    expect(accepted).toEqual([firingId]);
    expect(hook.hits.at(-1)!.body.alerts[0]).toMatchObject({ id: firingId, name: check, kind: 'firing', state: 'critical', node: 'e2e-node' });

    const lines = readFileSync(join(dir, 'out', 'alerts.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual([firingId]);
    const st = (await agent.stats()).alerts as Record<string, any>;
    expect(Object.values(st).map((o) => o.type).sort()).toEqual(['alertmanager', 'file', 'webhook']);
    const wh = Object.values(st).find((o) => o.type === 'webhook');
    expect(wh).toMatchObject({ delivered: 1, pending: 0, failures: 5, dropped: 0 });
  }, 90_000);

  it('restarting Alertmanager mid-stream loses nothing: the refresh restores the firing alert, and a resolution raised while it is down arrives once it is back', async () => {
    await am.stop();
    const restartedAt = Date.now();
    await am.start();
    // Alertmanager keeps alerts in memory only, so the alert it holds now was sent again after
    // the restart. (Asking for an empty list right after the start raced the agent's 2 s resend,
    // which could land first.)
    const back = await until('the refresh to restore the firing alert', async () => (await am.alerts()).find((a) => a.labels.alertname === check), 15_000, () => agent.out);
    expect(back.annotations.patrol_alert_id).toBe(firingId);
    expect(Date.parse(back.updatedAt)).toBeGreaterThanOrEqual(restartedAt);

    await am.stop();
    proc!.kill('SIGKILL');
    proc = null;
    const resolved = await until('the check to resolve', async () => (await agent.alerts()).find((a) => a.name === check && a.kind === 'resolved'), 20_000);
    const amOut = async () => Object.values((await agent.stats()).alerts as Record<string, any>).find((o) => o.type === 'alertmanager');
    await until('a failed attempt while Alertmanager is down', async () => (await amOut()).pending > 0 && (await amOut()).failures > 0, 20_000);
    await am.start();
    await until('Alertmanager to notify the resolution', () => amNotes('resolved').length > 0, 30_000, () => agent.out + am.log);
    await until('the outbox to drain', async () => (await amOut()).pending === 0, 10_000);
    expect((await am.alerts()).filter((a) => a.labels.alertname === check)).toEqual([]);
    // the webhook and the file got the resolution too, once each
    await until('the webhook to get the resolution', () => hook.hits.some((h) => h.status === 200 && h.body.alerts.some((a: any) => a.id === resolved.id)), 10_000);
    const ids = hook.hits.filter((h) => h.status === 200).flatMap((h) => h.body.alerts.map((a: any) => a.id));
    expect(ids).toEqual([firingId, resolved.id]);
    const lines = readFileSync(join(dir, 'out', 'alerts.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => `${l.kind}:${l.id}`)).toEqual([`firing:${firingId}`, `resolved:${resolved.id}`]);
  }, 120_000);

  it('patrol status shows each output\'s delivery counters', () => {
    const r = spawnSync(PATROL, ['status', '--socket', agent.socket], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/alerts\s+webhook:http:\/\/127\.0\.0\.1:\d+\/hook: delivered 2 · pending 0 · dropped 0 · failures 5/);
    expect(r.stdout).toMatch(/alerts\s+alertmanager:http:\/\/127\.0\.0\.1:\d+: delivered \d+ · pending 0 · dropped 0/);
  });
});

describe.skipIf(!bpfEnabled)('an agent killed with -9 before delivery delivers after its restart (root)', () => {
  let dir: string;
  let agent: Agent;
  let proc: ChildProcess | null = null;
  let hook: Awaited<ReturnType<typeof receiver>> | null = null;

  afterAll(async () => {
    proc?.kill('SIGKILL');
    await agent?.stop();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the queued alert survives kill -9 and arrives once, with the id it had', async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-alerts-kill-'));
    chmodSync(dir, 0o755);
    const comm = `pkl${process.pid % 100000}`;
    const check = `kill9_${process.pid % 100000}`;
    const port = await freePort(); // nothing listens yet: every attempt fails
    const config = agentConfig(dir, 'kill', `alerts:\n  retry: { initial: 200ms, max: 500ms }\n  outputs:\n    - { type: webhook, url: "http://127.0.0.1:${port}/hook", group_wait: 0s }`);
    agent = new Agent(dir, config, checkDir(dir, check, comm));
    await agent.start();
    proc = sleeper(dir, comm)();
    const fired = await until('the check to fire', async () => (await agent.alerts()).find((a) => a.name === check && a.kind === 'firing'), 20_000, () => agent.out);
    const out = async () => Object.values((await agent.stats()).alerts as Record<string, any>)[0];
    await until('a failed attempt', async () => (await out()).failures > 0 && (await out()).pending === 1, 10_000);

    await agent.stop('SIGKILL');
    hook = await receiver(port);
    await agent.start();
    await until('the delivery after the restart', () => hook!.hits.length > 0, 20_000, () => agent.out);
    await sleep(2500); // a few check runs: the still-critical check must not alert again
    const ids = hook.hits.flatMap((h) => h.body.alerts.map((a: any) => a.id));
    expect(ids).toEqual([fired.id]);
    expect(hook.hits[0]!.body.alerts[0]).toMatchObject({ name: check, kind: 'firing', state: 'critical' });
    expect(await out()).toMatchObject({ delivered: 1, pending: 0 });
  }, 90_000);
});
