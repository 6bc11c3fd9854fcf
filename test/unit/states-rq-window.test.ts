// Run-queue percentiles over the last window (not since the sensor started): the cumulative
// per-thread histograms are differenced against a snapshot one window old.
import { describe, expect, it } from 'vitest';
import { ProcessStates, ProcessTable } from '../../src/process/index.js';
import type { ThreadSnap } from '../../src/wire/index.js';

const S = 1_000_000_000n;
const fakeProcfs = { listPids: () => [], readStat: () => null, readCmdline: () => null, readUid: () => null };

function thread(hist: number[]): ThreadSnap {
  return {
    pid: 50, tid: 50, startNs: 5n * S, cgroupId: 7n, comm: { text: 'w' }, state: 'S', rawState: 0, sinceNs: 5n * S,
    rqMaxNs: 900_000, rqHist: hist, nvcsw: 0, nivcsw: 0,
  };
}

describe('run-queue window', () => {
  it('percentiles cover the last window only', () => {
    let now = 10n * S;
    const table = new ProcessTable({ bootId: '00000000-0000-0000-0000-000000000000', procfs: fakeProcfs, now: () => now });
    table.bootstrap([{ pid: 50, ppid: 1, startNs: 5n * S, parentStartNs: 0n, uid: 0, cgroupId: 7n, comm: 'w', exitState: 0 }], { readArgs: false });
    const id = table.byPid(50)!.execId;
    const st = new ProcessStates(table, () => {}, { now: () => now, rqWindowNs: 60n * S });
    // a first minute of long waits (slot 9: 512–1024 µs)...
    const slow = new Array(20).fill(0);
    slow[9] = 1000;
    st.applySweep([thread(slow)]);
    expect(st.stateOf(id, now)!.rq.p95Ns).toBeGreaterThan(500_000);
    // ...then a minute of short ones (slot 2: 4–8 µs) on top
    const later = [...slow];
    later[2] = 1000;
    for (let t = 15n; t <= 75n; t += 5n) {
      now = t * S;
      st.applySweep([thread(t === 75n ? later : slow)]);
    }
    const rq = st.stateOf(id, now)!.rq;
    expect(rq.count).toBe(1000);
    expect(rq.p95Ns).toBeLessThan(10_000);
    expect(st.rqByCgroup().get(7n)!.count).toBe(1000);
    // without a clock: cumulative, as before
    const cumulative = new ProcessStates(table);
    cumulative.applySweep([thread(later)]);
    expect(cumulative.stateOf(id, now)!.rq.count).toBe(2000);
  });
});
