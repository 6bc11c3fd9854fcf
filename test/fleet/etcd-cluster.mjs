// A real etcd cluster for the fleet tests and bench/fleet-scale.mjs: N members of Debian's
// etcd-server (/usr/bin/etcd, installed by scripts/etcd-server.sh) on loopback ports, each with a
// temporary data directory (on /dev/shm when it exists: fsync on tmpfs costs nothing, and the
// shared test machine's disk stays out of the timings). Members can be killed and restarted on
// their own data, which is what the quorum and leader tests do. Talks to the members through
// etcd's JSON gateway (/v3/...), so the harness does not depend on the client under test.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BIN = process.env.PATROL_ETCD_BIN ?? '/usr/bin/etcd';
export const etcdAvailable = () => existsSync(ETCD_BIN);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Members die with the process that started them, however it ends (an exception, a test
// runner's teardown, Ctrl-C on a benchmark): never an etcd left holding loopback ports.
const live = new Set();
process.once('exit', () => {
  for (const c of live) {
    for (const m of c.members) m.proc?.kill('SIGKILL');
    rmSync(c.base, { recursive: true, force: true });
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => (s === undefined ? '' : Buffer.from(s, 'base64').toString());

export class EtcdCluster {
  /** @param {{size?: number, heartbeatMs?: number, electionMs?: number, quotaBytes?: number, log?: boolean, tls?: {ca: string, cert: string, key: string}}} opts
   *  tls: PEM file paths; members then also serve clients on https:// with client certificates
   *  required (`httpsEndpoints`), while the harness keeps using its plain http:// port. */
  static async start(opts = {}) {
    const c = new EtcdCluster(opts);
    await c.#init();
    return c;
  }

  constructor(opts) {
    this.size = opts.size ?? 3;
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.electionMs = opts.electionMs ?? 1000;
    this.quotaBytes = opts.quotaBytes ?? 0;
    this.showLog = opts.log ?? process.env.PATROL_ETCD_LOG === '1';
    this.tls = opts.tls ?? null;
    this.base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'patrol-etcd-'));
    this.token = `patrol-test-${process.pid}-${Date.now()}`;
    /** @type {{name: string, client: number, peer: number, dir: string, proc: import('node:child_process').ChildProcess | null, started: boolean, stderr: string}[]} */
    this.members = [];
  }

  async #init() {
    live.add(this);
    for (let i = 0; i < this.size; i++) {
      this.members.push({ name: `m${i}`, client: await freePort(), secure: this.tls ? await freePort() : 0, peer: await freePort(), dir: join(this.base, `m${i}`), proc: null, started: false, stderr: '' });
    }
    for (let i = 0; i < this.size; i++) this.#spawn(i, 'new');
    await this.waitHealthy(20_000);
  }

  get endpoints() {
    return this.members.map((m) => `http://127.0.0.1:${m.client}`);
  }

  endpoint(i) {
    return `http://127.0.0.1:${this.members[i].client}`;
  }

  /** with `tls`: the https:// client URLs (client certificates required) */
  get httpsEndpoints() {
    return this.members.map((m) => `https://127.0.0.1:${m.secure}`);
  }

  #spawn(i, state) {
    const m = this.members[i];
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peer}`).join(',');
    const args = [
      '--name', m.name,
      '--data-dir', m.dir,
      '--listen-client-urls', [`http://127.0.0.1:${m.client}`, ...(this.tls ? [`https://127.0.0.1:${m.secure}`] : [])].join(','),
      '--advertise-client-urls', [`http://127.0.0.1:${m.client}`, ...(this.tls ? [`https://127.0.0.1:${m.secure}`] : [])].join(','),
      ...(this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, '--trusted-ca-file', this.tls.ca, '--client-cert-auth'] : []),
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', initial,
      '--initial-cluster-token', this.token,
      '--initial-cluster-state', state,
      '--heartbeat-interval', String(this.heartbeatMs),
      '--election-timeout', String(this.electionMs),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', this.showLog ? 'info' : 'error',
      ...(this.quotaBytes ? ['--quota-backend-bytes', String(this.quotaBytes)] : []),
    ];
    const p = spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    m.stderr = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d) => {
      m.stderr = (m.stderr + d).slice(-8192);
      if (this.showLog) process.stderr.write(`[etcd ${m.name}] ${d}`);
    });
    m.proc = p;
    m.started = true;
    p.once('exit', () => {
      if (m.proc === p) m.proc = null;
    });
  }

  /** kill -9 (or another signal) one member; resolves when it is gone */
  async kill(i, signal = 'SIGKILL') {
    const p = this.members[i].proc;
    if (!p) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await gone;
  }

  /** restarts a killed member on its own data directory */
  restart(i) {
    if (this.members[i].proc) throw new Error(`member ${i} is running`);
    this.#spawn(i, 'existing');
  }

  running(i) {
    return this.members[i].proc !== null;
  }

  /** POST to the JSON gateway of member i (default: any running member) */
  async call(path, body = {}, { member, timeoutMs = 3000 } = {}) {
    const order = member !== undefined ? [member] : this.members.map((_, i) => i).filter((i) => this.running(i));
    let last;
    for (const i of order) {
      try {
        const r = await fetch(`${this.endpoint(i)}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
        const j = await r.json();
        if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}: ${j.error ?? j.message ?? JSON.stringify(j)}`);
        return j;
      } catch (e) {
        last = e;
      }
    }
    throw last ?? new Error('no member running');
  }

  async status(i) {
    return this.call('/v3/maintenance/status', {}, { member: i, timeoutMs: 1000 });
  }

  /** index of the member that leads, or -1 */
  async leaderIndex() {
    for (let i = 0; i < this.size; i++) {
      if (!this.running(i)) continue;
      try {
        const s = await this.status(i);
        if (s.leader && s.leader === s.header.member_id) return i;
      } catch {
        /* down or starting */
      }
    }
    return -1;
  }

  /** waits until every running member answers a linearizable read */
  async waitHealthy(ms = 15_000) {
    const end = Date.now() + ms;
    for (;;) {
      let ok = true;
      for (let i = 0; i < this.size; i++) {
        if (!this.running(i)) continue;
        try {
          await this.call('/v3/kv/range', { key: b64('health') }, { member: i, timeoutMs: 1000 });
        } catch {
          ok = false;
        }
      }
      if (ok) return;
      if (Date.now() > end) {
        throw new Error(`etcd cluster not healthy after ${ms} ms:\n${this.members.map((m) => `${m.name}: ${m.stderr.slice(-600)}`).join('\n')}`);
      }
      await sleep(100);
    }
  }

  async put(key, value, lease) {
    return this.call('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  }

  /** every key/value under a prefix: [{key, value, create_revision, mod_revision, version, lease}] */
  async getPrefix(prefix, { revision } = {}) {
    const end = Buffer.from(prefix);
    end[end.length - 1]++;
    const r = await this.call('/v3/kv/range', { key: b64(prefix), range_end: end.toString('base64'), ...(revision ? { revision } : {}) });
    return (r.kvs ?? []).map((kv) => ({
      key: unb64(kv.key),
      value: unb64(kv.value),
      create_revision: Number(kv.create_revision ?? 0),
      mod_revision: Number(kv.mod_revision ?? 0),
      version: Number(kv.version ?? 0),
      lease: kv.lease ?? '0',
    }));
  }

  async revision() {
    const r = await this.call('/v3/kv/range', { key: b64('\0'), count_only: true });
    return Number(r.header.revision);
  }

  /** compacts the history up to `revision` (default: now), physically */
  async compact(revision) {
    const rev = revision ?? (await this.revision());
    await this.call('/v3/kv/compaction', { revision: rev, physical: true }, { timeoutMs: 10_000 });
    return rev;
  }

  async leases() {
    const r = await this.call('/v3/lease/leases', {});
    return (r.leases ?? []).map((l) => l.ID);
  }

  /** database size in bytes, as the member reports it */
  async dbSize(i = 0) {
    const s = await this.status(i);
    return Number(s.dbSize);
  }

  async stop() {
    await Promise.all(this.members.map((_, i) => this.kill(i, 'SIGKILL')));
    live.delete(this);
    rmSync(this.base, { recursive: true, force: true });
  }
}
