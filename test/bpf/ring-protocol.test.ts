// The ring consumer's wakeup protocol and queue bounds against the real kernel, driven by
// bench_produce (fork-shaped records through bpf_loop, run with BPF_PROG_TEST_RUN).
// Needs root; skipped otherwise unless PATROL_REQUIRE_BPF=1.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type * as Native from '../../native/patrol_native.js';
import { LAYOUT } from '../../src/wire/generated/lifecycle.js';
import { KTIME_OFFSET, OP_OFFSET, addon, benchProduceEnabled, loadBenchProduce, produced } from './bench-produce.js';

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Blocks the JS thread (batches cannot be delivered meanwhile), not the poll thread. */
const blockMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe.skipIf(!benchProduceEnabled)('ring consumer protocol on the live kernel', () => {
  const native = addon();
  let obj: Native.BpfObject | null = null;

  afterEach(() => {
    if (obj) native.close(obj);
    obj = null;
  });

  const load = (burst: number) => loadBenchProduce(native, burst);

  const generated = (o: Native.BpfObject) => produced(native, o).generated;

  // lingerUs 0 makes the consumer announce sleep right after it drained a record, while that
  // record's producer is about to re-read the flag: the claim races with the last drain.
  it.each([{ lingerUs: 1000 }, { lingerUs: 0 }, { lingerUs: 1000, batchDelayUs: 1000 }])('never leaves a record unannounced while the consumer sleeps (%o)', async ({ lingerUs, batchDelayUs }) => {
    obj = load(3);
    let received = 0;
    // No idle timeout: a missed wakeup would leave records in the ring for good.
    const opts = { tagOffset: OP_OFFSET, sleepFlag: { map: 'pt_ring_ctl', offset: 0 }, idleTimeoutMs: -1, lingerUs, batchDelayUs };
    const c = native.ringStart(obj, 'pt_events', opts, (_b, n) => {
      received += n;
    });
    const rounds = 300;
    for (let i = 0; i < rounds; i++) {
      native.progRun(obj, 'bench_produce', { cpu: i % native.numPossibleCpus, repeat: 1 + (i % 3) });
      const want = generated(obj);
      for (const end = Date.now() + 2000; received < want && Date.now() < end; ) await sleepMs(1);
      expect(received, `round ${i}: records stuck in the ring`).toBe(want);
      // Idle gaps around the linger (1 ms): the consumer alternates lingering and sleeping.
      if (i % 4 === 0) await sleepMs(2 + (i % 3));
      else if (i % 4 === 1) await new Promise((r) => setImmediate(r));
    }
    const st = native.ringStats(c);
    expect(st.sleeps).toBeGreaterThan(rounds / 8);
    expect(st.wakeups).toBeGreaterThan(0);
    expect(st.timedConsumes).toBe(0);
    expect(st.droppedRecords).toBe(0);
    await native.ringStop(c);
  });

  // batchDelayUs: records that arrive after an idle gap wait in the consumer so that the next
  // ones join their batch; a stream that keeps coming is not held; stopping delivers a held batch.
  it('holds a batch that starts after an idle gap for batchDelayUs, and only then', async () => {
    obj = load(1);
    const batchDelayUs = 40_000;
    const batches: { n: number; at: number }[] = [];
    const c = native.ringStart(obj, 'pt_events', { tagOffset: OP_OFFSET, sleepFlag: { map: 'pt_ring_ctl', offset: 0 }, batchDelayUs }, (_b, n) => {
      batches.push({ n, at: performance.now() });
    });
    await sleepMs(100); // idle gap: more than 2 × batchDelayUs since any hand-off
    const t0 = performance.now();
    native.progRun(obj, 'bench_produce');
    await sleepMs(5);
    native.progRun(obj, 'bench_produce');
    for (const end = Date.now() + 2000; batches.length === 0 && Date.now() < end; ) await sleepMs(1);
    expect(batches.map((b) => b.n)).toEqual([2]); // both records in one batch
    expect(batches[0]!.at - t0).toBeGreaterThanOrEqual(batchDelayUs / 1000 - 1);
    expect(native.ringStats(c).holdWaits).toBeGreaterThan(0);

    // Right after a hand-off (no idle gap) a record is not held.
    const t1 = performance.now();
    native.progRun(obj, 'bench_produce');
    for (const end = Date.now() + 2000; batches.length === 1 && Date.now() < end; ) await sleepMs(1);
    expect(batches.length).toBe(2);
    expect(batches[1]!.at - t1).toBeLessThan(batchDelayUs / 1000 / 2);

    // A held batch is delivered at stop, without waiting out the hold.
    await sleepMs(100);
    native.progRun(obj, 'bench_produce');
    const t2 = performance.now();
    await native.ringStop(c);
    expect(batches.length).toBe(3);
    expect(batches[2]!.at - t2).toBeLessThan(batchDelayUs / 1000 / 2);
    expect(native.ringStats(c).droppedRecords).toBe(0);
  });

  it('counts the hold from the record\'s own timestamp with timeOffset', async () => {
    obj = load(1);
    const batchDelayUs = 60_000;
    // Records made 40 ms before the consumer starts: anchored on their ktime_ns, the hold has
    // ~20 ms left when the thread reads them; anchored on the read, it would have 60 ms.
    native.progRun(obj, 'bench_produce');
    await sleepMs(40);
    const t0 = performance.now();
    let at = 0;
    const c = native.ringStart(obj, 'pt_events', { tagOffset: OP_OFFSET, batchDelayUs, timeOffset: KTIME_OFFSET }, () => {
      at = performance.now();
    });
    for (const end = Date.now() + 2000; at === 0 && Date.now() < end; ) await sleepMs(1);
    expect(at - t0).toBeGreaterThan(5);
    expect(at - t0).toBeLessThan(45);
    expect(native.ringStats(c).holdWaits).toBeGreaterThan(0);
    await native.ringStop(c);
  });

  it('hands each record over at once without batchDelayUs', async () => {
    obj = load(1);
    const sizes: number[] = [];
    const c = native.ringStart(obj, 'pt_events', { tagOffset: OP_OFFSET, sleepFlag: { map: 'pt_ring_ctl', offset: 0 } }, (_b, n) => {
      sizes.push(n);
    });
    await sleepMs(20);
    native.progRun(obj, 'bench_produce');
    for (const end = Date.now() + 2000; sizes.length === 0 && Date.now() < end; ) await sleepMs(1);
    await sleepMs(5);
    native.progRun(obj, 'bench_produce');
    await native.ringStop(c);
    expect(sizes).toEqual([1, 1]);
    expect(native.ringStats(c).holdWaits).toBe(0);
  });

  it('grows batches while JS is behind and bounds the queue in bytes', async () => {
    obj = load(1024);
    const burstsWhileBlocked = 16;
    const run = async (queueBytes: number) => {
      let received = 0;
      const c = native.ringStart(obj!, 'pt_events', { tagOffset: OP_OFFSET, sleepFlag: { map: 'pt_ring_ctl', offset: 0 }, queueBytes }, (_b, n) => {
        received += n;
      });
      const before = generated(obj!);
      const batches0 = native.ringStats(c).batches;
      // JS is blocked throughout: the first batch goes out at once; then, with gaps shorter
      // than the linger, the consumer keeps filling batches until they are full.
      for (let i = 0; i < burstsWhileBlocked; i++) {
        native.progRun(obj!, 'bench_produce');
        blockMs(0.3);
      }
      await native.ringStop(c);
      const st = native.ringStats(c);
      return { produced: generated(obj!) - before, received, st, batches: st.batches - batches0 };
    };

    const roomy = await run(16 << 20);
    expect(roomy.st.droppedRecords).toBe(0);
    expect(roomy.received).toBe(roomy.produced);
    // Full batches, not one per pass over the ring (which gave 7-20 records each). Slack for
    // the first batch, the final drain and a scheduling hiccup longer than the linger.
    const full = Math.ceil((roomy.produced * (8 + LAYOUT.structs.pt_fork.size)) / 65536);
    expect(roomy.batches).toBeLessThanOrEqual(full + 6);
    expect(roomy.st.pendingBytes).toBe(0);

    const tight = await run(8192);
    expect(tight.st.droppedRecords).toBeGreaterThan(0);
    expect(tight.received + tight.st.droppedRecords).toBe(tight.produced);
    expect(tight.st.droppedByTag.reduce((a, b) => a + b, 0)).toBe(tight.st.droppedRecords);
  });

  it('reports a refused SCHED_FIFO without failing, or applies it', async () => {
    obj = load(1);
    const c = native.ringStart(obj, 'pt_events', { realtimePriority: 1 }, () => {});
    const st = native.ringStats(c);
    // Root normally may; inside a cgroup without an RT budget the kernel refuses (EPERM).
    expect(st.realtimeError === null || /not permitted/i.test(st.realtimeError)).toBe(true);
    expect(st.running).toBe(true);
    await native.ringStop(c);
  });

  it('moves the calling thread to SCHED_FIFO and back', () => {
    // field 41 of /proc/thread-self/stat: the scheduling policy (0 other, 1 fifo)
    const policy = () => Number(readFileSync('/proc/thread-self/stat', 'utf8').replace(/^.*\) /s, '').split(' ')[41 - 3]);
    const err = native.setThreadRealtime(1);
    try {
      if (err === null) expect(policy()).toBe(1);
      else expect(err).toMatch(/not permitted/i);
    } finally {
      expect(native.setThreadRealtime(0)).toBeNull();
    }
    expect(policy()).toBe(0);
    expect(() => native.setThreadRealtime(100)).toThrow(/0\.\.99/);
  });
});
