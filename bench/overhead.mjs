#!/usr/bin/env node
// Benchmark 3: workload overhead. The fork+exec rate of bench/build/forkexec (flat out) bare,
// with `patrol trace --json > /dev/null` attached, and with Debian's libbpf-tools
// `execsnoop > /dev/null` attached. Conditions alternate within each round (the order rotates
// from round to round so none always runs first), and medians over rounds are compared as
// slowdown = 1 − rate/bare_rate of the same round set.
//
// Two load shapes: one fork+exec loop (a CPU is left for the tool's user space: mostly the BPF
// cost in the exec path shows), and one loop per CPU (the tool's user space competes too).
// Note the difference in scope: patrol attaches 12 programs (exec, fork, exit at the final
// context switch — a program on every sched_switch —, reap via wait4/waitid, failed execs) and
// emits 4 records per fork+exec; execsnoop attaches 2 (sys_enter/exit_execve) and emits 1.
import { cpus } from 'node:os';
import {
  BENCH,
  EXECSNOOP,
  FORKEXEC,
  PATROL,
  ensureBuilt,
  median,
  report,
  round,
  runJson,
  sleep,
  startChild,
  stopChild,
  waitAttached,
  waitQuiet,
} from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
ensureBuilt();

const TOOLS = {
  bare: null,
  patrol: { cmd: PATROL, args: ['trace', '--json'], links: 5 },
  // lifecycle only, the like-for-like peer of execsnoop (no scheduler-state sensor)
  'patrol-lifecycle': { cmd: PATROL, args: ['trace', '--json', '--no-states'], links: 5 },
  execsnoop: { cmd: EXECSNOOP, args: [], links: 2 },
  // what-if: patrol trace whose consumer polls every 1 ms (bench/ring-policy.mjs), so BPF never
  // wakes it: separates the cost of wakeups from the rest
  'patrol-poll1000': {
    cmd: process.execPath,
    args: ['--import', `${BENCH}/ring-policy.mjs`, PATROL, 'trace', '--json'],
    env: { PATROL_BENCH_RING: 'poll1000' },
    links: 5,
  },
};

async function measure(tool, loadArgs) {
  const spec = TOOLS[tool];
  let c = null;
  if (spec) {
    // stdout to /dev/null, as the issue specifies: no reader in the loop
    c = startChild(spec.cmd, spec.args, { stdout: 'ignore', env: spec.env ? { ...process.env, ...spec.env } : undefined });
    await waitAttached(c.pid, spec.links);
    await sleep(1000); // let start-up work (bootstrap, JIT warm-up) settle
  }
  const r = await runJson(FORKEXEC, loadArgs);
  if (c) {
    const { code, signal } = await stopChild(c, 'SIGINT');
    if (code !== 0 && signal !== 'SIGINT') throw new Error(`${tool} exited ${code ?? signal}: ${c.stderr().slice(-400)}`);
  }
  return r.rate;
}

const quiet = await waitQuiet();
const seconds = QUICK ? '2' : '3';
const shapes = [
  { name: 'one-loop', args: ['-d', seconds, '-j', '1'], rounds: QUICK ? 2 : 4, tools: ['bare', 'patrol', 'patrol-lifecycle', 'execsnoop'] },
  { name: 'loop-per-cpu', args: ['-d', seconds, '-j', String(cpus().length)], rounds: QUICK ? 2 : 3, tools: ['bare', 'patrol', 'patrol-lifecycle', 'execsnoop'] },
];
const out = [];
for (const shape of shapes) {
  const names = shape.tools;
  const rates = Object.fromEntries(names.map((t) => [t, []]));
  for (let r = 0; r < shape.rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const tool of order) {
      const rate = await measure(tool, shape.args);
      rates[tool].push(round(rate, 1));
      process.stderr.write(`  ${shape.name} round ${r + 1}: ${tool.padEnd(15)} ${Math.round(rate)} exec/s\n`);
    }
  }
  const med = Object.fromEntries(names.map((t) => [t, median(rates[t])]));
  const slowdown = (t) => round(100 * (1 - med[t] / med.bare), 1);
  out.push({
    shape: shape.name,
    jobs: Number(shape.args[3]),
    seconds: Number(seconds),
    rounds: shape.rounds,
    rates,
    median_rate: med,
    slowdown_pct: Object.fromEntries(names.filter((t) => t !== 'bare').map((t) => [t, slowdown(t)])),
    patrol_le_execsnoop: slowdown('patrol') <= slowdown('execsnoop'),
  });
}

const pct = (x) => (x >= 0 ? `−${x}%` : `+${-x}%`);
const lines = out.map(
  (o) =>
    `${o.shape.padEnd(13)} median exec/s: bare ${Math.round(o.median_rate.bare)}, patrol ${Math.round(o.median_rate.patrol)} (${pct(o.slowdown_pct.patrol)}), execsnoop ${Math.round(o.median_rate.execsnoop)} (${pct(o.slowdown_pct.execsnoop)})` +
    (o.median_rate['patrol-poll1000'] ? `, patrol-poll1000 ${Math.round(o.median_rate['patrol-poll1000'])} (${pct(o.slowdown_pct['patrol-poll1000'])})` : '') +
    ` — target patrol ≤ execsnoop: ${o.patrol_le_execsnoop ? 'met' : 'MISSED'}`,
);
report('overhead', { ...quiet, quick: QUICK, results: out }, lines);
