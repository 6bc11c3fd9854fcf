// A real agent, `patrol dashboard`, and Debian's Chromium driven by playwright-core (never a
// downloaded browser). Chromium runs as root here, which needs --no-sandbox.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { sleep } from '../bpf/helpers.js';

export const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
export const RULES = fileURLToPath(new URL('../../rules', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
/** screenshots of every page, for people to look at */
export const SHOTS = fileURLToPath(new URL('../../test-output/dashboard/', import.meta.url));

export function apiGet(socket: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t ? JSON.parse(t) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface Agent {
  dir: string;
  socket: string;
  proc: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

/** An agent with its own socket, store, lock and pin dir; `checks` become checks/t.patrol. */
export async function startAgent(checks: string): Promise<Agent> {
  const dir = mkdtempSync(join(tmpdir(), 'patrol-dash-'));
  chmodSync(dir, 0o755);
  const socket = join(dir, 'patrol.sock');
  mkdirSync(join(dir, 'checks'));
  writeFileSync(join(dir, 'checks', 't.patrol'), checks);
  const config = join(dir, 'patrol.yaml');
  writeFileSync(
    config,
    `store: { path: ${join(dir, 'state', 'patrol.db')}, flush_interval: 50ms }\napi: { socket: ${socket} }\nagent: { lock_file: ${join(dir, 'patrol.pid')}, pin_dir: /sys/fs/bpf/patrol-dash-test-${process.pid} }\nlog: { level: warn, format: json }\nmetrics: { prometheus: { enabled: false } }\nrules: { dir: ${RULES} }\nchecks: { dir: ${join(dir, 'checks')} }\n`,
  );
  const proc = spawn(PATROL, ['agent', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  for (const end = Date.now() + 30_000; ; await sleep(100)) {
    try {
      if ((await apiGet(socket, '/v1/health')).status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end || proc.exitCode !== null) throw new Error(`agent did not come up:\n${out}`);
  }
  return {
    dir,
    socket,
    proc,
    log: () => out,
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

export interface Dashboard {
  url: string;
  base: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** `patrol dashboard --port 0`: the one-time URL is the line it prints on stdout. */
export async function startDashboard(socket: string): Promise<Dashboard> {
  const proc = spawn(PATROL, ['dashboard', '--port', '0', '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no URL from patrol dashboard: ${err}`)), 20_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/m.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    proc.once('exit', () => reject(new Error(`patrol dashboard exited: ${err}`)));
  });
  return {
    url,
    base: url.slice(0, url.indexOf('/?')),
    proc,
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill('SIGINT');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/test.sh installs Debian's chromium`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export async function until<T>(what: string, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms = 5000, step = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(step);
  }
}
