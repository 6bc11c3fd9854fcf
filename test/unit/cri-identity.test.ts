// Pod name, namespace, container name and image from a CRI socket (issue 17): the client
// (src/host/cri.ts) and the lookups behind identity (src/process/cri-identity.ts), against a real
// gRPC server on a unix socket that serves the CRI calls from a table (test/helpers/cri-server.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CriClient, CriError } from '../../src/host/cri.js';
import { CriIdentity, identityFromPath, identityMatches, type ProcessIdentity } from '../../src/process/index.js';
import { splitImage } from '../../src/export/otlp/index.js';
import { criLine } from '../../src/cli/status.js';
import { FakeCri } from '../helpers/cri-server.js';

const hex = (c: string) => c.repeat(64);
const POD_UID = '6b1f0c2e-1234-4321-abcd-0123456789ab';
const podPath = (cid: string, uid = POD_UID) => `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${cid}.scope`;

const until = async (f: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !f(); await new Promise((r) => setTimeout(r, 10))) if (Date.now() > end) throw new Error('timed out');
};

describe('CRI socket: the client and the identity lookups', () => {
  let dir: string;
  let cri: FakeCri;
  const clients: CriClient[] = [];
  const client = (socket = cri.socket, timeoutMs = 1000) => {
    const c = new CriClient({ socket, timeoutMs });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-cri-'));
    cri = await FakeCri.start(join(dir, 'cri.sock'));
    cri.addPod(
      { sandboxId: hex('5'), name: 'web-7d4b9', namespace: 'shop', uid: POD_UID },
      { id: hex('a'), sandboxId: hex('5'), name: 'nginx', image: 'sha256:' + hex('e'), userImage: 'docker.io/library/nginx:1.25' },
      { id: hex('b'), sandboxId: hex('5'), name: 'sidecar', image: 'registry.local:5000/tools/proxy:v2' },
      { id: hex('c'), sandboxId: hex('5'), name: 'idonly', image: hex('f') },
    );
  });

  afterEach(() => {
    cri.delayMs = 0;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await cri.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('describes a container: its name, its image as the user named it, its pod (from the sandbox)', async () => {
    const c = client();
    expect(await c.describe(hex('a'))).toEqual({ sandbox: false, containerName: 'nginx', image: 'docker.io/library/nginx:1.25', podName: 'web-7d4b9', podNamespace: 'shop', podUid: POD_UID });
    expect(c.runtime).toEqual({ name: 'fakecri', version: '1.0.0' });
    expect(c.socket).toBe(cri.socket);
    expect(await c.describe(hex('b'))).toMatchObject({ containerName: 'sidecar', image: 'registry.local:5000/tools/proxy:v2' });
    // an image id is not a name: absent, not wrong
    const idOnly = await c.describe(hex('c'));
    expect(idOnly).toMatchObject({ containerName: 'idonly', podName: 'web-7d4b9' });
    expect(idOnly).not.toHaveProperty('image');
    // the pause container's id is a sandbox's: pod facts only
    expect(await c.describe(hex('5'))).toEqual({ sandbox: true, podName: 'web-7d4b9', podNamespace: 'shop', podUid: POD_UID });
    expect(await c.describe(hex('9'))).toBeNull();
  });

  it('a socket that is absent, too slow or not a CRI endpoint gives a coded error', async () => {
    await expect(client(join(dir, 'none.sock')).describe(hex('a'))).rejects.toMatchObject({ code: 'E_CRI_UNAVAILABLE', message: expect.stringContaining('none.sock') });
    cri.delayMs = 400;
    await expect(client(cri.socket, 100).describe(hex('a'))).rejects.toMatchObject({ code: 'E_CRI_TIMEOUT', message: expect.stringMatching(/took longer than 100 ms/) });
    const e = await client(join(dir, 'none.sock')).describe(hex('a')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CriError);
  });

  it('identity: the first identity of a pod container lacks the names until the answer; later ones have them at once', async () => {
    const ci = new CriIdentity(client(), cri.socket);
    const first = identityFromPath(podPath(hex('a')));
    ci.want(first);
    // synchronous part: nothing yet (events emitted now lack the fields)
    expect(first.podName).toBeUndefined();
    expect(ci.stats()).toMatchObject({ state: 'idle', pending: 1 });
    await until(() => first.podName !== undefined);
    expect(first).toMatchObject({ podUid: POD_UID, podName: 'web-7d4b9', podNamespace: 'shop', containerName: 'nginx', image: 'docker.io/library/nginx:1.25' });
    const before = { ...cri.calls };
    // another cgroup of the same container (the cache dropped it, or a nested cgroup): filled now
    const again = identityFromPath(podPath(hex('a')));
    ci.want(again);
    expect(again.podName).toBe('web-7d4b9');
    expect(cri.calls).toEqual(before);
    expect(ci.stats()).toMatchObject({ socket: cri.socket, socket_in_use: cri.socket, runtime: 'fakecri 1.0.0', state: 'ok', resolved: 1, pending: 0, cached: 1, last_error: null });
    expect(ci.problem()).toBeNull();
    ci.close();
  });

  it('identity: only a pod\'s containers are asked about; a docker container and a unit are not', () => {
    const ci = new CriIdentity(client(), cri.socket);
    ci.want(identityFromPath(`/system.slice/docker-${hex('d')}.scope`));
    ci.want(identityFromPath('/system.slice/nginx.service'));
    expect(ci.stats()).toMatchObject({ pending: 0, resolved: 0 });
    ci.close();
  });

  it('identity: a pod uid from the runtime that differs from the path\'s puts nothing in', async () => {
    const ci = new CriIdentity(client(), cri.socket);
    const other = identityFromPath(podPath(hex('b'), '00000000-1111-2222-3333-444444444444'));
    ci.want(other);
    await until(() => ci.stats().mismatched === 1);
    expect(other.podName).toBeUndefined();
    expect(other.image).toBeUndefined();
    ci.close();
  });

  it('identity: a container the runtime does not know stays without names, and is not asked again', async () => {
    const ci = new CriIdentity(client(), cri.socket);
    const unknown = identityFromPath(podPath(hex('9')));
    ci.want(unknown);
    await until(() => ci.stats().not_found === 1);
    const calls = cri.calls.ContainerStatus;
    ci.want(identityFromPath(podPath(hex('9'))));
    expect(cri.calls.ContainerStatus).toBe(calls);
    expect(unknown).not.toHaveProperty('podName');
    ci.close();
  });

  it('identity: a failing socket is reported (state, last_error, the health problem), retried with backoff, and recovers', async () => {
    const sock = join(dir, 'later.sock');
    const ci = new CriIdentity(client(sock, 500), sock, { retryMinMs: 50, retryMaxMs: 200 });
    const id = identityFromPath(podPath(hex('a')));
    ci.want(id);
    await until(() => ci.stats().failed >= 2);
    expect(ci.stats()).toMatchObject({ state: 'failing', pending: 1, last_error: expect.stringContaining('later.sock') });
    expect(ci.problem()).toMatch(/later\.sock.*pod name, namespace and image are absent/);
    // patrol status
    expect(criLine(ci.stats() as never)).toMatch(/^\S+later\.sock: failing · resolved 0 · not found 0 · pending 1 · failed \d+ \(last: CRI socket \S+later\.sock: unavailable/);
    expect(id.podName).toBeUndefined();
    // the runtime comes up on that socket: the waiting container is answered
    const late = await FakeCri.start(sock);
    late.addPod({ sandboxId: hex('5'), name: 'late-pod', namespace: 'ns2', uid: POD_UID }, { id: hex('a'), sandboxId: hex('5'), name: 'app', image: 'app:1' });
    await until(() => id.podName === 'late-pod', 10_000);
    expect(ci.stats()).toMatchObject({ state: 'ok', pending: 0, last_error: null });
    expect(ci.problem()).toBeNull();
    expect(criLine(ci.stats() as never)).toMatch(/later\.sock: ok \(fakecri 1\.0\.0\) · resolved 1 · not found 0 · pending 0 · failed \d+$/);
    ci.close();
    await late.stop();
  });

  it('identity: a socket without the CRI is a fault when configured, "absent" under auto (Docker\'s containerd)', async () => {
    const grpc = (await import('@grpc/grpc-js')).default;
    const sock = join(dir, 'nocri.sock');
    const bare = new grpc.Server();
    await new Promise<void>((res, rej) => bare.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
    try {
      await expect(client(sock).describe(hex('a'))).rejects.toMatchObject({ code: 'E_CRI_UNIMPLEMENTED' });
      const explicit = new CriIdentity(client(sock), sock, { retryMinMs: 1000 });
      explicit.want(identityFromPath(podPath(hex('a'))));
      await until(() => explicit.stats().failed === 1);
      expect(explicit.stats().state).toBe('failing');
      expect(explicit.problem()).toMatch(/not implemented/);
      explicit.close();
      const auto = new CriIdentity(client(sock), 'auto', { retryMinMs: 1000 });
      auto.want(identityFromPath(podPath(hex('a'))));
      await until(() => auto.stats().failed === 1);
      expect(auto.stats().state).toBe('absent');
      expect(auto.problem()).toBeNull();
      auto.close();
    } finally {
      bare.forceShutdown();
    }
  });

  it('identity: bounded: lookups in flight, containers waiting; a slow runtime never blocks want()', async () => {
    cri.delayMs = 200;
    let inFlight = 0;
    let most = 0;
    const c = client();
    const counting = {
      get socket() {
        return c.socket;
      },
      get runtime() {
        return c.runtime;
      },
      close: () => c.close(),
      describe: async (id: string) => {
        most = Math.max(most, ++inFlight);
        try {
          return await c.describe(id);
        } finally {
          inFlight--;
        }
      },
    };
    const ci = new CriIdentity(counting, cri.socket, { concurrency: 2, maxWaiting: 5 });
    const ids: ProcessIdentity[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 8; i++) {
      const id = identityFromPath(podPath(i.toString(16).repeat(64)));
      ids.push(id);
      ci.want(id);
    }
    expect(performance.now() - t0).toBeLessThan(50);
    expect(ci.stats()).toMatchObject({ pending: 5, dropped: 3 });
    await until(() => ci.stats().pending === 0, 10_000);
    expect(most).toBe(2);
    ci.close();
  });

  it('identity: off (no socket) asks nothing; a reload can turn it on', async () => {
    const ci = new CriIdentity(null, null);
    const id = identityFromPath(podPath(hex('b')));
    ci.want(id);
    expect(ci.stats()).toMatchObject({ state: 'off', socket: null, pending: 0 });
    ci.setSource(client(), cri.socket);
    ci.want(id);
    await until(() => id.containerName === 'sidecar');
    ci.setSource(null, null);
    expect(ci.stats().state).toBe('off');
  });

  it('--pod matches a uid prefix, or the pod name (alone or namespace/name) once known', () => {
    const id = identityFromPath(podPath(hex('a')));
    expect(identityMatches(id, { pod: '6b1f0c2e' })).toBe(true);
    expect(identityMatches(id, { pod: 'web-7d4b9' })).toBe(false);
    Object.assign(id, { podName: 'web-7d4b9', podNamespace: 'shop' });
    expect(identityMatches(id, { pod: 'web-7d4b9' })).toBe(true);
    expect(identityMatches(id, { pod: 'shop/web-7d4b9' })).toBe(true);
    expect(identityMatches(id, { pod: 'other/web-7d4b9' })).toBe(false);
    expect(identityMatches(id, { pod: 'web' })).toBe(false);
  });

  it('OTLP splits an image into name and tag (registry ports and digests kept apart)', () => {
    expect(splitImage('docker.io/library/nginx:1.25')).toEqual({ name: 'docker.io/library/nginx', tag: '1.25' });
    expect(splitImage('registry.local:5000/tools/proxy')).toEqual({ name: 'registry.local:5000/tools/proxy' });
    expect(splitImage(`app:v2@sha256:${hex('1')}`)).toEqual({ name: 'app', tag: 'v2' });
    expect(splitImage(`app@sha256:${hex('1')}`)).toEqual({ name: 'app' });
  });
});
