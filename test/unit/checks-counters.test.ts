// Event counters: bucketed counts per event aggregate instead of a list of event facts. Window
// edges with fake time, the agent's feed (no fact per event: a predicate reads only the fields it
// tests), the memory bound, reloads that keep unchanged counters, and the accessors' agreement
// with the catalogue.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVENT_KINDS, EVENT_KIND_NAMES, EventCounters, WindowCounter, bucketing, collectAggregates, compilePredicate, compileSource, eventAggregate, factField, liveField,
  liveFieldNames, type CompiledCheck, type EventFact,
} from '../../src/checks/index.js';
import { CheckService } from '../../src/app/checks.js';
import type { ExecEvent, ExitEvent, LifecycleEvent } from '../../src/shared/events.js';
import type { Enriched } from '../../src/process/index.js';

const MS = 1_000_000n;

function exitEv(tMs: number, o: { pid?: number; tid?: number; code?: number | null; signal?: number | null; comm?: string } = {}): ExitEvent {
  const signal = o.signal ?? null;
  const pid = o.pid ?? 100;
  return {
    type: 'exit', ktimeNs: BigInt(tMs) * MS, seq: 0n, cpu: 0, flags: 0, pid, tid: o.tid ?? pid, ppid: 1, startNs: 0n, status: 0,
    exitCode: signal !== null ? null : (o.code ?? 0), signal, coreDumped: false, comm: { text: o.comm ?? 'x' },
    usage: { cpuNs: 5 * Number(MS), utimeNs: 0, stimeNs: 0, maxRssKb: 10, readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
  };
}

function execEv(tMs: number): ExecEvent {
  return {
    type: 'exec', ktimeNs: BigInt(tMs) * MS, seq: 0n, cpu: 0, flags: 0, pid: 7, oldTid: 7, ppid: 1, startNs: 0n, parentStartNs: 0n, cgroupId: 1n, uid: 0, gid: 0, euid: 0,
    comm: { text: 'sh' }, filename: { text: '/bin/sh' }, filenameTruncated: false, args: [], argsTruncated: false, argsFault: false, argsFullLen: 0,
  };
}

const enriched = { execId: 'e', parentExecId: null, ppid: 1, comm: 'x', durationNs: 2_000_000_000n } as unknown as Enriched;

function compile(src: string): CompiledCheck[] {
  const r = compileSource(src, 'x.patrol');
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.checks;
}

/** The predicate of `count(exit where PRED, 1m)`, as the compiler sees it. */
function whereOf(pred: string) {
  const c = compileSource(`check count(exit where ${pred}, 1m) > 0;`, 'w.patrol').checks[0]!;
  const e = c.conditions[0]!.expr as Extract<CompiledCheck['conditions'][0]['expr'], { kind: 'binary' }>;
  const call = e.left as Extract<typeof e.left, { kind: 'call' }>;
  return (call.args[0] as Extract<typeof e.left, { kind: 'where' }>).pred;
}

const SEGV = eventAggregate('exit', whereOf('signal == 11'), 60_000);

describe('bucketing', () => {
  it('splits a window into at most 600 equal whole-ms buckets', () => {
    expect(bucketing(60_000)).toEqual({ widthMs: 100, buckets: 600 });
    expect(bucketing(600_000)).toEqual({ widthMs: 1000, buckets: 600 });
    expect(bucketing(3_600_000)).toEqual({ widthMs: 6000, buckets: 600 });
    expect(bucketing(7)).toEqual({ widthMs: 1, buckets: 7 });
    expect(bucketing(1500)).toEqual({ widthMs: 3, buckets: 500 });
    // a prime number of ms: buckets of ceil(w / 600), reaching back less than one bucket more
    const p = bucketing(60_013);
    expect(p.buckets).toBeLessThanOrEqual(600);
    expect(p.widthMs * p.buckets).toBeGreaterThanOrEqual(60_013);
    expect(p.widthMs * p.buckets - 60_013).toBeLessThan(p.widthMs);
  });
});

describe('WindowCounter', () => {
  it('counts now − w < t ≤ now exactly when now falls on a bucket edge', () => {
    const c = new WindowCounter(60_000, 0);
    for (const t of [39_999, 40_000, 40_001, 70_000, 99_999, 100_000]) c.add(t);
    expect(c.sum(100_000)).toBe(4); // 40_000 is on the window's start: out
    expect(c.sum(99_999)).toBe(4); // now rounds up to its bucket (100 ms), where nothing newer is yet
    expect(c.sum(160_000)).toBe(0);
    expect(c.sum(159_999)).toBe(0); // (99_999, 159_999] exactly, but the start rounds up to 100_000
  });

  it('off an edge, the start is exact to one bucket (1/600 of the window)', () => {
    const c = new WindowCounter(60_000, 0);
    c.add(40_051); // inside (40_050, 100_050], but in the bucket (40_000, 40_100] that the window starts in
    c.add(40_101);
    expect(c.sum(100_050)).toBe(1);
  });

  it('takes events out of order within the window; drops one older than every bucket held', () => {
    const c = new WindowCounter(1000, 0);
    c.add(5000);
    c.add(4500);
    c.add(3000); // a whole window behind the newest: its slot holds a newer bucket
    expect(c.sum(5000)).toBe(2);
    expect(c.late).toBe(1);
  });

  it('says how much of the window counting has covered', () => {
    const c = new WindowCounter(60_000, 10_000);
    expect(c.usedMs(40_000)).toBe(30_000);
    expect(c.usedMs(500_000)).toBe(60_000);
    expect(new WindowCounter(60_000, null).usedMs(1)).toBe(0);
  });
});

describe('the agent feed', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-counters-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function service(text: string, clock: { now: number }): CheckService {
    const d = mkdtempSync(join(dir, 'svc-'));
    writeFileSync(join(d, 'a.patrol'), text);
    const svc = new CheckService({ dir: d, log: pino({ level: 'silent' }), store: null, concurrency: 1, eventNow: () => clock.now });
    expect(svc.reload('test')).toMatchObject({ ok: true });
    return svc;
  }

  it('count() is the number of matching events fed, across window edges, with fake time', async () => {
    const clock = { now: 1_000_000 };
    const svc = service('check segv { every 1s; critical count(exit where signal == 11, 1m) > 0; }\n', clock);
    expect('history' in svc).toBe(false);
    // one matching exit every 500 ms for 3 minutes, with ordinary exits and thread exits between;
    // counts are read as time goes on, as check runs do (a counter answers for now, not the past)
    let next = 1_000_000;
    let fed = 0;
    const feedUntil = (end: number) => {
      for (; next <= end && next < 1_180_000; next += 500) {
        svc.onLifecycle(exitEv(next, { signal: 11 }), enriched);
        svc.onLifecycle(exitEv(next + 1, { code: 0 }), enriched);
        svc.onLifecycle(exitEv(next + 2, { tid: 101, signal: 11 }), enriched); // a thread: not a process exit
        fed++;
      }
    };
    const at = (now: number) => (feedUntil(now), svc.counters.count(SEGV, now)!.n);
    expect(at(1_000_000)).toBe(1);
    expect(at(1_059_900)).toBe(120); // on a bucket edge (100 ms): exactly 1_000_000 … 1_059_500
    // off an edge the window's start rounds up to its bucket: (999_999, 1_059_999] is 120 events,
    // but 1_000_000 shares the bucket (999_900, 1_000_000] the window starts in
    expect(at(1_059_999)).toBe(119);
    expect(at(1_060_000)).toBe(120); // 1_000_000 has left and 1_060_000 arrived
    expect(at(1_179_500)).toBe(120);
    expect(fed).toBe(360);
    expect(at(1_239_400)).toBe(1); // the last, at 1_179_500
    expect(at(1_239_500)).toBe(0); // … leaves exactly one window after it arrived
    expect(at(1_179_500)).toBe(120); // the buckets still hold it: a run that read its clock early
    // the check reads the same counter through the executor, at the service's event clock
    clock.now = 1_179_500;
    const [r] = await svc.executor.runAll();
    expect(r!.evidence.values[0]).toMatchObject({ field: 'count(exit where signal == 11, 1m)', value: 120, window_s: 60, window_used_s: 60 });
    expect(r!.state).toBe('critical');
    svc.close();
  });

  it('a predicate reads only the fields it tests; a kind no check reads is one lookup', () => {
    const svc = service('check segv { critical count(exit where signal == 11, 1m) > 0; }\n', { now: 0 });
    const reads = new Set<PropertyKey>();
    const spy = <T extends object>(ev: T): T => new Proxy(ev, { get: (o, p) => (reads.add(p), Reflect.get(o, p)) });
    svc.onLifecycle(spy(exitEv(1000, { signal: 11 })) as LifecycleEvent, enriched);
    // the old feed built a fact of every field: comm.text, usage.cpuNs, exitCode, coreDumped …
    expect([...reads].sort()).toEqual(['ktimeNs', 'pid', 'signal', 'tid', 'type']);
    reads.clear();
    svc.onLifecycle(spy(execEv(1000)) as LifecycleEvent, enriched);
    expect([...reads]).toEqual(['type']);
    expect(svc.counters.count(SEGV, 1000)!.n).toBe(1);
    svc.close();
  });

  it('memory is fixed by the aggregates: 1,000,000 events in the window are all counted in 600 buckets', () => {
    const svc = service('check segv { critical count(exit where signal == 11, 1m) > 0; }\n', { now: 0 });
    const ev = exitEv(0, { signal: 11 });
    const N = 1_000_000;
    // 1M events over 50 s, then 1M more spread over a day: the structure does not grow
    for (let i = 0; i < N; i++) {
      ev.ktimeNs = BigInt(10_000_000 + Math.floor(i / 20)) * MS;
      svc.onLifecycle(ev, enriched);
    }
    // the old 50,000-fact ring kept only the newest 50,000 and undercounted
    expect(svc.counters.count(SEGV, 10_050_000)!.n).toBe(N);
    for (let i = 0; i < N; i++) {
      ev.ktimeNs = BigInt(10_100_000 + Math.floor(i * 86.4)) * MS;
      svc.onLifecycle(ev, enriched);
    }
    expect(svc.counters.stats()).toEqual({ aggregates: 1, buckets: 600, late: 0 });
    expect(svc.counters.count(SEGV, 10_100_000 + 86_400_000)!.n).toBeLessThan(1000);
    svc.close();
  });

  it('a reload keeps the counts of unchanged aggregates and starts changed ones empty', () => {
    const clock = { now: 0 };
    const d = mkdtempSync(join(dir, 'reload-'));
    writeFileSync(join(d, 'a.patrol'), 'check segv { critical count(exit where signal == 11, 1m) > 0; }\ncheck fails { critical exit_failures(10m) > 5; }\n');
    const svc = new CheckService({ dir: d, log: pino({ level: 'silent' }), store: null, concurrency: 1, eventNow: () => clock.now });
    svc.reload('test');
    for (let t = 1000; t <= 3000; t += 1000) svc.onLifecycle(exitEv(t, { signal: 11 }), enriched);
    const failed10m = eventAggregate('exit', whereOf('failed'), 600_000);
    expect(svc.counters.count(failed10m, 3000)!.n).toBe(3);
    clock.now = 3000;
    writeFileSync(join(d, 'a.patrol'), 'check segv { critical count(exit where signal == 11, 1m) > 0; }\ncheck fails { critical exit_failures(20m) > 5; }\ncheck x { critical count(exit where failed, 10m) > 0; }\n');
    expect(svc.reload('test')).toMatchObject({ ok: true, checks: 3 });
    expect(svc.counters.count(SEGV, 3000)!.n).toBe(3); // unchanged: carried over
    expect(svc.counters.count(failed10m, 3000)!.n).toBe(3); // same key, now read by another check
    expect(svc.counters.count(eventAggregate('exit', whereOf('failed'), 1_200_000), 3000)).toEqual({ n: 0, usedMs: 0 }); // new window: empty
    expect(svc.counters.stats().aggregates).toBe(4); // segv, exit failed 10m + 20m, exec_failed 20m
    // a bad set keeps the running counters
    writeFileSync(join(d, 'a.patrol'), 'check broken { critical count(exi, 1m) > 0; }\n');
    expect(svc.reload('test')).toMatchObject({ ok: false });
    expect(svc.counters.count(SEGV, 3000)!.n).toBe(3);
    svc.close();
  });
});

describe('aggregates and predicates', () => {
  it('collects every event read once: count, rate, exec_rate, exit_failures (with default windows)', () => {
    const checks = compile(`check a { critical count(exit where signal == 11, 1m) > 0; warning rate(exec_failed where errno == 13, 5m) > 1/s; }
check b { critical exec_rate > 100/s; warning exit_failures > 3; }
check c { critical exit_failures(10m) + count(exit where signal == 11, 1m) > 3 and load1 > 1; }
check d { critical count(state where to == "D", 30s) > 0; }`);
    expect(collectAggregates(checks).map((a) => a.key)).toEqual([
      'exit/60000/signal == 11',
      'exec_failed/300000/errno == 13',
      'exec/60000/',
      'exit/600000/failed',
      'exec_failed/600000/',
      'state/30000/to == "D"',
    ]);
  });

  it('exit_failures and exec_rate read the counters', async () => {
    const clock = { now: 0 };
    const c = new EventCounters();
    const checks = compile('check f { critical exit_failures(10m) >= 3; warning exec_rate(1m) > 1/s; }');
    c.configure(collectAggregates(checks), 0);
    c.onLifecycle(exitEv(1000, { code: 1 }));
    c.onLifecycle(exitEv(2000, { signal: 9 }));
    c.onLifecycle(exitEv(3000, { code: 0 }));
    c.onLifecycle({ type: 'exec_failed', ktimeNs: 4000n * MS, seq: 0n, cpu: 0, flags: 0, pid: 3, tid: 3, startNs: 0n, errno: 2, filename: { text: '/x' }, comm: { text: 'sh' } });
    for (let t = 0; t < 120; t++) c.onLifecycle(execEv(5000 + t * 100));
    const { Executor, FakeClock } = await import('../../src/checks/index.js');
    const results: { evidence: { values: { field: string; value: unknown }[] }; state: string }[] = [];
    const ex = new Executor({ sources: { events: c }, clock: new FakeClock(0), eventNow: () => (clock.now = 17_000), onResult: (r) => results.push(r) });
    ex.setChecks(checks);
    await ex.runAll();
    expect(results[0]!.evidence.values.map((v) => [v.field, v.value])).toEqual([
      ['exit_failures(10m)', 3],
      ['exec_rate(1m)', 2],
    ]);
    expect(results[0]!.state).toBe('critical');
  });

  it('a check whose aggregate has no counter is unknown and says so', async () => {
    const { Executor, FakeClock } = await import('../../src/checks/index.js');
    const results: { state: string; evidence: { conditions: { error?: string }[] } }[] = [];
    const ex = new Executor({ sources: { events: new EventCounters() }, clock: new FakeClock(0), onResult: (r) => results.push(r) });
    ex.setChecks(compile('check count(exit, 1m) > 0;'));
    await ex.runAll();
    expect(results[0]!.state).toBe('unknown');
    expect(results[0]!.evidence.conditions[0]!.error).toMatch(/not being counted/);
  });

  it('live accessors cover exactly the catalogue fields of each kind', () => {
    expect([...EVENT_KIND_NAMES].sort()).toEqual(Object.keys(EVENT_KINDS).sort());
    for (const k of EVENT_KIND_NAMES) expect(liveFieldNames(k).sort(), k).toEqual(Object.keys(EVENT_KINDS[k]!).sort());
  });

  it('a predicate means the same on a decoded event and on its fact', () => {
    const preds = [
      'exit_code != 0', 'exit_code > 0', 'not (exit_code < 1)', 'signal == 11 or comm == "w"', 'duration * 2 >= 4s', 'cpu > 1ms and max_rss == 10KB',
      'failed and not core_dumped', '-exit_code < 0', 'ppid == 1', 'exit_code / 0 == 1',
    ];
    const evs: [ExitEvent, EventFact][] = [
      exitEv(1, { code: 0 }), exitEv(1, { code: 3, comm: 'w' }), exitEv(1, { signal: 11 }), exitEv(1, { signal: 9, comm: 'w' }),
    ].map((e) => [e, { kind: 'exit', t: 1, f: { pid: e.pid, ppid: 1, comm: e.comm.text, exit_code: e.exitCode, signal: e.signal, core_dumped: false, failed: e.signal !== null || e.exitCode !== 0, duration: 2, cpu: 0.005, max_rss: 10240 } }]);
    for (const p of preds) {
      const pred = whereOf(p);
      const live = compilePredicate(pred, (n) => liveField('exit', n));
      const fact = compilePredicate(pred, factField);
      for (const [e, f] of evs) expect(live(e, enriched), `${p} on ${JSON.stringify(f.f)}`).toBe(fact(f, undefined));
    }
    // and the expected truths of a few
    const truth = (p: string) => evs.map(([e]) => compilePredicate(whereOf(p), (n) => liveField('exit', n))(e, enriched));
    expect(truth('exit_code != 0')).toEqual([false, true, true, true]);
    expect(truth('exit_code > 0')).toEqual([false, true, false, false]); // null orders false
  });
});
