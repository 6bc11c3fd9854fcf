// The efficient delivery (RingPuller: the JS thread drains the ring on a timer, producers wake
// it only when it sleeps or past the watermark) against the real kernel, driven by
// bench_produce (fork-shaped records through bpf_loop, BPF_PROG_TEST_RUN).
import { afterEach, describe, expect, it } from 'vitest';
import type * as Native from '../../native/patrol_native.js';
import { DEFAULT_PULL_POLICY, RingPuller, type PullPolicy } from '../../src/kernel/ring-pull.js';
import { decodeBatch } from '../../src/wire/index.js';
import { LAYOUT } from '../../src/wire/generated/lifecycle.js';
import { spawn } from 'node:child_process';
import { OP_OFFSET, addon, benchProduceEnabled, loadBenchProduce, produced } from './bench-produce.js';
import { BPF_PRODUCE, buildBenchHelpers } from '../faults/harness.js';

const FRAME = 8 + LAYOUT.structs.pt_fork.size; // ring header + record

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!benchProduceEnabled)('efficient delivery (RingPuller) on the live kernel', () => {
  const native = addon();
  let obj: Native.BpfObject | null = null;
  let puller: RingPuller | null = null;

  afterEach(() => {
    puller?.close();
    puller = null;
    if (obj) native.close(obj);
    obj = null;
  });

  const load = (burst: number, opts: { token?: number; ringBytes?: number } = {}) => loadBenchProduce(native, burst, opts);
  const generated = (o: Native.BpfObject) => produced(native, o);

  function start(o: Native.BpfObject, policy: Partial<PullPolicy>, onRecords: (n: number) => void): RingPuller {
    const p = new RingPuller(o as never, 'pt_events', { tagOffset: OP_OFFSET, sleepFlag: { map: 'pt_ring_ctl', offset: 0 } }, { ...DEFAULT_PULL_POLICY, ...policy }, (batch) => {
      onRecords(decodeBatch(batch).records);
    });
    puller = p;
    return p;
  }

  it('sleeps when the stream stops and is woken by the next record, never leaving one behind', async () => {
    obj = load(3);
    let received = 0;
    // No safety drain while asleep (sleepCheckMs huge): a missed wakeup would strand records.
    const p = start(obj, { tickMs: 2, idleTicks: 1, sleepCheckMs: 3_600_000 }, (n) => (received += n));
    const rounds = 200;
    for (let i = 0; i < rounds; i++) {
      native.progRun(obj, 'bench_produce', { cpu: i % native.numPossibleCpus, repeat: 1 + (i % 3) });
      const want = generated(obj).generated;
      for (const end = Date.now() + 2000; received < want && Date.now() < end; ) await sleepMs(1);
      expect(received, `round ${i}: records stuck in the ring`).toBe(want);
      // Gaps long enough to fall asleep (two ticks), and some too short to.
      if (i % 3 === 0) await sleepMs(8);
    }
    const st = p.stats();
    expect(st.sleeps).toBeGreaterThan(rounds / 6);
    expect(st.sleepWakes).toBeGreaterThan(rounds / 6);
    expect(st.timedConsumes).toBe(0); // no safety drain was needed (none could run)
    expect(generated(obj).lost).toBe(0);
  });

  it('a burst past the watermark wakes the consumer before its tick, and nothing is lost', async () => {
    obj = load(1024); // 1024 records of FRAME bytes per run
    let received = 0;
    // The tick never comes during the test: only a wakeup can deliver.
    const wakeAboveBytes = 64 << 10;
    expect(1024 * FRAME).toBeGreaterThan(wakeAboveBytes);
    const p = start(obj, { tickMs: 60_000, wakeAboveBytes }, (n) => (received += n));
    const t0 = performance.now();
    native.progRun(obj, 'bench_produce');
    for (const end = Date.now() + 2000; received < 1024 && Date.now() < end; ) await sleepMs(1);
    expect(received).toBe(1024);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(p.stats().watermarkWakes).toBeGreaterThanOrEqual(1);
    // Several bursts in a row: each passes the re-armed watermark; every record arrives.
    for (let i = 0; i < 20; i++) native.progRun(obj, 'bench_produce', { cpu: i % native.numPossibleCpus });
    const g = generated(obj);
    for (const end = Date.now() + 2000; received < g.generated && Date.now() < end; ) await sleepMs(1);
    expect(g.lost).toBe(0);
    expect(received).toBe(g.generated);
  });

  it('a producer faster than the JS thread: each drain is a bounded slice, the loop keeps turning, the excess is lost and counted', async () => {
    buildBenchHelpers();
    const ringBytes = 1 << 20;
    const token = 4000 + (process.pid % 90);
    obj = load(1024, { token, ringBytes });
    let received = 0;
    let largest = 0;
    // a slow consumer: 2 µs of work per record is far below what bench_produce offers
    const p = start(obj, { tickMs: 5, wakeAboveBytes: ringBytes / 4 }, (n) => {
      received += n;
      const until = performance.now() + n * 0.002;
      while (performance.now() < until);
    });
    const onBatch = (p as unknown as { onBatch: (b: Buffer) => void }).onBatch;
    (p as unknown as { onBatch: (b: Buffer) => void }).onBatch = (b) => {
      largest = Math.max(largest, b.length);
      onBatch(b);
    };
    // event-loop turns: a drain that never ends (libbpf consumes while producers write) stops them
    let lastTurn = performance.now();
    let worstGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - lastTurn);
      lastTurn = now;
    }, 5);
    const producer = spawn(BPF_PRODUCE, ['-t', String(token), '-n', String(1e12), '-d', '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    producer.stdout!.on('data', (b) => (out += b));
    await new Promise((r) => producer.on('exit', r));
    clearInterval(timer);
    const g = generated(obj);
    for (const end = Date.now() + 3000; received < g.generated - g.lost && Date.now() < end; ) await sleepMs(5);
    expect(JSON.parse(out).generated).toBe(g.generated);
    expect(g.lost).toBeGreaterThan(0); // overrun, as it should be: the ring is the bound
    expect(received + g.lost).toBe(g.generated); // every record delivered or counted
    expect(largest).toBeLessThanOrEqual(256 * 1024 + FRAME); // at most a slice (and a record)
    expect(p.stats().cutDrains).toBeGreaterThan(0);
    // a drain lasts at most a ring's worth of copying plus its handling (~25 ms here on a quiet
    // machine); without the bound, one drain lasts as long as the producer runs (3 s)
    expect(worstGap).toBeLessThan(1500);
  }, 30_000);

  it('a backlog under the watermark wakes nobody: it waits for the tick', async () => {
    obj = load(64); // 64 records: ~5 KiB, far under the watermark
    let received = 0;
    const p = start(obj, { tickMs: 300, wakeAboveBytes: 64 << 10 }, (n) => (received += n));
    await sleepMs(350); // past the first tick: awake, flag at the watermark
    const before = received;
    const t0 = performance.now();
    native.progRun(obj, 'bench_produce');
    await sleepMs(100);
    expect(received - before).toBe(0); // not woken
    for (const end = Date.now() + 2000; received < before + 64 && Date.now() < end; ) await sleepMs(2);
    expect(received - before).toBe(64);
    expect(performance.now() - t0).toBeGreaterThan(100);
    expect(p.stats().wakeups).toBe(0);
  });

  it('a ring has one consumer: a threaded consumer or a second drain on a drained ring is EBUSY', () => {
    obj = load(1);
    start(obj, {}, () => {});
    expect(() => native.ringStart(obj!, 'pt_events', { tagOffset: OP_OFFSET }, () => {})).toThrow(/already has a consumer/);
    expect(() => native.ringPullOpen(obj!, 'pt_events', { sleepFlag: { map: 'pt_ring_ctl', offset: 0 } }, () => {})).toThrow(/already has a consumer/);
  });

  it('drainNow hands over what waits at once, awake or asleep; setTickMs changes the interval while running', async () => {
    obj = load(3);
    let received = 0;
    let inner = 0;
    const p = start(obj, { tickMs: 60_000, idleTicks: 1, sleepCheckMs: 3_600_000 }, (n) => {
      received += n;
      // a reader inside a delivery: skipped (the reused buffer holds this batch)
      p.drainNow();
      inner++;
    });
    // awake, the tick a minute away, no watermark: records wait until a reader drains
    native.progRun(obj, 'bench_produce');
    await sleepMs(50);
    expect(received).toBe(0);
    p.drainNow();
    expect(received).toBe(3);
    expect(inner).toBe(1);
    // asleep (a 5 ms tick finds the ring empty), then a minute between drains again: a record
    // wakes the consumer, whose drain would come a minute later; a reader gets it now
    p.setTickMs(5);
    for (const end = Date.now() + 2000; p.stats().sleeps === 0 && Date.now() < end; ) await sleepMs(5);
    expect(p.stats().sleeps).toBeGreaterThan(0);
    p.setTickMs(60_000);
    expect(p.intervalMs).toBe(60_000);
    // asleep with records waiting: drained before the producer's wakeup is even polled
    native.progRun(obj, 'bench_produce');
    p.drainNow();
    expect(received).toBe(6);
    // the wakeup then comes, finds nothing, and nothing is delivered twice
    await sleepMs(50);
    expect(received).toBe(6);
    // awake, a minute to wait: a shorter interval set now drains within it
    native.progRun(obj, 'bench_produce');
    await sleepMs(50);
    expect(received).toBe(6);
    p.setTickMs(5);
    for (const end = Date.now() + 2000; received < 9 && Date.now() < end; ) await sleepMs(5);
    expect(received).toBe(9);
    expect(inner).toBe(3);
    expect(p.stats().demandDrains).toBe(2); // the two above; the ones inside deliveries were skipped
    expect(generated(obj).lost).toBe(0);
  });

  it('paced by its owner: no timer and no sleep, a record wakes no one below the watermark, a burst past it does, and nothing is lost', async () => {
    obj = load(64); // 64 records: ~5 KiB a run
    let received = 0;
    const wakeAboveBytes = 64 << 10;
    // asleep first (a 2 ms tick finds the ring empty): any record would wake it
    const p = start(obj, { tickMs: 2, idleTicks: 1, sleepCheckMs: 3_600_000, wakeAboveBytes }, (n) => (received += n));
    for (const end = Date.now() + 2000; p.stats().sleeps === 0 && Date.now() < end; ) await sleepMs(2);
    expect(p.stats().sleeps).toBeGreaterThan(0);
    p.setPaced(true);
    expect(p.isPaced).toBe(true);
    const ticks0 = p.stats().ticks;
    // paced, with a 2 ms interval in force: records wait for the owner's drain, however long
    native.progRun(obj, 'bench_produce');
    await sleepMs(150);
    expect(received).toBe(0);
    expect(p.stats().ticks).toBe(ticks0); // no timer of its own ran
    expect(p.stats().wakeups).toBe(0); // being paced put the flag back to the watermark
    p.pacedTick();
    expect(received).toBe(64);
    expect(p.stats().ticks).toBe(ticks0 + 1);
    // a burst past the watermark wakes it; every record arrives without an owner's drain
    const runs = Math.ceil(wakeAboveBytes / (64 * FRAME)) + 2;
    for (let i = 0; i < runs; i++) native.progRun(obj, 'bench_produce', { cpu: i % native.numPossibleCpus });
    for (const end = Date.now() + 2000; received < 64 * (runs + 1) && Date.now() < end; ) await sleepMs(2);
    expect(received).toBe(64 * (runs + 1));
    expect(p.stats().watermarkWakes).toBeGreaterThanOrEqual(1);
    // what is left under the watermark stays for the owner: it never goes to sleep
    native.progRun(obj, 'bench_produce');
    await sleepMs(100);
    expect(received).toBe(64 * (runs + 1));
    const sleeps = p.stats().sleeps;
    p.pacedTick();
    expect(received).toBe(64 * (runs + 2));
    // its own timer again: a record is delivered within its tick, and it sleeps when idle
    p.setPaced(false);
    native.progRun(obj, 'bench_produce');
    for (const end = Date.now() + 2000; received < 64 * (runs + 3) && Date.now() < end; ) await sleepMs(2);
    expect(received).toBe(64 * (runs + 3));
    for (const end = Date.now() + 2000; p.stats().sleeps === sleeps && Date.now() < end; ) await sleepMs(2);
    expect(p.stats().sleeps).toBeGreaterThan(sleeps);
    expect(generated(obj).lost).toBe(0);
    expect(received).toBe(generated(obj).generated);
  });

  it('close() drains the tail, past the reused buffer too: every record produced before it is delivered', () => {
    obj = load(1024);
    let received = 0;
    const p = start(obj, { tickMs: 60_000 }, (n) => (received += n));
    const runs = Math.ceil(DEFAULT_PULL_POLICY.bufferBytes / (1024 * FRAME)) + 1;
    for (let i = 0; i < runs; i++) native.progRun(obj, 'bench_produce');
    p.close();
    puller = null;
    expect(received).toBe(runs * 1024);
    expect(p.stats().overflows).toBe(1); // one drain, too big for the reused buffer
  });
});
