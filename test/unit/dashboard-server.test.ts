// `patrol dashboard`'s server against a fake agent behind the real API: the one-time token
// becomes an HttpOnly cookie, every request without it is 401, every answer carries the strict
// CSP, /api/v1/... reaches the agent (JSON and the live stream), and the new read-only routes
// (/v1/node, /v1/history, states of /v1/processes/:exec_id) validate their input.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHandle } from '../../src/api/index.js';
import { CSP, startDashboard, type DashboardHandle } from '../../src/cli/dashboard/server.js';
import { Sessions } from '../../src/cli/dashboard/session.js';
import { openBrowser } from '../../src/cli/dashboard/open.js';
import type { NodeStrip } from '../../src/metrics/index.js';
import { FakeAgent, SEC, ev, populate, startOf } from './api-fake.js';

const log = pino({ level: 'silent' });
let dir: string;
let agent: FakeAgent;
let api: ApiHandle;
let dash: DashboardHandle;
let base: string;

const EMPTY_NODE: NodeStrip = {
  cpu: { avg: 12, p95: 20, max: 30, last: 10 }, iowait: null, steal: null, cpus: 2, memory: null, memory_bytes: null, memory_total_bytes: null, swap: null,
  load1: null, load5: null, load15: null, psi: [], disk_read_bytes_per_s: null, disk_write_bytes_per_s: null, disks: [], filesystems: [], net: [],
  series: { cpu: [[1000, 10]], memory: [], load1: [], psi_cpu: [], psi_memory: [], psi_io: [], disk_read: [], disk_write: [] },
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-dash-'));
  const web = join(dir, 'web');
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title><script type="module" src="/app.js"></script>');
  writeFileSync(join(web, 'app.js'), 'console.log(1)');
  agent = new FakeAgent();
  populate(agent);
  const sock = join(dir, 'patrol.sock');
  api = await startApi(agent, { socket: sock, log });
  dash = await startDashboard({ socket: sock, port: 0, webRoot: web });
  base = `http://127.0.0.1:${dash.port}`;
});

afterAll(async () => {
  await dash?.close();
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, cookie?: string) => fetch(base + path, { redirect: 'manual', headers: cookie ? { cookie } : {} });

describe('patrol dashboard: auth', () => {
  let cookie = '';

  it('prints a one-time URL on 127.0.0.1', () => {
    expect(dash.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
  });

  it('without the cookie: 401 for the page, the app, the API; the CSP on every answer', async () => {
    for (const p of ['/', '/app.js', '/index.html', '/api/v1/health', '/api/v1/processes', '/nope']) {
      const r = await get(p);
      expect(r.status, p).toBe(401);
      expect(r.headers.get('content-security-policy')).toBe(CSP);
      expect(await r.text()).not.toContain('<script');
    }
    expect((await (await get('/api/v1/health')).json()).error).toBe('unauthorized');
    expect((await get('/?token=wrong')).status).toBe(401);
  });

  it('the token: 303 to / with an HttpOnly, SameSite=Strict cookie; spent after one use', async () => {
    const token = new URL(dash.url).searchParams.get('token')!;
    const r = await get(`/?token=${token}`);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/');
    const set = r.headers.get('set-cookie')!;
    expect(set).toMatch(/^patrol_dashboard=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect(set).not.toContain(token);
    cookie = set.split(';')[0]!;
    const again = await get(`/?token=${token}`);
    expect(again.status).toBe(401);
    expect(await again.text()).toMatch(/already used/);
    // the browser that holds the session may open the link again
    expect((await get(`/?token=${token}`, cookie)).status).toBe(303);
  });

  it('with the cookie: the app and the agent; a forged cookie is 401; only GET', async () => {
    const page = await get('/', cookie);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect((await get('/app.js', cookie)).headers.get('content-type')).toMatch(/text\/javascript/);
    expect((await get('/../../etc/passwd', cookie)).status).toBe(404);
    const h = await get('/api/v1/health', cookie);
    expect(h.status).toBe(200);
    expect((await h.json()).version).toBe('9.9.9-test');
    expect((await get('/api/v1/health', 'patrol_dashboard=AAAA')).status).toBe(401);
    expect((await get('/api/v1/processes?color=red', cookie)).status).toBe(400);
    const post = await fetch(base + '/api/v1/health', { method: 'POST', headers: { cookie } });
    expect(post.status).toBe(405);
  });

  it('large JSON is gzipped for a browser that accepts it; small answers and the stream are not', async () => {
    for (let pid = 1000; pid < 1300; pid++) agent.publish(ev.fork(pid, 1, startOf(pid), `filler-${pid}`));
    const { gunzipSync } = await import('node:zlib');
    const raw = (path: string, enc: string) =>
      new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
        request(base + path, { headers: { cookie, 'accept-encoding': enc } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) }));
        })
          .on('error', reject)
          .end();
      });
    const big = await raw('/api/v1/processes', 'gzip, deflate, br');
    expect(big.headers['content-encoding']).toBe('gzip');
    const json = JSON.parse(gunzipSync(big.body).toString('utf8'));
    expect(json.total).toBeGreaterThanOrEqual(300);
    expect(big.body.length).toBeLessThan(JSON.stringify(json).length / 4);
    const plain = await raw('/api/v1/processes', 'identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(plain.body.toString('utf8')).total).toBe(json.total);
    const small = await raw('/api/v1/health', 'gzip');
    expect(small.headers['content-encoding']).toBeUndefined();
  });

  it('the live stream passes through; leaving it ends the agent subscription', async () => {
    const ac = new AbortController();
    const r = await fetch(base + '/api/v1/events', { headers: { cookie }, signal: ac.signal });
    expect(r.headers.get('content-type')).toMatch(/ndjson/);
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let text = '';
    while (!text.includes('\n')) text += dec.decode((await reader.read()).value);
    expect(JSON.parse(text.split('\n')[0]!).type).toBe('ready');
    agent.publish(ev.fork(900, 1, 4000n * SEC, 'systemd'));
    agent.publish(ev.exec(900, 1, 4000n * SEC + 1000n, '/bin/marker-cmd', ['marker-cmd', '<b>x</b>']));
    while (!text.includes('marker-cmd')) text += dec.decode((await reader.read()).value);
    expect(agent.listeners.size).toBe(1);
    ac.abort();
    for (let i = 0; i < 500 && agent.listeners.size > 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(agent.listeners.size).toBe(0);
  });

  it('an agent that went away: 502 with the reason', async () => {
    const d2 = await startDashboard({ socket: join(dir, 'nobody.sock'), port: 0, webRoot: join(dir, 'web'), token: 'fixed-token-for-the-test' });
    try {
      const r = await fetch(`http://127.0.0.1:${d2.port}/?token=fixed-token-for-the-test`, { redirect: 'manual' });
      const c = r.headers.get('set-cookie')!.split(';')[0]!;
      const h = await fetch(`http://127.0.0.1:${d2.port}/api/v1/health`, { headers: { cookie: c } });
      expect(h.status).toBe(502);
      expect((await h.json()).message).toMatch(/no agent is running/);
    } finally {
      await d2.close();
    }
  });

  it('the port in use: one clear error', async () => {
    await expect(startDashboard({ socket: 'x', port: dash.port, webRoot: join(dir, 'web') })).rejects.toThrow(/address in use/);
  });
});

describe('Sessions', () => {
  it('the token is spent on first use; a wrong one never is; the cookie is found among others', () => {
    const s = new Sessions('tok');
    expect(s.valid(undefined)).toBe(false);
    expect(s.redeem('nope')).toEqual({ ok: false, reason: 'wrong' });
    const r = s.redeem('tok');
    expect(r.ok).toBe(true);
    expect(s.redeem('tok')).toEqual({ ok: false, reason: 'spent' });
    const id = (r as { cookie: string }).cookie.split(';')[0]!.split('=')[1]!;
    expect(s.valid(`a=b; patrol_dashboard=${id}; c=d`)).toBe(true);
    expect(s.valid(`patrol_dashboard=${id}x`)).toBe(false);
    expect(s.valid(`other=${id}`)).toBe(false);
  });
});

describe('the read-only routes the dashboard added', () => {
  const sock = () => join(dir, 'patrol.sock');
  const q = (path: string): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: sock(), path }, (res) => {
        let t = '';
        res.on('data', (c) => (t += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(t) }));
      });
      req.on('error', reject);
      req.end();
    });

  it('fields= on /v1/processes: only those fields, same rows and order; unknown names are a 400', async () => {
    const full = await q('/v1/processes?sort=comm');
    const slim = await q('/v1/processes?sort=comm&fields=pid,comm,args');
    expect(slim.status).toBe(200);
    expect(slim.body.total).toBe(full.body.total);
    expect(slim.body.processes).toEqual(full.body.processes.map((p: { pid: number; comm: string; args: string[] | null }) => ({ pid: p.pid, comm: p.comm, args: p.args })));
    const bad = await q('/v1/processes?fields=pid,colour');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/unknown field 'colour'/);
    expect((await q('/v1/processes?fields=')).status).toBe(400);
  });

  it('without resource windows: 404 E_METRICS_DISABLED', async () => {
    expect((await q('/v1/node')).status).toBe(404);
    expect((await q('/v1/history?exec_id=0123456789abcdef')).status).toBe(404);
  });

  it('/v1/node and /v1/history with windows; input validated', async () => {
    const seen: string[] = [];
    agent.resources = {
      top: () => [{ pid: 5, ppid: 1, exec_id: 'aaaaaaaaaaaaaaaa', comm: 'x', cgroup_id: null, cgroup: null, owner: null, exited: false, cpu: { avg: 1, p95: 1, max: 1, last: 1 }, cpu_seconds: 0.5, rss_bytes: { max: 1, avg: 1, last: 1 }, io_read_bytes: 0, io_write_bytes: 0, exit: null, aggregate: null }],
      windowsMs: [10_000, 60_000, 300_000],
      maxWindowMs: 300_000,
      sweep: { sweeps: 1, source: 'proc', lastMs: 1, lastProcesses: 1, errors: 0 },
      metricsText: async () => '',
      metricsContentType: 'text/plain',
      node: () => EMPTY_NODE,
      history: (id, ms) => {
        seen.push(`${id}@${ms}`);
        return id === 'aaaaaaaaaaaaaaaa' ? { exec_id: id, cpu: [[1, 2]], rss: [], io_read: [], io_write: [] } : null;
      },
    };
    try {
      const n = await q('/v1/node?window=10s');
      expect(n.status).toBe(200);
      expect(n.body).toMatchObject({ window: '10s', window_ms: 10_000, cpu: { avg: 12 }, cpus: 2, series: { cpu: [[1000, 10]] } });
      expect((await q('/v1/node?window=1h')).status).toBe(400);
      const top = await q('/v1/top?fields=pid,cpu_seconds');
      expect(top.body.rows).toEqual([{ pid: 5, cpu_seconds: 0.5 }]);
      expect((await q('/v1/top?fields=pid,processes')).status).toBe(400);
      expect((await q('/v1/top?group=cgroup&fields=processes')).status).toBe(200);
      const h = await q('/v1/history?exec_id=aaaaaaaaaaaaaaaa&exec_id=bbbbbbbbbbbbbbbb&window=5m');
      expect(h.body).toEqual({ window: '5m', window_ms: 300_000, processes: [{ exec_id: 'aaaaaaaaaaaaaaaa', cpu: [[1, 2]], rss: [], io_read: [], io_write: [] }], missing: ['bbbbbbbbbbbbbbbb'] });
      expect(seen).toEqual(['aaaaaaaaaaaaaaaa@300000', 'bbbbbbbbbbbbbbbb@300000']);
      expect((await q('/v1/history')).status).toBe(400);
      expect((await q('/v1/history?exec_id=XYZ')).status).toBe(400);
      const many = Array.from({ length: 201 }, (_, i) => `exec_id=${i.toString(16).padStart(16, '0')}`).join('&');
      expect((await q(`/v1/history?${many}`)).status).toBe(400);
    } finally {
      delete agent.resources;
    }
  });

  it('/v1/processes/:exec_id carries the observed states (empty without the state sensor)', async () => {
    const id = agent.table.byPid(200)!.execId;
    expect((await q(`/v1/processes/${id}`)).body.states).toEqual([]);
    (agent as unknown as { states: unknown }).states = {
      stateOf: () => null,
      zombies: () => [],
      stuckD: () => [],
      dThresholdNs: SEC,
      history: () => [{ state: 'S', sinceNs: startOf(200) }, { state: 'D', sinceNs: startOf(200) + 2n * SEC }],
    };
    try {
      const r = await q(`/v1/processes/${id}`);
      expect(r.body.states).toEqual([
        { state: 'S', since: agent.clock.iso(startOf(200)) },
        { state: 'D', since: agent.clock.iso(startOf(200) + 2n * SEC) },
      ]);
    } finally {
      (agent as unknown as { states: unknown }).states = null;
    }
  });
});

describe('--open', () => {
  it('starts an opener with the URL where there is a graphical session; says why not elsewhere', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const out = join(dir, 'opened');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > ${out}\n`);
    chmodSync(join(bin, 'xdg-open'), 0o755);
    expect(openBrowser('http://127.0.0.1:1/?token=t', { PATH: bin })).toEqual({ opened: false, why: expect.stringMatching(/no graphical session/) });
    expect(openBrowser('http://127.0.0.1:1/?token=t', { PATH: join(dir, 'empty'), DISPLAY: ':0' })).toEqual({ opened: false, why: expect.stringMatching(/no browser opener found/) });
    expect(openBrowser('http://127.0.0.1:1/?token=t', { PATH: bin, DISPLAY: ':0' })).toEqual({ opened: true, with: join(bin, 'xdg-open') });
    for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(out, 'utf8')).toBe('http://127.0.0.1:1/?token=t');
  });
});

describe('patrol dashboard (the command)', () => {
  const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));

  it('without an agent: one clear line, exit 1; a bad port is a usage error', () => {
    const r = spawnSync(PATROL, ['dashboard', '--socket', join(dir, 'none.sock'), '--port', '0'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`patrol: no agent is running (no socket at ${join(dir, 'none.sock')}); start it with: sudo patrol agent\n`);
    const p = spawnSync(PATROL, ['dashboard', '--port', '70000'], { encoding: 'utf8', timeout: 20_000 });
    expect(p.status).not.toBe(0);
    expect(p.stderr).toMatch(/--port must be between 0 and 65535/);
  });

  it('prints the URL on a line of its own on stdout; the port defaults to 9466', async () => {
    const { spawn } = await import('node:child_process');
    const c = spawn(PATROL, ['dashboard', '--socket', join(dir, 'patrol.sock'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    c.kill('SIGINT');
    const code = await new Promise((r) => c.once('exit', r));
    expect(out).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}\n$/);
    expect(code).toBe(0);
    const help = spawnSync(PATROL, ['dashboard', '--help'], { encoding: 'utf8' });
    expect(help.stdout).toMatch(/--port <port>.*\(default: 9466\)/);
    expect(help.stdout).toMatch(/--open/);
  });
});
