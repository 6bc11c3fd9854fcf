// The identity filters of the API (issue 17): unit, container and pod on /v1/processes and
// /v1/events (what `patrol ps` and `patrol events` send), bad values refused by the schema, and
// the identity fields of a Process.
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHandle } from '../../src/api/index.js';
import { identityFromPath } from '../../src/process/index.js';
import { FakeAgent, MS, ev, startOf } from './api-fake.js';

const H = 'ab'.repeat(32);
const POD = '12345678-1234-1234-1234-123456789abc';
const PATHS: Record<number, string> = {
  500: '/system.slice/nginx.service',
  600: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${H}.scope`,
  700: `/system.slice/docker-${'cd'.repeat(32)}.scope`,
};

function get(socketPath: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(t) }));
    });
    req.on('error', reject);
    req.end();
  });
}

let dir: string;
let api: ApiHandle;
const agent = new FakeAgent();
// the table resolves identities through its hook, as the agent's does
(agent.table as unknown as { identify: (id: bigint, pid: number) => unknown }).identify = (_id, pid) => (PATHS[pid] ? identityFromPath(PATHS[pid]!) : null);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-api-id-'));
  for (const pid of [500, 600, 700, 800]) {
    agent.publish(ev.fork(pid, 1, startOf(pid), 'sh'));
    agent.publish(ev.exec(pid, 1, startOf(pid) + MS, '/bin/sleep', ['sleep', '9']));
  }
  api = await startApi(agent, { socket: join(dir, 'a.sock'), log: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('identity in the API', () => {
  const pids = async (q: string) => (await get(join(dir, 'a.sock'), `/v1/processes?${q}`)).body.processes.map((p: any) => p.pid).sort();

  it('a Process carries what its cgroup path proves', async () => {
    const p = (await get(join(dir, 'a.sock'), '/v1/processes?pid=600')).body.processes[0];
    expect(p).toMatchObject({ cgroup: PATHS[600], unit: `cri-containerd-${H}.scope`, container_runtime: 'containerd', container_id: H, pod_uid: POD, pod_qos: 'besteffort', args_redacted: false });
    const none = (await get(join(dir, 'a.sock'), '/v1/processes?pid=800')).body.processes[0];
    expect(none).toMatchObject({ cgroup: null, unit: null, container_id: null, pod_uid: null });
  });

  it('unit, container (prefix) and pod filter /v1/processes; unknown identities match none', async () => {
    expect(await pids('unit=nginx')).toEqual([500]);
    expect(await pids('unit=nginx.service')).toEqual([500]);
    expect(await pids(`container=${H.slice(0, 12)}`)).toEqual([600]);
    expect(await pids('container=cdcd')).toEqual([700]);
    expect(await pids(`pod=${POD}`)).toEqual([600]);
    expect(await pids(`pod=${POD}&container=cdcd`)).toEqual([]);
  });

  it('refuses values that cannot be an id', async () => {
    expect((await get(join(dir, 'a.sock'), '/v1/processes?container=xyz')).status).toBe(400);
    expect((await get(join(dir, 'a.sock'), '/v1/processes?pod=../../etc')).status).toBe(400);
  });

  it('filters the event stream', async () => {
    const lines: string[] = [];
    const req = request({ socketPath: join(dir, 'a.sock'), path: `/v1/events?pod=${POD.slice(0, 8)}` }, (res) => res.on('data', (d) => lines.push(...String(d).split('\n').filter(Boolean))));
    req.end();
    for (let i = 0; i < 100 && !lines.some((l) => l.includes('"ready"')); i++) await new Promise((r) => setTimeout(r, 10));
    for (const pid of [500, 600, 700]) agent.publish(ev.exit(pid, 1, startOf(pid) + 9n * MS, 'sleep', 0));
    for (let i = 0; i < 100 && !lines.some((l) => l.includes('"exit"')); i++) await new Promise((r) => setTimeout(r, 10));
    req.destroy();
    const exits = lines.map((l) => JSON.parse(l)).filter((r) => r.type === 'exit');
    expect(exits.map((r) => r.pid)).toEqual([600]);
    expect(exits[0]).toMatchObject({ pod_uid: POD, container_id: H, container_runtime: 'containerd' });
  });
});
