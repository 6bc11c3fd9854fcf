// Checks end to end, as root, through the real agent (`patrol agent --checks DIR`) and its API:
// a zombie makes `unless zombie_count() == 0` go critical within its window and clear after the
// reap; a tmpfs filled past its threshold makes disk_usage fire; failing processes seen by the
// BPF event stream make an event count fire; a bad reload keeps the running set.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, run, sleep } from './helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));

function get(socket: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Run {
  name: string;
  state: string;
  message: string;
  evidence: { values: { field: string; value: unknown }[] };
}

describe.skipIf(!bpfEnabled)('checks in the agent (root)', () => {
  let dir: string;
  let mnt: string;
  let socket: string;
  let agent: ChildProcess;
  let agentErr = '';
  const failer = `pcheck${process.pid % 100000}`;
  const spinner = `pspin${process.pid % 100000}`;

  const latest = async (): Promise<Map<string, Run>> => {
    const r = await get(socket, '/v1/checks/results?latest=true');
    expect(r.status).toBe(200);
    return new Map((r.body.results as Run[]).map((x) => [x.name, x]));
  };
  const waitState = async (name: string, state: string, ms: number): Promise<Run> => {
    let last: Run | undefined;
    for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) {
      last = (await latest()).get(name);
      if (last?.state === state) return last;
    }
    throw new Error(`${name} did not become ${state}; last: ${JSON.stringify(last)}\n${agentErr}`);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-checks-e2e-'));
    chmodSync(dir, 0o755);
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'patrol-test', mnt]);
    const checks = join(dir, 'checks');
    mkdirSync(checks);
    writeFileSync(
      join(checks, 'e2e.patrol'),
      `check zombies { every 1s; critical unless zombie_count() == 0 for 2s; }
check scratch_disk { every 1s; critical disk_usage(${JSON.stringify(mnt)}) > 50%; }
check failures { every 1s; critical count(exit where exit_code != 0 and comm == "${failer}", 1m) >= 3; }
check hogs { every 1s; critical max(cpu, 5s) by comm > 50%; }
`,
    );
    copyFileSync('/bin/false', join(dir, failer));
    copyFileSync('/bin/sh', join(dir, spinner));
    chmodSync(join(dir, failer), 0o755);
    socket = join(dir, 'patrol.sock');
    const config = join(dir, 'patrol.yaml');
    writeFileSync(
      config,
      `store: { path: ${join(dir, 'state', 'patrol.db')}, flush_interval: 50ms }\napi: { socket: ${socket} }\nagent: { lock_file: ${join(dir, 'patrol.pid')}, pin_dir: /sys/fs/bpf/patrol-checks-test-${process.pid} }\nlog: { level: warn, format: json }\n`,
    );
    agent = spawn(PATROL, ['agent', '--config', config, '--checks', checks], { stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stderr!.on('data', (d) => (agentErr += d));
    agent.stdout!.on('data', (d) => (agentErr += d));
    for (const end = Date.now() + 20_000; Date.now() < end; await sleep(100)) {
      try {
        if ((await get(socket, '/v1/health')).status === 200) break;
      } catch {
        /* not up yet */
      }
    }
  }, 30_000);

  afterAll(async () => {
    agent?.kill('SIGTERM');
    await new Promise((r) => agent?.once('exit', r));
    try {
      execFileSync('umount', [mnt]);
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory and runs the checks', async () => {
    const st = await get(socket, '/v1/checks');
    expect(st.body.last_reload, agentErr).toMatchObject({ ok: true, checks: 4 });
    await waitState('scratch_disk', 'ok', 5_000);
  });

  it('a zombie makes `unless zombie_count() == 0 for 2s` critical within its window, and ok after the reap', async () => {
    await waitState('zombies', 'ok', 10_000); // other zombies on the machine would make this wait
    // the child exits at once; its parent (now `sleep`) never waits for it
    const parent = spawn('sh', ['-c', 'sleep 0.1 & exec sleep 60'], { stdio: 'ignore' });
    const t0 = Date.now();
    const crit = await waitState('zombies', 'critical', 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000); // not before the `for` window
    expect(crit.evidence.values[0]).toMatchObject({ field: 'zombie_count()' });
    expect(crit.evidence.values[0]!.value as number).toBeGreaterThanOrEqual(1);
    parent.kill('SIGKILL'); // init reaps the orphaned zombie
    await waitState('zombies', 'ok', 10_000);
    const alerts = (await get(socket, '/v1/alerts')).body.alerts as { name: string; kind: string; id: string }[];
    const mine = alerts.filter((a) => a.name === 'zombies').map((a) => a.kind);
    expect(mine.slice(0, 2)).toEqual(['resolved', 'firing']);
  }, 40_000);

  it('a tmpfs filled past its threshold makes disk_usage fire', async () => {
    writeFileSync(join(mnt, 'fill'), Buffer.alloc(700 * 1024, 1));
    const r = await waitState('scratch_disk', 'critical', 10_000);
    expect(r.message).toContain('disk_usage(');
    expect(r.evidence.values[0]!.value as number).toBeGreaterThan(0.5);
    rmSync(join(mnt, 'fill'));
    await waitState('scratch_disk', 'ok', 10_000);
  }, 30_000);

  it('processes failing (seen by the BPF event stream) make an event count fire', async () => {
    for (let i = 0; i < 3; i++) expect((await run(join(dir, failer), [])).code).toBe(1);
    const r = await waitState('failures', 'critical', 10_000);
    expect(r.evidence.values[0]!.value).toBe(3);
  }, 30_000);

  it('a CPU hog shows in a windowed aggregate by comm (resource windows)', async () => {
    const hog = spawn(join(dir, spinner), ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    try {
      let last: any;
      for (const end = Date.now() + 15_000; Date.now() < end; await sleep(300)) {
        last = (await latest()).get('hogs') as any;
        if (last?.evidence?.conditions?.[0]?.groups?.includes(spinner)) break;
      }
      expect(last.state, JSON.stringify(last)).toBe('critical');
      expect(last.evidence.conditions[0].groups).toContain(spinner);
      expect(last.evidence.values[0]).toMatchObject({ window_s: 5 });
    } finally {
      hog.kill('SIGKILL');
    }
  }, 30_000);

  it('patrol results and patrol alerts show them', () => {
    const human = execFileSync(PATROL, ['results', '--socket', socket]).toString();
    expect(human).toMatch(/ (OK|CRITICAL) +zombies — /);
    expect(human).toMatch(/scratch_disk/);
    const json = JSON.parse(execFileSync(PATROL, ['results', '--json', '--socket', socket]).toString()) as Run[];
    expect(json.map((r) => r.name).sort()).toEqual(['failures', 'hogs', 'scratch_disk', 'zombies']);
    const alerts = JSON.parse(execFileSync(PATROL, ['alerts', '--json', '--socket', socket]).toString()) as { id: string; name: string }[];
    expect(alerts.some((a) => a.name === 'zombies' && /^[0-9a-f]{16}$/.test(a.id))).toBe(true);
    expect(execFileSync(PATROL, ['alerts', '--socket', socket]).toString()).toMatch(/firing +ok → critical +zombies/);
  });

  it('patrol record, then patrol check --replay (no agent needed for the replay)', async () => {
    const recording = join(dir, 'rec.ndjson');
    const rec = spawn(PATROL, ['record', recording, '--duration', '3s'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let recErr = '';
    rec.stderr!.on('data', (d) => (recErr += d));
    await sleep(1500); // attached
    for (let i = 0; i < 4; i++) await run(join(dir, failer), []);
    const code = await new Promise<number | null>((r) => rec.once('exit', r));
    expect(code, recErr).toBe(0);
    const file = join(dir, 'replay.patrol');
    writeFileSync(file, `check failing { every 1s; critical count(exit where comm == "${failer}" and exit_code == 1, 1m) >= 4; }\n`);
    const r = spawnSync(PATROL, ['check', '--replay', recording, '--json', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    const out = JSON.parse(r.stdout) as { results: Run[]; alerts: { kind: string }[] };
    expect(out.results[0]).toMatchObject({ name: 'failing', state: 'critical' });
    expect(out.alerts.map((a) => a.kind)).toEqual(['firing']);
  }, 30_000);

  it('a bad reload keeps the running set and reports the diagnostics', async () => {
    writeFileSync(join(dir, 'checks', 'bad.patrol'), 'check broken { critical disk_usge > 1%; }\n');
    let st: any;
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(100)) {
      st = (await get(socket, '/v1/checks')).body;
      if (st.last_reload?.ok === false) break;
    }
    expect(st.last_reload.ok).toBe(false);
    expect(st.last_reload.diagnostics.join('\n')).toContain("did you mean 'disk_usage'");
    expect(st.checks.map((c: { name: string }) => c.name).sort()).toEqual(['failures', 'hogs', 'scratch_disk', 'zombies']);
  }, 20_000);
});
