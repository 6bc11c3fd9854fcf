// Identity from real cgroups (issue 17), as root: the test creates cgroups shaped like a systemd
// service, a containerd container in a Kubernetes pod and a Docker container, runs a process in
// each (it moves itself, then execs), and the process table says the right unit, runtime,
// container id and pod uid (resolved when the process appears, cached by cgroup id); then
// `patrol trace --container/--pod/--unit` keep only the matching processes.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityCache } from '../../src/process/index.js';
import { cgroup2Root } from '../../src/host/index.js';
import { Recorder, bpfEnabled, run, sleep } from './helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
const tag = `patrol-idtest-${process.pid}`;
const POD = `${(process.pid % 100000).toString(16).padStart(8, '0')}-1234-4321-abcd-0123456789ab`;
const CTR = (n: string) => `${n}${process.pid.toString(16)}`.padEnd(64, 'c');
const SHAPES = {
  service: `/${tag}/system.slice/patrol-e2e-${process.pid}.service`,
  pod: `/${tag}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${CTR('a')}.scope`,
  docker: `/${tag}/system.slice/docker-${CTR('d')}.scope`,
};

describe.skipIf(!bpfEnabled)('identity from real cgroups (root)', () => {
  const root = bpfEnabled ? cgroup2Root() : '/sys/fs/cgroup';
  let rec: Recorder;
  const identity = new IdentityCache();

  beforeAll(() => {
    for (const p of Object.values(SHAPES)) mkdirSync(join(root, p), { recursive: true });
    rec = Recorder.start({ identify: (id, pid) => identity.get(id, pid) });
  });

  afterAll(async () => {
    await rec?.stop();
    // leaves first: a cgroup directory is removed with rmdir once empty
    for (const p of Object.values(SHAPES)) {
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
  }, 30_000);

  it('patrol trace --pod keeps only the processes of that pod', async () => {
    // one trace (a BPF load each: kept to one on a 2 vCPU machine); the API's filters are
    // covered by test/unit/api-identity.test.ts
    let out = '';
    let err = '';
    const t = spawn(PATROL, ['trace', '--json', '--no-states', '--duration', '6s', '--pod', POD], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.stdout!.on('data', (d) => (out += d));
    t.stderr!.on('data', (d) => (err += d));
    for (const end = Date.now() + 30_000; !out.includes('"ready"') && Date.now() < end; ) await sleep(100);
    expect(out, err).toContain('"ready"');
    const pod = await inCgroup(SHAPES.pod);
    const svc = await inCgroup(SHAPES.service);
    const dock = await inCgroup(SHAPES.docker);
    const plain = await run('sleep', ['0.1']);
    await new Promise((r) => (t.exitCode !== null ? r(null) : t.once('exit', r)));
    const execs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.type === 'exec');
    expect(execs.map((r) => r.pid)).toEqual([pod.pid]);
    expect(execs[0]).toMatchObject({ cgroup: SHAPES.pod, container_runtime: 'containerd', container_id: CTR('a'), pod_uid: POD, pod_qos: 'burstable' });
    for (const p of [svc.pid, dock.pid, plain.pid]) expect(execs.map((r) => r.pid)).not.toContain(p);
  }, 60_000);

  it('a process whose cgroup is not proven (the test runner\'s own) carries its cgroup path and nothing made up', async () => {
    const r = await run('sleep', ['0.05']);
    const ex = await rec.waitFor((c) => c.ev.pid === r.pid && c.ev.type === 'exec');
    const own = readFileSync(`/proc/${process.pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
    expect(ex.en.entry.identity?.cgroup).toBe(own);
    expect(ex.en.entry.identity?.podUid).toBeUndefined();
  });
});
