#!/usr/bin/env node
// Benchmark 1: latency from exec to the TypeScript handler.
//
// The real pipeline (LifecyclePipeline.start: every program patrol trace attaches, sleep-flag
// consumer with the addon's default linger (1 ms in 100 µs steps), decodeBatch → SeqTracker → ProcessTable.apply
// → sink) runs in this process. bench/build/forkexec fork+execs /bin/true with a unique argv[1]
// marker; the sink records CLOCK_BOOTTIME now − ev.ktimeNs (bpf_ktime_get_boot_ns at the
// sched_process_exec tracepoint) for each marked exec. The same load is measured with
// bench/build/c-consumer lat (same object, same programs, same wakeup protocol, latency taken in
// the ring callback) in the same run, so the TS/C ratio is not machine noise.
//
// Scenarios: 100 exec/s; max rate with one fork+exec loop; max rate with one loop per CPU.
// Extra rows, to explain the figures:
//   ts-flag+linger0, ts-poll1000  the pipeline with the other consumer policies (ring-policy.mjs)
//   c-fifo, ts-fifo               what-if: the consumer's threads at SCHED_FIFO 1 (chrt), not
//                                 something patrol does today. On this kernel (PREEMPT_NONE) a
//                                 woken consumer placed on the CPU of the exec'ing process
//                                 otherwise waits for that process to block or exit.
//   ts-fifo-poll-thread           the poll thread alone at SCHED_FIFO 1 (not enough)
//   ts-realtime                   consumerRealtimePriority 1 (patrol trace --realtime): the poll
//                                 thread and the JS thread at SCHED_FIFO 1, set by patrol itself
//   wakeprobe                     the platform floor: eventfd wakeup of a sleeping thread, no BPF.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { setRingPolicy } from './ring-policy.mjs';
import {
  BUILD,
  C_CONSUMER,
  FORKEXEC,
  OBJ,
  dist,
  ensureBuilt,
  nonce,
  percentiles,
  report,
  round,
  runJson,
  sleep,
  startChild,
  stopChild,
  waitQuiet,
} from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const { LifecyclePipeline } = await dist('app/lifecycle.js');
const { native } = await dist('kernel/native.js');
const { createLogger } = await dist('shared/log.js');

ensureBuilt();
const clock = native().clockBoottimeNs;
if (!clock) throw new Error('addon lacks clockBoottimeNs(): rebuild with bash scripts/build.sh');

const us = (ns) => round(ns / 1000, 1);
function summarize(latNs) {
  const p = percentiles(latNs);
  return { samples: p.n, p50_us: us(p.p50), p90_us: us(p.p90), p99_us: us(p.p99), p999_us: us(p.p999), max_us: us(p.max) };
}
// the load generator always runs SCHED_OTHER, whatever the consumer runs at
const load = (s, marker) => runJson('chrt', ['-o', '0', FORKEXEC, ...s.args, '--', 'true', marker]);

async function runTs(s, { policy = 'default', fifo = false, realtime = false } = {}) {
  setRingPolicy(policy);
  const marker = `pblat-${nonce()}`;
  const lat = [];
  const sink = (ev) => {
    if (ev.type === 'exec' && ev.args.length > 1 && ev.args[1].text === marker) lat.push(Number(clock() - ev.ktimeNs));
  };
  const p = LifecyclePipeline.start({ delivery: process.env.LATENCY_DELIVERY ?? 'low_latency', ...(realtime ? { consumerRealtimePriority: 1 } : {}) }, createLogger({ level: 'error' }), sink);
  setRingPolicy(null);
  if (fifo) execFileSync('chrt', ['-f', '-a', '-p', '1', String(process.pid)]);
  try {
    await sleep(300);
    const gen = await load(s, marker);
    await sleep(300);
    const acct = await p.stop();
    await p.close();
    const name = fifo ? 'ts-fifo' : realtime ? 'ts-realtime' : policy === 'default' ? 'ts-pipeline' : `ts-${policy}`;
    return {
      consumer: name,
      policy,
      fifo,
      ...summarize(lat),
      load: gen,
      identity_holds: acct.identityHolds,
      lost: Number(acct.totals.lostReserve + acct.totals.lostUserspace),
      ring: acct.ring && {
        wakeups: acct.ring.wakeups,
        sleeps: acct.ring.sleeps,
        linger_records: acct.ring.lingerRecords,
        timed_consumes: acct.ring.timedConsumes,
        records: acct.ring.records,
      },
    };
  } finally {
    if (fifo) execFileSync('chrt', ['-o', '-a', '-p', '0', String(process.pid)]);
  }
}

// lingerUs null: c-consumer's defaults, which are the addon's (1000 µs in 100 µs steps)
async function runC(s, { lingerUs = null, fifo = false } = {}) {
  const marker = `pblat-${nonce()}`;
  const args = ['lat', '-o', OBJ, '-m', marker, '-p', 'flag', ...(lingerUs === null ? [] : ['-l', String(lingerUs)])];
  const c = fifo
    ? startChild('chrt', ['-f', '1', C_CONSUMER, ...args], { readyLine: (l) => l.includes('"ready"') })
    : startChild(C_CONSUMER, args, { readyLine: (l) => l.includes('"ready"') });
  await c.ready;
  await sleep(300);
  const gen = await load(s, marker);
  await sleep(300);
  await stopChild(c, 'SIGTERM');
  const r = JSON.parse(c.lines.filter((l) => l.includes('"mode"')).pop() ?? 'null');
  if (!r) throw new Error(`c-consumer lat: no result: ${c.stderr()}`);
  return {
    consumer: fifo ? 'c-fifo' : lingerUs === null ? 'c' : `c-linger${lingerUs}`,
    policy: lingerUs === null ? 'default' : `flag+linger${lingerUs}`,
    fifo,
    samples: r.samples,
    p50_us: r.p50_us,
    p90_us: r.p90_us,
    p99_us: r.p99_us,
    p999_us: r.p999_us,
    max_us: r.max_us,
    load: gen,
    lost: r.lost_reserve,
    ring: { wakeups: r.wakeups, sleeps: r.sleeps, linger_records: r.linger_records, records: r.records },
    by_path: r.by_path,
  };
}

const ncpu = Math.max(2, cpus().length);
const scenarios = [
  {
    name: 'rate100',
    label: '100 exec/s',
    args: ['-r', '100', '-d', QUICK ? '4' : '8'],
    targetP99Us: 500,
    extra: [['ts', { policy: 'flag+linger0' }], ['ts', { policy: 'poll1000' }], ['c', { fifo: true }], ['ts', { fifo: true }], ['ts', { policy: 'fifo-poll-thread' }], ['ts', { realtime: true }]],
  },
  {
    name: 'max1',
    label: 'max rate, 1 loop',
    args: ['-d', QUICK ? '3' : '6'],
    targetP99Us: 2000,
    extra: [['ts', { policy: 'poll1000' }], ['c', { fifo: true }], ['ts', { fifo: true }], ['ts', { policy: 'fifo-poll-thread' }], ['ts', { realtime: true }]],
  },
  {
    name: 'max2',
    label: `max rate, ${ncpu} loops (1 per CPU)`,
    args: ['-d', QUICK ? '3' : '5', '-j', String(ncpu)],
    targetP99Us: 2000,
    extra: [['ts', { policy: 'poll1000' }], ['c', { fifo: true }], ['ts', { fifo: true }], ['ts', { policy: 'fifo-poll-thread' }], ['ts', { realtime: true }]],
  },
];

const quiet = await waitQuiet();
const floor = {
  unpinned: await runJson(`${BUILD}/wakeprobe`, ['-r', '200', '-n', QUICK ? '400' : '1000']),
  cross_cpu: await runJson(`${BUILD}/wakeprobe`, ['-r', '200', '-n', QUICK ? '400' : '1000', '-c', '1', '-C', '0']),
};
const results = [];
for (const s of scenarios) {
  const runs = [await runC(s), await runTs(s)];
  for (const [kind, o] of s.extra) runs.push(kind === 'c' ? await runC(s, o) : await runTs(s, o));
  const c = runs.find((r) => r.consumer === 'c');
  const ts = runs.find((r) => r.consumer === 'ts-pipeline');
  results.push({
    scenario: s.name,
    label: s.label,
    target_p99_us: s.targetP99Us,
    ts_meets_target: ts.p99_us !== null && ts.p99_us <= s.targetP99Us,
    ratio_ts_c: { p50: round(ts.p50_us / c.p50_us, 2), p99: round(ts.p99_us / c.p99_us, 2) },
    runs,
  });
}

const lines = [
  `platform floor (wakeprobe, no BPF): unpinned p50 ${floor.unpinned.p50_us} / p99 ${floor.unpinned.p99_us} µs; across CPUs p50 ${floor.cross_cpu.p50_us} / p99 ${floor.cross_cpu.p99_us} µs`,
];
for (const r of results) {
  lines.push(`${r.label} (target p99 ≤ ${r.target_p99_us} µs: ${r.ts_meets_target ? 'met' : 'MISSED'}; TS/C p50 ×${r.ratio_ts_c.p50}, p99 ×${r.ratio_ts_c.p99})`);
  for (const x of r.runs) {
    lines.push(
      `  ${x.consumer.padEnd(17)} n=${String(x.samples).padEnd(5)} p50 ${String(x.p50_us).padStart(7)}  p90 ${String(x.p90_us).padStart(7)}  p99 ${String(x.p99_us).padStart(7)}  max ${String(x.max_us).padStart(8)} µs  (load ${Math.round(x.load.rate)}/s, lost ${x.lost}, wakeups ${x.ring?.wakeups})`,
    );
  }
}
report('latency', { ...quiet, quick: QUICK, platform_floor: floor, results }, lines);
