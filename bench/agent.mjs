#!/usr/bin/env node
// Benchmark 5: CPU and memory of the agent process. `patrol trace --json > /dev/null` (its
// default: lifecycle and scheduler-state sensors) runs while
// bench/build/forkexec drives: nothing (idle), 200 exec/s, max rate with one loop, max rate with
// one loop per CPU. CPU over each window comes from /proc/<pid>/stat utime+stime (10 ms ticks) and,
// precisely, from the summed /proc/<pid>/task/*/schedstat run time; both are % of one core.
// Memory: VmRSS at the end of each window and VmHWM (peak). BPF time in the kernel is charged to
// the processes that exec, not to the agent: see bpfcost.mjs. execsnoop is measured the same way
// for reference.
import { cpus } from 'node:os';
import {
  BENCH,
  EXECSNOOP,
  FORKEXEC,
  PATROL,
  ensureBuilt,
  nowMs,
  procUsage,
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
const phases = [
  { name: 'idle', args: null, seconds: QUICK ? 2 : 5 },
  { name: 'rate200', args: ['-r', '200'], seconds: QUICK ? 5 : 15, targetCpuPct: 1 },
  { name: 'max1', args: ['-j', '1'], seconds: QUICK ? 3 : 8 },
  // long enough to pass the table's 30 s grace for dead entries: RSS reaches its steady state
  { name: 'max-per-cpu', args: ['-j', String(cpus().length)], seconds: QUICK ? 3 : 35, shortFor: { execsnoop: 8 } },
];

async function profile(tool, cmd, args, links, { env, only } = {}) {
  const c = startChild(cmd, args, { stdout: 'ignore', env: env ? { ...process.env, ...env } : undefined });
  await waitAttached(c.pid, links);
  await sleep(1500);
  const out = [];
  for (const ph of phases) {
    if (only && !only.includes(ph.name)) continue;
    const a = procUsage(c.pid);
    const t0 = nowMs();
    let load = null;
    const secs = ph.shortFor?.[tool] ?? ph.seconds;
    const rssSeries = [];
    const iv = setInterval(() => rssSeries.push(round(procUsage(c.pid).rssKb / 1024, 1)), 5000);
    if (ph.args) load = await runJson(FORKEXEC, [...ph.args, '-d', String(secs)]);
    else await sleep(secs * 1000);
    clearInterval(iv);
    const b = procUsage(c.pid);
    const wall = (nowMs() - t0) / 1000;
    out.push({
      phase: ph.name,
      exec_rate: load ? round(load.rate, 1) : 0,
      seconds: round(wall, 2),
      cpu_pct_ticks: round((100 * (b.cpuS - a.cpuS)) / wall, 2),
      cpu_pct: round((100 * (b.runNs - a.runNs)) / 1e9 / wall, 2),
      cpu_us_per_exec: load && load.execs ? round((b.runNs - a.runNs) / 1000 / load.execs, 1) : null,
      main_thread_pct: round((100 * (b.mainNs - a.mainNs)) / 1e9 / wall, 2),
      other_threads_pct: round((100 * (b.runNs - a.runNs - (b.mainNs - a.mainNs))) / 1e9 / wall, 2),
      timeslices_per_s: round((b.switches - a.switches) / wall, 0),
      rss_mb: round(b.rssKb / 1024, 1),
      hwm_mb: round(b.hwmKb / 1024, 1),
      rss_mb_every_5s: rssSeries,
      threads: b.threads,
    });
    process.stderr.write(`  ${tool} ${ph.name}: ${JSON.stringify(out.at(-1))}\n`);
  }
  await stopChild(c, 'SIGINT');
  return out;
}

const quiet = await waitQuiet();
const patrol = await profile('patrol', PATROL, ['trace', '--json'], 5);
const execsnoop = await profile('execsnoop', EXECSNOOP, [], 2);
// What-ifs at idle and 200 exec/s: lifecycle only (--no-states: the like-for-like peer of
// execsnoop), and a consumer that polls every 10 ms (bench/ring-policy.mjs): at most 100 wakeups/s
// whatever the event rate, at the price of up to 10 ms of latency; shows how much of the CPU is
// per-wakeup cost and how much per-event work.
const whatIf = {};
whatIf['no-states'] = await profile('patrol/no-states', PATROL, ['trace', '--json', '--no-states'], 5, { only: ['idle', 'rate200'] });
whatIf.poll10000 = await profile('patrol/poll10000', process.execPath, ['--import', `${BENCH}/ring-policy.mjs`, PATROL, 'trace', '--json'], 5, {
  env: { PATROL_BENCH_RING: 'poll10000' },
  only: ['idle', 'rate200'],
});
const r200 = patrol.find((p) => p.phase === 'rate200');
const peak = Math.max(...patrol.map((p) => p.hwm_mb));
const lines = [
  `patrol at ${r200.exec_rate} exec/s: ${r200.cpu_pct}% of a core (target < 1%: ${r200.cpu_pct < 1 ? 'met' : 'MISSED'}); peak RSS ${peak} MB (target < 100 MB: ${peak < 100 ? 'met' : 'MISSED'})`,
  ...patrol.map((p) => `patrol    ${p.phase.padEnd(12)} ${String(p.exec_rate).padStart(7)} exec/s  cpu ${p.cpu_pct}% (ticks ${p.cpu_pct_ticks}%; JS thread ${p.main_thread_pct}%, other threads ${p.other_threads_pct}%, ${p.timeslices_per_s} timeslices/s)  ${p.cpu_us_per_exec ?? '-'} µs/exec  rss ${p.rss_mb} MB hwm ${p.hwm_mb} MB`),
  ...Object.entries(whatIf).flatMap(([pol, rows]) =>
    rows.map((p) => `patrol/${pol.padEnd(9)} ${p.phase.padEnd(7)} ${String(p.exec_rate).padStart(5)} exec/s  cpu ${p.cpu_pct}% (ticks ${p.cpu_pct_ticks}%)  ${p.cpu_us_per_exec ?? '-'} µs/exec  rss ${p.rss_mb} MB`),
  ),
  ...execsnoop.map((p) => `execsnoop ${p.phase.padEnd(12)} ${String(p.exec_rate).padStart(7)} exec/s  cpu ${p.cpu_pct}% (ticks ${p.cpu_pct_ticks}%)  ${p.cpu_us_per_exec ?? '-'} µs/exec  rss ${p.rss_mb} MB hwm ${p.hwm_mb} MB`),
];
report('agent', { ...quiet, quick: QUICK, target_cpu_pct_at_200: 1, target_rss_mb: 100, patrol, execsnoop, what_if_policies: whatIf }, lines);
