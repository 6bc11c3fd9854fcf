// The executor with a fake clock: schedule, `for` hysteresis, timeouts with a hanging collector,
// concurrency limit, alert deduplication and flap guarding, atomic set swaps.
import { describe, expect, it } from 'vitest';
import {
  EventCounters, Executor, FakeClock, collectAggregates, compileSource, eventAggregate, type Alert, type EventFact, type CheckResult, type CheckSources, type CompiledCheck, type NodeSource, type ProcessInfo,
} from '../../src/checks/index.js';

function compile(src: string): CompiledCheck[] {
  const r = compileSource(src, 'x.patrol');
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.checks;
}

/** A node whose load1 is whatever the test sets. */
function fakeNode(state: { load: number }): NodeSource {
  return {
    cpuUsage: () => 0,
    memory: () => ({ totalBytes: 100, availableBytes: 50, swapTotalBytes: 0, swapFreeBytes: 0 }),
    loadavg: () => [state.load, 0, 0],
    cpuCount: () => 1,
    fsUsage: () => ({ usage: 0.5, availableBytes: 1, inodeUsage: 0.1 }),
    psi: () => 0,
    fileHandles: () => ({ allocated: 1, max: 100 }),
    uptimeSeconds: () => 100,
    oomKillCounter: () => 0,
  };
}

function harness(src: string, sources: Partial<CheckSources>, opts: { concurrency?: number } = {}) {
  const clock = new FakeClock();
  const results: CheckResult[] = [];
  const alerts: Alert[] = [];
  const ex = new Executor({
    sources: { events: new EventCounters(), ...sources },
    clock,
    concurrency: opts.concurrency ?? 4,
    onResult: (r) => results.push(r),
    onAlert: (a) => alerts.push(a),
  });
  ex.setChecks(compile(src));
  return { clock, results, alerts, ex };
}

describe('executor', () => {
  it('events_lost: the default pack\'s lost check, run at once on a loss (runNow), fires then; it resolves a minute after the last', async () => {
    const agent = { lost: 0 };
    const { readFileSync } = await import('node:fs');
    const { clock, alerts, results, ex } = harness(readFileSync(new URL('../../checks/agent.patrol', import.meta.url), 'utf8'), { agent: { lostRecords: () => agent.lost } });
    ex.start();
    await clock.advance(5_000);
    expect(alerts).toEqual([]);
    const runs = results.length;
    agent.lost = 40; // records lost now; the agent's sampler sees it and asks for a run
    const lostAt = clock.now();
    ex.runNow((c) => c.usesAgent);
    await clock.advance(0);
    expect(results.length).toBe(runs + 1);
    expect(alerts.map((a) => [a.name, a.kind, a.state])).toEqual([['lost', 'firing', 'warning']]);
    expect(alerts[0]!.at - lostAt).toBe(0);
    expect(alerts[0]!.message).toMatch(/events_lost\(1m\) = 40/);
    ex.runNow((c) => !c.usesAgent); // matches nothing here: no run
    await clock.advance(0);
    expect(results.length).toBe(runs + 1);
    await clock.advance(55_000); // the scheduled run at 60 s: still within the minute
    expect(alerts.length).toBe(1);
    await clock.advance(60_000); // the run at 120 s: no loss in its minute
    expect(alerts.map((a) => a.kind)).toEqual(['firing', 'resolved']);
    ex.stop();
  });

  it('events_lost without an agent: unknown, saying the agent is needed', async () => {
    const { clock, results, ex } = harness('check l { every 1s; warning events_lost(1m) > 0; }', {});
    ex.start();
    await clock.advance(0);
    expect(results[0]!.state).toBe('unknown');
    expect(results[0]!.message).toMatch(/need the agent/);
    ex.stop();
  });

  it('runs each check on its interval', async () => {
    const { clock, results, ex } = harness('check a { every 10s; critical load1 > 5; }\ncheck b { every 25s; critical load1 > 5; }', { node: fakeNode({ load: 1 }) });
    ex.start();
    await clock.advance(60_000);
    const count = (n: string) => results.filter((r) => r.name === n).length;
    expect(count('a')).toBe(7); // 0, 10, ..., 60 s
    expect(count('b')).toBe(3); // 0, 25, 50 s
    expect(results.every((r) => r.state === 'ok')).toBe(true);
    ex.stop();
  });

  it('for: the state changes only after the condition held long enough, and clears at once', async () => {
    const load = { load: 1 };
    const { clock, results, alerts, ex } = harness('check hot { every 1m; critical load1 > 5 for 5m; }', { node: fakeNode(load) });
    ex.start();
    await clock.advance(0);
    load.load = 9;
    await clock.advance(4 * 60_000); // runs at 1..4 m: condition true for 0..3 m
    expect(results.map((r) => r.state)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(results.at(-1)!.evidence.conditions[0]).toMatchObject({ fired: true, holding: false, pending_s: 180 });
    await clock.advance(2 * 60_000); // 5 m: held 4 m; 6 m: held 5 m → critical
    expect(results.slice(-2).map((r) => r.state)).toEqual(['ok', 'critical']);
    expect(results.at(-1)!.evidence.values[0]).toMatchObject({ field: 'load1', value: 9 });
    load.load = 1;
    await clock.advance(60_000);
    expect(results.at(-1)!.state).toBe('ok');
    expect(alerts.map((a) => [a.kind, a.state, a.previous])).toEqual([
      ['firing', 'critical', 'ok'],
      ['resolved', 'ok', 'critical'],
    ]);
    ex.stop();
  });

  it('a hanging collector times out at its timeout; other checks keep running', async () => {
    const hang: ProcessInfo[] = [];
    const procs = { list: () => new Promise<readonly ProcessInfo[]>(() => void hang) };
    const { clock, results, alerts, ex } = harness(
      'check stuck { every 10s; timeout 2s; critical zombie_count() > 0; }\ncheck stuck2 { every 10s; timeout 3s; on timeout critical; critical d_state_count() > 0; }\ncheck fine { every 10s; critical load1 > 5; }',
      { processes: procs, node: fakeNode({ load: 0 }) },
      { concurrency: 2 },
    );
    ex.start();
    await clock.advance(1_999);
    expect(results.map((r) => r.name)).toEqual([]); // both slots hang; `fine` waits for a slot
    await clock.advance(1);
    // the freed slot goes to `fine` at once
    expect(results.map((r) => [r.name, r.state, r.duration_ms])).toEqual([
      ['stuck', 'timeout', 2000],
      ['fine', 'ok', 0],
    ]);
    await clock.advance(1_000);
    expect(results.map((r) => [r.name, r.state])).toEqual([
      ['stuck', 'timeout'],
      ['fine', 'ok'],
      ['stuck2', 'critical'],
    ]);
    expect(results[2]!.evidence.error).toBe('no result within 3s');
    // timeout alerts only with `alert on timeout`; `on timeout critical` alerts as critical
    expect(alerts.map((a) => [a.name, a.state])).toEqual([['stuck2', 'critical']]);
    await clock.advance(10_000);
    expect(results.filter((r) => r.name === 'fine')).toHaveLength(2);
    ex.stop();
  });

  it('never runs more checks at once than the limit', async () => {
    let running = 0;
    let peak = 0;
    const clock = new FakeClock();
    const procs = {
      list: () =>
        new Promise<readonly ProcessInfo[]>((resolve) => {
          running++;
          peak = Math.max(peak, running);
          clock.setTimeout(() => {
            running--;
            resolve([]);
          }, 1000);
        }),
    };
    const src = Array.from({ length: 10 }, (_, i) => `check c${i} { every 1m; critical zombie_count() > 0; }`).join('\n');
    const done: string[] = [];
    const ex = new Executor({ sources: { processes: procs }, clock, concurrency: 3, onResult: (r) => done.push(r.name) });
    ex.setChecks(compile(src));
    ex.start();
    await clock.advance(3_500);
    expect(done).toHaveLength(9);
    await clock.advance(1_000);
    expect(done).toHaveLength(10);
    expect(peak).toBe(3);
    ex.stop();
  });

  it('deduplicates alerts and guards against flapping', async () => {
    const load = { load: 9 };
    const { clock, alerts, ex } = harness('check flappy { every 10s; critical load1 > 5; }', { node: fakeNode(load) });
    ex.start();
    await clock.advance(30_000); // 4 runs, all critical: one alert
    expect(alerts.map((a) => a.kind)).toEqual(['firing']);
    // now alternate every run
    for (let i = 0; i < 8; i++) {
      load.load = i % 2 === 0 ? 1 : 9;
      await clock.advance(10_000);
    }
    const kinds = alerts.map((a) => a.kind);
    expect(kinds.slice(0, 4)).toEqual(['firing', 'resolved', 'firing', 'resolved']);
    expect(kinds[4]).toBe('flapping');
    expect(kinds).toHaveLength(5); // silent while flapping
    load.load = 9; // steady again
    await clock.advance(12 * 10_000);
    expect(alerts.slice(5).map((a) => [a.kind, a.state])).toEqual([
      ['flapping_end', 'critical'],
      ['firing', 'critical'],
    ]);
    expect(new Set(alerts.map((a) => a.id)).size).toBe(alerts.length);
    ex.stop();
  });

  it('process_count matches comm exactly, or with an RE2 pattern between slashes', async () => {
    const list: ProcessInfo[] = [
      { pid: 1, comm: 'nginx', state: 'S' },
      { pid: 2, comm: 'nginx: worker', state: 'R' },
      { pid: 3, comm: 'nginx', state: 'Z' },
      { pid: 4, comm: 'sshd', state: 'S' },
    ];
    const { clock, results, ex } = harness(
      'check a { critical process_count("nginx") == 1; }\ncheck b { critical process_count("/^nginx/") == 2; }\ncheck c { critical unless process_running("sshd"); }',
      { processes: { list: () => list } },
    );
    ex.start();
    await clock.advance(0);
    expect(results.map((r) => [r.name, r.state]).sort()).toEqual([
      ['a', 'critical'],
      ['b', 'critical'],
      ['c', 'ok'],
    ]);
    ex.stop();
  });

  it('unavailable data makes a check unknown with the reason', async () => {
    const { clock, results, ex } = harness('check w { critical p95(cpu, 1m) by exec_id > 80%; }\ncheck n { critical load1 > 1; }', {});
    ex.start();
    await clock.advance(0);
    expect(results.map((r) => [r.name, r.state])).toEqual([
      ['w', 'unknown'],
      ['n', 'unknown'],
    ]);
    expect(results[0]!.message).toContain('resource windows');
    ex.stop();
  });

  it('grouped conditions fire per group and name the groups', async () => {
    const windows = {
      aggregate: () => ({ groups: [{ key: 'aaa', value: 0.95 }, { key: 'bbb', value: 0.2 }, { key: 'ccc', value: 0.85 }], usedMs: 60_000 }),
    };
    const { clock, results, ex } = harness('check hogs { critical p95(cpu, 1m) by exec_id > 80%; }\ncheck calm { critical unless p95(cpu, 1m) by exec_id < 99%; }', { windows });
    ex.start();
    await clock.advance(0);
    expect(results[0]!.state).toBe('critical');
    expect(results[0]!.evidence.conditions[0]!.groups).toEqual(['aaa', 'ccc']);
    expect(results[0]!.evidence.values[0]).toMatchObject({ window_s: 60, window_used_s: 60, value: 0.95 });
    expect(results[1]!.state).toBe('ok');
    ex.stop();
  });

  it('a swapped set keeps the state of unchanged checks', async () => {
    const load = { load: 9 };
    const { clock, alerts, ex } = harness('check a { every 10s; critical load1 > 5; }', { node: fakeNode(load) });
    ex.start();
    await clock.advance(0);
    expect(alerts).toHaveLength(1);
    ex.setChecks(compile('check a { every 10s; critical load1 > 5; }\ncheck b { every 10s; critical load1 > 100; }'));
    await clock.advance(20_000);
    expect(alerts).toHaveLength(1); // a stayed critical: no second alert
    expect(ex.latest().map((r) => r.name).sort()).toEqual(['a', 'b']);
    ex.stop();
  });

  it('counts events in a window with where filters', async () => {
    const src = 'check w { critical count(exit where exit_code != 0 and comm == "worker", 10m) >= 3; warning rate(exec, 1m) > 1/s; }';
    const h = new EventCounters();
    h.configure([...collectAggregates(compile(src)), eventAggregate('exit', null, 600_000)], 0);
    const clock = new FakeClock(1_000_000);
    const results: CheckResult[] = [];
    const ex = new Executor({ sources: { events: h }, clock, onResult: (r) => results.push(r) });
    ex.setChecks(compile(src));
    // facts in (about) time order, as the event stream delivers them
    const facts: EventFact[] = [];
    const exit = (t: number, comm: string, code: number | null, signal: number | null = null) =>
      facts.push({ kind: 'exit', t, f: { comm, exit_code: code, signal, failed: code !== 0 } });
    exit(1_000_000 - 700_000, 'worker', 1); // outside the window
    exit(1_000_000 - 500_000, 'worker', 1);
    exit(1_000_000 - 400_000, 'worker', 0);
    exit(1_000_000 - 300_000, 'other', 1);
    exit(1_000_000 - 200_000, 'worker', null, 9); // killed: exit_code null counts as != 0
    for (let i = 0; i < 150; i++) facts.push({ kind: 'exec', t: 1_000_000 - 500 * i, f: { comm: 'x' } });
    for (const f of facts.sort((a, b) => a.t - b.t)) h.addFact(f);
    expect(h.count(eventAggregate('exit', null, 600_000), 1_000_000)?.n).toBe(4);
    await ex.runAll();
    expect(results[0]!.state, JSON.stringify(results[0])).toBe('warning');
    expect(results[0]!.evidence.values.map((v) => [v.field, v.value])).toEqual([
      ['count(exit where exit_code != 0 and comm == "worker", 10m)', 2],
      ['rate(exec, 1m)', 120 / 60],
    ]);
    h.addFact({ kind: 'exit', t: 1_000_000, f: { comm: 'worker', exit_code: 2, failed: true } });
    await ex.runAll();
    expect(results[1]!.state).toBe('critical');
  });

  it('beforeRun runs before queued checks start, so they count what it handed over', async () => {
    // the agent drains its lifecycle ring there: events the kernel wrote before the run count
    const src = 'check w { every 10s; critical count(exit where exit_code != 0, 10m) >= 1; }';
    const h = new EventCounters();
    h.configure(collectAggregates(compile(src)), 0);
    const clock = new FakeClock(1_000_000);
    const results: CheckResult[] = [];
    let drains = 0;
    const ex = new Executor({
      sources: { events: h }, clock, onResult: (r) => results.push(r),
      beforeRun: () => {
        drains++;
        if (drains === 2) h.addFact({ kind: 'exit', t: clock.now(), f: { comm: 'worker', exit_code: 1, failed: true } });
      },
    });
    ex.setChecks(compile(src));
    ex.start();
    await clock.advance(0);
    expect(results.map((r) => r.state)).toEqual(['ok']);
    await clock.advance(10_000);
    expect(drains).toBe(2);
    expect(results.map((r) => r.state)).toEqual(['ok', 'critical']);
    ex.stop();
  });
});
