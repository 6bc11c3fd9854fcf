// The agent's health report (src/app/health.ts): degraded with reasons, judged over the last
// minute for loss and consumer errors, at once for the store and missing sensors.
import { describe, expect, it } from 'vitest';
import { HealthMonitor } from '../../src/app/health.js';

function rig() {
  const st = { now: 1_000_000, storeError: null as string | null, errors: {} as Record<string, number>, lost: 0, missing: [] as string[], onLoss: 0 };
  const m = new HealthMonitor(
    { storeError: () => st.storeError, consumerErrors: () => ({ ...st.errors }), lost: () => st.lost, missing: () => st.missing },
    () => st.now,
    () => st.onLoss++,
  );
  // drive the 1 s sampling by hand
  const tick = (s: number) => {
    for (let i = 0; i < s; i++) {
      st.now += 1000;
      (m as unknown as { sample(): void }).sample();
    }
  };
  (m as unknown as { sample(): void }).sample();
  return { st, m, tick };
}

describe('HealthMonitor', () => {
  it('sampleNow: a loss seen under pressure is sampled at once (onLoss), at most every 100 ms, and only while started', () => {
    const { st, m } = rig();
    m.sampleNow(); // not started: the ticker's sampler is not running, nothing to add to
    expect(st.onLoss).toBe(0);
    m.start({ every: () => ({ cancel: () => {} }) } as never);
    st.now += 1000;
    st.lost = 5;
    m.sampleNow();
    expect(st.onLoss).toBe(1);
    expect(m.report().reasons).toEqual([{ kind: 'loss', message: '5 records lost in the last minute' }]);
    st.lost = 9;
    st.now += 50; // under 100 ms since that sample: not again
    m.sampleNow();
    expect(st.onLoss).toBe(1);
    st.now += 50;
    m.sampleNow();
    expect(st.onLoss).toBe(2);
    m.stop();
  });

  it('is ok with nothing wrong', () => {
    const { m } = rig();
    expect(m.report()).toEqual({ status: 'ok', reasons: [] });
  });

  it('a failing store degrades at once, and recovers when writes succeed', () => {
    const { st, m } = rig();
    st.storeError = 'SQLITE_FULL: database or disk is full';
    expect(m.report()).toEqual({ status: 'degraded', reasons: [{ kind: 'store', message: 'store writes failing: SQLITE_FULL: database or disk is full' }] });
    st.storeError = null;
    expect(m.report().status).toBe('ok');
  });

  it('consumer errors and loss count over the last minute only', () => {
    const { st, m, tick } = rig();
    tick(5);
    st.errors = { rules: 3 };
    st.lost = 10;
    expect(m.report().reasons).toEqual([
      { kind: 'consumer', message: 'consumer rules: 3 errors in the last minute' },
      { kind: 'loss', message: '10 records lost in the last minute' },
    ]);
    tick(30);
    expect(m.report().status).toBe('degraded');
    tick(40); // more than a minute since the errors and the loss
    expect(m.report()).toEqual({ status: 'ok', reasons: [] });
    st.errors = { rules: 4 };
    expect(m.report().reasons).toEqual([{ kind: 'consumer', message: 'consumer rules: 1 error in the last minute' }]);
  });

  it('tells the agent at the first sample after the loss counter went up, once per increase', () => {
    const { st, tick } = rig();
    tick(3);
    expect(st.onLoss).toBe(0);
    st.lost = 7;
    tick(1);
    expect(st.onLoss).toBe(1);
    tick(3); // no new loss
    expect(st.onLoss).toBe(1);
    st.lost = 9;
    tick(1);
    expect(st.onLoss).toBe(2);
  });

  it('names missing sensors', () => {
    const { st, m } = rig();
    st.missing = ['lifecycle programs not attached: handle_execve_enter'];
    expect(m.report()).toEqual({ status: 'degraded', reasons: [{ kind: 'sensor', message: 'lifecycle programs not attached: handle_execve_enter' }] });
  });
});
