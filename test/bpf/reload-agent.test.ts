// `patrol reload` against a running agent (real kernel): the CLI, POST /v1/reload and SIGHUP;
// each part applied, unchanged or rejected with its code in the reply and the log; sensors
// reloaded when forced and when their objects changed in agent.bpf_dir; `patrol status` with
// the versions and the generation; nothing lost through it all.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, marker, run, sleep } from './helpers.js';
import { BUILT, VARIANTS, buildVariants } from './reload-helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
const RULES = fileURLToPath(new URL('../../rules', import.meta.url));

interface Paths {
  dir: string;
  socket: string;
  config: string;
  rules: string;
  checks: string;
  bpf: string;
  log: string;
}

function cli(p: Paths, ...args: string[]): { code: number | null; out: string; err: string; json: any } {
  const r = spawnSync(PATROL, [...args, '--socket', p.socket], { encoding: 'utf8', timeout: 120_000 });
  let json: unknown = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* human output */
  }
  return { code: r.status, out: r.stdout, err: r.stderr, json };
}

describe.skipIf(!bpfEnabled)('patrol reload against the agent (real kernel)', () => {
  let p: Paths;
  let agent: ChildProcess;
  let agentLog = '';
  const config = (extra = '') =>
    `store: { path: ${p.dir}/patrol.db, flush_interval: 50ms }\napi: { socket: ${p.socket} }\n` +
    `agent: { lock_file: ${p.dir}/patrol.pid, pin_dir: /sys/fs/bpf/patrol-reload-${process.pid}, bpf_dir: ${p.bpf} }\n` +
    `log: { level: info, format: json }\nrules: { dir: ${p.rules}, kmsg: false }\nchecks: { dir: ${p.checks} }\n` +
    `metrics: { sweep_interval: 500ms, prometheus: { port: 0 } }\n${extra}`;

  beforeAll(async () => {
    buildVariants();
    const dir = mkdtempSync(join(tmpdir(), 'patrol-reload-agent-'));
    chmodSync(dir, 0o755);
    p = { dir, socket: join(dir, 'patrol.sock'), config: join(dir, 'patrol.yaml'), rules: join(dir, 'rules'), checks: join(dir, 'checks'), bpf: join(dir, 'bpf'), log: '' };
    cpSync(RULES, p.rules, { recursive: true });
    mkdirSync(p.checks);
    writeFileSync(join(p.checks, 'a.patrol'), 'check execs { every 1s; warning rate(exec, 10s) > 1000000/s; }\n');
    mkdirSync(p.bpf);
    copyFileSync(join(BUILT, 'lifecycle.bpf.o'), join(p.bpf, 'lifecycle.bpf.o'));
    copyFileSync(join(BUILT, 'state.bpf.o'), join(p.bpf, 'state.bpf.o'));
    writeFileSync(p.config, config());
    agent = spawn(PATROL, ['agent', '--config', p.config], { stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d) => (agentLog += d));
    agent.stderr!.on('data', (d) => (agentLog += d));
    for (let i = 0; i < 300 && cli(p, 'status', '--json').code !== 0 && cli(p, 'status', '--json').code !== 2; i++) await sleep(100);
  }, 120_000);

  afterAll(async () => {
    agent?.kill('SIGTERM');
    await new Promise((r) => (agent?.exitCode !== null ? r(null) : agent.once('exit', r)));
  });

  it('nothing changed: every part unchanged, exit 0', () => {
    const r = cli(p, 'reload', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.json).toMatchObject({ ok: true, trigger: 'api', parts: { config: { result: 'unchanged' }, sensors: { result: 'unchanged', generation: 0 }, rules: { result: 'unchanged' }, checks: { result: 'unchanged' } } });
    for (const part of ['config', 'sensors', 'rules', 'checks']) expect(r.json.parts[part].version).toMatch(/^[0-9a-f]{64}$/);
  });

  it('--sensors: make-before-break, a new generation, the events keep coming', async () => {
    const r = cli(p, 'reload', '--sensors', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.json.parts.sensors).toMatchObject({ result: 'applied', generation: 1, reason_loaded: 'forced', duplicates: 0 });
    expect(r.json.parts.sensors.overlap_ms).toBeGreaterThan(0);
    expect(r.json.parts.sensors.sensors.lifecycle.maps_reused).toContain('pt_events');
    const m = marker();
    await run('/bin/sh', ['-c', `exec /bin/true ${m}`]);
    await sleep(300);
    const ps = cli(p, 'status', '--json');
    expect(ps.json.reload).toMatchObject({ generation: 1, last_reload: { ok: true, results: { sensors: 'applied' } } });
    expect(ps.json.accounting.identity_holds).toBe(true);
    expect(ps.json.programs).toContain('handle_exec');
    // the successor's consumer drains at the unwatched interval (nobody follows the stream), in
    // the agent's ticker's wakeups as its predecessor did
    expect(ps.json.ring).toMatchObject({ interval_ms: 1000, paced: true });
  });

  it('new objects in agent.bpf_dir: loaded again on reload ("objects"); the human output says so', () => {
    copyFileSync(join(VARIANTS, 'lifecycle-variant.bpf.o'), join(p.bpf, 'lifecycle.bpf.o'));
    const r = cli(p, 'reload');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^reload ok \(/);
    expect(r.out).toMatch(/\n {2}sensors {2}applied {3}[0-9a-f]{12} {2}generation 2 · loaded: objects · overlap [\d.]+ ms · duplicates removed 0\n/);
    expect(r.out).toMatch(/\n {11}lifecycle: applied · overlap [\d.]+ ms · \d+ maps reused\n/);
  });

  it('an object the verifier rejects: sensors rejected with its code, the running ones stay', () => {
    copyFileSync(join(VARIANTS, 'lifecycle-verifier-reject.bpf.o'), join(p.bpf, 'lifecycle.bpf.o'));
    const r = cli(p, 'reload', '--json');
    expect(r.code).toBe(1);
    expect(r.json.parts.sensors).toMatchObject({ result: 'rejected', code: 'E_SENSOR_VERIFIER', generation: 2 });
    expect(r.json.parts.sensors.reason).toContain('handle_verifier_reject');
    // back to what runs: the next reloads find nothing new on disk
    copyFileSync(join(VARIANTS, 'lifecycle-variant.bpf.o'), join(p.bpf, 'lifecycle.bpf.o'));
  });

  it('a rule file with one bad pattern: rules rejected with E_PATTERN_SYNTAX, the running set stays; then fixed', async () => {
    const before = cli(p, 'status', '--json').json.reload.versions.rules;
    const f = join(p.rules, 'zz-bad.yaml');
    writeFileSync(f, "rules:\n  - id: bad\n    source: kmsg\n    pattern: '(unclosed'\n    tree: { cause: x, confidence: 0.5, explanation: 'e' }\n");
    const r = cli(p, 'reload', '--json');
    expect(r.code).toBe(1);
    expect(r.json.parts.rules).toMatchObject({ result: 'rejected', code: 'E_PATTERN_SYNTAX', version: before, previous_version: before });
    expect(r.json.parts.rules.diagnostics[0]).toContain('zz-bad.yaml:4');
    const human = cli(p, 'reload');
    expect(human.out).toMatch(/\n {2}rules {4}rejected {2}[0-9a-f]{12} {2}E_PATTERN_SYNTAX\n/);
    writeFileSync(f, "rules:\n  - id: good\n    source: kmsg\n    pattern: 'patrol-test-line'\n    tree: { cause: x, confidence: 0.5, explanation: 'e' }\n");
    const ok = cli(p, 'reload', '--json');
    expect(ok.json.parts.rules).toMatchObject({ result: 'applied', previous_version: before });
    expect(ok.json.parts.rules.version).not.toBe(before);
    // the log says it too (the agent's log is written asynchronously)
    for (let i = 0; i < 50 && !agentLog.includes('"codes":["E_PATTERN_SYNTAX"]'); i++) await sleep(100);
    const line = agentLog.split('\n').find((l) => l.includes('"codes":["E_PATTERN_SYNTAX"]'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 50, rules: 'rejected', rejected: { rules: expect.stringContaining('E_PATTERN_SYNTAX: ') } });
  });

  it('a config with one bad key: rejected whole with E_CONFIG; a good one applies live, not-live keys named', async () => {
    writeFileSync(p.config, config('lifecycle: { argscap: 1024 }\n'));
    const bad = cli(p, 'reload', '--json');
    expect(bad.code).toBe(1);
    expect(bad.json.parts.config).toMatchObject({ result: 'rejected', code: 'E_CONFIG' });
    expect(bad.json.parts.config.diagnostics[0]).toContain('lifecycle.argscap: unknown key (did you mean args_cap?)');
    // the verifier's refusal and this one are in the log, with their codes
    for (let i = 0; i < 50 && !agentLog.includes('"codes":["E_CONFIG"]'); i++) await sleep(100);
    expect(agentLog).toContain('"codes":["E_CONFIG"]');
    expect(agentLog).toContain('"codes":["E_SENSOR_VERIFIER"]');
    // alerts and export apply live too (issue 17): an output and a redaction pattern, added
    const live17 = `alerts: { outputs: [ { type: file, path: ${p.dir}/alerts.ndjson } ] }\nexport: { redact: ['(--reload-secret[= ])\\S+'] }\n`;
    writeFileSync(p.config, config('lifecycle: { args_cap: 1024, ring_size: 8M, unwatched_interval: 2s }\nstate: { d_threshold: 500ms }\n' + live17).replace('level: info', 'level: debug'));
    const r = cli(p, 'reload', '--json');
    expect(r.code).toBe(1); // ring_size cannot change live
    const s = r.json.parts.config.sections;
    expect(s.log).toMatchObject({ result: 'applied', applied: ['log.level'] });
    expect(s.lifecycle).toMatchObject({ result: 'rejected', applied: ['lifecycle.args_cap', 'lifecycle.unwatched_interval'], not_live: ['lifecycle.ring_size'], code: 'E_NOT_LIVE' });
    expect(s.state).toMatchObject({ result: 'applied', applied: ['state.d_threshold'] });
    // args_cap and d_threshold are taken at load: the sensors were loaded again for them
    expect(r.json.parts.sensors).toMatchObject({ result: 'applied', reason_loaded: 'config' });
    expect(s.alerts).toMatchObject({ result: 'applied', applied: ['alerts.outputs'], not_live: [] });
    expect(s.export).toMatchObject({ result: 'applied', applied: ['export.redact'], not_live: [] });
    const st = cli(p, 'status', '--json').json;
    expect(st.ring.interval_ms).toBe(2000); // nobody follows the live stream here
    expect(st.alerts).toMatchObject({ [`file:${p.dir}/alerts.ndjson`]: { type: 'file' } });
    expect(st.export.redaction).toMatchObject({ patterns: 6 });
    // a process started after the reload: its argv is masked with the new pattern
    const secret = `hunter${process.pid}`;
    const child = spawn('sh', ['-c', 'sleep 10; true', 'reload-test', '--reload-secret', secret], { stdio: 'ignore' });
    try {
      let proc: Record<string, any> | undefined;
      for (let i = 0; i < 20 && !proc; i++, await sleep(100)) {
        const ps = cli(p, 'ps', '--json', '--pid', String(child.pid));
        proc = (ps.json as Array<Record<string, any>> | null)?.find((x) => x.pid === child.pid && x.args?.length === 6);
      }
      expect(proc).toMatchObject({ args: ['sh', '-c', 'sleep 10; true', 'reload-test', '--reload-secret', '****'], args_redacted: true });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('SIGHUP is the same reload; the reply goes to the log', async () => {
    const before = agentLog.length;
    agent.kill('SIGHUP');
    for (let i = 0; i < 100 && !agentLog.slice(before).includes('"trigger":"signal"'); i++) await sleep(100);
    const line = agentLog.slice(before).split('\n').find((l) => l.includes('"trigger":"signal"'))!;
    expect(JSON.parse(line)).toMatchObject({ msg: expect.stringMatching(/^reload done/), sensors: 'unchanged', rules: 'unchanged', checks: 'unchanged' });
  });

  it('status shows versions, generation and the last reload; accounting exact so far, nothing lost', () => {
    const s = cli(p, 'status');
    expect(s.out).toMatch(/\nversions {3}config [0-9a-f]{12} · sensors [0-9a-f]{12} \(generation 3\) · rules [0-9a-f]{12} · checks [0-9a-f]{12}\n/);
    expect(s.out).toMatch(/\nreload {5}\S+ \(signal\): rejected in part \(E_NOT_LIVE\) in [\d.]+ ms: /);
    const j = cli(p, 'status', '--json').json;
    expect(j.accounting.identity_holds).toBe(true);
    expect(Object.values(j.accounting.lost_reserve as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(0);
    expect(Object.values(j.accounting.lost_userspace as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(0);
    expect(readFileSync(p.config, 'utf8')).toContain('ring_size: 8M');
  });
});
