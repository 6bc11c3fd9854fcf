// What a cgroup path proves (src/process/identity.ts): unit, runtime, container id, pod uid and
// QoS for each driver's shapes; nothing a path does not prove; the filters; the cache resolves
// from /proc/<pid>/cgroup only when the path's inode is the id.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IdentityCache, identityFromPath, identityMatches } from '../../src/process/index.js';
import { CgroupResolver } from '../../src/host/index.js';

const H = '0123456789abcdef'.repeat(4);
const U = '12345678-1234-1234-1234-123456789abc';
const Uu = U.replace(/-/g, '_');

describe('identityFromPath', () => {
  it.each([
    ['/system.slice/nginx.service', { unit: 'nginx.service' }],
    ['/user.slice/user-0.slice/session-3.scope', { unit: 'session-3.scope' }],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${Uu}.slice/cri-containerd-${H}.scope`, { unit: `cri-containerd-${H}.scope`, containerRuntime: 'containerd', containerId: H, podUid: U, podQos: 'burstable' }],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${Uu}.slice/crio-${H}.scope`, { unit: `crio-${H}.scope`, containerRuntime: 'crio', containerId: H, podUid: U, podQos: 'besteffort' }],
    [`/kubepods.slice/kubepods-pod${Uu}.slice/cri-containerd-${H}.scope`, { unit: `cri-containerd-${H}.scope`, containerRuntime: 'containerd', containerId: H, podUid: U, podQos: 'guaranteed' }],
    // cgroupfs driver: the runtime is not in the path, so it is absent
    [`/kubepods/burstable/pod${U}/${H}`, { containerId: H, podUid: U, podQos: 'burstable' }],
    [`/system.slice/docker-${H}.scope`, { unit: `docker-${H}.scope`, containerRuntime: 'docker', containerId: H }],
    [`/docker/${H}`, { containerRuntime: 'docker', containerId: H }],
    [`/machine.slice/libpod-${H}.scope`, { unit: `libpod-${H}.scope`, containerRuntime: 'podman', containerId: H }],
    [`/system.slice/nerdctl-${H}.scope`, { unit: `nerdctl-${H}.scope`, containerRuntime: 'containerd', containerId: H }],
    // conmon's scope is the runtime's monitor, not a container
    [`/machine.slice/libpod-conmon-${H}.scope`, { unit: `libpod-conmon-${H}.scope` }],
    // kind: a pod's container inside the node's docker container: the innermost one is the process's
    [`/system.slice/docker-${'f'.repeat(64)}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${Uu}.slice/cri-containerd-${H}.scope`, { unit: `cri-containerd-${H}.scope`, containerRuntime: 'containerd', containerId: H, podUid: U, podQos: 'besteffort' }],
    ['/', {}],
    ['/init.scope', { unit: 'init.scope' }],
    // a pod-like name outside kubepods proves nothing
    [`/system.slice/pod${U}.service`, { unit: `pod${U}.service` }],
  ])('%s', (path, want) => {
    expect(identityFromPath(path)).toEqual({ cgroup: path, ...want });
  });
});

describe('identity filters', () => {
  const id = identityFromPath(`/kubepods.slice/kubepods-pod${Uu}.slice/cri-containerd-${H}.scope`);
  it('match exactly or by prefix; an unknown identity matches no filter', () => {
    expect(identityMatches(id, { container: H.slice(0, 12) })).toBe(true);
    expect(identityMatches(id, { container: 'ffff' })).toBe(false);
    expect(identityMatches(id, { pod: U })).toBe(true);
    expect(identityMatches(id, { pod: U, container: H })).toBe(true);
    expect(identityMatches(id, { unit: 'nginx' })).toBe(false);
    expect(identityMatches(identityFromPath('/system.slice/nginx.service'), { unit: 'nginx' })).toBe(true);
    expect(identityMatches(identityFromPath('/system.slice/nginx.service'), { unit: 'nginx.service' })).toBe(true);
    expect(identityMatches(null, { unit: 'nginx' })).toBe(false);
    expect(identityMatches(null, {})).toBe(true);
  });
});

describe('IdentityCache', () => {
  it('resolves from /proc/<pid>/cgroup when the path\'s inode is the id, caches by id, and never guesses', () => {
    const root = mkdtempSync(join(tmpdir(), 'patrol-idcache-'));
    const cg = join(root, 'cg');
    const proc = join(root, 'proc');
    mkdirSync(join(cg, 'system.slice', 'a.service'), { recursive: true });
    mkdirSync(join(cg, 'system.slice', 'b.service'), { recursive: true });
    mkdirSync(join(proc, '10'), { recursive: true });
    writeFileSync(join(proc, '10', 'cgroup'), '0::/system.slice/a.service\n');
    const ino = (p: string) => statSync(join(cg, p), { bigint: true }).ino;
    let now = 0;
    const walk = new CgroupResolver(cg, 1000, () => now);
    const c = new IdentityCache({ root: cg, procRoot: proc, now: () => now, resolver: walk });
    expect(c.get(ino('system.slice/a.service'), 10)).toMatchObject({ cgroup: '/system.slice/a.service', unit: 'a.service' });
    expect(c.stats).toMatchObject({ fromProc: 1, fromWalk: 0 });
    // pid 10 is in a.service, but the event said b.service's id: /proc does not prove it, the walk does
    expect(c.get(ino('system.slice/b.service'), 10)).toMatchObject({ unit: 'b.service' });
    expect(c.stats).toMatchObject({ fromProc: 1, fromWalk: 1 });
    // cached: no more reads
    c.get(ino('system.slice/a.service'), 999);
    expect(c.stats).toMatchObject({ fromProc: 1, fromWalk: 1, unresolved: 0 });
    // an id nothing proves: null, tried again only after retryMs
    expect(c.get(123456789n, 10)).toBeNull();
    expect(c.get(123456789n, 10)).toBeNull();
    expect(c.stats.unresolved).toBe(1);
    rmSync(root, { recursive: true, force: true });
  });
  it('a cgroup neither the process nor its parent shows: the kernel\'s record of its mkdir answers before the walk; a failing record is no answer', () => {
    const root = mkdtempSync(join(tmpdir(), 'patrol-idkernel-'));
    const cg = join(root, 'cg');
    mkdirSync(join(cg, 'system.slice', 'c.service'), { recursive: true });
    const id = statSync(join(cg, 'system.slice', 'c.service'), { bigint: true }).ino;
    const gone = 4242n; // a cgroup already removed: only the kernel's record knows it
    const asked: bigint[] = [];
    const c = new IdentityCache({
      root: cg,
      procRoot: join(root, 'proc'), // no process is there any more
      fromKernel: (x) => {
        asked.push(x);
        return x === gone ? '/system.slice/docker-' + 'e'.repeat(64) + '.scope' : null;
      },
    });
    expect(c.get(gone, 10, 9)).toMatchObject({ containerRuntime: 'docker', containerId: 'e'.repeat(64) });
    expect(c.stats).toMatchObject({ fromKernel: 1, fromProc: 0, fromWalk: 0 });
    // not in the record: the walk still finds a cgroup that exists
    expect(c.get(id, 11)).toMatchObject({ unit: 'c.service' });
    expect(c.stats).toMatchObject({ fromKernel: 1, fromWalk: 1 });
    expect(asked).toEqual([gone, id]);
    const failing = new IdentityCache({ root: cg, procRoot: join(root, 'proc'), fromKernel: () => { throw new Error('map gone'); } });
    expect(failing.get(id, 12)).toMatchObject({ unit: 'c.service' });
    expect(failing.stats).toMatchObject({ fromKernel: 0, fromWalk: 1 });
    rmSync(root, { recursive: true, force: true });
  });
});
