// slope, eta and leak in the DSL: the checker (types, units, errors with codes and positions),
// the evaluator over a field's own readings and over the resource windows (through the app's
// window query, with real ProcessWindows), evidence, and the combination of members by comm.
import { describe, expect, it } from 'vitest';
import {
  EventCounters, Executor, FakeClock, Unavailable, compileSource, formatAll, type Alert, type CheckResult, type CheckSources, type CompiledCheck, type NodeSource,
  type WindowQuery,
} from '../../src/checks/index.js';
import type { ProcUsage } from '../../src/shared/usage.js';
import { CgroupWindows, NodeWindows, ProcessWindows } from '../../src/metrics/index.js';
import { windowQuery } from '../../src/app/window-query.js';
import { Moments, fitOf } from '../../src/shared/trend.js';

const diags = (src: string) => compileSource(src, 't.patrol').diagnostics;
const codes = (src: string) => diags(src).map((d) => d.code);
function compile(src: string): CompiledCheck[] {
  const r = compileSource(src, 't.patrol');
  expect(r.diagnostics.filter((d) => d.severity === 'error'), formatAll(r.diagnostics, new Map([['t.patrol', src]]))).toEqual([]);
  return r.checks;
}

describe('checker', () => {
  it('types: slope is the unit per second, eta a duration, leak a plain number', () => {
    compile(`
      check a { critical eta(rss, memory_limit, 30s) by cgroup < 60s; }
      check b { warning eta(disk_usage("/"), 100%, 1h) < 6h; critical eta(disk_usage, 100%, 1h) < 1h; }
      check c { warning leak(rss, 10m) by exec_id > 0.8; }
      check d { warning slope(rss, 10m) by comm > 1MB/s; }
      check e { warning slope(disk_usage("/"), 1h) > 1%/h; }
      check f { warning eta(rss, 2GiB, 10m) by exec_id < 10m; }
      check g { warning slope(cpu, 5m) by exec_id > 1%/s; }
      check h { warning eta(open_files_usage, 100%, 1h) < 1h; }
      check i { warning eta(memory_available, 0, 30m) < 10m; }
      check j { warning leak(rss, 10m) > 0.9; }`);
  });

  it('rejects mismatched units with PD2004 and a hint', () => {
    const [d] = diags('check x { warning eta(disk_usage("/"), 0.9, 1h) < 6h; }');
    expect(d).toMatchObject({ code: 'PD2004', severity: 'error', span: { line: 1, col: 40 } });
    expect(d!.hint).toContain('90%');
    expect(codes('check x { warning eta(rss, 90%, 10m) by exec_id < 10m; }')).toEqual(['PD2004']);
    expect(codes('check x { warning eta(rss, 2GiB, 10m) by exec_id < 10; }')).toEqual(['PD2004']); // a duration
    expect(codes('check x { warning slope(rss, 10m) by exec_id > 1MB; }')).toEqual(['PD2004']); // bytes/s
    expect(codes('check x { warning leak(rss, 10m) by exec_id > 80%; }')).toEqual(['PD2004']);
  });

  it('memory_limit: bytes of a process, cgroup or the node, only as the limit of eta over rss', () => {
    expect(codes('check x { warning eta(disk_usage("/"), memory_limit, 1h) < 6h; }')).toEqual(['PD2004']);
    expect(codes('check x { warning eta(cpu, memory_limit, 1h) by exec_id < 6h; }')).toEqual(['PD2004']);
    const [d] = diags('check x { warning memory_limit > 1GB; }');
    expect(d).toMatchObject({ code: 'PD2001', span: { col: 19 } });
    expect(d!.message).toContain('limit for eta()');
    expect(diags('check x { warning eta(rss, memory_limt, 10m) by cgroup < 10m; }')[0]!.message).toContain("did you mean 'memory_limit'");
    expect(codes('check x { warning eta(rss, 1 + 1, 10m) by cgroup < 10m; }')).toEqual(['PD2003']);
  });

  it('by groups windowed metrics only; fields are one reading (PD2012)', () => {
    const [d] = diags('check x { warning eta(disk_usage("/"), 100%, 1h) by cgroup < 6h; }');
    expect(d).toMatchObject({ code: 'PD2012', span: { line: 1, col: 23 } });
    expect(codes('check x { warning slope(rss, 10m) by pid > 1MB/s; }')).toEqual(['PD2012']);
  });

  it('arity, unknown metrics and nested aggregates', () => {
    expect(codes('check x { warning eta(rss, 10m) < 10m; }')).toEqual(['PD2002']);
    expect(codes('check x { warning slope(rss) > 1MB/s; }')).toEqual(['PD2002']);
    const [u] = diags('check x { warning slope(rs, 10m) by exec_id > 1MB/s; }');
    expect(u).toMatchObject({ code: 'PD2001' });
    expect(u!.message).toContain("did you mean 'rss'");
    expect(codes('check x { warning eta(max(rss, 1m), 2GB, 10m) < 10m; }')).toEqual(['PD2003']);
    expect(codes('check x { warning eta(process_running("x"), 1, 10m) < 10m; }')).toEqual(['PD2005']);
    expect(codes('check x { warning slope(rss, "10m") > 1MB/s; }')).toEqual(['PD2003']);
    expect(codes('check x { warning slope(rss, 10) > 1MB/s; }')).toEqual(['PD2006']);
    expect(codes('check x { warning slope(rss, 8d) > 1MB/s; }')).toEqual(['PD2014']);
  });

  it('warns (PD3004) when a field trend window cannot hold five runs of the check', () => {
    const [d] = diags('check x { every 1m; warning eta(disk_usage("/"), 100%, 2m) < 10m; }');
    expect(d).toMatchObject({ code: 'PD3004', severity: 'warning', span: { line: 1, col: 56 } });
    expect(d!.message).toContain('at most 2');
    // enough: five runs; windowed metrics follow the sweep, not the check
    expect(codes('check x { every 1m; warning eta(disk_usage("/"), 100%, 5m) < 10m; }')).toEqual([]);
    expect(codes('check x { every 1m; warning eta(rss, memory_limit, 30s) by cgroup < 10m; }')).toEqual([]);
  });
});

// ------------------------------------------------------------------ evaluation

function fakeNode(state: { usage: number; files?: number }): NodeSource {
  return {
    cpuUsage: () => 0,
    memory: () => ({ totalBytes: 100, availableBytes: 50, swapTotalBytes: 0, swapFreeBytes: 0 }),
    loadavg: () => [0, 0, 0],
    cpuCount: () => 1,
    fsUsage: () => ({ usage: state.usage, availableBytes: 1, inodeUsage: 0.1 }),
    psi: () => 0,
    fileHandles: () => ({ allocated: state.files ?? 1, max: 100 }),
    uptimeSeconds: () => 100,
    oomKillCounter: () => 0,
  };
}

function harness(src: string, sources: Partial<CheckSources>) {
  const clock = new FakeClock();
  const results: CheckResult[] = [];
  const alerts: Alert[] = [];
  const ex = new Executor({ sources: { events: new EventCounters(), ...sources }, clock, onResult: (r) => results.push(r), onAlert: (a) => alerts.push(a) });
  ex.setChecks(compile(src));
  return { clock, results, alerts, ex };
}

describe('trends over a field: the check records its own readings', () => {
  it('a filling disk: unknown (ok) until five readings, then the eta of the line', async () => {
    const disk = { usage: 0.5 };
    const { clock, results, ex } = harness('check fill { every 10s; warning eta(disk_usage("/x"), 100%, 5m) < 2h; critical eta(disk_usage("/x"), 100%, 5m) < 10m; }', { node: fakeNode(disk) });
    // +0.1 % per 10 s = 0.01 %/s: from 50 %, full in 5000 s
    const tick = async () => {
      await clock.advance(10_000);
      disk.usage += 0.001;
    };
    ex.start();
    await clock.advance(0);
    disk.usage += 0.001;
    for (let i = 0; i < 3; i++) await tick();
    const early = results.at(-1)!;
    expect(early.state).toBe('ok');
    const ev = early.evidence.values.find((v) => v.field.startsWith('eta('))!;
    expect(ev.value).toBeNull();
    expect(ev.text).toMatch(/^unknown \(4 samples in the window, needs 5\)/);
    // the field's own reading is in the evidence too
    expect(early.evidence.values.some((v) => v.field === 'disk_usage("/x")')).toBe(true);
    for (let i = 0; i < 30; i++) await tick();
    const r = results.at(-1)!;
    const eta = r.evidence.values.find((v) => v.field.startsWith('eta('))!;
    // 34 runs: the last read 50 % + 33 × 0.1 %; full at 0.01 %/s
    expect(eta.value as number).toBeCloseTo((1 - (0.5 + 33 * 0.001)) / 0.0001, 3);
    expect(eta.trend).toMatchObject({ fn: 'eta', metric: 'disk_usage("/x")', by: null, limit: 1 });
    // the runs in the window, to the 18.75 s bucket its start falls in
    expect(eta.trend!.samples).toBeGreaterThanOrEqual(28);
    expect(eta.trend!.samples).toBeLessThanOrEqual(30);
    expect(eta.trend!.r2).toBeCloseTo(1, 6);
    expect(r.state).toBe('warning'); // 4670 s: under 2 h, over 10 min
    ex.stop();
  });

  it('a steady disk: infinite, and ok', async () => {
    const { clock, results, ex } = harness('check fill { every 10s; warning eta(disk_usage("/x"), 100%, 2m) < 1h; critical unless eta(disk_usage("/x"), 100%, 2m) > 0s; }', { node: fakeNode({ usage: 0.4 }) });
    ex.start();
    await clock.advance(120_000);
    const r = results.at(-1)!;
    const eta = r.evidence.values.find((v) => v.field.startsWith('eta('))!;
    expect(eta).toMatchObject({ value: null, text: 'infinite', trend: { infinite: true } });
    expect(r.state).toBe('ok');
    ex.stop();
  });

  it('slope and eta of one field in one check record each reading once', async () => {
    const disk = { usage: 0.2 };
    const { clock, results, ex } = harness('check fill { every 1s; warning slope(disk_usage("/x"), 20s) > 1%/s; warning eta(disk_usage("/x"), 100%, 20s) < 1m; }', { node: fakeNode(disk) });
    ex.start();
    await clock.advance(0);
    for (let i = 0; i < 20; i++) {
      disk.usage += 0.002;
      await clock.advance(1000);
    }
    const vals = results.at(-1)!.evidence.values;
    const slope = vals.find((v) => v.field.startsWith('slope('))!;
    expect(slope.value as number).toBeCloseTo(0.002, 9);
    // one reading a run: the 20 or 21 runs in the window (exact to a 1.25 s bucket), not 40
    expect(slope.trend!.samples).toBeGreaterThanOrEqual(19);
    expect(slope.trend!.samples).toBeLessThanOrEqual(21);
    expect(slope.text).toBe('0.2%/s');
    ex.stop();
  });
});

describe('trends over the resource windows', () => {
  const S = 1_000_000_000n;
  const MB = 1 << 20;
  const series = { maxWindowMs: 300_000, slotMs: 1000, maxEntries: 512, resolution: 0.01 };
  const u = (pid: number, comm: string, rss: number): ProcUsage => ({
    pid, ppid: 1, startNs: S, cgroupId: 0n, comm: { text: comm }, cpuNs: 0n, readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0,
    minflt: 0, majflt: 0, rssBytes: rss, peakRssBytes: rss, threads: 1, kthread: false, zombie: false,
  });

  /** 1: leaks 4 MB/s; 2: a sawtooth of 100 MB every 4 s; 3 and 4: the same comm, +1 MB/s each;
   *  5: flat. One sweep a second for `secs` seconds. */
  function world(secs: number) {
    const pw = new ProcessWindows(() => undefined, (pid) => `x${pid}`, { series, maxKeys: 100 });
    let t = 0;
    for (; t <= secs; t++) {
      pw.applySweep((10n + BigInt(t)) * S, [
        u(1, 'leaky', 100 * MB + 4 * MB * t),
        u(2, 'saw', 50 * MB + (t % 4 < 2 ? 100 * MB : 0)),
        u(3, 'twin', 10 * MB + MB * t),
        u(4, 'twin', 20 * MB + MB * t),
        u(5, 'calm', 30 * MB),
      ]);
    }
    const nowMs = (10 + secs) * 1000;
    const q = windowQuery(pw, new CgroupWindows(() => undefined, 1, series), new NodeWindows(series), () => nowMs);
    return { pw, q, nowMs };
  }

  it('fits per process: the leak rises at its rate, the sawtooth and the flat one do not', () => {
    const { q } = world(60);
    const r = q.trend('rss', 30_000, 'exec_id')!;
    const fit = (k: string) => r.groups.find((g) => g.key === k)!.fit;
    expect(fit('x1').slope).toBeCloseTo(4 * MB, 3);
    expect(fit('x1').r2).toBeCloseTo(1, 9);
    // the buckets that start in the window: 30 samples, to a 2.5 s bucket
    expect(fit('x1').n).toBeGreaterThanOrEqual(28);
    expect(fit('x1').n).toBeLessThanOrEqual(31);
    expect(fit('x2').r2).toBeLessThan(0.3);
    expect(fit('x5').slope).toBe(0);
    expect(r.usedMs).toBe(30_000);
  });

  it('through a check: eta against memory_limit fires for the leak only, leak() scores it', async () => {
    const { q } = world(60);
    const asked: (string | null)[] = [];
    const windows: WindowQuery = {
      aggregate: () => null,
      trend: (m, w, by) => q.trend(m, w, by),
      memoryLimit: (_by, key) => (asked.push(key), 1024 * MB),
    };
    const { clock, results, ex } = harness(
      `check oom_soon { critical eta(rss, memory_limit, 30s) by exec_id < 10m; }
       check leaks { warning leak(rss, 30s) by exec_id > 0.8; }
       check growth { warning slope(rss, 30s) by comm > 1.5MB/s; }`,
      { windows },
    );
    ex.start();
    await clock.advance(0);
    const [oom, leaks, growth] = results;
    expect(oom!.state).toBe('critical');
    // x3 and x4 rise too, but reach 1 GB in ~16 min
    expect(oom!.evidence.conditions[0]!.groups).toEqual(['x1']);
    const eta = oom!.evidence.values[0]!;
    // x1 is at 340 MB growing 4 MB/s: 1024 MB in 171 s
    expect(eta.groups![0]).toMatchObject({ key: 'x1', r2: 1, limit: 1024 * MB });
    expect(eta.groups![0]!.value as number).toBeCloseTo((1024 - 340) / 4, 3);
    expect(eta.text).toMatch(/^soonest 2\.85m \(x1\)$/);
    // the sawtooth: unknown (poor fit); the flat one: infinite; neither asked for a limit
    expect(eta.groups!.find((g) => g.key === 'x2')!.text).toMatch(/^unknown \(poor fit/);
    expect(eta.groups!.find((g) => g.key === 'x5')).toMatchObject({ value: null, text: 'infinite' });
    expect(asked.sort()).toEqual(['x1', 'x3', 'x4']);
    expect(leaks!.evidence.conditions[0]!.groups).toEqual(['x1', 'x3', 'x4']);
    // by comm: the twins' slopes add up (2 MB/s), the leaky one alone 4 MB/s
    expect(growth!.evidence.conditions[0]!.groups!.sort()).toEqual(['leaky', 'twin']);
    expect(growth!.evidence.values[0]!.groups!.find((g) => g.key === 'twin')!.value as number).toBeCloseTo(2 * MB, 3);
    ex.stop();
  });

  it('windows longer than the series keep: a compact bucketed series, armed by the first ask', () => {
    const pw = new ProcessWindows(() => undefined, (pid) => `x${pid}`, { series, maxKeys: 100 });
    let now = 0;
    const q = windowQuery(pw, new CgroupWindows(() => undefined, 1, series), new NodeWindows(series), () => now);
    const sweep = (t: number) => {
      now = (10 + t) * 1000;
      pw.applySweep((10n + BigInt(t)) * S, [u(1, 'leaky', 100 * MB + 1000 * t), u(5, 'calm', 30 * MB)]);
    };
    for (let t = 0; t <= 120; t++) sweep(t);
    // a 20-minute window: armed now, seeded from the 2 minutes the series hold
    const first = q.trend('rss', 1_200_000, 'exec_id')!;
    expect(first.groups.find((g) => g.key === 'x1')!.fit.n).toBe(121);
    for (let t = 121; t <= 1500; t++) sweep(t);
    const r = q.trend('rss', 1_200_000, 'exec_id')!;
    const f = r.groups.find((g) => g.key === 'x1')!.fit;
    expect(f.slope).toBeCloseTo(1000, 6);
    expect(f.spanS).toBeGreaterThan(1100);
    expect(f.n).toBeGreaterThan(1100);
    // bounded: two processes, a ring each, whatever the length of the window
    const e = pw.windows.get('x1')!;
    expect(e.trends!['rss/1200000']!.approxBytes()).toBeLessThan(1500);
    expect(pw.windows.trendArms().map((a) => a.key)).toEqual(['rss/1200000']);
  });

  it('no windows (a standalone check, or the agent with metrics off): unknown, and the check ok', async () => {
    const off: WindowQuery = {
      aggregate: () => null,
      trend: () => {
        throw new Unavailable('resource windows are not running (metrics.enabled: false, or still starting)');
      },
    };
    for (const sources of [{}, { windows: off }]) {
      const { clock, results, ex } = harness('check m { critical eta(rss, memory_limit, 5m) by cgroup < 10m; warning leak(rss, 5m) > 0.9; }', sources);
      ex.start();
      await clock.advance(0);
      const r = results[0]!;
      expect(r.state).toBe('ok');
      expect(r.evidence.values.map((v) => v.text)).toEqual([
        expect.stringMatching(/^unknown \((no resource windows here|resource windows are not running)/),
        expect.stringMatching(/^unknown \((no resource windows here|resource windows are not running)/),
      ]);
      ex.stop();
    }
  });

  it('a fit agrees with the textbook fit of the same samples', () => {
    const { q } = world(100);
    const f = q.trend('rss', 48_000, 'exec_id')!.groups.find((g) => g.key === 'x2')!.fit;
    // the sawtooth's samples in the buckets (of 48 s / 12) that start inside the window
    const from = Math.ceil((110_000 - 48_000) / 4000) * 4000;
    const pts: [number, number][] = [];
    for (let t = 0; t <= 100; t++) if ((10 + t) * 1000 >= from) pts.push([t - 100, 50 * MB + (t % 4 < 2 ? 100 * MB : 0)]);
    const m = new Moments();
    for (const [t, v] of pts) m.add(t, v);
    const want = fitOf(m, 0);
    expect(f.n).toBe(want.n);
    expect(f.slope).toBeCloseTo(want.slope, 3);
    expect(f.r2).toBeCloseTo(want.r2, 9);
  });

  it('trend windows are bounded per metric: the least recently asked goes', () => {
    const { pw, q } = world(10);
    for (const w of [10_000, 20_000, 30_000, 40_000]) q.trend('rss', w, 'exec_id');
    expect(pw.windows.trendArms()).toHaveLength(4);
    q.trend('rss', 50_000, 'exec_id');
    expect(pw.windows.trendArms().map((a) => a.windowMs).sort()).toEqual([20_000, 30_000, 40_000, 50_000]);
    expect(Object.keys(pw.windows.get('x1')!.trends!).sort()).toEqual(['rss/20000', 'rss/30000', 'rss/40000', 'rss/50000']);
  });
});
