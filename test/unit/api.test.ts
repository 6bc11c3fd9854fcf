// The local HTTP API against a fake agent (real ProcessTable, synthetic events): every endpoint,
// schema validation, 404s, the live event stream with its slow-client drop record, the TCP
// bearer token, and the unix socket's mode, stale-file and in-use handling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startApi, type ApiHandle, type ProcessJson } from '../../src/api/index.js';
import { ownerOnlyListen } from '../../src/api/socket.js';
import { eventRecord } from '../../src/export/index.js';
import { PatrolError } from '../../src/shared/errors.js';
import { FakeAgent, MS, SEC, ev, populate, startOf } from './api-fake.js';

const log = pino({ level: 'silent' });

interface Resp {
  status: number;
  headers: IncomingMessage['headers'];
  body: any;
  text: string;
}

function get(socketPath: string, path: string): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown = undefined;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** An NDJSON stream reader: lines as they arrive, with a waiter. */
class LineStream {
  lines: string[] = [];
  ended = false;
  res!: IncomingMessage;
  private buf = '';
  private waiters: (() => void)[] = [];
  private req!: ReturnType<typeof request>;

  static open(socketPath: string, path: string): Promise<LineStream> {
    const s = new LineStream();
    return new Promise((resolve, reject) => {
      s.req = request({ socketPath, path }, (res) => {
        s.res = res;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          s.buf += c;
          let i: number;
          while ((i = s.buf.indexOf('\n')) >= 0) {
            s.lines.push(s.buf.slice(0, i));
            s.buf = s.buf.slice(i + 1);
          }
          s.wake();
        });
        res.on('end', () => {
          s.ended = true;
          s.wake();
        });
        res.on('error', () => {});
        resolve(s);
      });
      s.req.on('error', reject);
      s.req.end();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async waitFor(pred: (lines: string[]) => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.lines)) {
      if (this.ended) throw new Error(`stream ended; lines: ${this.lines.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout; lines: ${this.lines.slice(-5).map((l) => l.slice(0, 200)).join("\n")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  records(): any[] {
    return this.lines.map((l) => JSON.parse(l));
  }

  close(): void {
    this.req.destroy();
  }
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await tick(5);
  }
}

let dir: string;
let sock: string;
let agent: FakeAgent;
let api: ApiHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-api-'));
  sock = join(dir, 'run', 'patrol.sock');
  agent = new FakeAgent();
  populate(agent);
  api = await startApi(agent, { socket: sock, log, eventsBufferBytes: 16 << 10 });
});

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

const execIdOf = (pid: number) => agent.table.byPid(pid)?.execId ?? agent.table.list().find((e) => e.pid === pid)!.execId;

describe('unix socket', () => {
  it('is created owner-only (0600) in a 0755 directory it made', () => {
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o755);
    expect(api.addresses).toEqual({ socket: sock, tcp: null });
  });

  it('binds the socket 0600 even under umask 0, before any chmod, and restores the umask', async () => {
    const p = join(dir, 'umask.sock');
    const old = process.umask(0);
    try {
      const srv = createServer();
      ownerOnlyListen(srv);
      await new Promise<void>((r) => srv.listen(p, r));
      expect(statSync(p).mode & 0o777).toBe(0o600);
      expect(process.umask()).toBe(0);
      await new Promise((r) => srv.close(r));
    } finally {
      process.umask(old);
    }
  });

  it('refuses to start a second server on a live socket, leaving the first one serving', async () => {
    const err = await startApi(new FakeAgent(), { socket: sock, log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatrolError);
    expect((err as PatrolError).code).toBe('E_SOCKET_IN_USE');
    expect((err as PatrolError).message).toContain(sock);
    expect((await get(sock, '/v1/health')).status).toBe(200);
  });

  it('replaces a stale socket file left by a dead process', async () => {
    const stale = join(dir, 'stale.sock');
    // a process that binds the socket and dies without unlinking it
    const r = spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(r.signal).toBe('SIGKILL');
    expect(statSync(stale).isSocket()).toBe(true);
    const a = await startApi(agent, { socket: stale, log });
    try {
      const h = await get(stale, '/v1/health');
      expect(h.status).toBe(200);
      expect(statSync(stale).mode & 0o777).toBe(0o600);
    } finally {
      await a.close();
    }
    expect(existsSync(stale)).toBe(false);
  });

  it('does not remove a path that is not a socket', async () => {
    const f = join(dir, 'plain-file');
    writeFileSync(f, 'keep me');
    const err = await startApi(agent, { socket: f, log }).catch((e: unknown) => e);
    expect((err as PatrolError).code).toBe('E_SOCKET_PATH');
    expect(existsSync(f)).toBe(true);
  });
});

describe('GET /v1/health and /v1/stats', () => {
  it('health', async () => {
    const r = await get(sock, '/v1/health');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body).toEqual({ status: 'ok', reasons: [], version: '9.9.9-test', pid: 4242, uptime_s: expect.any(Number) });
    expect(r.body.uptime_s).toBeGreaterThanOrEqual(41);
  });

  it('stats in snake_case with exact accounting', async () => {
    const r = await get(sock, '/v1/stats');
    expect(r.status).toBe(200);
    const s = r.body;
    expect(s.version).toBe('9.9.9-test');
    expect(s.uptime_s).toBeGreaterThanOrEqual(41);
    expect(s.programs).toEqual(['handle_exec', 'handle_fork', 'handle_exit']);
    expect(s.accounting.generated).toEqual({ exec: 10, fork: 12, exit: 9, reap: 9, exec_failed: 1 });
    expect(s.accounting.lost).toEqual({ exec: 0, fork: 0, exit: 0, reap: 0, exec_failed: 0 });
    expect(s.accounting.totals).toEqual({ generated: 41, captured: 41, lost: 0 });
    expect(s.accounting.identity_holds).toBe(true);
    expect(s.accounting.seq_gaps).toBe(0);
    expect(s.accounting.thread_forks).toBe(4);
    expect(s.table.size).toBe(agent.table.size);
    expect(s.table).toHaveProperty('pid_reuse_detected');
    expect(s.table).toHaveProperty('zombies', 1);
    expect(s.ring.dropped_by_tag).toEqual([0, 0, 0, 0, 0, 0]);
    expect(s.ring.delivered_batches).toBe(7);
    expect(s.store).toEqual({ db_bytes: 123, rows_written: 5, nested: { wal_pages: 2 } });
    expect(new Date(s.started_at).getTime()).toBe(agent.startedAt - (agent.startedAt % 1));
  });
});

describe('GET /v1/processes', () => {
  const pids = (r: Resp) => (r.body.processes as ProcessJson[]).map((p) => p.pid);

  it('lists the whole table sorted by pid, with full process records', async () => {
    const r = await get(sock, '/v1/processes');
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(6);
    expect(pids(r)).toEqual([1, 100, 200, 300, 301, 400]);
    const ls = (r.body.processes as ProcessJson[]).find((p) => p.pid === 300)!;
    expect(ls).toMatchObject({
      exec_id: execIdOf(300),
      ppid: 200,
      parent_exec_id: execIdOf(200),
      comm: 'ls',
      filename: '/usr/bin/ls',
      args: ['ls', '-l', 'my dir'],
      uid: 1000,
      state: 'X',
      lifecycle: 'dead',
      start_ns: startOf(300).toString(),
      start_time: agent.clock.iso(startOf(300)),
      exec_count: 1,
      exit_code: 0,
      signal: null,
      exit_time: agent.clock.iso(startOf(300) + 5n * MS),
      reap_time: agent.clock.iso(startOf(300) + 6n * MS),
      source: 'fork',
      cgroup_id: '77',
    });
  });

  it('filters by comm (repeatable), uid, state, and pid subtree', async () => {
    expect(pids(await get(sock, '/v1/processes?comm=bash'))).toEqual([200]);
    expect(pids(await get(sock, '/v1/processes?comm=bash&comm=cron'))).toEqual([200, 400]);
    expect(pids(await get(sock, '/v1/processes?uid=1000'))).toEqual([200, 300, 301]);
    expect(pids(await get(sock, '/v1/processes?state=Z'))).toEqual([301]);
    expect(pids(await get(sock, '/v1/processes?state=S'))).toEqual([1, 100, 200, 400]);
    expect(pids(await get(sock, '/v1/processes?pid=100'))).toEqual([100, 200, 300, 301]);
    expect(pids(await get(sock, '/v1/processes?pid=100&lifecycle=live'))).toEqual([100, 200]);
    const none = await get(sock, '/v1/processes?comm=nothing');
    expect(none.body).toEqual({ total: 0, processes: [] });
  });

  it('sorts and limits; total counts before the limit', async () => {
    expect(pids(await get(sock, '/v1/processes?sort=comm'))).toEqual([200, 400, 301, 1, 300, 100]);
    expect(pids(await get(sock, '/v1/processes?sort=start'))).toEqual([1, 100, 200, 300, 301, 400]);
    const r = await get(sock, '/v1/processes?sort=pid&limit=2');
    expect(r.body.total).toBe(6);
    expect(pids(r)).toEqual([1, 100]);
  });

  it('rejects bad parameters with 400 and a clear message', async () => {
    const cases: [string, RegExp][] = [
      ['uid=abc', /^invalid query: uid must be integer$/],
      ['uid=-1', /uid must be >= 0/],
      ['pid=0', /pid must be >= 1/],
      ['state=running', /state must be one of: R, S, D, T, I, P, Z, X/],
      ['sort=size', /sort must be one of: pid, start, comm/],
      ['limit=0', /limit must be >= 1/],
      ['color=red', /unknown parameter 'color'/],
    ];
    for (const [q, msg] of cases) {
      const r = await get(sock, `/v1/processes?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.body.error).toBe('bad_request');
      expect(r.body.status).toBe(400);
      expect(r.body.message, q).toMatch(msg);
    }
  });
});

describe('GET /v1/processes/:exec_id', () => {
  it('gives the process, its ancestry (parent first) and its children', async () => {
    const r = await get(sock, `/v1/processes/${execIdOf(200)}`);
    expect(r.status).toBe(200);
    expect(r.body.process.pid).toBe(200);
    expect(r.body.ancestry.map((p: ProcessJson) => p.pid)).toEqual([100, 1]);
    expect(r.body.children.map((p: ProcessJson) => p.pid)).toEqual([300, 301]);
    const root = await get(sock, `/v1/processes/${execIdOf(1)}`);
    expect(root.body.ancestry).toEqual([]);
  });

  it('404 JSON for an unknown id, 400 for a malformed one', async () => {
    const r = await get(sock, '/v1/processes/0123456789abcdef');
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ error: 'not_found', status: 404 });
    expect(r.body.message).toContain('0123456789abcdef');
    const bad = await get(sock, '/v1/processes/not-an-id');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('invalid path: exec_id must be 16 lowercase hex digits');
  });
});

describe('GET /v1/tree', () => {
  it('nests the whole table under its roots', async () => {
    const r = await get(sock, '/v1/tree');
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(6);
    expect(r.body.roots).toHaveLength(1);
    const init = r.body.roots[0];
    expect(init.process.pid).toBe(1);
    expect(init.children.map((n: any) => n.process.pid)).toEqual([100, 400]);
    const bash = init.children[0].children[0];
    expect(bash.process.pid).toBe(200);
    expect(bash.children.map((n: any) => n.process.pid)).toEqual([300, 301]);
    expect(bash.children[0].children).toEqual([]);
  });

  it('a subtree of a pid; 404 for a pid nobody holds; 400 for a bad pid', async () => {
    const r = await get(sock, '/v1/tree?pid=200');
    expect(r.body.total).toBe(3);
    expect(r.body.roots.map((n: any) => n.process.pid)).toEqual([200]);
    expect((await get(sock, '/v1/tree?pid=999')).status).toBe(404);
    expect((await get(sock, '/v1/tree?pid=x')).status).toBe(400);
  });
});

describe('other routes', () => {
  it('unknown endpoints and methods answer 404 JSON', async () => {
    const r = await get(sock, '/v1/nope');
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: 'not_found', message: 'no such endpoint: GET /v1/nope', status: 404 });
    expect((await get(sock, '/health')).status).toBe(404);
  });
});

describe('GET /v1/events', () => {
  let nextPid = 1000;

  it('streams a ready record, then events in the trace --json schema', async () => {
    const s = await LineStream.open(sock, '/v1/events');
    expect(s.res.statusCode).toBe(200);
    expect(s.res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    await s.waitFor((l) => l.length >= 1);
    const ready = JSON.parse(s.lines[0]!);
    expect(ready).toMatchObject({
      type: 'ready',
      schema: 1,
      programs: ['handle_exec', 'handle_fork', 'handle_exit'],
      table_size: agent.table.size,
      ring_bytes: 4 << 20,
      args_cap: 4096,
    });
    expect(agent.listeners.size).toBe(1);

    const pid = nextPid++;
    const t0 = startOf(pid);
    const evs = [
      ev.fork(pid, 200, t0, 'bash'),
      ev.exec(pid, 200, t0 + MS, '/usr/bin/printf', ['printf', { text: 'a\uFFFDb', raw: Buffer.from([0x61, 0xff, 0x62]) }], 1000),
      ev.exit(pid, 200, t0 + 3n * MS, 'printf', null, 9),
      ev.reap(pid, t0 + 4n * MS, t0 + 3n * MS),
    ];
    const expected: string[] = [];
    for (const e of evs) expected.push(JSON.stringify(eventRecord(e, agent.publish(e), agent.clock)));
    await s.waitFor((l) => l.length >= 5);
    expect(s.lines.slice(1)).toEqual(expected);
    const recs = s.records();
    expect(recs[2].args_raw).toEqual([null, Buffer.from([0x61, 0xff, 0x62]).toString('base64')]);
    expect(recs[3]).toMatchObject({ type: 'exit', signal: 9, exit_code: null, duration_ns: 3_000_000 });
    s.close();
    await until(() => agent.listeners.size === 0);
  });

  it('applies comm, uid, failed and pid-subtree filters (newborn descendants included)', async () => {
    const byComm = await LineStream.open(sock, '/v1/events?comm=make');
    const byUid = await LineStream.open(sock, '/v1/events?uid=1000');
    const failed = await LineStream.open(sock, '/v1/events?failed=true');
    const sub = await LineStream.open(sock, '/v1/events?pid=400');
    for (const s of [byComm, byUid, failed, sub]) await s.waitFor((l) => l.length >= 1);
    expect(agent.listeners.size).toBe(1); // one subscription, fanned out

    const t0 = 3100n * SEC;
    const a = nextPid++;
    const b = nextPid++;
    agent.publish(ev.fork(a, 400, t0, 'cron')); // sub
    agent.publish(ev.exec(a, 400, t0 + MS, '/usr/bin/make', ['make'], 0)); // comm, sub
    agent.publish(ev.fork(b, a, t0 + 2n * MS, 'make')); // comm, sub (grandchild born now)
    agent.publish(ev.exit(b, a, t0 + 3n * MS, 'make', 2)); // comm, failed, sub
    agent.publish(ev.execFailed(200, t0 + 4n * MS, '/nope')); // uid (bash is 1000), failed
    agent.publish(ev.fork(a, 400, t0 + 5n * MS, 'make', true)); // thread: nobody (no threads=true)
    agent.publish(ev.exit(a, 400, t0 + 6n * MS, 'make', 0)); // comm, sub

    const types = (s: LineStream) => s.records().slice(1).map((r) => `${r.type}:${r.pid}`);
    await byComm.waitFor((l) => l.length >= 5);
    await byUid.waitFor((l) => l.length >= 2);
    await failed.waitFor((l) => l.length >= 3);
    await sub.waitFor((l) => l.length >= 6);
    await tick(20);
    expect(types(byComm)).toEqual([`exec:${a}`, `fork:${b}`, `exit:${b}`, `exit:${a}`]);
    expect(types(byUid)).toEqual(['exec_failed:200']);
    expect(types(failed)).toEqual([`exit:${b}`, 'exec_failed:200']);
    expect(types(sub)).toEqual([`fork:${a}`, `exec:${a}`, `fork:${b}`, `exit:${b}`, `exit:${a}`]);
    for (const s of [byComm, byUid, failed, sub]) s.close();
    await until(() => agent.listeners.size === 0);
  });

  it('rejects bad filters with 400 before streaming', async () => {
    const r = await get(sock, '/v1/events?pid=abc');
    expect(r.status).toBe(400);
    expect(r.body.message).toBe('invalid query: pid must be integer');
    const r2 = await get(sock, '/v1/events?failed=maybe');
    expect(r2.status).toBe(400);
    expect(agent.listeners.size).toBe(0);
  });

  it('drops events for a client that does not read, then says how many', async () => {
    const s = await LineStream.open(sock, '/v1/events?comm=slow');
    await s.waitFor((l) => l.length >= 1);
    s.res.pause(); // stop reading: the socket and then the per-client buffer fill up

    const pid = nextPid++;
    const big = 'x'.repeat(1000);
    let published = 0;
    let t = 3200n * SEC;
    agent.publish(ev.fork(pid, 1, t, 'slow'));
    published++;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 100; i++) {
        t += 1000n;
        // exec keeps comm 'slow' (filename basename)
        agent.publish(ev.exec(pid, 1, t, '/bin/slow', ['slow', String(published), big]));
        published++;
      }
      await tick(1); // let the hub flush and the socket fill
    }
    await tick(50);
    s.res.resume();
    // every event is either delivered or counted in a dropped record, once the client caught up
    const accounted = () => {
      let n = 0;
      for (const r of s.records().slice(1)) n += r.type === 'dropped' ? r.count : 1;
      return n;
    };
    await s.waitFor(() => accounted() === published, 10_000);
    // caught up: live events flow again
    t += 1000n;
    agent.publish(ev.exec(pid, 1, t, '/bin/slow', ['slow', 'final']));
    published++;
    await s.waitFor((l) => l.some((x) => x.includes('"final"')), 10_000);

    const recs = s.records().slice(1);
    const dropped = recs.filter((r) => r.type === 'dropped');
    const events = recs.filter((r) => r.type !== 'dropped');
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    for (const d of dropped) {
      expect(d.count).toBeGreaterThan(0);
      expect(typeof d.time).toBe('string');
    }
    // every event is either delivered or counted
    expect(events.length + dropped.reduce((n, d) => n + d.count, 0)).toBe(published);
    expect(events.length).toBeLessThan(published);
    // each dropped record sits exactly at its gap: events are numbered by publication order
    let next = 0;
    for (const r of recs) {
      if (r.type === 'dropped') {
        next += r.count;
        continue;
      }
      const idx = r.type === 'fork' ? 0 : r.args[1] === 'final' ? published - 1 : Number(r.args[1]);
      expect(idx).toBe(next++);
    }
    expect(recs[recs.length - 1].args[1]).toBe('final');
    s.close();
    await until(() => agent.listeners.size === 0);
  });

  it('close() ends open streams and removes the socket', async () => {
    const p = join(dir, 'closing.sock');
    const a = await startApi(agent, { socket: p, log });
    const s = await LineStream.open(p, '/v1/events');
    await s.waitFor((l) => l.length >= 1);
    await a.close();
    await until(() => s.ended);
    expect(existsSync(p)).toBe(false);
    expect(agent.listeners.size).toBe(0);
  });
});

describe('TCP listener', () => {
  let tcpApi: ApiHandle;
  let base: string;
  const token = 'test-token-0123456789abcdef';

  beforeAll(async () => {
    tcpApi = await startApi(agent, { socket: join(dir, 'tcp.sock'), tcp: { host: '127.0.0.1', port: 0, token }, log });
    base = `http://127.0.0.1:${tcpApi.addresses.tcp!.port}`;
  });
  afterAll(async () => {
    await tcpApi?.close();
  });

  it('binds loopback by default host', () => {
    expect(tcpApi.addresses.tcp!.host).toBe('127.0.0.1');
  });

  it('401 without a token, with WWW-Authenticate: Bearer', async () => {
    const r = await fetch(`${base}/v1/health`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(await r.json()).toMatchObject({ error: 'unauthorized', status: 401 });
  });

  it('401 with a wrong token or scheme, on every route including unknown ones', async () => {
    for (const h of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, 'Bearer', '']) {
      const r = await fetch(`${base}/v1/processes`, { headers: { authorization: h } });
      expect(r.status, h).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    }
    expect((await fetch(`${base}/v1/nope`)).status).toBe(401);
    expect((await fetch(`${base}/v1/events`)).status).toBe(401);
  });

  it('200 with the right token', async () => {
    const r = await fetch(`${base}/v1/health`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect((await r.json()).status).toBe('ok');
    const p = await fetch(`${base}/v1/processes?pid=200`, { headers: { authorization: `bearer ${token}` } });
    expect((await p.json()).total).toBe(agent.table.list({ pidSubtree: 200 }).length);
  });

  it('refuses an empty token', async () => {
    const err = await startApi(agent, { socket: join(dir, 'tcp2.sock'), tcp: { host: '127.0.0.1', port: 0, token: '' }, log }).catch(
      (e: unknown) => e,
    );
    expect((err as PatrolError).code).toBe('E_CONFIG');
  });
});
