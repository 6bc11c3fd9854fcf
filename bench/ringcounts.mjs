#!/usr/bin/env node
// Ring-consumer event counts per exec at a paced rate: what the consumer policy does, in counts
// that background load does not blur (wakeups, linger steps, sleeps, batches per exec), plus
// this process's CPU per exec (noisy). The pipeline is LifecyclePipeline.start in this process
// with a no-op sink, like bpfcost.mjs. BENCH_TREE measures another checkout.
//   node bench/ringcounts.mjs [RATE=200] [SECONDS=8]
import { FORKEXEC, dist, ensureBuilt, round, runJson, sleep } from './lib.mjs';

const rate = Number(process.argv[2] ?? 200);
const secs = Number(process.argv[3] ?? 8);
ensureBuilt();
const { LifecyclePipeline } = await dist('app/lifecycle.js');
const { createLogger } = await dist('shared/log.js');
const p = LifecyclePipeline.start({ delivery: 'low_latency' }, createLogger({ level: 'error' }), () => {});
await sleep(500);
const s0 = p.accounting().ring;
const c0 = process.cpuUsage();
const load = await runJson(FORKEXEC, ['-r', String(rate), '-d', String(secs)]);
await sleep(50);
const s1 = p.accounting().ring;
const cpu = process.cpuUsage(c0);
await p.close();
const execs = load.execs ?? load.count ?? Math.round(load.rate * secs);
const per = (k) => (s1[k] === undefined ? null : round((s1[k] - s0[k]) / execs, 2));
const out = {
  bench: 'ringcounts',
  rate,
  execs,
  per_exec: {
    records: per('records'),
    batches: per('batches'),
    wakeups: per('wakeups'),
    sleeps: per('sleeps'),
    linger_steps: per('lingerSteps'),
    linger_records: per('lingerRecords'),
    hold_waits: per('holdWaits'),
    timed_records: per('timedRecords'),
  },
  cpu_us_per_exec: round((cpu.user + cpu.system) / execs, 1),
};
console.log(JSON.stringify(out));
