// The checks' event feed on the agent's hot path: per-event cost of CheckService.onLifecycle
// with one `count(exit where signal == 11, 1m)` check loaded, as the agent's lifecycle handler
// calls it. The stream is fork, exec, exit in turn, one exit in ten a SIGSEGV, 10,000 events/s
// of event time ending now. Figures are net of the same loop calling a no-op, in process CPU
// time (all threads, so the GC helpers' work on garbage counts; another process's load does
// not), and in wall time.
//
// Trees are measured in one process, rounds alternating, so a before/after ratio sees the same
// machine: pass other built checkouts (their dist/) in BENCH_FEED_TREES=label=/path,...
// Works with any tree whose CheckService has onLifecycle (before and after the counters).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { TREE, backgroundCpuPct, median, nowMs, round, waitQuiet } from './lib.mjs';

const CHECK = 'check segv { critical count(exit where signal == 11, 1m) > 0; }\n';
const usage = () => ({ cpuNs: 5_000_000, utimeNs: 0, stimeNs: 0, maxRssKb: 2048, readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0, minflt: 90, majflt: 0, nvcsw: 1, nivcsw: 0 });
const base = { seq: 0n, cpu: 0, flags: 0, ktimeNs: 0n };

/** 30 reusable events (10 forks, 10 execs, 10 exits of which one SIGSEGV); times are set per feed. */
function streamOf() {
  const out = [];
  for (let k = 0; k < 10; k++) {
    const pid = 4000 + k;
    out.push({ ...base, type: 'fork', pid, tid: pid, startNs: 1n, ppid: 1, parentTid: 1, parentStartNs: 1n, comm: { text: 'bash' }, thread: false });
    out.push({
      ...base, type: 'exec', pid, oldTid: pid, ppid: 1, startNs: 1n, parentStartNs: 1n, cgroupId: 1n, uid: 0, gid: 0, euid: 0, comm: { text: 'true' }, filename: { text: '/bin/true' },
      filenameTruncated: false, args: [{ text: 'true' }], argsTruncated: false, argsFault: false, argsFullLen: 5,
    });
    const segv = k === 9;
    out.push({ ...base, type: 'exit', pid, tid: pid, ppid: 1, startNs: 1n, status: segv ? 139 : 0, exitCode: segv ? null : 0, signal: segv ? 11 : null, coreDumped: segv, comm: { text: 'true' }, usage: usage() });
  }
  return out;
}

async function serviceOf(tree, dir) {
  const { CheckService } = await import(path.join(tree, 'dist/app/checks.js'));
  const svc = new CheckService({ dir, log: pino({ level: 'silent' }), store: null, concurrency: 1 });
  if (!svc.reload('bench').ok) throw new Error(`${tree}: the check did not load`);
  return svc;
}

/** What the service retains for events: facts in the old history, buckets in the counters. */
const retained = (svc) => (svc.counters ? { buckets: svc.counters.stats().buckets } : { facts: svc.history?.length ?? null });

export async function eventFeed({ quick = false } = {}) {
  const trees = [['this tree', TREE], ...(process.env.BENCH_FEED_TREES ?? '').split(',').filter(Boolean).map((s) => s.split('='))];
  const { boottimeNs } = await import(path.join(TREE, 'dist/kernel/index.js'));
  const N = quick ? 200_000 : 1_000_000;
  const ROUNDS = quick ? 5 : 9;
  const dir = mkdtempSync(path.join(tmpdir(), 'patrol-bench-feed-'));
  writeFileSync(path.join(dir, 'segv.patrol'), CHECK);
  const en = { execId: 'e', parentExecId: null, ppid: 1, comm: 'true', durationNs: 2_000_000n };
  const stream = streamOf();
  // 0.1 ms apart, ending now on the event clock, so the check's window sees them; rebuilt before
  // each measured feed, outside the timing
  let times = [];
  const stamp = () => {
    const end = boottimeNs();
    times = Array.from({ length: N }, (_, i) => end - BigInt(N - i) * 100_000n);
  };
  stamp();
  /** ns per event: [process CPU, wall] */
  const run = (feed) => {
    const c0 = process.cpuUsage();
    const t0 = nowMs();
    for (let i = 0; i < N; i++) {
      const ev = stream[i % 30];
      ev.ktimeNs = times[i];
      feed(ev, en);
    }
    const wall = ((nowMs() - t0) * 1e6) / N;
    const c = process.cpuUsage(c0);
    return [((c.user + c.system) * 1e3) / N, wall];
  };
  const noop = () => {};
  const quiet = await waitQuiet();
  const services = [];
  for (const [label, tree] of trees) services.push({ label, tree, svc: await serviceOf(tree, dir), ns: [], runUs: [] });
  for (const s of services) run((ev, e) => s.svc.onLifecycle(ev, e)); // JIT warm-up, not measured
  for (const s of services) s.svc.close();
  run(noop);
  const baseline = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? services : [...services].reverse();
    baseline.push(run(noop));
    for (const s of order) {
      // a fresh service each round: the same event times again would count twice
      s.svc = await serviceOf(s.tree, dir);
      stamp();
      s.ns.push(run((ev, e) => s.svc.onLifecycle(ev, e)));
      // runs of the check against what was just fed: a scan of the facts, or a sum of buckets
      // (after the first, which pays for the new service's alert and its set-up)
      await s.svc.executor.runAll();
      const runs = [];
      for (let k = 0; k < 20; k++) {
        const t0 = nowMs();
        const [res] = await s.svc.executor.runAll();
        runs.push((nowMs() - t0) * 1000);
        s.lastValue = res?.evidence?.values?.[0]?.value;
      }
      s.runUs.push(median(runs));
      s.svc.close();
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const loop = median(baseline.map((x) => x[0]));
  const loopWall = median(baseline.map((x) => x[1]));
  return {
    events_per_round: N,
    rounds: ROUNDS,
    ...quiet,
    background_cpu_pct_during: backgroundCpuPct(),
    loop_cpu_ns_per_event: round(loop, 1),
    loop_wall_ns_per_event: round(loopWall, 1),
    trees: services.map((s) => ({
      label: s.label,
      tree: s.tree,
      cpu_ns_per_event_net: round(median(s.ns.map((x) => x[0])) - loop, 1),
      wall_ns_per_event_net: round(median(s.ns.map((x) => x[1])) - loopWall, 1),
      cpu_ns_per_event_samples: s.ns.map((x) => round(x[0] - loop, 1)),
      check_run_us: round(median(s.runUs), 1),
      count_read: s.lastValue,
      retained: retained(s.svc),
    })),
  };
}
