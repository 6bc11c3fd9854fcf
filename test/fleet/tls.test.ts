// fleet.tls: agents reach etcd over https:// with a client certificate (etcd requires one),
// through the module and through `patrol fleet status --endpoints https://… --cacert --cert
// --key`; a client that does not trust the server's CA never connects and says why.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log.js';
import { FleetNode, quietInputs } from '../../src/fleet/index.js';
import { EtcdCluster, PATROL, etcdReady, until } from './helpers.js';

const log = createLogger({ level: process.env.PATROL_LOG_LEVEL ?? 'silent' });

/** A CA, and a certificate it signs for 127.0.0.1 (server and client use). */
function makeCerts(dir: string, name: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', `/CN=${name} test CA`);
  ossl('req', ...ec, '-keyout', p('key.pem'), '-out', p('req.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ossl('x509', '-req', '-in', p('req.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('cert.pem'), '-days', '2', '-extfile', p('ext.cnf'));
  return { ca: p('ca.pem'), cert: p('cert.pem'), key: p('key.pem') };
}

describe.skipIf(!etcdReady)('fleet over TLS', () => {
  let dir: string;
  let cluster: EtcdCluster;
  let good: { ca: string; cert: string; key: string };
  let other: { ca: string; cert: string; key: string };
  const nodes: FleetNode[] = [];

  const member = (name: string, pem: { ca: string; cert: string; key: string }, endpoints: string[]) => {
    const n = new FleetNode({
      endpoints, node: name, labels: {}, prefix: '/tls/', leaseTtlMs: 2000, observedIntervalMs: 1000, skewBoundMs: 0,
      tls: { ca: readFileSync(pem.ca), cert: readFileSync(pem.cert), key: readFileSync(pem.key) },
      stateFile: null, version: '1.0.0', startedAt: Date.now(), pid: process.pid, inputs: quietInputs, log,
    });
    nodes.push(n);
    n.start();
    return n;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-fleet-tls-'));
    good = makeCerts(dir, 'good');
    other = makeCerts(dir, 'other');
    cluster = await EtcdCluster.start({ size: 1, tls: good });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('registers over https with a client certificate; the CLI reads the fleet the same way', async () => {
    const n = member('secure-1', good, cluster.httpsEndpoints);
    await until('registered over TLS', () => (n.local().state === 'connected' && n.local().registered ? true : null), 20_000, 100);
    const out = JSON.parse(
      execFileSync(PATROL, ['fleet', 'status', '--json', '--prefix', '/tls/', '--endpoints', cluster.httpsEndpoints.join(','), '--cacert', good.ca, '--cert', good.cert, '--key', good.key]).toString(),
    );
    expect(out.nodes.map((x: { node: string; up: boolean }) => [x.node, x.up])).toEqual([['secure-1', true]]);
  }, 60_000);

  it('a server certificate from an untrusted CA: never connects, and says why', async () => {
    const n = member('untrusting', { ...good, ca: other.ca }, cluster.httpsEndpoints);
    const l = await until('local-only', () => (n.local().state === 'local-only' ? n.local() : null), 15_000, 100);
    expect(l.registered).toBe(false);
    expect(`${l.reason} ${l.last_error}`).toMatch(/certificate|self[- ]signed|verify/i);
  }, 60_000);
});
