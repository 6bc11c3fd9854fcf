#!/usr/bin/env node
// What the ring consumer's hold (LifecycleConfig.batchDelayUs) costs in latency: exec → TS
// handler (clockBoottimeNs() − ev.ktimeNs, as latency.mjs) and JS batches per exec, with the
// hold at 'auto' (1000 µs) and at 0, alternating, at a low paced rate and flat out (one loop).
//   node bench/hold-latency.mjs [ROUNDS=2]
import { FORKEXEC, dist, ensureBuilt, nonce, percentiles, report, round, runJson, sleep } from './lib.mjs';

const rounds = Number(process.argv[2] ?? 2);
ensureBuilt();
const { LifecyclePipeline } = await dist('app/lifecycle.js');
const { native } = await dist('kernel/native.js');
const { createLogger } = await dist('shared/log.js');
const clock = native().clockBoottimeNs;

async function run(batchDelayUs, args) {
  const marker = `pbhold-${nonce()}`;
  const lat = [];
  const p = LifecyclePipeline.start({ delivery: 'low_latency', batchDelayUs }, createLogger({ level: 'error' }), (ev) => {
    if (ev.type === 'exec' && ev.args.length > 1 && ev.args[1].text === marker) lat.push(Number(clock() - ev.ktimeNs));
  });
  await sleep(300);
  const s0 = p.accounting().ring;
  const load = await runJson(FORKEXEC, [...args, '--', 'true', marker]);
  await sleep(300);
  const s1 = p.accounting().ring;
  await p.close();
  const q = percentiles(lat);
  return {
    samples: q.n,
    p50_us: round(q.p50 / 1000, 0),
    p99_us: round(q.p99 / 1000, 0),
    max_us: round(q.max / 1000, 0),
    exec_rate: round(load.rate, 0),
    batches_per_exec: round((s1.batches - s0.batches) / load.execs, 2),
    hold_waits_per_exec: round((s1.holdWaits - s0.holdWaits) / load.execs, 2),
  };
}

const loads = { rate100: ['-r', '100', '-d', '5'], max1: ['-j', '1', '-d', '3'] };
const rows = [];
for (let r = 0; r < rounds; r++) {
  for (const [name, args] of Object.entries(loads)) {
    const order = r % 2 ? [0, 'auto'] : ['auto', 0];
    for (const d of order) {
      const row = { round: r + 1, load: name, batchDelayUs: d, ...(await run(d, args)) };
      rows.push(row);
      process.stderr.write(`  ${JSON.stringify(row)}\n`);
    }
  }
}
report('hold-latency', { rounds, rows }, rows.map((x) => `${x.load.padEnd(8)} hold ${String(x.batchDelayUs).padEnd(4)} p50 ${x.p50_us} µs p99 ${x.p99_us} µs max ${x.max_us} µs, ${x.exec_rate} exec/s, ${x.batches_per_exec} batches/exec, ${x.hold_waits_per_exec} holds/exec`));
