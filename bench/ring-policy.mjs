// Benchmark-only switch of the ring consumer policy of the real pipeline, without touching src/:
// wraps Sensor.prototype.startRing of the compiled dist/kernel/sensor.js so that
// LifecyclePipeline (and so `patrol trace`) starts its consumer with other wakeup options.
//
//   in process:       import { setRingPolicy } from './ring-policy.mjs'; setRingPolicy('poll1000')
//   for patrol trace: PATROL_BENCH_RING=poll1000 node --import ./bench/ring-policy.mjs bin/patrol trace
//
// Policies: default (the addon's defaults: sleep flag, linger 1 ms polled in 100 µs steps after a
// burst), flag+linger200 (the previous default: one 200 µs linger), flag+linger0 (sleep flag,
// sleep as soon as the ring is empty), poll1000 (no sleep flag, the
// consumer wakes every 1000 µs; BPF never wakes it), poll10000 (the same every 10 ms),
// fifo-poll-thread (the default with only the poll thread at SCHED_FIFO 1).
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

export const RING_POLICIES = {
  default: {},
  'flag+linger200': { lingerUs: 200, lingerStepUs: 200 },
  'flag+linger0': { lingerUs: 0 },
  poll1000: { pollIntervalUs: 1000, sleepFlag: undefined },
  poll10000: { pollIntervalUs: 10000, sleepFlag: undefined },
  // the poll thread alone at SCHED_FIFO 1; the JS thread stays normal (not enough: latency.mjs)
  'fifo-poll-thread': { realtimePriority: 1 },
};

// same tree as lib.mjs (BENCH_TREE), so the patched module is the one the pipeline imports
const tree = process.env.BENCH_TREE ? pathToFileURL(path.resolve(process.env.BENCH_TREE) + '/') : new URL('..', import.meta.url);
const sensorUrl = new URL('dist/kernel/sensor.js', tree);
const { Sensor } = await import(fileURLToPath(sensorUrl));
const original = Sensor.prototype.startRing;
let current = null;

export function setRingPolicy(name) {
  if (name !== null && !RING_POLICIES[name]) throw new Error(`unknown ring policy ${name}`);
  current = name;
}

Sensor.prototype.startRing = function (map, opts, onBatch) {
  if (current === null) return original.call(this, map, opts, onBatch);
  const o = { ...opts, ...RING_POLICIES[current] };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return original.call(this, map, o, onBatch);
};

if (process.env.PATROL_BENCH_RING) setRingPolicy(process.env.PATROL_BENCH_RING);
