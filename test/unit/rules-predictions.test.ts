// Predictions in attribution: an eta alert made by the real check executor is noted by the rule
// engine; the OOM kill (or full disk) it foresaw gets it as evidence and counts it as come
// true; one whose horizon passes is a false alarm.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EventCounters, Executor, FakeClock, compileSource, type Alert, type NodeSource, type WindowQuery } from '../../src/checks/index.js';
import { RuleEngine, loadRuleFiles, parseKmsgRecord, predictionsIn, type ProcFact, type RuleClock } from '../../src/rules/index.js';
import type { TrendFit } from '../../src/shared/trend.js';

const PACK = fileURLToPath(new URL('../../rules', import.meta.url));
const S = 1_000_000_000n;
const MB = 1 << 20;
const EPOCH0 = 1_700_000_000_000;

/** Boottime ns = epoch ms − EPOCH0, for the engine; the checks run on the same FakeClock. */
function world() {
  const checkClock = new FakeClock(EPOCH0 + 1_000_000);
  const clock: RuleClock = {
    nowNs: () => BigInt(checkClock.now() - EPOCH0) * 1_000_000n,
    epochMs: (ns) => EPOCH0 + Number(ns / 1_000_000n),
    fromEpochMs: (ms) => BigInt(Math.round(ms - EPOCH0)) * 1_000_000n,
  };
  const procs = new Map<string, ProcFact>();
  const r = loadRuleFiles(PACK);
  if (!r.ok) throw new Error('pack does not load');
  const engine = new RuleEngine({
    clock,
    processes: { byPid: (pid) => [...procs.values()].find((p) => p.pid === pid) ?? null, get: (id) => procs.get(id) ?? null, ancestry: () => [] },
  });
  engine.setRules(r.set);
  const add = (p: Partial<ProcFact> & { execId: string; pid: number; comm: string }) =>
    procs.set(p.execId, { ppid: 1, parentExecId: null, args: null, filename: null, cgroup: null, startNs: 1n, exitNs: null, exitCode: null, signal: null, maxRssBytes: null, ...p });
  const kmsg = (seq: number, msg: string) => engine.onKmsg(parseKmsgRecord(`6,${seq},${clock.nowNs() / 1000n},-;${msg}`)!);
  return { checkClock, clock, engine, add, kmsg };
}

const line = (n: number, slope: number, level: number): TrendFit => ({ n, spanS: n - 1, slope, level, r2: 1, rise: slope * (n - 1), fall: 0, last: level });

/** Runs a check source once against fake fits; returns its alerts, as the check service would
 *  hand them to the engine (attribute → explain). */
async function alertsOf(clock: FakeClock, src: string, groups: { key: string | null; fit: TrendFit }[], node?: NodeSource): Promise<Alert[]> {
  const windows: WindowQuery = { aggregate: () => null, trend: () => ({ groups, usedMs: 30_000 }), memoryLimit: () => 256 * MB };
  const r = compileSource(src, 'p.patrol');
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const alerts: Alert[] = [];
  const ex = new Executor({ sources: { events: new EventCounters(), windows, ...(node ? { node } : {}) }, clock, onAlert: (a) => alerts.push(a) });
  ex.setChecks(r.checks);
  await ex.runAll();
  return alerts;
}

const like = (a: Alert) => ({ id: a.id, check: a.name, state: a.state, ts: a.at, evidence: a.evidence });

describe('predictions', () => {
  it('an OOM kill in the predicted cgroup carries the prediction; it came true', async () => {
    const w = world();
    // /app grows 4 MB/s at 200 MB: 256 MB in 14 s; /calm is flat
    const [alert] = await alertsOf(w.checkClock, 'check mem_eta { critical eta(rss, memory_limit, 30s) by cgroup < 60s; }', [
      { key: '/app', fit: line(30, 4 * MB, 200 * MB) },
      { key: '/calm', fit: line(30, 0, 50 * MB) },
    ]);
    expect(alert).toMatchObject({ kind: 'firing', state: 'critical' });
    expect(predictionsIn(alert!.evidence)).toEqual([{ field: 'eta(rss, memory_limit, 30s) by cgroup', by: 'cgroup', kind: 'memory', mount: null, subjects: [{ key: '/app', etaS: 14 }] }]);
    w.engine.explain(like(alert!)); // what the check service does as the alert fires
    expect(w.engine.stats().predictions).toMatchObject({ pending: 1, came_true: 0, false_alarms: 0 });
    // 13 s later the kernel kills the process in /app
    await w.checkClock.advance(13_000);
    w.add({ execId: 'victim', pid: 4242, comm: 'hog', cgroup: '/app' });
    w.kmsg(1, 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app,task_memcg=/app,task=hog,pid=4242,uid=0');
    const [finding] = w.engine.rankRecent();
    expect(finding).toMatchObject({ cause: 'oom_cgroup_limit', exec_id: 'victim' });
    const p = finding!.evidence.find((e) => e.kind === 'prediction')!;
    expect(p.summary).toMatch(/^predicted 13\.0 s before, at \d\d:\d\d:\d\d: check mem_eta had eta\(rss, memory_limit, 30s\) by cgroup = 14\.0 s for \/app \(alert [0-9a-f]{16}\)$/);
    expect(p.data).toMatchObject({ alert_id: alert!.id, check: 'mem_eta', subject: '/app', eta_s: 14, lead_s: 13 });
    expect(p.ts).toBe(new Date(alert!.at).toISOString());
    expect(w.engine.stats().predictions).toMatchObject({ pending: 0, came_true: 1, false_alarms: 0, precision: 1, median_lead_s: 13 });
    // patrol explain on the OOM alert shows it
    const oom = { id: 'oom-alert', check: 'oom_kills', state: 'critical', ts: w.checkClock.now(), evidence: null };
    const causes = w.engine.explain(oom);
    expect(causes[0]!.evidence.some((e) => e.kind === 'prediction' && e.data?.alert_id === alert!.id)).toBe(true);
  });

  it('a kill elsewhere does not fulfil it; past its horizon it was a false alarm', async () => {
    const w = world();
    const [alert] = await alertsOf(w.checkClock, 'check mem_eta { critical eta(rss, memory_limit, 30s) by cgroup < 60s; }', [{ key: '/app', fit: line(30, 4 * MB, 200 * MB) }]);
    w.engine.explain(like(alert!));
    await w.checkClock.advance(5_000);
    w.add({ execId: 'other', pid: 99, comm: 'x', cgroup: '/other' });
    w.kmsg(1, 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/other,task_memcg=/other,task=x,pid=99,uid=0');
    expect(w.engine.rankRecent()[0]!.evidence.some((e) => e.kind === 'prediction')).toBe(false);
    expect(w.engine.stats().predictions).toMatchObject({ pending: 1, came_true: 0 });
    // horizon: 14 s × 1.5 + 60 s after the alert
    await w.checkClock.advance(76_000);
    expect(w.engine.stats().predictions).toMatchObject({ pending: 1 });
    await w.checkClock.advance(1_000);
    expect(w.engine.stats().predictions).toMatchObject({ pending: 0, came_true: 0, false_alarms: 1, precision: 0 });
    // explained again later (patrol explain): not counted twice, nor revived
    w.engine.explain(like(alert!));
    expect(w.engine.stats().predictions).toMatchObject({ pending: 0, false_alarms: 1 });
  });

  it('by exec_id and by comm match the killed process; only the groups that fired count', async () => {
    const w = world();
    const [a] = await alertsOf(w.checkClock, 'check p { critical eta(rss, memory_limit, 30s) by exec_id < 60s; }', [
      { key: 'e1', fit: line(30, 4 * MB, 200 * MB) },
      { key: 'e2', fit: line(30, 1, 100 * MB) }, // rising, but in years: not in the alert
    ]);
    expect(predictionsIn(a!.evidence)[0]!.subjects.map((s) => s.key)).toEqual(['e1']);
    w.engine.explain(like(a!));
    w.add({ execId: 'e2', pid: 2, comm: 'slow' });
    w.kmsg(1, 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/x,task_memcg=/x,task=slow,pid=2,uid=0');
    expect(w.engine.stats().predictions).toMatchObject({ came_true: 0, pending: 1 });
    w.add({ execId: 'e1', pid: 1, comm: 'fast' });
    w.kmsg(2, 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/x,task_memcg=/x,task=fast,pid=1,uid=0');
    expect(w.engine.stats().predictions).toMatchObject({ came_true: 1, pending: 0 });
  });

  it('a disk prediction is fulfilled by a full-disk alert on the same mount, not by itself', async () => {
    const w = world();
    const disk = { usage: 0.5 };
    const node: NodeSource = {
      cpuUsage: () => 0, memory: () => ({ totalBytes: 1, availableBytes: 1, swapTotalBytes: 0, swapFreeBytes: 0 }), loadavg: () => [0, 0, 0], cpuCount: () => 1,
      fsUsage: () => ({ usage: disk.usage, availableBytes: 1, inodeUsage: 0 }), psi: () => 0, fileHandles: () => ({ allocated: 0, max: 1 }), uptimeSeconds: () => 1, oomKillCounter: () => 0,
    };
    const src = 'check data_disk_filling { every 1s; critical eta(disk_usage("/data"), 100%, 20s) < 5m; }';
    const windows: WindowQuery = { aggregate: () => null };
    const r = compileSource(src, 'p.patrol');
    const alerts: Alert[] = [];
    const ex = new Executor({ sources: { events: new EventCounters(), windows, node }, clock: w.checkClock, onAlert: (a) => alerts.push(a) });
    ex.setChecks(r.checks);
    ex.start();
    for (let i = 0; i < 20 && alerts.length === 0; i++) {
      await w.checkClock.advance(1000);
      disk.usage += 0.01; // 1 %/s: full in 50 s
    }
    ex.stop();
    const [pred] = alerts;
    expect(pred).toMatchObject({ kind: 'firing', state: 'critical' });
    const found = predictionsIn(pred!.evidence)[0]!;
    expect(found).toMatchObject({ kind: 'disk', mount: '/data', by: null });
    // the prediction alert goes through the disk rules too (its name says disk): no self-fulfilment
    w.engine.explain(like(pred!));
    expect(w.engine.stats().predictions).toMatchObject({ pending: 1, came_true: 0 });
    await w.checkClock.advance(30_000);
    // another mount filling up does not fulfil it; /data does
    w.engine.explain({ id: 'full-other', check: 'disk_full', state: 'critical', ts: w.checkClock.now(), evidence: { values: [{ field: 'disk_usage("/other")', value: 0.99 }] } });
    expect(w.engine.stats().predictions).toMatchObject({ pending: 1, came_true: 0 });
    const causes = w.engine.explain({ id: 'full-data', check: 'disk_full', state: 'critical', ts: w.checkClock.now(), evidence: { values: [{ field: 'disk_usage("/data")', value: 0.99 }] } });
    expect(w.engine.stats().predictions).toMatchObject({ pending: 0, came_true: 1 });
    expect(causes[0]!.evidence.find((e) => e.kind === 'prediction')!.summary).toMatch(/^predicted 30\.0 s before, .* check data_disk_filling had eta\(disk_usage\("\/data"\), 100%, 20s\) = /);
  });

  it('ignores alerts without an eta, and evidence that is not the checks\' shape', () => {
    const w = world();
    w.engine.explain({ id: 'a', check: 'load', state: 'critical', ts: w.checkClock.now(), evidence: { values: [{ field: 'load1', value: 9 }] } });
    w.engine.explain({ id: 'b', check: 'x', state: 'critical', ts: w.checkClock.now(), evidence: 'text' });
    w.engine.explain({ id: 'c', check: 'y', state: 'critical', ts: w.checkClock.now(), evidence: { values: [{ field: 'eta(cpu, 1, 1m)', value: 3, trend: { fn: 'eta', metric: 'cpu', by: null } }] } });
    expect(w.engine.stats().predictions).toMatchObject({ pending: 0, came_true: 0, false_alarms: 0, precision: null });
  });
});
