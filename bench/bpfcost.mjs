#!/usr/bin/env node
// BPF cost per event: kernel.bpf_stats_enabled=1, then run_time_ns/run_cnt of each of the
// pipeline's programs (`bpftool prog show`) over a flat-out fork+exec window (one loop), and for
// the default and the floor also at 200 exec/s, for:
//   mode0            wakeup_mode 0 (wake only a consumer that announced sleep), the default
//                    consumer (sleep flag, linger 1 ms in 100 µs steps)
//   mode0+linger200  wakeup_mode 0, the previous default consumer linger (one 200 µs wait)
//   mode0+linger0    wakeup_mode 0, consumer sleeps as soon as the ring is empty
//   mode0+poll1000   wakeup_mode 0, consumer polls every 1 ms and never sets the flag: BPF never
//                    wakes anyone, so this is the floor of what the programs themselves cost
//   mode1            wakeup_mode 1 (the kernel's adaptive wakeup), default consumer
// The pipeline is LifecyclePipeline.start in this process with a no-op sink (consumer policy
// switched with bench/ring-policy.mjs); its program ids are read from this process's own BPF
// fds, so other BPF users on the machine are not counted. bpf_stats adds its own clock reads
// to every run (tens of ns). The previous sysctl value is restored.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { setRingPolicy } from './ring-policy.mjs';
import { FORKEXEC, bpfFds, dist, ensureBuilt, median, report, round, runJson, sleep, waitQuiet } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const { LifecyclePipeline } = await dist('app/lifecycle.js');
const { createLogger } = await dist('shared/log.js');
ensureBuilt();

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const before = readFileSync(SYSCTL, 'utf8').trim();
const MODES = {
  mode0: { wakeupMode: 0, policy: 'default' },
  'mode0+linger200': { wakeupMode: 0, policy: 'flag+linger200' },
  'mode0+linger0': { wakeupMode: 0, policy: 'flag+linger0' },
  'mode0+poll1000': { wakeupMode: 0, policy: 'poll1000' },
  mode1: { wakeupMode: 1, policy: 'default' },
  // the same at a moderate rate, where the consumer sleeps between processes
  'mode0@200/s': { wakeupMode: 0, policy: 'default', load: ['-r', '200'] },
  'mode0+poll1000@200/s': { wakeupMode: 0, policy: 'poll1000', load: ['-r', '200'] },
};

function progStats(ids) {
  const all = JSON.parse(execFileSync('bpftool', ['--json', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  const out = {};
  for (const p of all) if (ids.has(p.id)) out[p.name] = { runNs: p.run_time_ns ?? 0, runs: p.run_cnt ?? 0 };
  return out;
}

async function window(mode) {
  const { wakeupMode, policy, load: loadArgs = [] } = MODES[mode];
  setRingPolicy(policy);
  const p = LifecyclePipeline.start({ delivery: 'low_latency', wakeupMode }, createLogger({ level: 'error' }), () => {});
  setRingPolicy(null);
  await sleep(500);
  const ids = bpfFds(process.pid).progIds;
  const a = progStats(ids);
  const load = await runJson(FORKEXEC, [...loadArgs, '-d', QUICK ? '2' : '4']);
  const b = progStats(ids);
  const acct = await p.stop();
  await p.close();
  const progs = {};
  let totalNs = 0;
  for (const [name, s] of Object.entries(b)) {
    const runs = s.runs - (a[name]?.runs ?? 0);
    const ns = s.runNs - (a[name]?.runNs ?? 0);
    totalNs += ns;
    progs[name] = { runs, ns_per_run: runs ? round(ns / runs, 0) : null, ns_per_exec: round(ns / load.execs, 0) };
  }
  return {
    mode,
    wakeup_mode: wakeupMode,
    policy,
    execs: load.execs,
    exec_rate: round(load.rate, 1),
    bpf_ns_per_exec: round(totalNs / load.execs, 0),
    progs,
    ring_wakeups: acct.ring?.wakeups,
    records: Number(acct.totals.captured),
    lost: Number(acct.totals.lostReserve + acct.totals.lostUserspace),
  };
}

const quiet = await waitQuiet();
const runs = [];
const names = Object.keys(MODES);
try {
  writeFileSync(SYSCTL, '1');
  const rounds = QUICK ? 1 : 2;
  for (let r = 0; r < rounds; r++) for (const m of r % 2 ? [...names].reverse() : names) runs.push(await window(m));
} finally {
  writeFileSync(SYSCTL, before);
}
const of = (m) => runs.filter((r) => r.mode === m);
const summary = Object.fromEntries(
  names.map((m) => [
    m,
    {
      bpf_ns_per_exec: median(of(m).map((r) => r.bpf_ns_per_exec)),
      exec_rate: median(of(m).map((r) => r.exec_rate)),
      ring_wakeups_per_exec: round(median(of(m).map((r) => r.ring_wakeups / r.execs)), 2),
      ns_per_run: Object.fromEntries(Object.keys(of(m)[0].progs).map((n) => [n, median(of(m).map((r) => r.progs[n]?.ns_per_run ?? 0))])),
      ns_per_exec: Object.fromEntries(Object.keys(of(m)[0].progs).map((n) => [n, median(of(m).map((r) => r.progs[n]?.ns_per_exec ?? 0))])),
    },
  ]),
);
const floorOf = (m) => summary[m.endsWith('@200/s') ? 'mode0+poll1000@200/s' : 'mode0+poll1000'].bpf_ns_per_exec;
const progNames = Object.keys(summary.mode0.ns_per_run).filter((n) => names.some((m) => summary[m].ns_per_run[n]));
report('bpfcost', { ...quiet, quick: QUICK, summary, runs }, [
  'BPF time per fork+exec, all programs (× the no-wakeup floor), ring wakeups per exec, exec/s:',
  ...names.map(
    (m) =>
      `  ${m.padEnd(20)} ${String(summary[m].bpf_ns_per_exec).padStart(6)} ns (×${round(summary[m].bpf_ns_per_exec / floorOf(m), 2)})  wakeups/exec ${summary[m].ring_wakeups_per_exec}  ${Math.round(summary[m].exec_rate)} exec/s`,
  ),
  'ns per run: ' + names.join(' / '),
  ...progNames.map((n) => `  ${n.padEnd(20)} ${names.map((m) => String(summary[m].ns_per_run[n]).padStart(6)).join(' / ')}`),
]);
