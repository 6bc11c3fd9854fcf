// Issue 13, part 1: the reload entry point (config key by key, live or named; rules and checks
// read-compile-swap), the versions (sha256 of canonical content) and who carries them.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, versionOf } from '../../src/shared/canonical.js';
import { CONFIG_SECTIONS, changedKeys, configVersion, defaultConfig, loadConfig, withKeys, type AgentConfig } from '../../src/app/config.js';
import { ReloadCoordinator, type ReloadParts, type SectionApplier, type SensorsReloader, type SensorsPartReport, type SetReloader } from '../../src/app/reload.js';
import { loadRuleFiles } from '../../src/rules/index.js';
import { EventCounters, Executor, FakeClock, compileFiles, compileSource, type Alert, type CheckResult } from '../../src/checks/index.js';
import { createLogger } from '../../src/shared/log.js';

const log = createLogger({ level: 'silent' as 'error' });
const tmp = () => mkdtempSync(join(tmpdir(), 'patrol-reload-'));

describe('versions: sha256 of canonical content', () => {
  it('canonical JSON sorts keys at every level and is stable', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: undefined, b: 2n })).toBe('{"b":"2"}');
    expect(versionOf([['b', 'x'], ['a', 'y']])).toBe(versionOf([['a', 'y'], ['b', 'x']]));
    expect(versionOf([['a', 'xy']])).not.toBe(versionOf([['a', 'x'], ['y', '']]));
  });

  it('config: the same settings in another order or unit give the same version; a change moves it', () => {
    const d = tmp();
    const a = join(d, 'a.yaml');
    const b = join(d, 'b.yaml');
    writeFileSync(a, 'store: { flush_interval: 1s, path: /x/p.db }\nlog: { level: debug }\n');
    writeFileSync(b, '# same\nlog:\n  level: debug\nstore:\n  path: /x/p.db\n  flush_interval: 1000ms\n');
    const ca = loadConfig({ path: a });
    expect(configVersion(ca)).toBe(configVersion(loadConfig({ path: b })));
    expect(configVersion(ca)).toMatch(/^[0-9a-f]{64}$/);
    expect(configVersion(ca)).not.toBe(configVersion(defaultConfig()));
  });

  it('config: changedKeys names file keys; withKeys takes only those', () => {
    const a = defaultConfig();
    const b: AgentConfig = { ...a, log: { ...a.log, level: 'debug' }, lifecycle: { ...a.lifecycle, ringBytes: 8 << 20, argsCap: 1024 }, metrics: { ...a.metrics, windowsMs: [1000, 60_000] } };
    expect(changedKeys(a, b)).toEqual(['log.level', 'lifecycle.args_cap', 'lifecycle.ring_size', 'metrics.windows']);
    const c = withKeys(a, b, ['log.level', 'lifecycle.args_cap']);
    expect(c.log.level).toBe('debug');
    expect(c.lifecycle.argsCap).toBe(1024);
    expect(c.lifecycle.ringBytes).toBe(a.lifecycle.ringBytes);
    expect(changedKeys(a, c)).toEqual(['log.level', 'lifecycle.args_cap']);
  });

  it('rules: comments, key order and layout keep the version; a rule change moves it', () => {
    const d1 = tmp();
    const d2 = tmp();
    const d3 = tmp();
    writeFileSync(join(d1, 'a.yaml'), "rules:\n  - id: r1\n    source: exit\n    tree: { cause: x, confidence: 0.5, explanation: 'e' }\n");
    writeFileSync(join(d2, 'a.yaml'), "# a comment\nrules:\n- source: exit\n  id: r1\n  tree:\n    explanation: 'e'\n    confidence: 0.5\n    cause: x\n");
    writeFileSync(join(d3, 'a.yaml'), "rules:\n  - id: r1\n    source: exit\n    tree: { cause: y, confidence: 0.5, explanation: 'e' }\n");
    const v = (d: string) => {
      const r = loadRuleFiles(d);
      expect(r.ok, JSON.stringify(r.diagnostics)).toBe(true);
      return r.ok ? r.set.version : '';
    };
    expect(v(d1)).toMatch(/^[0-9a-f]{64}$/);
    expect(v(d1)).toBe(v(d2));
    expect(v(d1)).not.toBe(v(d3));
  });

  it('checks: comments and layout keep the version; a condition change moves it', () => {
    const d = tmp();
    const w = (name: string, text: string) => {
      writeFileSync(join(d, name), text);
      return join(d, name);
    };
    const a = compileFiles([w('a.patrol', 'check c { every 10s; warning load1() > 4; }\n')]);
    const b = compileFiles([w('b/a.patrol'.replace('b/', ''), '// note\ncheck c {\n  every 10s;\n  warning load1() > 4;\n}\n')]);
    mkdirSync(join(d, 'x'));
    const c = compileFiles([w('x/a.patrol', 'check c { every 10s; warning load1() > 5; }\n')]);
    expect(a.version).toMatch(/^[0-9a-f]{64}$/);
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
  });
});

describe('check results and alerts carry the version of the set that produced them', () => {
  const A = 'check steady { every 1s; warning load1() > 1000; }\ncheck flip { every 2s; critical load1() > 3; }\n';
  const B = 'check steady { every 1s; warning load1() > 1000; }\ncheck flip { every 2s; critical load1() > 2; }\n';

  it('50 swaps: every result names exactly one version, the one running when it started; no scheduled run is missed', async () => {
    const sets = [A, B].map((src) => {
      const r = compileSource(src, 'pack.patrol');
      return { checks: r.checks, version: versionOf([['pack.patrol', src]]) };
    });
    const clock = new FakeClock(0);
    const results: CheckResult[] = [];
    const alerts: Alert[] = [];
    // load 2.5: set A is ok, set B is critical, so alerts fire and resolve at the swaps
    const node = { loadavg: () => [2.5, 0, 0] } as never;
    const ex = new Executor({ sources: { events: new EventCounters(), node }, clock, onResult: (r) => results.push(r), onAlert: (a) => alerts.push(a) });
    const active: Array<{ at: number; version: string }> = [];
    const swap = (i: number) => {
      const s = sets[i % 2]!;
      ex.setChecks(s.checks, s.version);
      active.push({ at: clock.now(), version: s.version });
    };
    swap(0);
    ex.start();
    for (let i = 1; i <= 50; i++) {
      await clock.advance(730); // not a multiple of either interval: swaps land between runs
      swap(i);
    }
    await clock.advance(2000);
    ex.stop();
    const versionAt = (t: number) => active.filter((a) => a.at <= t).at(-1)!.version;
    expect(results.length).toBeGreaterThan(50);
    for (const r of results) expect(r.version, `${r.name} at ${r.at}`).toBe(versionAt(r.at));
    // steady is the same in both sets: it keeps its grid, one run per second, none missed
    const steady = results.filter((r) => r.name === 'steady').map((r) => r.at);
    expect(steady).toEqual(Array.from({ length: steady.length }, (_, i) => i * 1000));
    expect(steady.at(-1)).toBeGreaterThanOrEqual(50 * 730);
    // flip changes at every swap: it runs at once under the new set, never waits longer than its interval
    const flip = results.filter((r) => r.name === 'flip').map((r) => r.at);
    for (let i = 1; i < flip.length; i++) expect(flip[i]! - flip[i - 1]!).toBeLessThanOrEqual(2000);
    expect(alerts.length).toBeGreaterThan(10);
    for (const a of alerts) expect(a.version).toBe(versionAt(a.at));
  });
});

// ---------------------------------------------------------------- the coordinator

interface FakeSet extends SetReloader {
  next: { ok: boolean; version: string; code?: string };
  calls: number;
}

function fakeSet(version: string): FakeSet {
  let running: string | null = version;
  const s: FakeSet = {
    next: { ok: true, version },
    calls: 0,
    version: () => running,
    reload() {
      s.calls++;
      if (!s.next.ok) return { ok: false, changed: false, version: running, code: s.next.code ?? 'E_X', diagnostics: ['bad: one pattern'] };
      const changed = s.next.version !== running;
      running = s.next.version;
      return { ok: true, changed, version: running };
    },
  };
  return s;
}

function harness(opts: { sensors?: SensorsReloader | null } = {}) {
  let file = defaultConfig();
  let fileError: Error | null = null;
  const applied: string[][] = [];
  const sections = Object.fromEntries(
    CONFIG_SECTIONS.map((s) => [
      s,
      {
        notLive: (k: string) => (k === 'lifecycle.ring_size' || s === 'api' ? `${k}: not live` : null),
        apply: (_next: AgentConfig, keys: readonly string[]) => {
          if (keys.includes('metrics.sweep_interval') && _next.metrics.sweepMs === 12345) throw Object.assign(new Error('cannot'), { code: 'E_METRICS' });
          applied.push([...keys]);
        },
      } satisfies SectionApplier,
    ]),
  ) as ReloadParts['sections'];
  const rules = fakeSet('r1');
  const checks = fakeSet('c1');
  const parts: ReloadParts = {
    log,
    readConfig: () => {
      if (fileError) throw fileError;
      return file;
    },
    sections,
    sensors: opts.sensors ?? null,
    rules,
    checks,
  };
  const co = new ReloadCoordinator(defaultConfig(), parts);
  return {
    co, rules, checks, applied,
    setFile: (f: AgentConfig) => (file = f),
    setFileError: (e: Error | null) => (fileError = e),
  };
}

describe('ReloadCoordinator', () => {
  it('nothing changed: every part unchanged, ok', async () => {
    const h = harness();
    const r = await h.co.reload({ trigger: 'api' });
    expect(r.ok).toBe(true);
    expect([r.parts.config.result, r.parts.sensors.result, r.parts.rules.result, r.parts.checks.result]).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    expect(r.parts.config.version).toBe(configVersion(defaultConfig()));
    expect(r.parts.rules.version).toBe('r1');
  });

  it('applies live keys, names the others as not live, and keeps their running values', async () => {
    const h = harness();
    const d = defaultConfig();
    h.setFile({ ...d, log: { ...d.log, level: 'debug' }, lifecycle: { ...d.lifecycle, ringBytes: 8 << 20, tableGraceMs: 5000 }, api: { ...d.api, socket: '/tmp/other.sock' } });
    const r = await h.co.reload({ trigger: 'signal' });
    expect(r.ok).toBe(false);
    expect(r.trigger).toBe('signal');
    const s = r.parts.config.sections;
    expect(s.log).toMatchObject({ result: 'applied', keys: ['log.level'], applied: ['log.level'], not_live: [] });
    expect(s.lifecycle).toMatchObject({ result: 'rejected', keys: ['lifecycle.ring_size', 'lifecycle.table_grace'], applied: ['lifecycle.table_grace'], not_live: ['lifecycle.ring_size'], code: 'E_NOT_LIVE' });
    expect(s.lifecycle.reason).toContain('lifecycle.ring_size');
    expect(s.api).toMatchObject({ result: 'rejected', not_live: ['api.socket'], applied: [] });
    expect(r.parts.config.result).toBe('applied');
    expect(r.parts.config.code).toBe('E_NOT_LIVE');
    expect(h.co.config.log.level).toBe('debug');
    expect(h.co.config.lifecycle.tableGraceMs).toBe(5000);
    expect(h.co.config.lifecycle.ringBytes).toBe(d.lifecycle.ringBytes);
    expect(h.co.config.api.socket).toBe(d.api.socket);
    expect(r.parts.config.version).toBe(configVersion(h.co.config));
    expect(h.applied).toEqual([['log.level'], ['lifecycle.table_grace']]);
    // the same file again: what could apply did; what could not is named again
    const again = await h.co.reload({ trigger: 'api' });
    expect(again.parts.config.sections.log.result).toBe('unchanged');
    expect(again.parts.config.sections.lifecycle.not_live).toEqual(['lifecycle.ring_size']);
  });

  it('a config with one bad key is rejected whole, with its code; rules and checks still reload', async () => {
    const h = harness();
    h.rules.next = { ok: true, version: 'r2' };
    const { ConfigError } = await import('../../src/app/config.js');
    h.setFileError(new ConfigError(['/etc/patrol/patrol.yaml: lifecycle.argscap: unknown key (did you mean args_cap?)']));
    const r = await h.co.reload({ trigger: 'api' });
    expect(r.parts.config).toMatchObject({ result: 'rejected', code: 'E_CONFIG', diagnostics: ['/etc/patrol/patrol.yaml: lifecycle.argscap: unknown key (did you mean args_cap?)'] });
    expect(r.parts.rules).toMatchObject({ result: 'applied', version: 'r2', previous_version: 'r1' });
    expect(h.co.config).toEqual(defaultConfig());
    expect(h.co.status().last_reload?.codes).toEqual(['E_CONFIG']);
  });

  it('a rejected rule set keeps the running version and says why', async () => {
    const h = harness();
    h.rules.next = { ok: false, version: 'r2', code: 'E_RULE_PATTERN' };
    const r = await h.co.reload({ trigger: 'api' });
    expect(r.parts.rules).toMatchObject({ result: 'rejected', version: 'r1', previous_version: 'r1', code: 'E_RULE_PATTERN', diagnostics: ['bad: one pattern'] });
    expect(r.parts.checks.result).toBe('unchanged');
    expect(r.ok).toBe(false);
  });

  it('a rules key is reverted when the rules part is rejected', async () => {
    const h = harness();
    const d = defaultConfig();
    h.setFile({ ...d, rules: { ...d.rules, dir: '/etc/patrol/rules2' } });
    h.rules.next = { ok: false, version: 'x', code: 'E_RULE_FILE' };
    const r = await h.co.reload({ trigger: 'api' });
    expect(r.parts.config.sections.rules).toMatchObject({ result: 'rejected', keys: ['rules.dir'], applied: [], code: 'E_RULE_FILE' });
    expect(h.co.config.rules.dir).toBeNull();
  });

  it('a section whose apply throws is rejected with its code', async () => {
    const h = harness();
    const d = defaultConfig();
    h.setFile({ ...d, metrics: { ...d.metrics, sweepMs: 12345 } });
    const r = await h.co.reload({ trigger: 'api' });
    expect(r.parts.config.sections.metrics).toMatchObject({ result: 'rejected', applied: [], code: 'E_METRICS' });
    expect(h.co.config.metrics.sweepMs).toBe(d.metrics.sweepMs);
  });

  it('sensors: loaded again when forced, when their objects changed, or when a key they take changed; a refusal rejects those keys', async () => {
    const calls: string[] = [];
    let onDisk = false;
    let refuse = false;
    let gen = 1;
    const sensors: SensorsReloader = {
      changedOnDisk: () => onDisk,
      takesKey: (k) => k === 'lifecycle.args_cap',
      status: () => ({ version: `s${gen}`, generation: gen }),
      async reload(_cfg, why): Promise<SensorsPartReport> {
        calls.push(why);
        const prev = `s${gen}`;
        if (refuse) return { result: 'rejected', version: prev, previous_version: prev, generation: gen, reason_loaded: why, overlap_ms: null, duplicates: null, sensors: {}, code: 'E_SENSOR_BTF', reason: 'btf_trace_nope is missing' };
        gen++;
        return { result: 'applied', version: `s${gen}`, previous_version: prev, generation: gen, reason_loaded: why, overlap_ms: 3, duplicates: 0, sensors: {} };
      },
    };
    const h = harness({ sensors });
    expect((await h.co.reload({ trigger: 'api' })).parts.sensors.result).toBe('unchanged');
    expect((await h.co.reload({ trigger: 'api', sensors: true })).parts.sensors).toMatchObject({ result: 'applied', generation: 2, reason_loaded: 'forced' });
    onDisk = true;
    expect((await h.co.reload({ trigger: 'api' })).parts.sensors.reason_loaded).toBe('objects');
    onDisk = false;
    const d = defaultConfig();
    h.setFile({ ...d, lifecycle: { ...d.lifecycle, argsCap: 1024 } });
    refuse = true;
    const r = await h.co.reload({ trigger: 'api' });
    expect(r.parts.sensors).toMatchObject({ result: 'rejected', code: 'E_SENSOR_BTF', generation: 3 });
    expect(r.parts.config.sections.lifecycle).toMatchObject({ result: 'rejected', keys: ['lifecycle.args_cap'], applied: [], code: 'E_SENSOR_BTF' });
    expect(h.co.config.lifecycle.argsCap).toBe(d.lifecycle.argsCap);
    refuse = false;
    const ok = await h.co.reload({ trigger: 'api' });
    expect(ok.parts.sensors).toMatchObject({ result: 'applied', reason_loaded: 'config', generation: 4 });
    expect(ok.parts.config.sections.lifecycle.result).toBe('applied');
    expect(h.co.config.lifecycle.argsCap).toBe(1024);
    expect(calls).toEqual(['forced', 'objects', 'config', 'config']);
    expect(h.co.status()).toMatchObject({ generation: 4, reloads: 5, versions: { sensors: 's4' }, last_reload: { overlap_ms: 3, duplicates: 0, ok: true } });
  });

  it('runs reloads one at a time, in the order asked', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sensors: SensorsReloader = {
      changedOnDisk: () => false,
      takesKey: () => false,
      status: () => ({ version: 's', generation: 1 }),
      async reload(): Promise<SensorsPartReport> {
        order.push('sensors-start');
        await gate;
        order.push('sensors-end');
        return { result: 'applied', version: 's', previous_version: 's', generation: 1, reason_loaded: 'forced', overlap_ms: 1, duplicates: 0, sensors: {} };
      },
    };
    const h = harness({ sensors });
    const a = h.co.reload({ trigger: 'api', sensors: true }).then(() => order.push('a'));
    const b = h.co.reload({ trigger: 'signal' }).then(() => order.push('b'));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(['sensors-start']);
    release();
    await Promise.all([a, b]);
    expect(order).toEqual(['sensors-start', 'sensors-end', 'a', 'b']);
  });

  it('what the fleet publishes: each part’s version and since when it runs, the last result', async () => {
    const h = harness();
    const first = h.co.partsRunning();
    expect(first.lastReload).toEqual({ at: null, result: 'none' });
    expect(first.parts.rules.version).toBe('r1');
    expect(first.parts.config.version).toBe(configVersion(defaultConfig()));
    const since0 = first.parts.rules.since;
    await new Promise((r) => setTimeout(r, 5));
    h.rules.next = { ok: true, version: 'r2' };
    const r = await h.co.reload({ trigger: 'api' });
    const after = h.co.partsRunning();
    expect(after.parts.rules).toEqual({ version: 'r2', since: r.at });
    expect(after.parts.checks.since).toBe(since0); // unchanged: still running since start
    expect(after.lastReload).toEqual({ at: r.at, result: 'applied' });
    h.rules.next = { ok: false, version: 'r3', code: 'E_RULE_PATTERN' };
    const bad = await h.co.reload({ trigger: 'signal' });
    expect(h.co.partsRunning().lastReload).toEqual({ at: bad.at, result: 'rejected: E_RULE_PATTERN' });
    expect(h.co.partsRunning().parts.rules).toEqual({ version: 'r2', since: r.at });
  });
});
