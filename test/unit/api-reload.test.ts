// POST /v1/reload and GET /v1/status over the real API server, with the CLI client and its
// human and JSON output (the agent behind is a fake with a real ReloadCoordinator).
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startApi, type ApiHandle } from '../../src/api/index.js';
import { CONFIG_SECTIONS, defaultConfig } from '../../src/app/config.js';
import { ReloadCoordinator, type ReloadParts } from '../../src/app/reload.js';
import { runReload } from '../../src/cli/reload.js';
import { runStatus } from '../../src/cli/status.js';
import { FakeAgent, populate } from './api-fake.js';
import { CONFIG_PART_FIELDS, LAST_RELOAD_FIELDS, PART_FIELDS, SECTION_FIELDS, SENSORS_PART_FIELDS } from '../../src/api/reload.js';

const log = pino({ level: 'silent' });

class Sink extends Writable {
  text = '';
  override _write(c: Buffer, _e: string, cb: () => void) {
    this.text += c.toString();
    cb();
  }
}

function raw(socketPath: string, method: string, path: string, body?: string, type = 'application/json'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, headers: body === undefined ? {} : { 'content-type': type, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t ? JSON.parse(t) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let dir: string;
let sock: string;
let api: ApiHandle;
let rulesOk = true;
let rulesVersion = 'a'.repeat(64);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-api-reload-'));
  sock = join(dir, 'patrol.sock');
  const agent = new FakeAgent();
  populate(agent);
  const sections = Object.fromEntries(CONFIG_SECTIONS.map((s) => [s, { notLive: () => null }])) as ReloadParts['sections'];
  const co = new ReloadCoordinator(defaultConfig(), {
    log,
    readConfig: () => defaultConfig(),
    sections,
    sensors: null,
    rules: {
      version: () => rulesVersion,
      reload: () => (rulesOk ? { ok: true, changed: false, version: rulesVersion } : { ok: false, changed: false, version: rulesVersion, code: 'E_RULE_PATTERN', diagnostics: ['r.yaml:3:14: E_RULE_PATTERN: invalid RE2 pattern \x1b[2J'] }),
    },
    checks: { version: () => null, reload: () => ({ ok: true, changed: false, version: null }) },
  });
  Object.assign(agent, { reload: (req: { sensors?: boolean }) => co.reload({ trigger: 'api', ...req }), reloadStatus: () => co.status() });
  api = await startApi(agent, { socket: sock, log });
});

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/reload, GET /v1/status', () => {
  it('reloads with an empty body or none, and rejects unknown fields', async () => {
    const a = await raw(sock, 'POST', '/v1/reload', '{}');
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ ok: true, trigger: 'api', parts: { config: { result: 'unchanged' }, sensors: { result: 'unchanged' }, rules: { result: 'unchanged', version: rulesVersion }, checks: { result: 'unchanged', version: null } } });
    expect(a.body.parts.config.sections.log).toEqual({ result: 'unchanged', keys: [], applied: [], not_live: [] });
    const none = await raw(sock, 'POST', '/v1/reload');
    expect(none.status).toBe(200);
    const bad = await raw(sock, 'POST', '/v1/reload', '{"sensor":true}');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain("unknown parameter 'sensor'");
    // --sensors on an agent without reloadable sensors: refused with a code
    const forced = await raw(sock, 'POST', '/v1/reload', '{"sensors":true}');
    expect(forced.body.parts.sensors).toMatchObject({ result: 'rejected', code: 'E_SENSOR_UNAVAILABLE' });
    expect(forced.body.ok).toBe(false);
    expect((await raw(sock, 'GET', '/v1/reload')).status).toBe(404);
    // every field served is a documented one (docs/api.md; api-docs.test.ts holds the docs to these lists)
    const within = (o: object, allowed: readonly string[]) => expect(Object.keys(o).filter((k) => !allowed.includes(k))).toEqual([]);
    const p = forced.body.parts;
    within(p.config, [...PART_FIELDS, ...CONFIG_PART_FIELDS]);
    within(p.sensors, [...PART_FIELDS, ...SENSORS_PART_FIELDS]);
    within(p.rules, PART_FIELDS);
    within(p.checks, PART_FIELDS);
    for (const sec of Object.values(p.config.sections)) within(sec as object, SECTION_FIELDS);
    const st = await raw(sock, 'GET', '/v1/status');
    within(st.body.last_reload, LAST_RELOAD_FIELDS);
  });

  it('patrol reload: one line per part, exit 1 when a part is rejected, escapes what it prints', async () => {
    rulesOk = false;
    const out = new Sink();
    process.exitCode = 0;
    const r = await runReload({ socket: sock }, out);
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    expect(r.parts.rules).toMatchObject({ result: 'rejected', code: 'E_RULE_PATTERN', version: rulesVersion });
    expect(out.text).toMatch(/^reload REJECTED in part \(/);
    expect(out.text).toMatch(/\n {2}rules {4}rejected {2}aaaaaaaaaaaa {2}E_RULE_PATTERN\n/);
    expect(out.text).toContain('invalid RE2 pattern \\x1b[2J');
    expect(out.text).not.toContain('\x1b');
    const json = new Sink();
    await runReload({ socket: sock, json: true }, json);
    expect(JSON.parse(json.text).parts.rules.diagnostics).toEqual(['r.yaml:3:14: E_RULE_PATTERN: invalid RE2 pattern \x1b[2J']);
    process.exitCode = 0;
    rulesOk = true;
  });

  it('status: versions, generation and the last reload', async () => {
    rulesVersion = 'b'.repeat(64);
    await raw(sock, 'POST', '/v1/reload', '{}');
    const s = await raw(sock, 'GET', '/v1/status');
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ versions: { rules: rulesVersion, checks: null, sensors: null }, generation: 0, last_reload: { ok: true, trigger: 'api', results: { config: 'unchanged', sensors: 'unchanged', rules: 'unchanged', checks: 'unchanged' }, codes: [], overlap_ms: null } });
    expect(s.body.versions.config).toMatch(/^[0-9a-f]{64}$/);
    expect(s.body.reloads).toBeGreaterThanOrEqual(4);
    const out = new Sink();
    await runStatus({ socket: sock }, out);
    expect(out.text).toContain(`versions   config ${s.body.versions.config.slice(0, 12)} · sensors - (generation 0) · rules bbbbbbbbbbbb · checks -\n`);
    expect(out.text).toMatch(/\nreload {5}\S+ \(api\): ok in [\d.]+ ms: config unchanged, sensors unchanged, rules unchanged, checks unchanged\n/);
    const json = new Sink();
    await runStatus({ socket: sock, json: true }, json);
    expect(JSON.parse(json.text).reload).toMatchObject({ generation: 0, versions: { rules: rulesVersion } });
    process.exitCode = 0;
  });
});
