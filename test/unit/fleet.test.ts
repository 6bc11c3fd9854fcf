// The fleet module without etcd: the `fleet` config section, selectors and desired-state
// precedence, the leader's findings, what makes observed state worth a write, the watch wrapper's
// resume point, and the human output.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configToYaml, loadConfig } from '../../src/app/config.js';
import { EtcdClient, Keys, parseSelector, formatSelector, selectorMatches, prefixEnd, type FleetStatusJson } from '../../src/fleet/index.js';
import { effectiveDesired } from '../../src/fleet/desired.js';
import { fleetFindings, type FleetSnapshot } from '../../src/fleet/findings.js';
import { observedSignature } from '../../src/fleet/observed.js';
import type { MemberValue, NodeValue, ObservedValue } from '../../src/fleet/keys.js';
import { humanFleetStatus } from '../../src/cli/fleet.js';
import { fleetLine } from '../../src/cli/status.js';

const dir = mkdtempSync(join(tmpdir(), 'patrol-fleet-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, yaml);
  return loadConfig({ path: p });
}
function problems(yaml: string): string[] {
  try {
    load(yaml);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems.map((l) => l.replace(/^[^:]+: /, ''));
  }
  throw new Error('expected a ConfigError');
}

describe('config: the fleet section', () => {
  it('is absent by default: the agent runs alone', () => {
    expect(load('log: { level: info }\n').fleet).toBeNull();
    expect(configToYaml(load('')).includes('fleet')).toBe(false);
  });

  it('fills in the documented defaults', () => {
    expect(load('fleet: { endpoints: [http://127.0.0.1:2379] }\n').fleet).toEqual({
      endpoints: ['http://127.0.0.1:2379'],
      node: hostname(),
      labels: {},
      prefix: '/patrol/',
      leaseTtlMs: 10_000,
      observedIntervalMs: 10_000,
      skewBoundMs: 3_600_000,
      probeIntervalMs: 1000,
      tls: null,
      trustedKeys: [],
    });
  });

  it('names every bad value', () => {
    expect(problems('fleet: {}\n')).toEqual(['fleet.endpoints: Required']);
    expect(problems('fleet: { endpoints: [] }\n')).toEqual(['fleet.endpoints: needs at least one etcd member URL (got a list)']);
    expect(problems('fleet: { endpoints: [10.0.0.1:2379] }\n')).toEqual(['fleet.endpoints.0: expected an etcd member URL like http://10.0.0.1:2379 (got "10.0.0.1:2379")']);
    expect(problems('fleet: { endpoints: [http://a:1, https://b:1] }\n')).toEqual(['fleet.endpoints: mixes http:// and https://: use one scheme for all members (got a list)']);
    expect(problems('fleet: { endpoints: [http://a:1], tls: { ca: /x.pem } }\n')).toEqual(["fleet.tls: set, but the endpoints are http://: use https:// URLs (got a mapping)"]);
    expect(problems('fleet: { endpoints: [https://a:1], tls: { cert: /c.pem } }\n')).toEqual(['fleet.tls.key: cert and key go together']);
    expect(problems('fleet: { endpoints: [http://a:1], lease_ttl: 1500ms }\n')).toEqual(['fleet.lease_ttl: must be between 2s and 1h (got "1500ms")']);
    expect(problems('fleet: { endpoints: [http://a:1], lease_ttl: 2500ms }\n')).toEqual(['fleet.lease_ttl: must be whole seconds (etcd leases count seconds) (got "2500ms")']);
    expect(problems('fleet: { endpoints: [http://a:1], prefix: patrol }\n')).toEqual(["fleet.prefix: expected a key prefix that starts and ends with '/', e.g. /patrol/ (got \"patrol\")"]);
    expect(problems('fleet: { endpoints: [http://a:1], node: "a/b" }\n')).toEqual(["fleet.node: expected a node name: letters, digits, '.', '_' or '-' (got \"a/b\")"]);
    expect(problems('fleet: { endpoints: [http://a:1], labels: { "x y": web } }\n')).toEqual(["fleet.labels.x y: label name: letters, digits, '.', '_' or '-' (got \"web\")"]);
    expect(problems('fleet: { endpoints: [http://a:1], lease_tll: 5s }\n')).toEqual(['fleet.lease_tll: unknown key (did you mean lease_ttl?)']);
  });

  it('accepts TLS with https endpoints; prints and reloads the same', () => {
    const c = load('fleet: { endpoints: [https://e1:2379/, https://e2:2379], node: n1, labels: { role: web, tier: 2 }, tls: { ca: /ca.pem, cert: /c.pem, key: /k.pem } }\n');
    expect(c.fleet).toMatchObject({ endpoints: ['https://e1:2379', 'https://e2:2379'], labels: { role: 'web', tier: '2' }, tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' } });
    const text = configToYaml(c);
    expect(text).toContain('lease_ttl: 10s');
    expect(load(text)).toEqual(c);
  });
});

describe('selectors and desired-state precedence', () => {
  const keys = new Keys('/patrol/');

  it('parses, canonicalises and matches selectors; refuses bad ones', () => {
    expect(parseSelector('zone=a, role=web')).toEqual({ zone: 'a', role: 'web' });
    expect(formatSelector(parseSelector('zone=a,role=web'))).toBe('role=web,zone=a');
    expect(selectorMatches({ role: 'web' }, { role: 'web', zone: 'a' })).toBe(true);
    expect(selectorMatches({ role: 'web', zone: 'b' }, { role: 'web', zone: 'a' })).toBe(false);
    for (const bad of ['', 'role', 'role=web,role=db', 'ro le=web', 'role=w/b']) expect(() => parseSelector(bad), bad).toThrow(/selector/);
  });

  it('node key, then the most specific matching selector, then all; newest write between equals', () => {
    const labels = { role: 'web', zone: 'a' };
    const e = (bundle: string, rev: number) => ({ bundle, mod_revision: rev });
    const k = {
      all: keys.desiredAll,
      web: keys.desiredSelector({ role: 'web' }),
      zoneA: keys.desiredSelector({ zone: 'a' }),
      webA: keys.desiredSelector({ role: 'web', zone: 'a' }),
      db: keys.desiredSelector({ role: 'db' }),
      me: keys.desiredNode('n1'),
    };
    expect(effectiveDesired({}, keys, 'n1', labels)).toEqual({ bundle: null, key: null });
    expect(effectiveDesired({ [k.all]: e('b0', 9), [k.db]: e('bdb', 10) }, keys, 'n1', labels)).toEqual({ bundle: 'b0', key: k.all });
    expect(effectiveDesired({ [k.all]: e('b0', 9), [k.web]: e('b1', 5), [k.zoneA]: e('b2', 6) }, keys, 'n1', labels)).toEqual({ bundle: 'b2', key: k.zoneA });
    expect(effectiveDesired({ [k.web]: e('b1', 50), [k.webA]: e('b3', 6) }, keys, 'n1', labels)).toEqual({ bundle: 'b3', key: k.webA });
    expect(effectiveDesired({ [k.webA]: e('b3', 6), [k.me]: e('mine', 1) }, keys, 'n1', labels)).toEqual({ bundle: 'mine', key: k.me });
    // a bad value (bundle null) does not win
    expect(effectiveDesired({ [k.me]: { bundle: null, mod_revision: 99 }, [k.web]: e('b1', 5) }, keys, 'n1', labels)).toEqual({ bundle: 'b1', key: k.web });
    expect(prefixEnd('/patrol/')).toBe('/patrol0');
  });
});

describe('the leader findings', () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const now = Date.parse('2025-01-01T12:00:00Z');
  const node = (name: string, version: string, startedAgoMs: number): NodeValue => ({
    schema: 1, node: name, version, kernel: '6.1', labels: {}, started_at: iso(now - startedAgoMs), registered_at: iso(now), api: null, pid: 1, instance: name, lease: '1',
  });
  const obs = (name: string, lost_rate: number, parts: Record<string, { version: string | null; since: string | null }>): ObservedValue => ({
    schema: 1, node: name, at: iso(now), parts, generation: null, last_reload: { at: null, result: 'unknown' }, health: { status: 'ok', reasons: [] },
    lost_rate, lost_total: 0, agent_cpu: 1, agent_rss: 1, checks: {}, checks_critical: 0, alerts_firing: 0, desired: null, bundle: null,
  });
  const member = (name: string, stopped: number | null): MemberValue => ({ schema: 1, node: name, labels: {}, version: '1', registered_at: iso(now - 1e6), stopped_at: stopped === null ? null : iso(stopped) });

  it('node_down (dated by a clean stop, else when the leader saw it go), loss, version skew past the bound', () => {
    const h = 3_600_000;
    const s: FleetSnapshot = {
      nodes: new Map([
        ['a', node('a', '1.10.0', 3 * h)],
        ['b', node('b', '1.9.2', 5 * h)],
        ['c', node('c', '1.10.0', 1000)],
      ]),
      observed: new Map([
        ['a', obs('a', 0, { rules: { version: 'r-new', since: iso(now - 2 * h) } })],
        ['b', obs('b', 2.5, { rules: { version: 'r-old', since: iso(now - 9 * h) } })],
        ['c', obs('c', 0, { rules: { version: null, since: null } })],
      ]),
      members: new Map([
        ['a', member('a', null)],
        ['d', member('d', now - 60_000)],
        ['e', member('e', null)],
      ]),
      downSince: new Map([['e', now - 5000]]),
    };
    const f = fleetFindings(s, h, now);
    expect(f).toEqual([
      { kind: 'node_down', node: 'd', since: iso(now - 60_000) },
      { kind: 'node_down', node: 'e', since: iso(now - 5000) },
      { kind: 'loss', node: 'b', lost_rate: 2.5 },
      { kind: 'version_skew', node: 'b', part: 'agent', version: '1.9.2', newest: '1.10.0', newest_since: iso(now - 3 * h) },
      { kind: 'version_skew', node: 'b', part: 'rules', version: 'r-old', newest: 'r-new', newest_since: iso(now - 2 * h) },
    ]);
    // within the bound: no skew yet
    expect(fleetFindings(s, 4 * h, now).filter((x) => x.kind === 'version_skew')).toEqual([]);
  });
});

describe('observed state: what is worth a write', () => {
  const base: ObservedValue = {
    schema: 1, node: 'n', at: 'x', parts: {}, generation: null, last_reload: { at: null, result: 'unknown' }, health: { status: 'ok', reasons: [] },
    lost_rate: 0, lost_total: 0, agent_cpu: 1.2, agent_rss: 100 << 20, checks: { ok: 3 }, checks_critical: 0, alerts_firing: 0, desired: null, bundle: null,
  };
  it('ignores the clock and small CPU or RSS moves; notices health, checks, loss, desired', () => {
    const sig = observedSignature(base);
    expect(observedSignature({ ...base, at: 'y', agent_cpu: 1.9, agent_rss: 102 << 20, lost_total: 0 })).toBe(sig);
    expect(observedSignature({ ...base, agent_cpu: 12 })).not.toBe(sig);
    expect(observedSignature({ ...base, agent_rss: 130 << 20 })).not.toBe(sig);
    expect(observedSignature({ ...base, health: { status: 'degraded', reasons: [{ kind: 'loss', message: 'x' }] } })).not.toBe(sig);
    expect(observedSignature({ ...base, checks: { ok: 2, critical: 1 }, checks_critical: 1 })).not.toBe(sig);
    expect(observedSignature({ ...base, lost_rate: 0.5 })).not.toBe(sig);
    expect(observedSignature({ ...base, desired: { bundle: 'b', revision: 3 } })).not.toBe(sig);
  });
});

describe('the watch wrapper', () => {
  it('resumes from the revision after the last it delivered, not from the newest header the package saw; delivers each revision once', () => {
    // no etcd behind this endpoint: the package's watcher is driven by hand
    const client = new EtcdClient({ endpoints: ['http://127.0.0.1:9'], timeoutMs: 100 });
    try {
      const got: number[] = [];
      const w = client.watch('/p/', prefixEnd('/p/'), 5, { onRevision: (rev) => got.push(rev), onCanceled: () => {} });
      const inner = (w as unknown as { watcher: import('node:events').EventEmitter & { request: { start_revision?: string } } }).watcher;
      const kv = (rev: number, key = '/p/x') => ({ key: Buffer.from(key), value: Buffer.from('v'), create_revision: '1', mod_revision: String(rev), version: '1', lease: '0' });
      // created (header far ahead: history still to come), then the stream breaks
      inner.emit('connected', { header: { revision: '100' }, created: true, events: [] });
      expect(inner.request.start_revision).toBe('5');
      inner.emit('data', { header: { revision: '100' }, created: false, events: [{ type: 'Put', kv: kv(5) }, { type: 'Put', kv: kv(6) }, { type: 'Put', kv: kv(6, '/p/y') }] });
      inner.emit('disconnected', new Error('stream broke'));
      expect(inner.request.start_revision).toBe('7');
      // after the reconnect, etcd replays from 7; an overlap is dropped
      inner.emit('data', { header: { revision: '100' }, created: false, events: [{ type: 'Put', kv: kv(6) }, { type: 'Put', kv: kv(7) }] });
      expect(got).toEqual([5, 6, 7]);
      expect(w.next).toBe(8);
      w.close();
    } finally {
      client.close();
    }
  });
});

describe('human output', () => {
  it('fleet status: one row per node, the leader starred, findings; terminal controls escaped', () => {
    const s: FleetStatusJson = {
      prefix: '/patrol/', revision: 9, leader: { node: 'a', term: 5, since: new Date().toISOString() },
      counts: { nodes: 2, up: 1, down: 1, degraded: 0, losing: 0 },
      nodes: [
        { node: 'a', up: true, labels: {}, version: '0.1.0', kernel: '6.1', parts: { rules: { version: 'abcdef0123456789', since: null }, sensors: { version: null, since: null } }, health: { status: 'ok', reasons: [] }, lost_rate: 0, agent_cpu: 1.25, agent_rss: 50 << 20, checks_critical: 0, alerts_firing: 1, last_seen: new Date().toISOString(), observed_at: null, registered_at: null, api: null, desired_bundle: 'b\u001b[2J', bundle: `sha256:${'ab'.repeat(32)}`, bundle_result: 'rejected: E_BUNDLE_SIGNATURE', leader: true },
        { node: 'b', up: false, labels: {}, version: '0.1.0', kernel: null, parts: {}, health: null, lost_rate: null, agent_cpu: null, agent_rss: null, checks_critical: null, alerts_firing: null, last_seen: new Date(Date.now() - 30_000).toISOString(), observed_at: null, registered_at: null, api: null, desired_bundle: null, bundle: null, bundle_result: null, leader: false },
      ],
      findings: [{ kind: 'node_down', node: 'b', since: new Date(Date.now() - 30_000).toISOString() }],
      bad_values: 0,
    };
    const out = humanFleetStatus(s);
    expect(out).toMatch(/^fleet \/patrol\/ · 2 nodes: 1 up, 1 down · leader a \(term 5, since now\)$/m);
    expect(out).toMatch(/^a\*\s+up\s+0\.1\.0 r:abcdef01\s+ok\s+0\s+1\.3\s+50\.0MB\s+1\s+now\s+b\\x1b\[2J\s+sha256:abababababab \(rejected: E_BUNDLE_SIGNATURE\)$/m);
    expect(out).toMatch(/^b\s+DOWN\s+0\.1\.0\s+-\s+-\s+-\s+-\s+-\s+30s ago\s+-\s+-$/m);
    expect(out).toContain('  b down since 30s ago');
    expect(out).not.toContain('\u001b');
  });

  it('patrol status: the fleet line', () => {
    const f = { node: 'n1', state: 'local-only', since: '2025-01-01T00:00:00.123Z', reason: 'no quorum', lease: 'ab', registered: true, is_leader: false, leader: null, desired_bundle: null, bundle: null };
    expect(fleetLine(f)).toBe('local-only since 2025-01-01T00:00:00Z (no quorum)');
    expect(fleetLine({ ...f, state: 'connected', is_leader: true, leader: { node: 'n1', term: 7 }, desired_bundle: 'b1' })).toBe('connected · node n1 · leading (term 7) · desired b1');
    const b = { id: `sha256:${'cd'.repeat(32)}`, since: null, previous: null, target: `sha256:${'cd'.repeat(32)}`, result: 'applied', code: null, reason: null, incompatible: false, at: null };
    expect(fleetLine({ ...f, state: 'connected', bundle: b })).toBe('connected · node n1 · no leader · bundle sha256:cdcdcdcdcdcd');
    expect(fleetLine({ ...f, state: 'connected', bundle: { ...b, target: `sha256:${'ef'.repeat(32)}`, result: 'rejected: E_SENSOR_BTF' } })).toBe('connected · node n1 · no leader · bundle sha256:cdcdcdcdcdcd (rejected: E_SENSOR_BTF sha256:efefefefefef)');
  });
});
