import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitBatch, type ExitSlot } from '../../src/app/exit-batch.js';
import type { ExitEvent, LifecycleEvent } from '../../src/shared/events.js';
import { ProcessEntry, type Enriched } from '../../src/process/index.js';
import { Ticker } from '../../src/app/ticker.js';

const usage = (pid: number) => ({ cpuNs: pid * 1000, utimeNs: 1, stimeNs: 2, maxRssKb: pid, readBytes: 3, writeBytes: 4, rchar: 5, wchar: 6, minflt: 7, majflt: 8, nvcsw: 9, nivcsw: 10 });
const ev = (type: 'exit' | 'reap', pid: number): LifecycleEvent =>
  type === 'reap'
    ? { type, ktimeNs: 9n, seq: 1n, cpu: 0, flags: 0, pid, startNs: 1n, exitNs: 5n }
    : { type, ktimeNs: 5n, seq: 1n, cpu: 0, flags: 0, pid, tid: pid, ppid: 1, startNs: 1n, status: 0, exitCode: 0, signal: null, coreDumped: false, comm: { text: `c${pid}` }, usage: usage(pid) };
const en = (pid: number): Enriched => {
  const entry = new ProcessEntry(`e${pid}`, pid, 1n, 'fork');
  entry.argv = [{ text: 'prog' }, { text: String(pid) }];
  return { execId: `e${pid}`, parentExecId: 'p', ppid: 1, comm: `c${pid}`, durationNs: 4n, zombieNs: 4n, entry };
};

afterEach(() => {
  vi.useRealTimers();
});

function batch(maxEvents = 4, intervalMs: number | (() => number) = 200, ticker?: Ticker) {
  const applied: string[] = [];
  let commits = 0;
  const b = new ExitBatch({
    intervalMs: typeof intervalMs === 'number' ? () => intervalMs : intervalMs,
    ticker,
    maxEvents,
    apply: (s: ExitSlot) => {
      if (s.ev.pid === 666) throw new Error('consumer bug');
      applied.push(`${s.kind}:${s.en.execId}`);
    },
    done: () => {
      commits++;
    },
  });
  return { b, applied, commits: () => commits };
}

describe('ExitBatch', () => {
  it('pairs each reap with its exit waiting in the same batch: the exit carries the zombie time, the reap is marked', () => {
    const seen: string[] = [];
    const b = new ExitBatch({ intervalMs: () => 1000, maxEvents: 1000, apply: (s) => seen.push(`${s.kind}:${s.en.execId}:${s.paired}:${s.en.zombieNs}`), done: () => {} });
    const exitEn = (pid: number): Enriched => ({ ...en(pid), zombieNs: undefined });
    const reapEn = (pid: number, z: bigint): Enriched => ({ ...en(pid), zombieNs: z });
    b.push(ev('exit', 1), exitEn(1));
    b.push(ev('exit', 2), exitEn(2));
    b.push(ev('reap', 2), reapEn(2, 20n));
    b.push(ev('reap', 3), reapEn(3, 30n)); // its exit was in an earlier batch
    b.push(ev('reap', 1), reapEn(1, 10n));
    // an exit PAIR_WINDOW (64) slots or more before its reap is not looked for: the reap updates
    b.push(ev('exit', 4), exitEn(4));
    for (let i = 0; i < 64; i++) b.push(ev('exit', 100 + i), exitEn(100 + i));
    b.push(ev('reap', 4), reapEn(4, 40n));
    b.flush();
    expect(seen.slice(0, 6)).toEqual(['exit:e1:false:10', 'exit:e2:false:20', 'reap:e2:true:20', 'reap:e3:false:30', 'reap:e1:true:10', 'exit:e4:false:undefined']);
    expect(seen.at(-1)).toBe('reap:e4:false:40');
    // slots are reused: a paired mark and a zombie time given by pairing do not outlive their
    // batch (slot 0 held exit e1, given 10; slot 2 held the paired reap of e2)
    b.push(ev('exit', 7), exitEn(7));
    b.push(ev('reap', 8), reapEn(8, 80n));
    b.push(ev('reap', 2), reapEn(2, 21n));
    b.flush();
    expect(seen.slice(-3)).toEqual(['exit:e7:false:undefined', 'reap:e8:false:80', 'reap:e2:false:21']);
  });

  it('with a ticker: applied at its tick (one timer shared with the sweeps), an interval changed by a reload is taken at the next batch', () => {
    vi.useFakeTimers();
    const ticker = new Ticker();
    let sweeps = 0;
    ticker.every(1000, () => sweeps++);
    let interval = 1000;
    const { b, applied, commits } = batch(100, () => interval, ticker);
    vi.advanceTimersByTime(600);
    b.push(ev('exit', 1), en(1));
    b.push(ev('reap', 1), en(1));
    expect(ticker.timers).toBe(1); // the batch joined the sweeps' timer
    vi.advanceTimersByTime(399);
    expect(applied).toEqual([]);
    // the sweeps' tick: within the interval of the first event, in the same wakeup
    vi.advanceTimersByTime(1);
    expect([applied, commits(), sweeps]).toEqual([['exit:e1', 'reap:e1'], 1, 1]);
    // nothing waits: the tick commits nothing
    vi.advanceTimersByTime(1000);
    expect(commits()).toBe(1);
    // store.flush_interval reloaded to 500 ms: the next batch's entry moves to it
    interval = 500;
    b.push(ev('exit', 2), en(2));
    vi.advanceTimersByTime(500);
    expect(applied).toEqual(['exit:e1', 'reap:e1', 'exit:e2']);
    expect(ticker.timers).toBe(1); // the sweeps now ride the 500 ms timer, every second tick
    b.push(ev('reap', 2), en(2));
    b.close();
    vi.advanceTimersByTime(5000);
    expect([applied.length, commits()]).toEqual([4, 3]); // close() applied what waited and committed
  });

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

  it('holds copies: the events and entries it was given can go, and their fields are applied as pushed', () => {
    vi.useFakeTimers();
    const seen: string[] = [];
    const slots = new Set<ExitSlot>();
    const b = new ExitBatch({
      intervalMs: () => 200,
      maxEvents: 100,
      apply: (s) => {
        slots.add(s);
        seen.push(s.kind === 'exit' ? `${s.en.execId} ${s.ev.comm.text} ${s.ev.usage.cpuNs} ${s.en.entry.argv!.map((k) => k.text).join(' ')} ${s.en.durationNs}` : `reap ${s.en.execId} ${s.en.zombieNs}`);
      },
      done: () => {},
    });
    const x = ev('exit', 7) as ExitEvent;
    const e = en(7);
    b.push(x, e);
    b.push(ev('reap', 7), en(7));
    // what the caller does with its objects afterwards does not reach the batch
    x.usage.cpuNs = -1;
    x.comm.text = 'changed';
    e.execId = 'changed';
    e.entry.argv = null;
    vi.advanceTimersByTime(200);
    expect(seen).toEqual(['e7 c7 7000 prog 7 4', 'reap e7 4']);
    // the slots are reused by the next batch
    b.push(ev('exit', 8), en(8));
    vi.advanceTimersByTime(200);
    expect(seen[2]).toBe('e8 c8 8000 prog 8 4');
    expect(slots.size).toBe(2);
  });
});
