// Issue 13 against the real kernel: 50 sensor reloads make-before-break, alternating between two
// builds of both objects, while a marker workload runs (orphans reparented during reloads,
// zombies across reloads, a process in D across reloads, forks whose exec lands after a flip);
// the rules and the checks swapped 50 times under the same load. Every marked process must be
// seen exactly once as fork, exec, exit and reap, the loss accounting must hold exactly with
// nothing lost and no sequence gap, and the overlap p99 must stay within 50 ms.
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateEvent, StateStreamEvent } from '../../src/shared/events.js';
import { createLogger } from '../../src/shared/log.js';
import { boottimeNs } from '../../src/kernel/index.js';
import { LifecyclePipeline, type AccountingReport } from '../../src/app/lifecycle.js';
import { StatePipeline } from '../../src/app/states.js';
import { SensorReloader } from '../../src/app/sensor-reload.js';
import { BUILTIN_RULES_DIR, RulesService } from '../../src/app/rules.js';
import { CheckService } from '../../src/app/checks.js';
import { defaultConfig, type AgentConfig } from '../../src/app/config.js';
import type { CheckResult } from '../../src/checks/index.js';
import { bpfEnabled, sleep } from './helpers.js';
import { BUILT, VARIANTS, buildVariants, compileHelper, markedProcesses, notExactlyOnce, objectDir, waitAllReaped, percentile, type Seen } from './reload-helpers.js';

const log = createLogger({ level: 'warn' });

/** CPU time the hypervisor gave to others while this machine's vCPUs wanted it (all CPUs, ms) */
function stolenMs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  return Math.round((Number(cpu[8] ?? 0) * 1000) / 100); // USER_HZ is 100 on Linux
}
const RELOADS = Number(process.env.PATROL_TEST_RELOADS ?? 50);

describe.skipIf(!bpfEnabled)('sensor reload under load (real kernel)', () => {
  const events: Seen[] = [];
  const stateEvents: StateStreamEvent[] = [];
  let lifecycle: LifecyclePipeline;
  let states: StatePipeline;
  let reloader: SensorReloader;
  let loadBin: string;
  let vforkBin: string;
  let variantDir: string;
  let accounting: AccountingReport;
  let stateAccounting: Awaited<ReturnType<StatePipeline['stop']>>;
  const tag = `rl${process.pid}x${Date.now() % 100000}`;
  const reports: Array<Awaited<ReturnType<SensorReloader['reload']>>> = [];
  const dPids: number[] = [];
  /** CLOCK_BOOTTIME at the start and end of each reload: its flips happened in between */
  const reloadSpans: Array<[bigint, bigint]> = [];
  let started = 0;
  let workloadMs = 0;
  // rules and checks swapped under the same load
  let rules: RulesService;
  let checks: CheckService;
  const ruleVersions = new Set<string>();
  const checkSwaps: Array<{ at: number; version: string }> = [];
  const results: CheckResult[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  /** a 50 ms heartbeat on the event loop: where it skips, the loop was stalled */
  const beats: number[] = [];
  let stealStart = 0;
  let stealEnd = 0;

  beforeAll(async () => {
    buildVariants();
    loadBin = compileHelper('reload_load');
    vforkBin = compileHelper('vfork_sleep');
    variantDir = objectDir(join(VARIANTS, 'lifecycle-variant.bpf.o'), join(VARIANTS, 'state-variant.bpf.o'));
    lifecycle = LifecyclePipeline.start({}, log, (ev, en) => {
      events.push({ ev, en: { ...en } });
      states?.states.applyLifecycle(ev, en);
      rules?.onLifecycle(ev, en);
      checks?.onLifecycle(ev, en);
    });
    states = StatePipeline.start({ dThresholdMs: 200, sweepMs: 500 }, lifecycle.table, log, (ev) => stateEvents.push(ev));
    reloader = new SensorReloader({ lifecycle, states, log, config: defaultConfig() });

    const rulesB = mkdtempSync(join(tmpdir(), 'patrol-rules-'));
    cpSync(BUILTIN_RULES_DIR, rulesB, { recursive: true });
    const crash = join(rulesB, 'crash-loop.yaml');
    writeFileSync(crash, readFileSync(crash, 'utf8').replace('confidence: 0.9', 'confidence: 0.85'));
    rules = RulesService.start({ config: { dir: null, kmsg: false }, table: lifecycle.table, log, nowNs: boottimeNs, states });
    const checkDir = mkdtempSync(join(tmpdir(), 'patrol-checks-'));
    const checkSets = [
      'check steady { every 1s; warning rate(exec, 10s) > 100000/s; }\ncheck flip { every 1s; warning count(exit where exit_code != 0, 10s) > 1000000; }\n',
      'check steady { every 1s; warning rate(exec, 10s) > 100000/s; }\ncheck flip { every 1s; warning count(exit where exit_code != 0, 10s) > 2000000; }\n',
    ];
    writeFileSync(join(checkDir, 'pack.patrol'), checkSets[0]!);
    const fakeStore = { recordResult: (r: CheckResult) => results.push(r), recordAlert: () => {}, lastAlertedStates: () => new Map() };
    checks = new CheckService({ dir: checkDir, log, store: fakeStore as never, concurrency: 2 });
    checks.start();
    checkSwaps.push({ at: Date.now(), version: checks.version! });

    // ---- the run: workload, D states, 50 reloads of each part
    loopDelay.enable();
    stealStart = stolenMs();
    const heartbeat = setInterval(() => beats.push(Date.now()), 50);
    const t0 = Date.now();
    const load = spawn(loadBin, ['300', '600000', tag], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    load.stdout!.on('data', (d) => (out += d));
    const loadDone = new Promise<void>((r) => load.once('exit', () => r()));
    await sleep(300);
    const dRuns: Promise<void>[] = [];
    for (let i = 0; i < RELOADS; i++) {
      if (i % 10 === 3) {
        // a process in D for 700 ms: several reloads happen while it waits
        const v = spawn(vforkBin, ['700'], { stdio: 'ignore' });
        dPids.push(v.pid!);
        dRuns.push(new Promise((r) => v.once('exit', () => r())));
      }
      const d = defaultConfig();
      const cfg: AgentConfig = { ...d, state: { ...d.state, dThresholdMs: 200, sweepMs: 500 }, agent: { ...d.agent, bpfDir: i % 2 === 0 ? variantDir : BUILT } };
      const a = boottimeNs();
      reports.push(await reloader.reload(cfg, 'objects'));
      reloadSpans.push([a, boottimeNs()]);
      // rules and checks: a swap per reload, alternating
      rules.setConfig({ dir: i % 2 === 0 ? rulesB : null, kmsg: false });
      const rr = rules.reloadReport();
      expect(rr.ok).toBe(true);
      ruleVersions.add(rr.version);
      writeFileSync(join(checkDir, 'pack.patrol'), checkSets[(i + 1) % 2]!);
      const cr = checks.reload('test');
      expect(cr.ok).toBe(true);
      checkSwaps.push({ at: Date.now(), version: cr.version! });
      await sleep(50);
    }
    await Promise.all(dRuns);
    load.kill('SIGTERM');
    await loadDone;
    workloadMs = Date.now() - t0;
    loopDelay.disable();
    stealEnd = stolenMs();
    clearInterval(heartbeat);
    started = Number(out.trim());
    await waitAllReaped(events, tag); // the orphans' leaves: reaped by their new parent
    checks.close();
    rules.close();
    accounting = await lifecycle.stop();
    stateAccounting = await states.stop();
    // 50 verifier runs of both objects under load: ~2 min on a quiet 2 vCPU VM, far more on a busy one
  }, 1_500_000);

  afterAll(async () => {
    await states?.close();
    await lifecycle?.close();
  });

  it('applies every reload (50), alternating builds, each generation one more', () => {
    expect(reports.map((r) => r.result)).toEqual(Array(RELOADS).fill('applied'));
    expect(reports.map((r) => r.generation)).toEqual(Array.from({ length: RELOADS }, (_, i) => i + 1));
    expect(new Set(reports.map((r) => r.version)).size).toBe(2);
    for (const r of reports) {
      expect(r.sensors.lifecycle!.maps_reused).toEqual(expect.arrayContaining(['pt_events', 'pt_counters', 'pt_seq', 'pt_exits', 'pt_pending_exit', 'pt_exec_args', 'pt_gen']));
      expect(r.sensors.state!.maps_reused).toEqual(expect.arrayContaining(['st_events', 'st_tasks', 'st_seq', 'st_counters', 'st_gen']));
    }
  });

  it('every marked process is seen exactly once as fork, exec, exit and reap', () => {
    const marked = markedProcesses(events, tag);
    // every started process execs once with the tag; one in ten brings a reaper and an orphan's parent too
    expect(started).toBeGreaterThan(RELOADS);
    expect(marked.size).toBe(started + 2 * Math.floor((started + 1) / 10));
    const bad = [...marked.values()].map(notExactlyOnce).filter((x) => x !== null);
    if (bad.length) console.log('not exactly once:', bad);
    expect(bad).toEqual([]);
    // forks whose exec came after a flip
    const spanning = [...marked.values()].filter((m) => reloader.flips.some((f) => m.fork[0]!.ev.ktimeNs < f && m.exec[0]!.ev.ktimeNs > f));
    expect(spanning.length).toBeGreaterThan(0);
    // orphans (n = 2 mod 4): their parent exited before them; the exit names the reaper that took them
    const orphans = [...marked.values()].filter((m) => m.n % 4 === 2);
    expect(orphans.length).toBeGreaterThan(0);
    for (const o of orphans) {
      const fork = o.fork[0]!.ev;
      const exit = o.exit[0]!.ev;
      expect(fork.type === 'fork' && exit.type === 'exit' && exit.ppid !== fork.ppid, `orphan ${o.pid}`).toBe(true);
    }
    const reparentedDuringReload = orphans.filter((o) => {
      const parent = [...marked.values()].find((m) => m.n === o.n - 1);
      const t = parent?.exit[0]?.ev.ktimeNs;
      return t !== undefined && reloadSpans.some(([a, b]) => t >= a && t <= b);
    });
    expect(reparentedDuringReload.length).toBeGreaterThan(0);
  });

  it('every zombie dwell is blamed on its parent', () => {
    const marked = [...markedProcesses(events, tag).values()];
    const loadExec = events.find((s) => s.ev.type === 'exec' && s.ev.args[1]?.text === '300' && s.ev.args[3]?.text === tag)!;
    expect(loadExec).toBeDefined();
    // one in ten is reaped 300 ms after its exit (n = 4(i+1), i % 10 == 6)
    const zombies = marked.filter((m) => m.n % 4 === 0 && (m.n / 4 - 1) % 10 === 6);
    expect(zombies.length).toBeGreaterThan(5);
    for (const z of zombies) {
      const reap = z.reap[0]!;
      expect(Number(reap.en.zombieNs) / 1e6).toBeGreaterThanOrEqual(290);
      expect(reap.en.parentExecId).toBe(loadExec.en.execId);
    }
  });

  it('a D state across reloads is reported once, with its whole duration', () => {
    for (const pid of dPids) {
      const d = stateEvents.filter((e): e is StateEvent => e.type === 'state' && e.pid === pid && e.from === 'D');
      expect(d, `pid ${pid}`).toHaveLength(1);
      expect(Number(d[0]!.durationNs) / 1e6).toBeGreaterThanOrEqual(680);
    }
  });

  it('loss accounting holds exactly: nothing lost, no sequence gap, duplicates counted apart', () => {
    expect(accounting.exact).toBe(true);
    const pending = Object.entries(accounting.perType).map(([k, t]) => [k, t.generated - t.captured - t.lostReserve - t.lostUserspace] as const).filter(([, n]) => n !== 0n);
    expect(pending, 'generated but neither captured nor lost, per type').toEqual([]);
    expect(accounting.identityHolds).toBe(true);
    expect(accounting.totals.lostReserve).toBe(0n);
    expect(accounting.totals.lostUserspace).toBe(0n);
    expect(accounting.seqGaps).toBe(0n);
    expect(accounting.malformed).toBe(0);
    expect(accounting.totals.generated).toBe(accounting.totals.captured);
    expect(stateAccounting.identityHolds).toBe(true);
    expect(stateAccounting.seqGaps).toBe(0n);
  });

  it('overlap p99 within 50 ms', () => {
    // Each sensor is swapped make-before-break on its own, one after the other, so each swap is
    // one overlap window: 100 of them in 50 reloads. A nearest-rank p99 of the 50 per-reload
    // figures would be their maximum, one stall of a shared machine (a vCPU stolen by the host)
    // deciding it; over the 100 swaps it is the second largest.
    const swaps = reports.flatMap((r, i) => Object.entries(r.sensors).map(([name, x]) => ({ reload: i + 1, name, overlap: x.overlap_ms ?? 0, detach: x.detach_ms ?? 0 })));
    const overlaps = swaps.map((s) => s.overlap);
    const detach = swaps.map((s) => s.detach);
    const p99 = percentile(overlaps, 99);
    const steal = stealEnd - stealStart;
    const worst = [...swaps].sort((a, b) => b.overlap - a.overlap).slice(0, 3).map((s) => `#${s.reload} ${s.name} ${s.overlap.toFixed(1)} ms (released ${s.detach.toFixed(1)} ms)`);
    console.log(
      `sensor reloads: ${RELOADS} in ${workloadMs} ms, ${started} marked processes (${Math.round((started * 1000) / workloadMs)}/s started); ` +
        `${swaps.length} sensor swaps, overlap p50 ${percentile(overlaps, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...overlaps).toFixed(1)} ms; ` +
        `worst ${worst.join(', ')}; CPU time stolen by the host during the run ${steal} ms; ` +
        `old programs released (detach return) p50 ${percentile(detach, 50).toFixed(1)} ms, p99 ${percentile(detach, 99).toFixed(1)} ms; ` +
        `duplicates removed ${accounting.totals.duplicates}; generated ${accounting.totals.generated}, lost ${accounting.totals.lostReserve + accounting.totals.lostUserspace}`,
    );
    expect(p99).toBeLessThanOrEqual(50);
  });

  it('rules and checks: a swap per reload (50), every result names exactly one version, no scheduled run missed', () => {
    expect(ruleVersions.size).toBe(2);
    for (const f of rules.engine.recentFindings(1000)) expect(ruleVersions.has(f.version!)).toBe(true);
    const versionAt = (t: number) => checkSwaps.filter((s) => s.at <= t).at(-1)!.version;
    const versionBefore = (t: number) => checkSwaps.filter((s) => s.at < t).at(-1)?.version;
    expect(new Set(checkSwaps.map((s) => s.version)).size).toBe(2);
    for (const r of results) {
      expect(r.version).toMatch(/^[0-9a-f]{64}$/);
      // a run and a swap in the same millisecond: either order
      expect([versionAt(r.at), versionBefore(r.at)]).toContain(r.version);
    }
    const steady = results.filter((r) => r.name === 'steady').map((r) => r.at);
    expect(steady.length).toBeGreaterThan(5);
    const gaps = steady.slice(1).map((t, i) => [steady[i]!, t] as const);
    // A run every second; a late timer shifts one run, a swap never drops one. Only an event
    // loop stalled (a starved machine: the heartbeat skipped) can: a longer gap must be
    // explained by the stalls inside it.
    const stalledIn = (a: number, b: number) => {
      let ms = 0;
      for (let i = 1; i < beats.length; i++) if (beats[i]! > a && beats[i - 1]! < b) ms += Math.max(0, beats[i]! - beats[i - 1]! - 50);
      return ms;
    };
    const unexplained = gaps.filter(([a, b]) => b - a > 1900 + stalledIn(a, b));
    console.log(`checks: ${results.length} results, steady max gap ${Math.max(...gaps.map(([a, b]) => b - a))} ms, event loop max delay ${(loopDelay.max / 1e6).toFixed(0)} ms`);
    const around = (a: number, b: number) =>
      `swaps ${checkSwaps.filter((x) => x.at >= a - 1000 && x.at <= b).map((x) => x.at - a).join(',')}; runs ${results.filter((r) => r.at >= a && r.at <= b).map((r) => `${r.name}@${r.at - a}`).join(',')}; skipped ${checks.executor.skipped}`;
    expect(unexplained.map(([a, b]) => `${b - a} ms from ${a}, stalled ${stalledIn(a, b)} ms; ${around(a, b)}`)).toEqual([]);
  });
});
