import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitBatch } from '../../src/app/exit-batch.js';
import type { LifecycleEvent } from '../../src/shared/events.js';
import type { Enriched } from '../../src/process/index.js';

const ev = (type: 'exit' | 'reap', pid: number) => ({ type, pid }) as unknown as LifecycleEvent;
const en = (pid: number) => ({ execId: `e${pid}` }) as unknown as Enriched;

afterEach(() => {
  vi.useRealTimers();
});

function batch(maxEvents = 4, intervalMs = 200) {
  const applied: string[] = [];
  let commits = 0;
  const b = new ExitBatch({
    intervalMs: () => intervalMs,
    maxEvents,
    apply: (e, x) => {
      if (e.pid === 666) throw new Error('consumer bug');
      applied.push(`${e.type}:${x.execId}`);
    },
    done: () => {
      commits++;
    },
  });
  return { b, applied, commits: () => commits };
}

describe('ExitBatch', () => {
  it('applies nothing until the interval after the first event, then all of them in order, then commits once', () => {
    vi.useFakeTimers();
    const { b, applied, commits } = batch(100, 200);
    b.push(ev('exit', 1), en(1));
    vi.advanceTimersByTime(150);
    b.push(ev('exit', 2), en(2));
    b.push(ev('reap', 1), en(1));
    expect(applied).toEqual([]);
    expect(b.waiting).toBe(3);
    // the interval runs from the first event, not the last
    vi.advanceTimersByTime(50);
    expect(applied).toEqual(['exit:e1', 'exit:e2', 'reap:e1']);
    expect(commits()).toBe(1);
    expect(b.waiting).toBe(0);
    // nothing waits: no timer, no further commit
    vi.advanceTimersByTime(1000);
    expect(commits()).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('applies at once when maxEvents wait, and the timer armed by the first is cleared', () => {
    vi.useFakeTimers();
    const { b, applied, commits } = batch(3, 200);
    for (let i = 1; i <= 3; i++) b.push(ev('exit', i), en(i));
    expect(applied).toHaveLength(3);
    expect(commits()).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a throwing apply is counted and the rest of the batch is still applied', () => {
    vi.useFakeTimers();
    const { b, applied } = batch(10, 200);
    b.push(ev('exit', 1), en(1));
    b.push(ev('exit', 666), en(666));
    b.push(ev('exit', 2), en(2));
    vi.advanceTimersByTime(200);
    expect(applied).toEqual(['exit:e1', 'exit:e2']);
    expect(b.errors).toBe(1);
  });

  it('close applies what waits; later events are applied at once', () => {
    vi.useFakeTimers();
    const { b, applied, commits } = batch(10, 200);
    b.push(ev('exit', 1), en(1));
    b.close();
    expect(applied).toEqual(['exit:e1']);
    expect(commits()).toBe(1);
    b.push(ev('exit', 2), en(2));
    expect(applied).toEqual(['exit:e1', 'exit:e2']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
