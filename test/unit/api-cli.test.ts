// The CLI clients (status, ps, events) against a real API server over a temp socket with a fake
// agent, the trace-equivalent formatting of NDJSON records, and the one-line connection errors.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import { startApi, defaultSocket, DEFAULT_SOCKET, type ApiHandle } from '../../src/api/index.js';
import { eventRecord } from '../../src/export/index.js';
import { PatrolError } from '../../src/shared/errors.js';
import { humanLine, HEADER } from '../../src/cli/format.js';
import { ApiClient, connectError, queryString } from '../../src/cli/client.js';
import { runStatus, registerStatus, fmtUptime } from '../../src/cli/status.js';
import { runPs, PS_HEADER, registerPs } from '../../src/cli/ps.js';
import { runEvents, recordLine, type EventRecordJson } from '../../src/cli/events.js';
import { FakeAgent, MS, ev, populate, startOf } from './api-fake.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
  get lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean, ms = 5000): Promise<void> {
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
  dir = mkdtempSync(join(tmpdir(), 'patrol-cli-'));
  sock = join(dir, 'patrol.sock');
  agent = new FakeAgent();
  populate(agent);
  api = await startApi(agent, { socket: sock, log: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

const NO_AGENT = (p: string) => `no agent is running (no socket at ${p}); start it with: sudo patrol agent`;

describe('client', () => {
  it('no socket → E_NO_AGENT with the exact one-liner', async () => {
    const p = join(dir, 'missing', 'patrol.sock');
    const err = await runStatus({ socket: p }, new Capture()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatrolError);
    expect((err as PatrolError).code).toBe('E_NO_AGENT');
    expect((err as PatrolError).message).toBe(NO_AGENT(p));
  });

  it('a socket nobody listens on (ECONNREFUSED) → the same one-liner', async () => {
    const p = join(dir, 'stale.sock');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    for (const run of [
      () => runPs({ socket: p }, new Capture()),
      () => runEvents({ socket: p }, { out: new Capture(), err: new Capture() }),
    ]) {
      const err = await run().catch((e: unknown) => e);
      expect((err as PatrolError).code).toBe('E_NO_AGENT');
      expect((err as PatrolError).message).toBe(NO_AGENT(p));
    }
  });

  it('EACCES → permission denied, root-only', () => {
    const e = connectError(Object.assign(new Error('connect EACCES'), { code: 'EACCES' }), DEFAULT_SOCKET);
    expect(e.message).toBe('cannot reach the agent socket /run/patrol/patrol.sock: permission denied (the API is root-only)');
    expect(connectError(Object.assign(new Error('x'), { code: 'ENOENT' }), DEFAULT_SOCKET).message).toBe(NO_AGENT(DEFAULT_SOCKET));
  });

  it('PATROL_SOCKET overrides the default socket', () => {
    expect(defaultSocket({})).toBe('/run/patrol/patrol.sock');
    expect(defaultSocket({ PATROL_SOCKET: '/tmp/x.sock' })).toBe('/tmp/x.sock');
    vi.stubEnv('PATROL_SOCKET', sock);
    try {
      expect(new ApiClient().socket).toBe(sock);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('API errors carry the agent message', async () => {
    const err = await new ApiClient(sock).get('/processes', { state: 'bogus' }).catch((e: unknown) => e);
    expect((err as PatrolError).code).toBe('E_API');
    expect((err as PatrolError).message).toBe('invalid query: state must be one of: R, S, D, T, I, P, Z, X');
  });

  it('query strings repeat arrays and skip undefined/false', () => {
    expect(queryString({ comm: ['a', 'b c'], uid: 0, pid: undefined, failed: false, threads: true })).toBe('?comm=a&comm=b+c&uid=0&threads=true');
    expect(queryString({})).toBe('');
  });
});

describe('patrol status', () => {
  it('human: up, version, uptime, programs, accounting ✓, table size', async () => {
    const out = new Capture();
    await runStatus({ socket: sock }, out);
    const t = out.text;
    expect(t).toMatch(/^agent\s+up · version 9\.9\.9-test · pid 4242 · uptime 4\d?s/m);
    expect(t).toMatch(/^programs\s+3 attached: handle_exec, handle_fork, handle_exit$/m);
    expect(t).toMatch(/^captured\s+exec 10 · fork 12 · exit 9 · reap 9 · exec_failed 1$/m);
    expect(t).toMatch(/^lost\s+0 \(reserve 0, user space 0\); generated = captured \+ lost ✓$/m);
    expect(t).toMatch(new RegExp(`^table\\s+${agent.table.size} processes: \\d+ live, \\d+ zombies?, \\d+ dead$`, 'm'));
    expect(t).toMatch(/^store\s+db_bytes=123 · rows_written=5$/m);
  });

  it('human: a broken identity shows ✗', async () => {
    agent.identityHolds = false;
    try {
      const out = new Capture();
      await runStatus({ socket: sock }, out);
      expect(out.text).toMatch(/^lost\s+1 \(reserve 0, user space 1\); generated ≠ captured \+ lost ✗$/m);
    } finally {
      agent.identityHolds = true;
    }
  });

  it('--json prints the stats object', async () => {
    const out = new Capture();
    await runStatus({ socket: sock, json: true }, out);
    const s = JSON.parse(out.text);
    expect(s.version).toBe('9.9.9-test');
    expect(s.accounting.identity_holds).toBe(true);
    expect(s.table.size).toBe(agent.table.size);
  });

  it('is registered as a commander subcommand with --socket and --json', async () => {
    const program = new Command().exitOverride();
    registerStatus(program);
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(['node', 'patrol', 'status', '--json', '--socket', sock]);
      expect(JSON.parse(String(spy.mock.calls.map((c) => c[0]).join(''))).pid).toBe(4242);
    } finally {
      spy.mockRestore();
    }
  });

  it('formats uptimes', () => {
    expect([fmtUptime(5), fmtUptime(65), fmtUptime(3 * 3600 + 12 * 60), fmtUptime(2 * 86400 + 3600)]).toEqual(['5s', '1m 5s', '3h 12m', '2d 1h']);
  });
});

describe('patrol ps', () => {
  it('table: PID PPID S IN-STATE RQ-P95 COMM ARGS', async () => {
    const out = new Capture();
    await runPs({ socket: sock, sort: 'pid' }, out);
    const lines = out.lines;
    expect(lines[0]).toBe(PS_HEADER);
    expect(PS_HEADER).toMatch(/^PID\s+PPID\s+S\s+IN-STATE\s+RQ-P95\s+COMM\s+ARGS$/);
    expect(lines.find((l) => l.startsWith('300 '))).toBe(`${'300'.padEnd(7)} ${'200'.padEnd(7)} X ${'-'.padStart(9)} ${'-'.padStart(8)} ${'ls'.padEnd(16)} ls -l 'my dir'`);
    expect(lines.find((l) => l.startsWith('1 '))).toMatch(/ S\s+-\s+-\s+init\s+\/sbin\/init splash$/);
  });

  it('filters are forwarded: --comm, --uid, --pid (subtree), --state', async () => {
    const pids = async (o: object) => {
      const out = new Capture();
      await runPs({ socket: sock, json: true, ...o }, out);
      return (JSON.parse(out.text) as { pid: number }[]).map((p) => p.pid);
    };
    expect(await pids({ comm: ['bash', 'cron'] })).toEqual([200, 400]);
    expect(await pids({ uid: 1000 })).toEqual([200, 300, 301]);
    expect(await pids({ pid: 200 })).toEqual([200, 300, 301]);
    expect(await pids({ state: 'Z' })).toEqual([301]);
  });

  it('--json prints the array of processes', async () => {
    const out = new Capture();
    await runPs({ socket: sock, json: true, pid: 100 }, out);
    const arr = JSON.parse(out.text);
    expect(Array.isArray(arr)).toBe(true);
    expect(arr[0]).toMatchObject({ pid: 100, comm: 'sshd', state: 'S', lifecycle: 'live', args: ['sshd', '-D'] });
  });

  it('--tree renders an ASCII tree', async () => {
    const out = new Capture();
    await runPs({ socket: sock, tree: true }, out);
    expect(out.lines).toEqual([
      '1 init  /sbin/init splash',
      '├─ 100 sshd  sshd -D',
      '│  └─ 200 bash  -bash',
      "│     ├─ 300 ls  ls -l 'my dir'  [dead, exit 0]",
      '│     └─ 301 false  false  [zombie 1h18m]',
      '└─ 400 cron  /usr/sbin/cron -f',
    ]);
  });

  it('--tree with --pid and filters keeps matching nodes and their ancestors', async () => {
    const out = new Capture();
    await runPs({ socket: sock, tree: true, pid: 100, state: 'Z' }, out);
    expect(out.lines).toEqual(['100 sshd  sshd -D', '└─ 200 bash  -bash', '   └─ 301 false  false  [zombie 1h18m]']);
    const json = new Capture();
    await runPs({ socket: sock, tree: true, json: true, pid: 200 }, json);
    expect(JSON.parse(json.text)[0].children.map((n: { process: { pid: number } }) => n.process.pid)).toEqual([300, 301]);
  });

  it('an unknown --pid for the tree is a clear error', async () => {
    const err = await runPs({ socket: sock, tree: true, pid: 4000000 }, new Capture()).catch((e: unknown) => e);
    expect((err as PatrolError).message).toBe('no live process with pid 4000000');
  });

  it('rejects a bad --state in commander with one line', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerPs(program);
    await expect(program.parseAsync(['node', 'patrol', 'ps', '--socket', sock, '--state', 'running'])).rejects.toThrow(
      /Allowed choices are R, S, D, T, I, P, Z, X/,
    );
  });
});

describe('patrol events', () => {
  let nextPid = 2000;

  it('formats records exactly like trace formats events', () => {
    const pid = nextPid++;
    const t0 = startOf(pid);
    const evs = [
      ev.fork(pid, 200, t0, 'bash'),
      ev.fork(pid, 200, t0 + MS, 'bash', true),
      ev.exec(pid, 200, t0 + 2n * MS, '/usr/bin/printf', ['printf', "it's", 'a b', 'tab\there', '']),
      ev.execFailed(pid, t0 + 3n * MS, '/no/such'),
      ev.exit(pid, 200, t0 + 4n * MS, 'printf', 3),
      ev.exit(pid, 200, t0 + 5n * MS, 'printf', null, 11),
      ev.reap(pid, t0 + 6n * MS, t0 + 5n * MS),
    ];
    for (const e of evs) {
      const en = agent.table.apply(e);
      const rec = JSON.parse(JSON.stringify(eventRecord(e, en, agent.clock))) as EventRecordJson;
      expect(recordLine(rec)).toBe(humanLine(e, en, agent.clock.epochMs(e.ktimeNs)));
    }
  });

  it('human: header, then trace-formatted lines; Ctrl-C (abort) ends cleanly', async () => {
    const out = new Capture();
    const err = new Capture();
    const ac = new AbortController();
    const done = runEvents({ socket: sock }, { out, err, signal: ac.signal });
    await until(() => out.lines.length >= 1);
    expect(out.lines[0]).toBe(HEADER);
    expect(err.text).toMatch(/^patrol: connected to the agent \(3 programs attached\); Ctrl-C to stop$/m);
    const pid = nextPid++;
    const e1 = ev.fork(pid, 200, startOf(pid), 'bash');
    const e2 = ev.exec(pid, 200, startOf(pid) + MS, '/usr/bin/make', ['make', '-j8']);
    const l1 = humanLine(e1, agent.publish(e1), agent.clock.epochMs(e1.ktimeNs));
    const l2 = humanLine(e2, agent.publish(e2), agent.clock.epochMs(e2.ktimeNs));
    await until(() => out.lines.length >= 3);
    expect(out.lines.slice(1)).toEqual([l1, l2]);
    ac.abort();
    await expect(done).resolves.toBeUndefined();
    await until(() => agent.listeners.size === 0);
  });

  it('--json passes the NDJSON through; filters are forwarded', async () => {
    const out = new Capture();
    const ac = new AbortController();
    const done = runEvents({ socket: sock, json: true, comm: ['make'], failed: true }, { out, err: new Capture(), signal: ac.signal });
    await until(() => out.lines.length >= 1);
    expect(JSON.parse(out.lines[0]!).type).toBe('ready');
    const pid = nextPid++;
    const t0 = startOf(pid);
    agent.publish(ev.fork(pid, 200, t0, 'bash'));
    agent.publish(ev.exec(pid, 200, t0 + MS, '/usr/bin/make', ['make']));
    const ex = ev.exit(pid, 200, t0 + 2n * MS, 'make', 2);
    const expected = JSON.stringify(eventRecord(ex, agent.publish(ex), agent.clock));
    await until(() => out.lines.length >= 2);
    await tick(20);
    expect(out.lines.slice(1)).toEqual([expected]);
    ac.abort();
    await done;
  });

  it('the agent going away is a clear error', async () => {
    const p = join(dir, 'short.sock');
    const a = await startApi(agent, { socket: p, log: pino({ level: 'silent' }) });
    const out = new Capture();
    const done = runEvents({ socket: p }, { out, err: new Capture() }).catch((e: unknown) => e);
    await until(() => out.lines.length >= 1);
    await a.close();
    const err = await done;
    expect((err as PatrolError).code).toBe('E_AGENT_GONE');
  });
});
