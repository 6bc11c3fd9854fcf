// The fleet module in-process on a real three-member etcd cluster, with simulated members (the
// same FleetNode an agent runs, fed quiet inputs): the leader's fleet-level findings, fencing of
// a leader deposed behind its back, and the desired watch resuming exactly once, in order,
// while etcd members are killed and restarted under it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log.js';
import { EtcdClient, FleetNode, Keys, quietInputs, readFleetStatus, writeDesired, type AppliedEntry, type FleetInputs } from '../../src/fleet/index.js';
import { EtcdCluster, etcdReady, history, sleep, until } from './helpers.js';

const keys = new Keys('/sim/');
const log = createLogger({ level: process.env.PATROL_LOG_LEVEL ?? 'silent' });

describe.skipIf(!etcdReady)('fleet module: simulated members on a three-member etcd cluster', () => {
  let cluster: EtcdCluster;
  let client: EtcdClient;
  const nodes: FleetNode[] = [];

  function member(name: string, o: { inputs?: Partial<FleetInputs>; version?: string; startedAt?: number; skewBoundMs?: number; onDesired?: (e: AppliedEntry) => void } = {}): FleetNode {
    const n = new FleetNode({
      endpoints: cluster.endpoints,
      node: name,
      labels: { role: 'sim' },
      prefix: keys.prefix,
      leaseTtlMs: 2000,
      observedIntervalMs: 1000,
      skewBoundMs: o.skewBoundMs ?? 0,
      tls: null,
      stateFile: null,
      version: o.version ?? '1.2.0',
      startedAt: o.startedAt ?? Date.now(),
      pid: process.pid,
      inputs: { ...quietInputs, ...o.inputs },
      log,
      timing: { refreshMs: 300 },
      ...(o.onDesired ? { onDesired: o.onDesired } : {}),
    });
    nodes.push(n);
    n.start();
    return n;
  }

  const connected = (n: FleetNode) => until(`${n.node} connected`, () => (n.local().state === 'connected' && n.local().registered ? n.local() : null), 20_000, 50);

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
    client = new EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 3000 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    client?.close();
    await cluster?.stop();
  });

  it('the leader finds nodes that disappeared, nodes losing events, and version skew past the bound', async () => {
    let lost = 0;
    const lead = member('s1', { version: '1.2.0', startedAt: Date.now() - 3_600_000 });
    await connected(lead);
    await until('s1 leads', () => lead.local().is_leader, 10_000, 50);
    const lossy = member('s2', { inputs: { lostTotal: () => (lost += 7) } });
    const old = member('s3', { version: '1.1.9', startedAt: Date.now() - 7_200_000 });
    const gone = member('s4');
    await Promise.all([lossy, old, gone].map(connected));
    await gone.stop();
    const s = await until('the findings', async () => {
      const st = await readFleetStatus(client, keys);
      const kinds = new Set(st.findings.map((f) => `${f.kind}:${f.node}`));
      return kinds.has('loss:s2') && kinds.has('version_skew:s3') && kinds.has('node_down:s4') ? st : null;
    }, 15_000, 200);
    const skew = s.findings.find((f) => f.kind === 'version_skew')!;
    expect(skew).toMatchObject({ node: 's3', part: 'agent', version: '1.1.9', newest: '1.2.0' });
    expect(s.findings.filter((f) => f.kind === 'version_skew')).toHaveLength(1);
    const down = s.findings.find((f) => f.kind === 'node_down')!;
    expect(down.since).not.toBeNull();
    expect(s.nodes.find((n) => n.node === 's4')).toMatchObject({ up: false, last_seen: down.since }); // the time it stopped
    expect(s.nodes.find((n) => n.node === 's2')!.lost_rate).toBeGreaterThan(0);
    expect(s.leader?.node).toBe('s1');
  }, 60_000);

  it('fencing: a leader deposed behind its back cannot write; the new leader can', async () => {
    const lead = nodes.find((n) => n.local().is_leader)!;
    const term = lead.local().term!;
    const before = lead.counters.fenced_rejects;
    // depose it without its knowledge: its election key goes, its lease and registration stay
    await client.txn([], [{ del: keys.election(lead.node) }]);
    const next = await until('another member leads', () => nodes.find((n) => n !== lead && n.local().is_leader) ?? null, 10_000, 50);
    // the old leader's next write (a new finding makes one due) is refused by the fence
    const extra = member('s5', { version: '1.0.0', startedAt: Date.now() - 9_000_000 });
    await connected(extra);
    await until('the deposed leader to be fenced off', () => lead.counters.fenced_rejects > before, 10_000, 50);
    expect(lead.local().is_leader).toBe(false);
    const f = await until('findings from the new leader', async () => {
      const r = await client.get(keys.findings);
      const v = r.kv ? (JSON.parse(r.kv.value.toString()) as { leader: string; term: number; findings: Array<{ node: string }> }) : null;
      return v && v.findings.some((x) => x.node === 's5') ? v : null;
    }, 10_000, 100);
    expect(f.leader).toBe(next.node);
    expect(f.term).toBe(next.local().term);
    expect(f.term).not.toBe(term);
    // the deposed member campaigns again, with a new (younger) term
    await until('the deposed member back in the election', () => (lead.local().term !== null && lead.local().term! > term ? true : null), 10_000, 50);
  }, 60_000);

  it('a second agent with the same node name is refused; the first keeps its registration', async () => {
    const first = member('twin');
    await connected(first);
    const second = member('twin');
    await until('the second to be refused', () => (second.local().last_error?.includes('registered by another agent') ? true : null), 10_000, 50);
    expect(second.local().registered).toBe(false);
    expect(first.local().registered).toBe(true);
    const reg = await client.get(keys.node('twin'));
    expect(BigInt(reg.kv!.lease).toString(16)).toBe(first.local().lease);
    await second.stop();
  }, 30_000);

  it('a lease keepalive gets through while a member is down: a stream the down member refuses is opened again on another', async () => {
    const lease = await client.grant(30, 3000);
    const down = 2;
    await cluster.kill(down);
    try {
      await cluster.waitHealthy(20_000);
      let retries = 0;
      // each channel opens its own stream on a member picked at random: about a third of them
      // go to the member that is down first
      for (let i = 0; i < 30; i++) {
        const ch = client.keepAlives();
        try {
          expect(await ch.keepalive(lease.id, 2000)).toBeGreaterThan(0);
        } finally {
          retries += ch.retries;
          ch.close();
        }
      }
      expect(retries).toBeGreaterThan(0);
    } finally {
      cluster.restart(down);
      await cluster.waitHealthy(20_000);
      await client.revoke(lease.id, 3000);
    }
  }, 60_000);

  it('the desired watch applies every revision once, in order, while etcd members are killed and restarted', async () => {
    const seen: number[] = [];
    const w = member('w1', { onDesired: (e) => seen.push(e.revision) });
    await connected(w);
    await until('the first full read', () => w.local().desired.resyncs.length > 0, 10_000, 50);
    const start = seen.length;
    const fromRev = (await cluster.revision()) + 1;
    let writes = 0;
    for (let round = 0; round < 3; round++) {
      const victim = round;
      await cluster.kill(victim);
      for (let i = 0; i < 20; i++) {
        // a write whose answer is lost in the failover may land and be sent again: the etcd
        // history below, not this loop, says which revisions exist
        await until('a desired write', () => writeDesired(client, keys, `r${round}-${i}`, { selector: { role: 'sim' } }, 'test'), 10_000, 100);
        writes++;
      }
      cluster.restart(victim);
      await cluster.waitHealthy(20_000);
      await sleep(300);
    }
    const toRev = await cluster.revision();
    // every write of this test is under the prefix, so its history reaches toRev
    const written = (await history(client, keys.prefix, fromRev, toRev)).filter((h) => h.kv.key.startsWith(keys.desired)).map((h) => h.rev);
    expect(written.length).toBeGreaterThanOrEqual(writes);
    await until('every revision applied', () => (seen.length - start >= written.length ? true : null), 20_000, 100);
    expect(seen.slice(start)).toEqual(written);
    expect(w.local().desired.bundle).toBe('r2-19');
    expect(w.local().desired.resyncs).toHaveLength(1);
  }, 120_000);
});
