#!/usr/bin/env node
// Issue 4 benchmark: context-switch-heavy load (pipe ping-pong) bare, with patrol's state tracking
// attached (state sensor + lifecycle sensor, as in the agent), and with Debian libbpf-tools
// runqlat attached. Rounds alternate so drift hits every mode alike; medians are reported, as
// ratios to bare measured in the same run. Also: agent-side CPU while loaded, and whether any
// transition of interest was lost (accounting identity).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const bin = join(here, 'build', 'pingpong');
mkdirSync(join(here, 'build'), { recursive: true });
if (!existsSync(bin)) execFileSync('cc', ['-O2', '-o', bin, join(here, 'pingpong.c')]);

const { LifecyclePipeline } = await import(join(root, 'dist/app/lifecycle.js'));
const { StatePipeline } = await import(join(root, 'dist/app/states.js'));
const { createLogger } = await import(join(root, 'dist/shared/log.js'));

const SECS = Number(process.env.SECS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Both ends on one CPU: switches stay local (no cross-CPU wakeup IPIs, which a VM makes slow),
// which is how the ~300k switches/s per vCPU load is reached.
const PIN = process.env.PIN ?? '0';
const pingpong = () =>
  JSON.parse(execFileSync(PIN === 'none' ? bin : 'taskset', PIN === 'none' ? [String(SECS)] : ['-c', PIN, bin, String(SECS)], { encoding: 'utf8' })).switches_per_s;

async function withPatrol() {
  const log = createLogger({ level: 'error' });
  const lc = LifecyclePipeline.start({}, log, () => {});
  const st = StatePipeline.start({}, lc.table, log, () => {});
  await new Promise((r) => setTimeout(r, 300));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const rate = pingpong();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const acct = await st.stop();
  await st.close();
  await lc.close();
  return { rate, cpuPct: ((c.user + c.system) / 1000 / wall) * 100, acct };
}

async function withRunqlat() {
  const r = spawn('/usr/sbin/runqlat', [String(SECS * 4), '1'], { stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 1500)); // attach time
  const rate = pingpong();
  r.kill('SIGINT');
  await new Promise((res) => r.on('exit', res));
  return rate;
}

const bare = [], patrol = [], runqlat = [], cpu = [];
let identity = true, throttled = 0n, lost = 0n;
for (let i = 0; i < ROUNDS; i++) {
  bare.push(pingpong());
  const p = await withPatrol();
  patrol.push(p.rate);
  cpu.push(p.cpuPct);
  identity &&= p.acct.identityHolds;
  throttled += p.acct.throttled;
  lost += p.acct.lostReserve.state + p.acct.lostUserspace.state;
  if (existsSync('/usr/sbin/runqlat')) runqlat.push(await withRunqlat());
}
const b = median(bare);
const result = {
  bench: 'switch',
  rounds: ROUNDS,
  seconds: SECS,
  bare_switches_per_s: Math.round(b),
  patrol_switches_per_s: Math.round(median(patrol)),
  runqlat_switches_per_s: runqlat.length ? Math.round(median(runqlat)) : null,
  patrol_ratio: +(median(patrol) / b).toFixed(3),
  runqlat_ratio: runqlat.length ? +(median(runqlat) / b).toFixed(3) : null,
  agent_cpu_pct_of_one_core: +median(cpu).toFixed(2),
  state_identity_holds: identity,
  state_lost: Number(lost),
  state_throttled: Number(throttled),
};
console.log(JSON.stringify(result));
console.log(`pipe ping-pong: bare ${result.bare_switches_per_s}/s · patrol ${result.patrol_switches_per_s}/s (${result.patrol_ratio}×) · runqlat ${result.runqlat_switches_per_s}/s (${result.runqlat_ratio}×) · agent CPU ${result.agent_cpu_pct_of_one_core}% · lost ${result.state_lost}, identity ${identity ? 'holds' : 'BROKEN'}`);
