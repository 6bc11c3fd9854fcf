// patrol check (run once, exit codes, --json, --validate), --replay of a recording (deterministic),
// the agent's check service (atomic reload), and patrol results / alerts through the API.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import { CheckService, factFromRecord } from '../../src/app/checks.js';
import { CheckStore } from '../../src/store/index.js';
import { startApi } from '../../src/api/index.js';
import { ApiClient } from '../../src/cli/client.js';
import { FakeAgent } from './api-fake.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-checks-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function check(paths: string[], opts: Parameters<typeof runCheck>[1] = {}) {
  const out = new Capture();
  const err = new Capture();
  const code = await runCheck(paths, opts, out, err);
  return { code, out: out.text, err: err.text };
}

describe('patrol check', () => {
  it('exit codes follow the monitoring-plugin convention; the worst state wins', async () => {
    expect((await check([file('ok.patrol', 'check uptime < 0s;')])).code).toBe(0);
    expect((await check([file('w.patrol', 'check w { warning uptime > 0s; }')])).code).toBe(1);
    expect((await check([file('c.patrol', 'check uptime > 0s;\ncheck w { warning uptime > 0s; }')])).code).toBe(2);
    expect((await check([file('u.patrol', 'check file_age("/nonexistent/x") > 1h;')])).code).toBe(3);
    expect((await check([file('t.patrol', 'check count(exit, 1m) > 0;')])).code).toBe(3); // no events standalone
  });

  it('--json prints each result with name, state and evidence', async () => {
    const r = await check([file('j.patrol', 'check up { critical uptime > 0s; labels a = "b"; }')], { json: true });
    const results = JSON.parse(r.out) as { name: string; state: string; evidence: { values: { field: string; value: number }[] } }[];
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ name: 'up', state: 'critical', labels: { a: 'b' } });
    expect(results[0]!.evidence.values[0]!.field).toBe('uptime');
    expect(results[0]!.evidence.values[0]!.value).toBeGreaterThan(0);
  });

  it('--validate reports diagnostics only; bad files are not run (exit 3)', async () => {
    const bad = file('bad.patrol', 'check disk_usge > 90%;\n');
    const v = await check([bad], { validate: true });
    expect(v.code).toBe(1);
    expect(v.err).toContain("bad.patrol:1:7: error PD2001: unknown field 'disk_usge'; did you mean 'disk_usage'?");
    expect(v.err).toContain('^^^^^^^^^');
    const j = await check([bad], { validate: true, json: true });
    expect(JSON.parse(j.out)).toMatchObject({ ok: false, diagnostics: [{ code: 'PD2001', line: 1, col: 7, severity: 'error' }] });
    expect((await check([bad])).code).toBe(3);
    const jr = await check([bad], { json: true });
    expect([jr.code, JSON.parse(jr.out)]).toEqual([3, []]);
    expect(jr.err).toContain('PD2001');
    expect((await check([join(dir, 'missing.patrol')], { validate: true })).err).toContain('PD1000');
  });

  it('checks of the agent\'s own figures are named and skipped standalone; alone, nothing ran: exit 3', async () => {
    const mixed = await check([file('agent.patrol', 'check lost { every 1s; warning events_lost(1m) > 0; }\ncheck up { critical uptime < 0s; }\n')], { json: true });
    expect(mixed.code).toBe(0);
    expect((JSON.parse(mixed.out) as { name: string }[]).map((r) => r.name)).toEqual(['up']);
    expect(mixed.err).toContain("lost: reads the agent's own figures; run by patrol agent --checks, skipped here");
    const alone = await check([file('agent2.patrol', 'check lost { every 1s; warning events_lost(1m) > 0; }\n')]);
    expect(alone.code).toBe(3);
  });

  it('the default pack validates and runs on this machine', async () => {
    const r = await check([join(process.cwd(), 'checks')], { json: true });
    const results = JSON.parse(r.out) as { name: string; state: string }[];
    expect(results.length).toBeGreaterThanOrEqual(10);
    expect(results.filter((x) => x.state === 'unknown' || x.state === 'timeout')).toEqual([]);
  });
});

describe('patrol check --replay', () => {
  const T0 = 1_000_000_000_000n; // ktime ns
  const rec = (type: string, sec: number, extra: Record<string, unknown>) =>
    JSON.stringify({ type, time: new Date(Date.UTC(2026, 0, 1) + sec * 1000).toISOString(), ktime_ns: (T0 + BigInt(sec) * 1_000_000_000n).toString(), ...extra });

  it('evaluates event-based checks on the recording clock, deterministically', async () => {
    const lines = [JSON.stringify({ type: 'ready', time: '2026-01-01T00:00:00.000Z', schema: 1 })];
    // a worker fails every 20 s for two minutes, then stops failing
    for (let s = 0; s <= 120; s += 20) lines.push(rec('exit', s, { pid: 100 + s, tid: 100 + s, ppid: 1, comm: 'worker', exit_code: 1, signal: null }));
    lines.push(rec('exit', 130, { pid: 999, tid: 999, ppid: 1, comm: 'other', exit_code: 1, signal: null }));
    lines.push(rec('exec', 600, { pid: 5, ppid: 1, comm: 'sh', filename: '/bin/sh' }));
    const recording = file('rec.ndjson', lines.join('\n') + '\n');
    const checks = file('ev.patrol', 'check workers { every 30s; critical count(exit where exit_code != 0 and comm == "worker", 1m) >= 3; }\ncheck disk_usage > 1%;\n');
    const a = await check([checks], { replay: recording });
    const b = await check([checks], { replay: recording });
    expect(a.out).toBe(b.out);
    expect(a.err).toContain('skipped: disk_usage > 1%');
    const alertLines = a.out.split('\n').filter((l) => /firing|resolved/.test(l));
    expect(alertLines).toHaveLength(2);
    expect(alertLines[0]).toMatch(/^2026-01-01T00:01:00.000Z  firing +workers/);
    expect(alertLines[1]).toMatch(/^2026-01-01T00:02:30.000Z  resolved +workers/);
    expect(a.code).toBe(0); // ok at the end of the recording
    const j = JSON.parse((await check([checks], { replay: recording, json: true })).out) as { results: { name: string; state: string }[]; alerts: unknown[]; events: number };
    expect(j.events).toBe(9);
    expect(j.alerts).toHaveLength(2);
  });

  it('nothing to replay is not a success: no event-based check exits 3; an event record without ktime_ns is an error', async () => {
    const recording = file('rec2.ndjson', rec('exit', 1, { pid: 1, tid: 1, comm: 'x', exit_code: 1, signal: null }) + '\n');
    const plain = file('plain.patrol', 'check disk_usage > 1%;\n');
    const r = await check([plain], { replay: recording });
    expect(r.code).toBe(3);
    expect(r.err).toContain('no check in these files reads events');
    const bad = file('rec3.ndjson', JSON.stringify({ type: 'exit', time: '2026-01-01T00:00:00.000Z', pid: 1, tid: 1, exit_code: 1 }) + '\n');
    const ev = file('ev2.patrol', 'check c { every 30s; critical count(exit, 1m) > 0; }\n');
    await expect(check([ev], { replay: bad })).rejects.toThrow(/rec3\.ndjson:1: exit record without ktime_ns/);
  });

  it('a PATH-search probe in a recording is not a failed exec', () => {
    expect(factFromRecord({ type: 'exec_failed', ktime_ns: '2000000', pid: 3, errno: 2, path_probe: true })).toBeNull();
    expect(factFromRecord({ type: 'exec_failed', ktime_ns: '2000000', pid: 3, errno: 2, path_probe: false })).toMatchObject({ kind: 'exec_failed' });
  });

  it('maps NDJSON records to event facts', () => {
    expect(factFromRecord({ type: 'exit', ktime_ns: '2000000', pid: 1, tid: 2, exit_code: 0 })).toBeNull(); // a thread exit
    expect(factFromRecord({ type: 'fork', ktime_ns: '2000000', pid: 1, thread: true })).toBeNull();
    expect(factFromRecord({ type: 'exit', ktime_ns: '2000000', pid: 7, tid: 7, exit_code: null, signal: 9, usage: { max_rss_kb: 2 } })).toMatchObject({
      kind: 'exit', t: 2, f: { exit_code: null, signal: 9, failed: true, max_rss: 2048 },
    });
  });
});

describe('agent check service and API', () => {
  it('a firing alert is stored with the attribution engine\'s causes; a resolution without', async () => {
    const d = mkdtempSync(join(dir, 'attr-'));
    writeFileSync(join(d, 'a.patrol'), 'check up { critical uptime > 0s; }\n');
    const store = CheckStore.open(join(d, 'store.db'), { runs: { maxAgeMs: 0, maxRows: 0 }, alerts: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 1000 });
    const asked: string[] = [];
    const svc = new CheckService({
      dir: d, log: pino({ level: 'silent' }), store, concurrency: 1,
      attribute: (a) => (asked.push(a.id), { causes: [{ cause: 'oom_cgroup_limit', confidence: 0.9, explanation: 'x', evidence: [] }] }),
    });
    expect(svc.reload('test')).toMatchObject({ ok: true });
    await svc.executor.runAll();
    store.flush();
    const [alert] = store.queryAlerts({ limit: 10 });
    expect(alert!.kind).toBe('firing');
    expect(asked).toEqual([alert!.id]);
    expect(alert!.attribution).toEqual({ causes: [expect.objectContaining({ cause: 'oom_cgroup_limit', confidence: 0.9 })] });
    store.close();
  });

  it('reload swaps a good set atomically and keeps the old set when the new one is bad', async () => {
    const d = mkdtempSync(join(dir, 'svc-'));
    writeFileSync(join(d, 'a.patrol'), 'check up { critical uptime > 0s; }\n');
    const store = CheckStore.open(join(d, 'store.db'), { runs: { maxAgeMs: 0, maxRows: 0 }, alerts: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 1000 });
    const svc = new CheckService({ dir: d, log: pino({ level: 'silent' }), store, concurrency: 2 });
    expect(svc.reload('test')).toMatchObject({ ok: true, checks: 1 });
    writeFileSync(join(d, 'b.patrol'), 'check broken { critical lod1 > 2; }\ncheck fine { critical load1 > 1000; }\n');
    const bad = svc.reload('test');
    expect(bad).toMatchObject({ ok: false, errors: 1 });
    expect(bad.diagnostics[0]).toContain("did you mean 'load1'");
    expect(svc.executor.checks.map((c) => c.name)).toEqual(['up']); // the old set runs on
    writeFileSync(join(d, 'b.patrol'), 'check fine { critical load1 > 1000; }\n');
    expect(svc.reload('test')).toMatchObject({ ok: true, checks: 2 });
    await svc.executor.runAll();
    store.flush();

    // served through the API to patrol results / alerts
    const agent = new FakeAgent();
    const sock = join(d, 'api.sock');
    (agent as { checks?: unknown }).checks = {
      status: () => ({ dir: d, checks: [], last_reload: svc.lastReload }),
      results: (q: Parameters<CheckStore['queryRuns']>[0]) => store.queryRuns(q),
      alerts: (q: Parameters<CheckStore['queryAlerts']>[0]) => store.queryAlerts(q),
    };
    // alerts come from the executor's onAlert: record one directly as the service would
    store.recordAlert({ id: 'abcdef0123456789', check_id: svc.executor.checks[0]!.id, name: 'up', kind: 'firing', state: 'critical', previous: 'ok', at: 1, message: 'm', labels: {}, evidence: {} });
    store.flush();
    const api = await startApi(agent, { socket: sock, log: pino({ level: 'silent' }) });
    try {
      const client = new ApiClient(sock);
      const r = await client.get<{ results: { name: string; state: string }[] }>('/checks/results', { latest: true });
      expect(r.results.map((x) => [x.name, x.state]).sort()).toEqual([
        ['fine', 'ok'],
        ['up', 'critical'],
      ]);
      const al = await client.get<{ alerts: { id: string; kind: string }[] }>('/alerts');
      expect(al.alerts[0]).toMatchObject({ id: 'abcdef0123456789', kind: 'firing' });
      await expect(client.get('/checks/results', { state: 'bogus' })).rejects.toThrow(/state must be one of/);
      const st = await client.get<{ last_reload: { ok: boolean } }>('/checks');
      expect(st.last_reload.ok).toBe(true);
    } finally {
      await api.close();
      svc.close();
      store.close();
    }
  });

  it('the API says clearly when the agent runs no checks', async () => {
    const sock = join(dir, 'nochecks.sock');
    const api = await startApi(new FakeAgent(), { socket: sock, log: pino({ level: 'silent' }) });
    try {
      await expect(new ApiClient(sock).get('/alerts')).rejects.toThrow(/runs no checks/);
    } finally {
      await api.close();
    }
  });
});
