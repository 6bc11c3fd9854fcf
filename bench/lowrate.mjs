#!/usr/bin/env node
// Agent CPU at a low exec rate, A/B between trees (or settings) in alternating rounds.
// `patrol trace --json > /dev/null` of each variant runs alone while bench/build/forkexec drives
// RATE exec/s (fork + exec /bin/true + wait); CPU is the summed per-thread schedstat run time of
// the patrol process over the window (% of one core), split JS thread / other threads. The order
// of the variants rotates each round; the figure to compare is the per-round ratio against the
// first variant (both measured minutes apart under the same background load), then its median.
//   LOWRATE_VARIANTS='new=.;main=/work/main' [LOWRATE_WARMUP_S=20] node bench/lowrate.mjs [ROUNDS=4] [SECONDS=10] [RATE=200]
// A variant is label=tree[+ENV=value...][+--patrol-flag...][+node:--node-flag...], e.g.
// 'hold0=.+PATROL_BENCH_RING_OPTS={"batchDelayUs":0}' or 'nostates=.+--no-states' or 'gc1=.+node:--single-threaded-gc'.
import path from 'node:path';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { FORKEXEC, ROOT, median, nowMs, procUsage, report, round, runJson, sleep, startChild, stopChild, waitAttached } from './lib.mjs';
import { execFileSync } from 'node:child_process';

const rounds = Number(process.argv[2] ?? 4);
const secs = Number(process.argv[3] ?? 10);
const rate = Number(process.argv[4] ?? 200);
const warmupS = Number(process.env.LOWRATE_WARMUP_S ?? 0);
const spec = process.env.LOWRATE_VARIANTS ?? 'new=.;main=/work/main';
const variants = spec.split(';').map((v) => {
  const [label, rest] = v.split('=', 2).length === 2 ? [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)] : [v, v];
  const [tree, ...extra] = rest.split('+');
  const env = {};
  const args = [];
  const nodeFlags = [];
  for (const e of extra) {
    if (e.startsWith('node:')) nodeFlags.push(e.slice(5));
    else if (e.startsWith('--')) args.push(e);
    else env[e.slice(0, e.indexOf('='))] = e.slice(e.indexOf('=') + 1);
  }
  return { label, tree: path.resolve(ROOT, tree), env, args, nodeFlags };
});
execFileSync('make', ['-s', '-C', path.join(ROOT, 'bench')], { stdio: ['ignore', 'ignore', 'inherit'] });

function machineBusyTicks() {
  const l = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: l.reduce((a, b) => a + b, 0) - l[3] - (l[4] ?? 0), total: l.reduce((a, b) => a + b, 0) };
}

async function measure(v) {
  const patrol = path.join(v.tree, 'bin/patrol');
  // ring options through bench/ring-policy.mjs (PATROL_BENCH_RING, PATROL_BENCH_RING_OPTS)
  const viaPolicy = Object.keys(v.env).some((k) => k.startsWith('PATROL_BENCH_RING'));
  const [cmd, pre] =
    viaPolicy || v.nodeFlags.length
      ? [process.execPath, [...v.nodeFlags, ...(viaPolicy ? ['--import', path.join(ROOT, 'bench/ring-policy.mjs')] : []), patrol]]
      : [patrol, []];
  // stdout to a file: its lines are the events patrol handled, which normalises CPU for the
  // other processes on the machine (they exec too, and patrol traces them as well)
  const outPath = path.join(tmpdir(), `patrol-lowrate-${process.pid}.ndjson`);
  const outFd = openSync(outPath, 'w');
  const c = startChild(cmd, [...pre, 'trace', '--json', ...v.args], { stdout: outFd, env: { ...process.env, BENCH_TREE: v.tree, ...v.env } });
  closeSync(outFd);
  const lines = () => {
    const b = readFileSync(outPath);
    let n = 0;
    for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
    return n;
  };
  await waitAttached(c.pid, 5);
  await sleep(1500);
  // Warm-up at the same rate: V8 keeps compiling newly hot functions for tens of seconds at
  // low rates (TurboFan jobs on its worker threads, ~2-4 ms each here), a start-up cost that a
  // long-running agent does not pay in steady state.
  if (warmupS > 0) await runJson(FORKEXEC, ['-r', String(rate), '-d', String(warmupS)]);
  const l0 = lines();
  const a = procUsage(c.pid);
  const m0 = machineBusyTicks();
  const t0 = nowMs();
  const load = await runJson(FORKEXEC, ['-r', String(rate), '-d', String(secs)]);
  const b = procUsage(c.pid);
  const m1 = machineBusyTicks();
  const wall = (nowMs() - t0) / 1000;
  const events = lines() - l0;
  await stopChild(c, 'SIGINT');
  rmSync(outPath, { force: true });
  const ns = b.runNs - a.runNs;
  return {
    cpu_pct: round((100 * ns) / 1e9 / wall, 3),
    js_pct: round((100 * (b.mainNs - a.mainNs)) / 1e9 / wall, 3),
    other_pct: round((100 * (ns - (b.mainNs - a.mainNs))) / 1e9 / wall, 3),
    us_per_exec: round(ns / 1000 / load.execs, 1),
    // events patrol wrote: 4 per exec of the load (fork, exec, exit, reap) plus the machine's own
    events_per_s: round(events / wall, 0),
    us_per_event: round(ns / 1000 / events, 2),
    timeslices_per_exec: round((b.switches - a.switches) / load.execs, 2),
    exec_rate: round(load.rate, 1),
    machine_busy_pct: round((100 * (m1.busy - m0.busy)) / (m1.total - m0.total), 1),
  };
}

const rows = Object.fromEntries(variants.map((v) => [v.label, []]));
const ratios = Object.fromEntries(variants.slice(1).map((v) => [v.label, []]));
const ratiosPerEvent = Object.fromEntries(variants.slice(1).map((v) => [v.label, []]));
for (let r = 0; r < rounds; r++) {
  const order = variants.map((_, i) => variants[(i + r) % variants.length]);
  const got = {};
  for (const v of order) {
    got[v.label] = await measure(v);
    rows[v.label].push(got[v.label]);
    process.stderr.write(`  round ${r + 1} ${v.label}: ${JSON.stringify(got[v.label])}\n`);
  }
  const base = got[variants[0].label].cpu_pct;
  const basePerEvent = got[variants[0].label].us_per_event;
  for (const v of variants.slice(1)) {
    ratios[v.label].push(round(got[v.label].cpu_pct / base, 3));
    ratiosPerEvent[v.label].push(round(got[v.label].us_per_event / basePerEvent, 3));
  }
}
const med = (label, k) => median(rows[label].map((x) => x[k]));
const summary = Object.fromEntries(
  variants.map((v) => [v.label, { tree: v.tree, env: v.env, args: v.args, ...Object.fromEntries(['cpu_pct', 'js_pct', 'other_pct', 'us_per_exec', 'events_per_s', 'us_per_event', 'timeslices_per_exec', 'exec_rate', 'machine_busy_pct'].map((k) => [k, med(v.label, k)])) }]),
);
const lines = [
  ...variants.map((v) => {
    const s = summary[v.label];
    return `${v.label.padEnd(10)} cpu ${s.cpu_pct}% of a core (JS ${s.js_pct}%, other ${s.other_pct}%), ${s.us_per_exec} µs/exec, ${s.us_per_event} µs/event at ${s.events_per_s} events/s, ${s.timeslices_per_exec} timeslices/exec, ${s.exec_rate} exec/s, machine busy ${s.machine_busy_pct}% (medians)`;
  }),
  ...variants.slice(1).map((v) => `${v.label} / ${variants[0].label} cpu per round: ${ratios[v.label].join(' ')} (median ${median(ratios[v.label])})`),
  ...variants.slice(1).map((v) => `${v.label} / ${variants[0].label} µs per event per round: ${ratiosPerEvent[v.label].join(' ')} (median ${median(ratiosPerEvent[v.label])})`),
];
report('lowrate', { rate, seconds: secs, warmup_seconds: warmupS, rounds, summary, ratios, ratios_per_event: ratiosPerEvent, rows }, lines);
