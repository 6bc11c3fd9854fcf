// Issue 17's parts under hot reload (issue 13): `alerts.*`, `export.*` and `identity.*` apply
// live through `patrol reload`'s entry point. The real coordinator reads a real config file and
// drives the real integrations (src/app/integrations.ts): new outputs, redactor, OTLP exporter or
// CRI client are built first and swapped in; a set that cannot be built is rejected whole and
// the running one keeps working. The outbox table stays: what waits for an output that is still
// configured is delivered after the swap, once.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReloadCoordinator } from '../../src/app/reload.js';
import { buildReloadParts } from '../../src/app/live.js';
import { loadConfig } from '../../src/app/config.js';
import { startIntegrations, type AgentIntegrations } from '../../src/app/integrations.js';
import type { Alert } from '../../src/checks/index.js';
import { ProcessTable } from '../../src/process/index.js';
import type { ExecEvent } from '../../src/shared/events.js';
import { createLogger } from '../../src/shared/log.js';

const log = createLogger({ level: 'silent' as 'error' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  for (const end = Date.now() + ms; ; await sleep(10)) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

let n = 0;
function alert(): Alert {
  n++;
  return {
    id: (0xa000 + n).toString(16).padStart(16, '0'), check_id: n.toString(16).padStart(16, 'c'), name: 'load', kind: 'firing', state: 'critical', previous: 'ok',
    at: 1_700_000_000_000 + n, message: 'mysql --secret-flag hunter2 failed', labels: { team: 'sre' }, evidence: { conditions: [], values: [] },
  };
}

function execOf(pid: number, args: string[]): ExecEvent {
  const t = (text: string) => ({ text });
  return {
    type: 'exec', ktimeNs: 1_000_000_000n, seq: 0n, cpu: 0, flags: 0, pid, oldTid: pid, ppid: 1, startNs: 900_000_000n, parentStartNs: 1n, cgroupId: 0n,
    uid: 0, gid: 0, euid: 0, comm: t(args[0]!), filename: t(`/usr/bin/${args[0]}`), filenameTruncated: false, args: args.map(t), argsTruncated: false,
    argsFault: false, argsFullLen: args.join('\0').length + 1,
  };
}

/** An HTTP receiver recording bodies; answers each request with the next status of `plan`. */
async function receiver(plan: number[] = []): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const status = plan.shift() ?? 200;
      if (status < 400) bodies.push(raw);
      res.writeHead(status, { 'content-type': 'application/json' }).end(status >= 400 ? 'nope' : '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, close: () => new Promise((r) => server.close(() => r())) };
}

describe('alerts, export and identity apply live on reload', () => {
  let dir: string;
  let configPath: string;
  let integ: AgentIntegrations;
  let co: ReloadCoordinator;
  let table: ProcessTable;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let otlp: Awaited<ReturnType<typeof receiver>>;
  let otlp2: Awaited<ReturnType<typeof receiver>>;
  const fileA = () => join(dir, 'a.ndjson');
  const base = () => `store: { path: ${join(dir, 'patrol.db')} }
rules: { enabled: false }
`;
  const write = (text: string) => writeFileSync(configPath, base() + text);
  const reload = () => co.reload({ trigger: 'api' });
  const masked = () => integ.tableHooks.redactArgv!([{ text: 'mysql' }, { text: '--secret-flag' }, { text: 'hunter2' }])?.map((a) => a.text) ?? null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-reload-integ-'));
    configPath = join(dir, 'patrol.yaml');
    // the webhook fails its first two requests: those alerts wait in the outbox across a reload
    hook = await receiver([500, 500]);
    otlp = await receiver();
    otlp2 = await receiver();
    write(`alerts:
  retry: { initial: 10ms, max: 100ms }
  outputs:
    - { type: file, path: ${fileA()}, group_wait: 0s }
export: { redact_defaults: false }
identity: { cri_socket: null }
`);
    const cfg = loadConfig({ path: configPath });
    integ = await startIntegrations(cfg, log);
    // the process table, with the hooks the agent gives it; a process it knows before the reload
    table = new ProcessTable({ bootId: '0f6c9c1e-5b0e-4d7e-a1c2-6d3f4e5a6b7c', now: () => 2_000_000_000n, ...integ.tableHooks });
    table.apply(execOf(4_000_001, ['mysql', '--secret-flag', 'hunter2']));
    const stub = {} as never;
    co = new ReloadCoordinator(
      cfg,
      buildReloadParts({
        log, loadOpts: { path: configPath }, store: stub, table, states: null, sensors: null, slots: { rules: null, checks: null, resources: null },
        startRules: () => stub, startChecks: () => null, startResources: async () => stub, integrations: integ,
      }),
    );
  });

  afterAll(async () => {
    await integ?.close();
    await Promise.all([hook?.close(), otlp?.close(), otlp2?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('before: alerts go to the file output, nothing is redacted, no OTLP', async () => {
    const a = alert();
    expect(integ.deliver(a, null)).toMatchObject({ id: a.id });
    await until('the alert in the file', () => existsSync(fileA()) && readFileSync(fileA(), 'utf8').includes(a.id));
    expect(masked()).toBeNull();
    expect(table.byPid(4_000_001)?.argv?.map((a) => a.text)).toEqual(['mysql', '--secret-flag', 'hunter2']);
    expect(integ.stats().export).not.toHaveProperty('otlp');
  });

  it('outputs, redaction, OTLP and the CRI socket change in one reload; each section says applied', async () => {
    write(`alerts:
  retry: { initial: 10ms, max: 100ms }
  outputs:
    - { type: webhook, name: hook, url: "${hook.url}/hook", group_wait: 0s }
export:
  redact_defaults: false
  redact: ['(--secret-flag )\\S+']
  otlp: { endpoint: "${otlp.url}", protocol: http/json, interval: 1s }
identity: { cri_socket: ${join(dir, 'cri.sock')} }
`);
    const r = await reload();
    expect(r.ok, JSON.stringify(r.parts.config)).toBe(true);
    const s = r.parts.config.sections;
    expect(s.alerts).toMatchObject({ result: 'applied', keys: ['alerts.outputs'], applied: ['alerts.outputs'], not_live: [] });
    expect(s.export).toMatchObject({ result: 'applied', not_live: [] });
    expect(s.export.applied).toEqual(expect.arrayContaining(['export.redact', 'export.otlp.endpoint', 'export.otlp.protocol']));
    expect(s.identity).toMatchObject({ result: 'applied', applied: ['identity.cri_socket'] });
    expect(co.config.alerts.outputs.map((o) => o.name)).toEqual(['hook']);

    // redaction: the exec path masks with the new patterns at once, and the argv of a process
    // the table already held is masked too
    expect(masked()).toEqual(['mysql', '--secret-flag', '****']);
    const known = table.byPid(4_000_001)!;
    expect(known.argv?.map((a) => a.text)).toEqual(['mysql', '--secret-flag', '****']);
    expect(known.argsRedacted).toBe(true);
    // alerts: to the webhook (after its two failures, retried), not to the file; strings redacted
    const a = alert();
    integ.deliver(a, null);
    const body = await until('the webhook to get the alert', () => hook.bodies.find((b) => b.includes(a.id)));
    expect(body).not.toContain('hunter2');
    expect(JSON.parse(body).alerts[0].message).toBe('mysql --secret-flag **** failed');
    expect(readFileSync(fileA(), 'utf8')).not.toContain(a.id);
    // OTLP: the alert as a log record
    await until('the alert at the OTLP receiver', () => otlp.bodies.some((b) => b.includes(a.id)));
    const st = integ.stats();
    expect(st.export).toMatchObject({ redaction: { patterns: 1 }, identity: { cri: { socket: join(dir, 'cri.sock'), state: 'idle' } }, otlp: { endpoint: otlp.url } });
    expect(Object.keys(st.alerts ?? {})).toEqual(['hook']);
  });

  it('a new output set that cannot be built is rejected whole; the running outputs keep delivering', async () => {
    const cfgText = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, cfgText.replace(`- { type: webhook, name: hook, url: "${hook.url}/hook", group_wait: 0s }`, `- { type: webhook, name: hook, url: "${hook.url}/hook", group_wait: 0s }
    - { type: webhook, name: signed, url: "${hook.url}/signed", hmac_secret_file: ${join(dir, 'missing.key')} }`));
    const r = await reload();
    expect(r.ok).toBe(false);
    expect(r.parts.config.sections.alerts).toMatchObject({ result: 'rejected', applied: [], code: 'E_CONFIG', reason: expect.stringContaining('missing.key') });
    expect(co.config.alerts.outputs.map((o) => o.name)).toEqual(['hook']);
    const a = alert();
    integ.deliver(a, null);
    await until('the running webhook to get the alert', () => hook.bodies.some((b) => b.includes(a.id)));
    writeFileSync(configPath, cfgText);
  });

  it('what waits in the outbox for an output that stays is delivered after the swap, once', async () => {
    // the webhook refuses for a while: the alert waits in the outbox (retries)
    const refusing = await receiver(Array(1000).fill(503));
    const cfgText = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, cfgText.replace(`url: "${hook.url}/hook"`, `url: "${refusing.url}/hook"`));
    expect((await reload()).parts.config.sections.alerts.result).toBe('applied');
    const a = alert();
    integ.deliver(a, null);
    await until('a failed attempt', () => (integ.stats().alerts?.hook?.failures ?? 0) > 0);
    expect(integ.stats().alerts?.hook?.pending).toBe(1);
    // same output name, the receiver that answers: the queued row goes there, once
    writeFileSync(configPath, cfgText.replace('group_wait: 0s }', 'group_wait: 0s, rate_limit: 100 }'));
    const r = await reload();
    expect(r.parts.config.sections.alerts).toMatchObject({ result: 'applied', applied: ['alerts.outputs'] });
    await until('the queued alert at the webhook', () => hook.bodies.some((b) => b.includes(a.id)));
    await sleep(300);
    expect(hook.bodies.filter((b) => b.includes(a.id))).toHaveLength(1);
    expect(integ.stats().alerts?.hook?.pending).toBe(0);
    await refusing.close();
  });

  it('OTLP moves to another endpoint; removing every output leaves the OTLP log of alerts', async () => {
    const cfgText = readFileSync(configPath, 'utf8');
    writeFileSync(
      configPath,
      cfgText
        .replace(`endpoint: "${otlp.url}"`, `endpoint: "${otlp2.url}"`)
        .replace(/ {2}outputs:\n(?: {4}- .*\n)+/, '  outputs: []\n'),
    );
    const r = await reload();
    expect(r.ok, JSON.stringify(r.parts.config.sections)).toBe(true);
    expect(r.parts.config.sections.export.applied).toEqual(['export.otlp.endpoint']);
    expect(r.parts.config.sections.alerts.applied).toEqual(['alerts.outputs']);
    const a = alert();
    expect(integ.deliver(a, null)).toMatchObject({ id: a.id });
    await until('the alert at the new OTLP endpoint', () => otlp2.bodies.some((b) => b.includes(a.id)));
    expect(otlp.bodies.some((b) => b.includes(a.id))).toBe(false);
    expect(integ.stats().alerts).toBeUndefined();
    expect(integ.stats().export).toMatchObject({ otlp: { endpoint: otlp2.url } });
  });

  it('the running configuration and its version follow what was applied', async () => {
    const again = await reload();
    expect(again.parts.config.result).toBe('unchanged');
    expect(co.config.export.otlp?.endpoint).toBe(otlp2.url);
    expect(co.config.identity.criSocket).toBe(join(dir, 'cri.sock'));
  });
});
