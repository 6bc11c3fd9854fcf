// Bundles, gates, waves and bundle application without etcd or BPF: the bundle file format
// (content address, signature, tampering, what may be in one), the rollout spec and its waves,
// gates in the check DSL (types, units, missing data), and the agent's bundle host against a
// stand-in reload coordinator (refusals before any swap, the swap, putting the old layer back).
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gateFields, rolloutSpec, waveTargets, type StagedBundle } from '../../src/fleet/index.js';
import { bundleIdOf, createBundle, kernelAtLeast, loadTrustedKeys, parseBundle, unpackBundle, verifyBundle, type Bundle } from '../../src/fleet/bundle.js';
import type { ObservedValue } from '../../src/fleet/keys.js';
import { DEFAULT_GATES, compileGate, evalGate } from '../../src/checks/index.js';
import { AgentBundleHost, overlayOf } from '../../src/app/bundle-host.js';
import type { ReloadReply } from '../../src/app/reload.js';
import { createLogger } from '../../src/shared/log.js';

const root = mkdtempSync(join(tmpdir(), 'patrol-rollout-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function keys() {
  const d = join(root, `k${n++}`);
  mkdirSync(d);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(d, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(d, 'key.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv: createPrivateKey(readFileSync(join(d, 'key.pem'))), pub: join(d, 'key.pub.pem') };
}

function dir(files: Record<string, string>): string {
  const d = join(root, `b${n++}`);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), c);
  }
  return d;
}

const CHECK = 'check ok { critical load1 < 0; }\n';

function unpackForTest(b: Bundle, d: string): StagedBundle {
  unpackBundle(b, d);
  return { id: b.id, dir: d, manifest: b.manifest, keyId: b.keyId };
}

describe('bundle files', () => {
  const k = keys();
  const trusted = loadTrustedKeys([k.pub]);

  it('the id is the content\'s: the same files give the same id, any changed byte another', () => {
    const a = createBundle(dir({ 'checks/a.patrol': CHECK, 'config.yaml': 'log: { level: debug }\n' }), k.priv);
    const b = createBundle(dir({ 'config.yaml': 'log: { level: debug }\n', 'checks/a.patrol': CHECK }), k.priv);
    const c = createBundle(dir({ 'checks/a.patrol': CHECK.replace('0', '1'), 'config.yaml': 'log: { level: debug }\n' }), k.priv);
    expect(a.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.id).toBe(a.id);
    expect(c.id).not.toBe(a.id);
    expect(a.manifest.parts).toEqual(['checks', 'config']);
    const p = parseBundle(a.bytes);
    expect(p.id).toBe(a.id);
    expect(p.files.get('checks/a.patrol')!.toString()).toBe(CHECK);
    expect(verifyBundle(p, trusted)).toBe(k.pub);
  });

  it('tampering, another key, a forged signature, no trusted key: each refused with its code', () => {
    const a = createBundle(dir({ 'checks/a.patrol': CHECK }), k.priv);
    const flipped = Buffer.from(a.bytes);
    flipped[flipped.length - 3] ^= 1;
    expect(() => parseBundle(flipped)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_CORRUPT' }));
    expect(() => parseBundle(Buffer.from('hello'))).toThrow(expect.objectContaining({ code: 'E_BUNDLE_FORMAT' }));
    const other = keys();
    const b = parseBundle(createBundle(dir({ 'checks/a.patrol': CHECK }), other.priv).bytes);
    expect(() => verifyBundle(b, trusted)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_UNTRUSTED', message: expect.stringContaining(b.keyId) }));
    expect(() => verifyBundle(parseBundle(a.bytes), [])).toThrow(expect.objectContaining({ code: 'E_BUNDLE_UNTRUSTED', message: expect.stringContaining('no fleet.trusted_keys') }));
    // a trusted key's id over a signature it did not make
    const forged = Buffer.from(a.bytes.toString('latin1').replace(/"value":"([A-Za-z0-9+/]{8})/, (_m, s: string) => `"value":"${s.split('').reverse().join('')}`), 'latin1');
    expect(() => verifyBundle(parseBundle(forged), trusted)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_SIGNATURE' }));
    // a header naming a path outside the bundle's directories, with an id that matches it (anyone
    // can hash a manifest): refused before anything is written
    const text = a.bytes.toString('latin1');
    const nl = text.indexOf('\n', 'PATROL-BUNDLE 1\n'.length);
    const len = Number(text.slice('PATROL-BUNDLE 1\n'.length, nl));
    const header = JSON.parse(text.slice(nl + 1, nl + 1 + len)) as { id: string; manifest: { files: Array<{ path: string }> } };
    header.manifest.files[0]!.path = '../../etc/cron.d/x';
    header.id = bundleIdOf(header.manifest as never);
    const h = JSON.stringify(header);
    const evil = Buffer.concat([Buffer.from(`PATROL-BUNDLE 1\n${h.length}\n${h}`), a.bytes.subarray(nl + 1 + len)]);
    expect(() => parseBundle(evil)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_FORMAT', message: expect.stringContaining('../../etc/cron.d/x') }));
  });

  it('what cannot be in a bundle is named; a config overlay may not set where parts are unpacked', () => {
    expect(() => createBundle(dir({ 'checks/a.patrol': CHECK, 'notes.txt': 'x', 'bpf/other.o': 'x' }), k.priv)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_USAGE', message: expect.stringMatching(/not part of a bundle: bpf\/other\.o, notes\.txt/) }));
    expect(() => createBundle(dir({ 'config.yaml': 'checks: { dir: /etc }\n' }), k.priv)).toThrow(expect.objectContaining({ message: expect.stringContaining('checks.dir') }));
    expect(() => createBundle(dir({ 'manifest.yaml': 'name: x\n' }), k.priv)).toThrow(expect.objectContaining({ message: expect.stringContaining('nothing to bundle') }));
    expect(() => createBundle(dir({ 'checks/a.patrol': CHECK, 'manifest.yaml': 'min_kernel: soon\n' }), k.priv)).toThrow(expect.objectContaining({ message: expect.stringContaining('min_kernel') }));
    const m = createBundle(dir({ 'checks/a.patrol': CHECK, 'manifest.yaml': 'name: web checks\nmin_kernel: "5.15"\n' }), k.priv).manifest;
    expect(m).toMatchObject({ name: 'web checks', min_kernel: '5.15' });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rsa = join(root, `rsa${n++}.pem`);
    writeFileSync(rsa, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => loadTrustedKeys([rsa])).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
  });

  it('kernel versions', () => {
    expect(kernelAtLeast('6.18.0-1-amd64', '5.15')).toBe(true);
    expect(kernelAtLeast('5.15.0', '5.15')).toBe(true);
    expect(kernelAtLeast('5.4.0-generic', '5.15')).toBe(false);
    expect(kernelAtLeast('6.1', '6.1.5')).toBe(false);
  });
});

describe('rollout spec and waves', () => {
  it('waves are cumulative; each adds a node while any is left; the last takes all', () => {
    expect(waveTargets(['1', '10%', '50%', '100%'], 6)).toEqual([1, 2, 3, 6]);
    expect(waveTargets(['1', '10%', '50%', '100%'], 1000)).toEqual([1, 100, 500, 1000]);
    expect(waveTargets(['1', '50%', '100%'], 2)).toEqual([1, 2]);
    expect(waveTargets(['5', '100%'], 3)).toEqual([3]);
    expect(waveTargets(['100%'], 4)).toEqual([4]);
  });

  it('defaults; --gate replaces the default gates, and the bundle being applied is always one', () => {
    const d = rolloutSpec({ bundle: 'sha256:ab' });
    expect(d).toMatchObject({ waves: ['1', '10%', '50%', '100%'], bakeMs: 60_000, failureLimit: 2, maxIncompatible: 0.5 });
    expect(d.gates).toEqual(DEFAULT_GATES.map((g) => compileGate(g).text));
    expect(rolloutSpec({ bundle: 'b1', gates: ['lost_rate==0'] }).gates).toEqual(['reload_result == "applied"', 'lost_rate == 0']);
    expect(() => rolloutSpec({ bundle: 'b1', waves: ['1', '50%'] })).toThrow(/last wave must be 100%/);
    expect(() => rolloutSpec({ bundle: 'b1', waves: ['0', '100%'] })).toThrow(/neither a node count/);
    expect(() => rolloutSpec({ bundle: 'b1', bake: '10ms' })).toThrow(/--bake/);
    expect(() => rolloutSpec({ bundle: 'b1', gates: ['agent_cpu > 90'] })).toThrow(/PD2004.*percentage/);
    expect(() => rolloutSpec({ bundle: 'b1', gates: ['agent_cpus > 1%'] })).toThrow(/did you mean 'agent_cpu'/);
    expect(() => rolloutSpec({ bundle: 'no spaces' })).toThrow(/bundle id/);
  });
});

describe('gates: the check DSL over per-node fleet fields', () => {
  const cx = (f: Record<string, unknown>, base: Record<string, unknown> = {}, before: Record<string, unknown> = {}) => ({
    field: (k: string) => (f[k] ?? null) as never,
    baseline: (k: string) => (base[k] ?? null) as never,
    before: (k: string) => (before[k] ?? null) as never,
  });

  it('reads units and compares with the baseline nodes and the node\'s own value before', () => {
    const g = compileGate('agent_cpu <= baseline(agent_cpu) * 1.5 + 5%');
    expect(evalGate(g, cx({ agent_cpu: 0.08 }, { agent_cpu: 0.02 }))).toEqual({ value: true, values: { agent_cpu: '8%', 'baseline(agent_cpu)': '2%' } });
    expect(evalGate(g, cx({ agent_cpu: 0.5 }, { agent_cpu: 0.02 })).value).toBe(false);
    expect(evalGate(compileGate('agent_rss < 200MB'), cx({ agent_rss: 150 * 1024 * 1024 })).value).toBe(true);
    expect(evalGate(compileGate('checks_critical <= before(checks_critical)'), cx({ checks_critical: 1 }, {}, { checks_critical: 0 })).value).toBe(false);
    expect(evalGate(compileGate('lost_rate < 1/s'), cx({ lost_rate: 0.5 })).value).toBe(true);
  });

  it('missing data is unknown, never a pass; `or` and `and` decide when one side can', () => {
    expect(evalGate(compileGate('lost_rate == 0'), cx({})).value).toBeNull();
    expect(evalGate(compileGate('reload_result == "applied"'), cx({})).value).toBeNull();
    expect(evalGate(compileGate('agent_cpu <= baseline(agent_cpu) * 1.5'), cx({ agent_cpu: 0.01 })).value).toBeNull();
    expect(evalGate(compileGate('lost_rate == 0 or agent_cpu < 1%'), cx({ lost_rate: 0 })).value).toBe(true);
    expect(evalGate(compileGate('lost_rate == 0 and agent_cpu < 1%'), cx({ lost_rate: 3 })).value).toBe(false);
    expect(evalGate(compileGate('lost_rate == 0 and agent_cpu < 1%'), cx({ lost_rate: 0 })).value).toBeNull();
    expect(evalGate(compileGate('agent_rss / baseline(agent_rss) < 2'), cx({ agent_rss: 1 }, { agent_rss: 0 })).value).toBeNull();
  });

  it('an observed value becomes the gate fields (CPU as a share; the result of this rollout\'s bundle only)', () => {
    const o = {
      lost_rate: 0, agent_cpu: 12.5, agent_rss: 1000, checks: { warning: 2 }, checks_critical: 1, alerts_firing: 3, health: { status: 'ok', reasons: [] },
      bundle_apply: { target: 'b2', result: 'rejected: E_SENSOR_BTF', code: 'E_SENSOR_BTF', reason: '', incompatible: true, at: null, previous: null },
    } as unknown as ObservedValue;
    expect(gateFields(o, 'b2')).toMatchObject({ agent_cpu: 0.125, reload_result: 'rejected: E_SENSOR_BTF', checks_warning: 2, health: 'ok' });
    expect(gateFields(o, 'b3').reload_result).toBeNull();
  });
});

describe('the agent applies a bundle through hot reload', () => {
  const log = createLogger({ level: 'silent' });
  const k = keys();
  const cfgFile = join(root, 'agent.yaml');
  writeFileSync(cfgFile, `store: { path: ${join(root, 'state', 'p.db')} }\nlog: { level: info }\n`);

  function staged(files: Record<string, string>): StagedBundle {
    const b = parseBundle(createBundle(dir(files), k.priv).bytes);
    return unpackForTest(b, join(root, `staged${n++}`));
  }

  function host(o: { reply?: (layer: unknown) => Partial<ReloadReply['parts']>; preflight?: () => { sensor: string; code: string; reason: string } | null } = {}) {
    const layers: unknown[] = [];
    let h: AgentBundleHost;
    const ok = { result: 'unchanged', version: null, previous_version: null };
    const coordinator = {
      reload: async () => {
        layers.push(h.active);
        const parts = { config: { ...ok, sections: {} }, sensors: { ...ok, generation: 0, reason_loaded: null, overlap_ms: null, duplicates: null, sensors: {} }, rules: ok, checks: ok, ...(o.reply?.(h.active) ?? {}) };
        return { ok: true, trigger: 'bundle', at: '', duration_ms: 1, parts } as unknown as ReloadReply;
      },
    };
    const notLive = (key: string) => (key.startsWith('store.') ? `${key}: opened at start` : null);
    const sections = new Proxy({}, { get: () => ({ notLive }) });
    h = new AgentBundleHost({ loadOpts: { path: cfgFile }, coordinator: coordinator as never, parts: { sections, sensors: { preflight: o.preflight ?? (() => null) } } as never, log });
    return { h, layers };
  }

  it('a valid bundle: one reload with its layer, which stays', async () => {
    const { h, layers } = host();
    const b = staged({ 'checks/a.patrol': CHECK, 'config.yaml': 'log: { level: debug }\n' });
    expect(await h.apply(b, null)).toEqual({ result: 'applied' });
    expect(layers).toHaveLength(1);
    expect(h.active).toEqual(overlayOf(b));
    expect((h.active!.values as { checks: { dir: string } }).checks.dir).toBe(join(b.dir, 'checks'));
  });

  it('refused before any reload: a key that needs a restart, a check that does not compile, an object the pre-flight refuses', async () => {
    const { h, layers } = host({ preflight: () => ({ sensor: 'lifecycle', code: 'E_SENSOR_BTF', reason: 'btf_trace_x is missing' }) });
    expect(await h.apply(staged({ 'config.yaml': `store: { path: ${join(root, 'other.db')} }\n` }), null)).toMatchObject({ result: 'rejected', code: 'E_NOT_LIVE' });
    expect(await h.apply(staged({ 'checks/a.patrol': 'check bad { critical nope > 1; }\n' }), null)).toMatchObject({ result: 'rejected', code: 'PD2001' });
    expect(await h.apply(staged({ 'rules/r.yaml': 'rules: [ { id: x } ]\n' }), null)).toMatchObject({ result: 'rejected' });
    expect(await h.apply(staged({ 'checks/a.patrol': CHECK }), null)).toMatchObject({ result: 'rejected', code: 'E_SENSOR_BTF', incompatible: true });
    expect(await h.apply(staged({ 'config.yaml': 'log: { level: loud }\n' }), null)).toMatchObject({ result: 'rejected', code: 'E_CONFIG' });
    expect(layers).toHaveLength(0);
    expect(h.active).toBeNull();
  });

  it('a part the reload refuses: the previous layer goes back with a second reload', async () => {
    const first = staged({ 'checks/a.patrol': CHECK });
    let second: StagedBundle | null = null;
    const refused = { checks: { result: 'rejected', code: 'E_CHECKS_READ', reason: 'gone', version: null, previous_version: null } } as never;
    const { h, layers } = host({ reply: (layer) => (second && JSON.stringify(layer) === JSON.stringify(overlayOf(second)) ? refused : {}) });
    expect(await h.apply(first, null)).toEqual({ result: 'applied' });
    second = staged({ 'checks/b.patrol': CHECK });
    expect(await h.apply(second, first)).toMatchObject({ result: 'rejected', code: 'E_CHECKS_READ' });
    expect(layers).toHaveLength(3);
    expect(h.active).toEqual(overlayOf(first));
  });
});
