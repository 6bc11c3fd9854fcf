// Identity from real cgroups (issue 17), as root: the test creates cgroups shaped like a systemd
// service, a containerd container in a Kubernetes pod and a Docker container, runs a process in
// each (it moves itself, then execs), and the process table says the right unit, runtime,
// container id and pod uid (resolved when the process appears, cached by cgroup id); with a CRI
// socket (a real gRPC server the test runs on a unix socket), a pod's container also gets its
// pod name, namespace, container name and image once the runtime answered, and nothing when it
// does not; then `patrol trace --pod` keeps only the matching processes. A container's first
// process, gone with its cgroup before its exec is handled, is identified from the path the
// sensor recorded at the cgroup's mkdir.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CriIdentity, IdentityCache } from '../../src/process/index.js';
import { cgroup2Root } from '../../src/host/index.js';
import { CriClient } from '../../src/host/cri.js';
import { WallClock } from '../../src/kernel/index.js';
import { eventRecord } from '../../src/export/ndjson.js';
import { processJson } from '../../src/api/json.js';
import { FakeCri } from '../helpers/cri-server.js';
import { Recorder, bpfEnabled, run, sleep } from './helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
const tag = `patrol-idtest-${process.pid}`;
const POD = `${(process.pid % 100000).toString(16).padStart(8, '0')}-1234-4321-abcd-0123456789ab`;
const CTR = (n: string) => `${n}${process.pid.toString(16)}`.padEnd(64, 'c');
const POD_SLICE = `/${tag}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice`;
const SHAPES = {
  service: `/${tag}/system.slice/patrol-e2e-${process.pid}.service`,
  pod: `${POD_SLICE}/cri-containerd-${CTR('a')}.scope`,
  docker: `/${tag}/system.slice/docker-${CTR('d')}.scope`,
};
// two more containers of that pod, which the CRI stand-in knows
const CRI_SHAPES = {
  app: `${POD_SLICE}/cri-containerd-${CTR('b')}.scope`,
  late: `${POD_SLICE}/cri-containerd-${CTR('e')}.scope`,
};
type Rec = Record<string, unknown>;

describe.skipIf(!bpfEnabled)('identity from real cgroups (root)', () => {
  const root = bpfEnabled ? cgroup2Root() : '/sys/fs/cgroup';
  let rec: Recorder;
  let dir: string;
  let fake: FakeCri;
  let cri: CriIdentity;
  let identity: IdentityCache;
  const clock = new WallClock();
  /** the NDJSON records of the events, serialized as they were emitted */
  const records: Rec[] = [];

  beforeAll(async () => {
    for (const p of [...Object.values(SHAPES), ...Object.values(CRI_SHAPES)]) mkdirSync(join(root, p), { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'patrol-idcri-'));
    fake = await FakeCri.start(join(dir, 'cri.sock'));
    fake.addPod(
      { sandboxId: CTR('5'), name: 'web-1', namespace: 'shop', uid: POD },
      { id: CTR('b'), sandboxId: CTR('5'), name: 'app', image: 'sha256:' + 'e'.repeat(64), userImage: 'docker.io/library/nginx:1.25' },
      { id: CTR('e'), sandboxId: CTR('5'), name: 'late', image: 'busybox:1.36' },
    );
    cri = new CriIdentity(new CriClient({ socket: fake.socket, timeoutMs: 1000 }), fake.socket, { retryMinMs: 200, retryMaxMs: 1000 });
    identity = new IdentityCache({ onResolved: (id) => cri.want(id) });
    rec = Recorder.start({ identify: (id, pid) => identity.get(id, pid) }, (ev, en) => records.push(eventRecord(ev, en, clock)));
  });

  afterAll(async () => {
    await rec?.stop();
    cri?.close();
    await fake?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // leaves first: a cgroup directory is removed with rmdir once empty
    for (const p of [...Object.values(SHAPES), ...Object.values(CRI_SHAPES)]) {
      const parts = p.split('/').filter(Boolean);
      for (let i = parts.length; i >= 1; i--) {
        const d = join(root, ...parts.slice(0, i));
        try {
          if (existsSync(d)) rmdirSync(d);
        } catch {
          /* shared parent still in use, or a process not gone yet */
        }
      }
    }
  });

  const until = async (f: () => boolean, ms = 10_000) => {
    for (const end = Date.now() + ms; !f(); await sleep(20)) if (Date.now() > end) throw new Error('timed out');
  };

  /** Runs `sleep` in cgroup `path`: a shell moves itself there, then execs (the exec event of
   *  `sleep` carries the new cgroup's id). */
  const inCgroup = (path: string, secs = '0.3') => run('sh', ['-c', `echo $$ > ${join(root, path, 'cgroup.procs')} && exec sleep ${secs}`]);

  it('a systemd service, a containerd container in a pod, a Docker container: the right unit, runtime, container id, pod uid and QoS', async () => {
    const got: Record<string, unknown> = {};
    for (const [name, path] of Object.entries(SHAPES)) {
      const r = await inCgroup(path);
      expect(r.code).toBe(0);
      const ex = await rec.waitFor((c) => c.ev.pid === r.pid && c.ev.type === 'exec' && c.en.comm === 'sleep');
      got[name] = ex.en.entry.identity;
    }
    expect(got.service).toEqual({ cgroup: SHAPES.service, unit: `patrol-e2e-${process.pid}.service` });
    expect(got.pod).toEqual({ cgroup: SHAPES.pod, unit: `cri-containerd-${CTR('a')}.scope`, containerRuntime: 'containerd', containerId: CTR('a'), podUid: POD, podQos: 'burstable' });
    expect(got.docker).toEqual({ cgroup: SHAPES.docker, unit: `docker-${CTR('d')}.scope`, containerRuntime: 'docker', containerId: CTR('d') });
    // each resolved once from /proc/<pid>/cgroup (checked against the id), then cached
    expect(identity.stats.fromProc).toBeGreaterThanOrEqual(3);
    const before = { ...identity.stats };
    const again = await inCgroup(SHAPES.pod);
    const ex = await rec.waitFor((c) => c.ev.pid === again.pid && c.ev.type === 'exec' && c.en.comm === 'sleep');
    expect(ex.en.entry.identity).toEqual(got.pod);
    expect(identity.stats.fromProc).toBe(before.fromProc);
    // the cgroup id the event carried is the directory's inode
    expect(ex.ev.type === 'exec' && ex.ev.cgroupId.toString()).toBe(String((await import('node:fs')).statSync(join(root, SHAPES.pod), { bigint: true }).ino));
    // that container is unknown to the runtime: asked once, nothing made up
    await until(() => cri.stats().not_found >= 1);
    expect(ex.en.entry.identity).toEqual(got.pod);
  }, 30_000);

  it('CRI: a pod container\'s events carry its pod name, namespace, container name and image once the runtime answered', async () => {
    const first = inCgroup(CRI_SHAPES.app, '0.5');
    const ex = await rec.waitFor((c) => c.ev.type === 'exec' && c.en.comm === 'sleep' && c.en.entry.identity?.cgroup === CRI_SHAPES.app);
    const pid = ex.ev.pid;
    expect((await first).code).toBe(0);
    await rec.waitFor((c) => c.ev.pid === pid && c.ev.type === 'exit');
    // the shell's own exec (before it moved) is not the container's
    const mine = records.filter((r) => r.pid === pid && r.comm === 'sleep');
    const exec = mine.find((r) => r.type === 'exec')!;
    const exit = mine.find((r) => r.type === 'exit')!;
    // the exec resolved the cgroup and queued the lookup: emitted before the answer, without names
    expect(exec).toMatchObject({ cgroup: CRI_SHAPES.app, container_id: CTR('b'), pod_uid: POD });
    for (const k of ['pod_name', 'pod_namespace', 'container_name', 'image']) expect(exec).not.toHaveProperty(k);
    // half a second later the answer is in
    expect(exit).toMatchObject({ cgroup: CRI_SHAPES.app, pod_uid: POD, pod_name: 'web-1', pod_namespace: 'shop', container_name: 'app', image: 'docker.io/library/nginx:1.25' });
    // the next process of that container has them from its first event; the API shows them too
    const second = await inCgroup(CRI_SHAPES.app, '0.05');
    const ex2 = await rec.waitFor((c) => c.ev.pid === second.pid && c.ev.type === 'exec' && c.en.comm === 'sleep');
    expect(records.find((r) => r.pid === second.pid && r.type === 'exec' && r.comm === 'sleep')).toMatchObject({ pod_name: 'web-1', pod_namespace: 'shop', container_name: 'app', image: 'docker.io/library/nginx:1.25' });
    expect(processJson(ex2.en.entry, clock)).toMatchObject({ pod_uid: POD, pod_name: 'web-1', pod_namespace: 'shop', container_name: 'app', image: 'docker.io/library/nginx:1.25' });
    expect(cri.stats()).toMatchObject({ state: 'ok', resolved: 1, runtime: 'fakecri 1.0.0' });
    expect(fake.calls.ContainerStatus).toBe(2); // container a (not found) and b, once each
  }, 30_000);

  it('patrol trace --pod keeps only the processes of that pod', async () => {
    // one trace (a BPF load each: kept to one on a 2 vCPU machine); the API's filters are
    // covered by test/unit/api-identity.test.ts
    let out = '';
    let err = '';
    const config = join(dir, 'patrol.yaml');
    writeFileSync(config, `identity: { cri_socket: ${fake.socket} }\n`);
    const t = spawn(PATROL, ['trace', '--json', '--no-states', '--config', config, '--duration', '6s', '--pod', POD], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.stdout!.on('data', (d) => (out += d));
    t.stderr!.on('data', (d) => (err += d));
    for (const end = Date.now() + 30_000; !out.includes('"ready"') && Date.now() < end; ) await sleep(100);
    expect(out, err).toContain('"ready"');
    const pod = await inCgroup(SHAPES.pod);
    const app = await inCgroup(CRI_SHAPES.app, '0.5');
    const svc = await inCgroup(SHAPES.service);
    const dock = await inCgroup(SHAPES.docker);
    const plain = await run('sleep', ['0.1']);
    await new Promise((r) => (t.exitCode !== null ? r(null) : t.once('exit', r)));
    const execs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.type === 'exec');
    expect(execs.map((r) => r.pid)).toEqual([pod.pid, app.pid]);
    expect(execs[0]).toMatchObject({ cgroup: SHAPES.pod, container_runtime: 'containerd', container_id: CTR('a'), pod_uid: POD, pod_qos: 'burstable' });
    // trace asks the CRI socket of its config: the app container's exit has the names
    const appExit = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.type === 'exit' && r.pid === app.pid);
    expect(appExit).toMatchObject({ pod_uid: POD, pod_name: 'web-1', pod_namespace: 'shop', container_name: 'app' });
    for (const p of [svc.pid, dock.pid, plain.pid]) expect(execs.map((r) => r.pid)).not.toContain(p);
  }, 60_000);

  it('CRI: with the runtime stopped, a new container of the pod gets no names, and health says why', async () => {
    await fake.stop();
    const r = await inCgroup(CRI_SHAPES.late, '0.5');
    expect(r.code).toBe(0);
    await rec.waitFor((c) => c.ev.pid === r.pid && c.ev.type === 'exit');
    const mine = records.filter((x) => x.pid === r.pid && x.comm === 'sleep' && (x.type === 'exec' || x.type === 'exit'));
    expect(mine.length).toBe(2);
    for (const x of mine) {
      expect(x).toMatchObject({ cgroup: CRI_SHAPES.late, container_id: CTR('e'), pod_uid: POD });
      for (const k of ['pod_name', 'pod_namespace', 'container_name', 'image']) expect(x).not.toHaveProperty(k);
    }
    await until(() => cri.stats().state === 'failing');
    expect(cri.stats()).toMatchObject({ pending: 1, last_error: expect.stringContaining(fake.socket) });
    expect(cri.problem()).toMatch(/pod name, namespace and image are absent/);
  }, 30_000);

  it('a container\'s first process, gone with its cgroup before its exec is handled: identity from the kernel\'s record of the mkdir', async () => {
    // A second pipeline that drains a second after a record wakes it (the agent's unwatched
    // drains are 250 ms apart): the process, then its cgroup, are gone before it reads the exec.
    let lookup: ((id: bigint) => string | null) | null = null;
    const late = new IdentityCache({ fromKernel: (id) => lookup?.(id) ?? null });
    const slow = Recorder.start({ deliveryIntervalMs: 1000, identify: (id, pid, ppid) => late.get(id, pid, ppid), bindCgroupPaths: (l) => (lookup = l) });
    // made after the sensor attached, as a container's cgroup is
    const path = `/${tag}/system.slice/docker-${CTR('f')}.scope`;
    try {
      mkdirSync(join(root, path), { recursive: true });
      const r = await run('sh', ['-c', `echo $$ > ${join(root, path, 'cgroup.procs')} && exec /bin/true`]);
      expect(r.code).toBe(0);
      rmdirSync(join(root, path));
      expect(existsSync(join(root, path))).toBe(false);
      const ex = await slow.waitFor((c) => c.ev.pid === r.pid && c.ev.type === 'exec' && c.en.comm === 'true');
      expect(ex.en.entry.identity).toEqual({ cgroup: path, unit: `docker-${CTR('f')}.scope`, containerRuntime: 'docker', containerId: CTR('f') });
      // neither /proc (the process is gone, its parent elsewhere) nor the walk could: the
      // kernel's record answered (the shell's own exec, before it moved, came from /proc)
      expect(late.stats).toMatchObject({ fromKernel: 1, fromWalk: 0 });
    } finally {
      await slow.stop();
      if (existsSync(join(root, path))) rmdirSync(join(root, path));
    }
  }, 30_000);

  it('a process whose cgroup is not proven (the test runner\'s own) carries its cgroup path and nothing made up', async () => {
    const r = await run('sleep', ['0.05']);
    const ex = await rec.waitFor((c) => c.ev.pid === r.pid && c.ev.type === 'exec');
    const own = readFileSync(`/proc/${process.pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
    expect(ex.en.entry.identity?.cgroup).toBe(own);
    expect(ex.en.entry.identity?.podUid).toBeUndefined();
  });
});
