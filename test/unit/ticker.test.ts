import { afterEach, describe, expect, it, vi } from 'vitest';
import { Ticker } from '../../src/app/ticker.js';
import { HealthMonitor } from '../../src/app/health.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('Ticker', () => {
  it('runs every callback of one period on one timer, in the order they were added', () => {
    vi.useFakeTimers();
    const t = new Ticker();
    const ran: string[] = [];
    t.every(1000, () => ran.push('health'));
    t.every(1000, () => ran.push('states'));
    t.every(1000, () => ran.push('resources'));
    t.every(5000, () => ran.push('governor'));
    // one timer for all four: the 5 s callback runs at every fifth tick of the 1 s one
    expect(t.timers).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(999);
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual(['health', 'states', 'resources']);
    vi.advanceTimersByTime(4000);
    expect(ran.length).toBe(3 * 5 + 1);
    expect(ran.at(-1)).toBe('governor');
  });

  it('a callback that throws does not stop the others of its tick; the error still surfaces', () => {
    vi.useFakeTimers();
    const t = new Ticker();
    const ran: string[] = [];
    t.every(1000, () => ran.push('a'));
    t.every(1000, () => {
      throw new Error('sweep bug');
    });
    t.every(1000, () => ran.push('c'));
    expect(() => vi.advanceTimersByTime(1000)).toThrow('sweep bug');
    expect(ran).toEqual(['a', 'c']);
  });

  it('runs `before` first at every tick, and a throw from it does not stop the callbacks', () => {
    // the agent drains its lifecycle ring there, so the sweeps read a current table
    vi.useFakeTimers();
    const ran: string[] = [];
    let fail = false;
    const t = new Ticker({
      before: () => {
        ran.push('drain');
        if (fail) throw new Error('drain bug');
      },
    });
    t.every(1000, () => ran.push('resources'));
    t.every(2000, () => ran.push('states'));
    vi.advanceTimersByTime(2000);
    expect(ran).toEqual(['drain', 'resources', 'drain', 'resources', 'states']);
    fail = true;
    ran.length = 0;
    expect(() => vi.advanceTimersByTime(1000)).toThrow('drain bug');
    expect(ran).toEqual(['drain', 'resources']);
  });

  it('cancel stops one callback; the last cancel of a period clears its timer', () => {
    vi.useFakeTimers();
    const t = new Ticker();
    const ran: string[] = [];
    const a = t.every(1000, () => ran.push('a'));
    // b cancels a during a tick: a is skipped from then on, even later in the same tick
    const b = t.every(1000, () => {
      ran.push('b');
      a.cancel();
    });
    vi.advanceTimersByTime(1000);
    vi.advanceTimersByTime(1000);
    expect(ran).toEqual(['a', 'b', 'b']);
    a.cancel(); // twice: no effect
    expect(t.timers).toBe(1);
    b.cancel();
    expect(t.timers).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // a new callback after that starts a new timer
    t.every(1000, () => ran.push('d'));
    vi.advanceTimersByTime(1000);
    expect(ran.at(-1)).toBe('d');
  });

  it('a shorter period added later takes over the timers of its multiples, keeping their periods', () => {
    vi.useFakeTimers();
    const t = new Ticker();
    const ran: string[] = [];
    t.every(2000, () => ran.push('states'));
    t.every(3000, () => ran.push('three'));
    t.every(6000, () => ran.push('six')); // a multiple of 2000: on its timer already
    expect(t.timers).toBe(2);
    vi.advanceTimersByTime(500);
    t.every(1000, () => ran.push('resources'));
    expect(t.timers).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(6000);
    expect(ran.filter((x) => x === 'resources').length).toBe(6);
    expect(ran.filter((x) => x === 'states').length).toBe(3);
    expect(ran.filter((x) => x === 'three').length).toBe(2);
    expect(ran.filter((x) => x === 'six').length).toBe(1);
    // and they run in the resources' wakeups: every tick that ran states also ran resources
    expect(ran.indexOf('states')).toBeGreaterThan(ran.indexOf('resources'));
  });

  it('keeps the process alive only while a callback asked for it', () => {
    const t = new Ticker();
    const a = t.every(60_000, () => {});
    const group = () => (t as unknown as { groups: Array<{ period: number; timer: NodeJS.Timeout }> }).groups.find((g) => g.period === 60_000)!.timer;
    expect(group().hasRef()).toBe(false);
    const b = t.every(60_000, () => {}, { ref: true });
    expect(group().hasRef()).toBe(true);
    b.cancel();
    expect(group().hasRef()).toBe(false);
    a.cancel();
    expect(t.timers).toBe(0);
  });

  it('the health sampler joins a shared ticker and leaves it at stop', () => {
    vi.useFakeTimers();
    const t = new Ticker();
    let lost = 0;
    let losses = 0;
    const h = new HealthMonitor(
      { storeError: () => null, consumerErrors: () => ({}), lost: () => lost, missing: () => [] },
      () => Date.now(),
      () => losses++,
    );
    t.every(1000, () => {});
    h.start(t);
    expect(t.timers).toBe(1);
    lost = 3;
    vi.advanceTimersByTime(1000);
    expect(losses).toBe(1);
    h.stop();
    lost = 5;
    vi.advanceTimersByTime(5000);
    expect(losses).toBe(1);
    expect(t.timers).toBe(1);
  });
});
