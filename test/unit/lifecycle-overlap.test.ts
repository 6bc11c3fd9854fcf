// A sensor reload's overlap as LifecyclePipeline walks a drained batch: a batch is handed over
// CHUNK_RECORDS records at a time, and the duplicate of a record may sit in a later chunk of the
// same batch. The pipeline's own onBatch runs here on recorded fork records, with its sensor,
// table and consumers left out (dispatch collects what would reach them).
import { describe, expect, it } from 'vitest';
import { LifecyclePipeline } from '../../src/app/lifecycle.js';
import { OverlapDedupe } from '../../src/app/overlap.js';
import { PathProbeMarker } from '../../src/process/index.js';
import type { ForkEvent, LifecycleEvent } from '../../src/shared/events.js';
import { PT_OP_FORK } from '../../src/wire/generated/lifecycle.js';
import { SeqTracker } from '../../src/wire/index.js';
import { frame, record } from './wire-encode.js';

interface Walker {
  overlap: OverlapDedupe;
  onDrained: (() => void) | null;
  onBatch(batch: Buffer): void;
}

function pipeline(out: LifecycleEvent[]): Walker {
  const p = Object.create(LifecyclePipeline.prototype) as Record<string, unknown>;
  Object.assign(p, {
    seq: new SeqTracker(0n), captured: { exec: 0, fork: 0, exit: 0, reap: 0, exec_failed: 0 }, malformed: 0,
    events: [], ready: [], overlap: new OverlapDedupe(), probes: new PathProbeMarker(), probeTimer: null, stopped: false,
    onDrained: null, dispatch: (evs: readonly LifecycleEvent[]) => out.push(...evs),
  });
  return p as unknown as Walker;
}

let seq = 0n;
const fork = (tid: number) =>
  record('pt_fork', { hdr: { op: PT_OP_FORK, seq: seq++, ktime_ns: 1000n + seq }, child_pid: tid, child_tid: tid, child_start_ns: BigInt(tid) * 10n, parent_pid: 1, parent_tid: 1 });

describe('a reload overlap across the chunks of one batch', () => {
  const chunk = LifecyclePipeline.CHUNK_RECORDS;
  // one batch: 1.5 chunks of distinct forks, then the first 50 again (the other generation's
  // records of the same events), all in the batch's second chunk
  const tids = Array.from({ length: chunk + chunk / 2 }, (_, i) => 5000 + i);
  const batch = () => frame([...tids.map(fork), ...tids.slice(0, 50).map(fork)]);

  it('a window due to close at this batch still filters every chunk of it, then closes', () => {
    const out: LifecycleEvent[] = [];
    const p = pipeline(out);
    p.overlap.open();
    p.overlap.closeAfter(0, performance.now() - 1);
    p.onBatch(batch());
    expect(out.map((e) => (e as ForkEvent).tid)).toEqual(tids);
    expect(p.overlap.lastDuplicates).toBe(50);
    expect(p.overlap.active).toBe(false);
    // the next batch is past the window: nothing is filtered
    p.onBatch(frame([fork(5000)]));
    expect(out).toHaveLength(tids.length + 1);
  });

  it('a batch whose hand-over throws still closes a window that was due', () => {
    const out: LifecycleEvent[] = [];
    const p = pipeline(out);
    p.overlap.open();
    p.overlap.closeAfter(0, performance.now() - 1);
    p.onDrained = () => {
      throw new Error('a consumer bug');
    };
    expect(() => p.onBatch(batch())).toThrow('a consumer bug');
    expect(p.overlap.active).toBe(false);
  });

  it('a window not yet due stays open across batches', () => {
    const out: LifecycleEvent[] = [];
    const p = pipeline(out);
    p.overlap.open();
    p.overlap.closeAfter(60_000);
    p.onBatch(batch());
    p.onBatch(batch());
    expect(out).toHaveLength(tids.length);
    expect(p.overlap.lastDuplicates).toBe(50 + tids.length + 50);
    expect(p.overlap.active).toBe(true);
  });
});
