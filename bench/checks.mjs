// Checks: parse + check time for 1,000 checks, executor overhead per check run (no I/O), the
// per-event cost of the checks' event feed (checks-feed.mjs), the real cost of one run of the
// default pack (and what that is in CPU at every 30 s), and the check store's write rate. No
// root needed. Prints one JSON line, then a summary. BENCH_CHECKS_FEED_ONLY=1: the feed only.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeFileSync, mkdirSync } from 'node:fs';
import { ROOT, PATROL, dist, median, round, machine, nowMs, sleep, startChild, stopChild, procUsage } from './lib.mjs';
import { eventFeed } from './checks-feed.mjs';

const checks = await dist('checks/index.js');
const { CheckStore } = await dist('store/index.js');
const { localSources } = await dist('app/checks.js');

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 5 : 15;

// ------------------------------------------------------------------ event feed (first: a fresh heap)
const feed = await eventFeed({ quick: QUICK });
const feedSummary = () =>
  `event feed, one count(exit where signal == 11, 1m) check, per event net of the loop (${feed.loop_cpu_ns_per_event} ns CPU), background ${feed.background_cpu_pct_during}%:\n` +
  feed.trees.map((t) => `  ${t.label}: ${t.cpu_ns_per_event_net} ns CPU (${t.wall_ns_per_event_net} ns wall), a check run ${t.check_run_us} µs (count read ${t.count_read}), retains ${JSON.stringify(t.retained)}`).join('\n');
if (process.env.BENCH_CHECKS_FEED_ONLY === '1') {
  console.log(JSON.stringify({ bench: 'checks', machine: machine(), event_feed: feed }));
  console.log(feedSummary());
  process.exit(0);
}

// ------------------------------------------------------------------ 1,000 checks
const forms = [
  (i) => `check disk_${i} { every 30s; warning disk_usage("/d${i}") > 80%; critical disk_usage("/d${i}") > 95% for 5m; labels n = "${i}"; }`,
  (i) => `check mem_${i} { warning memory_usage > 90% for 5m; critical memory_available < 256MB; }`,
  (i) => `check workers_${i} { critical count(exit where exit_code != 0 and comm == "w${i}", 10m) >= 5; }`,
  (i) => `check cpu_${i} { critical p95(cpu, 1m) by exec_id > 80%; warning max(rss, 5m) by cgroup > 2GB; }`,
  (i) => `check svc_${i} { warning unless port_listening(${1000 + i}); critical unless process_running("svc${i}") for 1m; }`,
];
const src = Array.from({ length: 1000 }, (_, i) => forms[i % forms.length](i)).join('\n') + '\n';
const parseMs = [];
for (let r = 0; r < 3; r++) checks.compileSource(src, 'warmup.patrol'); // JIT warm-up, not measured
for (let r = 0; r < ROUNDS; r++) {
  const t0 = nowMs();
  const out = checks.compileSource(src, 'bench.patrol');
  parseMs.push(nowMs() - t0);
  if (out.checks.length !== 1000) throw new Error(`compiled ${out.checks.length} checks: ${JSON.stringify(out.diagnostics[0])}`);
}

// ------------------------------------------------------------------ executor overhead (no I/O)
const node = {
  cpuUsage: () => 0.1, memory: () => ({ totalBytes: 8e9, availableBytes: 4e9, swapTotalBytes: 0, swapFreeBytes: 0 }), loadavg: () => [0.5, 0.4, 0.3],
  cpuCount: () => 2, fsUsage: () => ({ usage: 0.4, availableBytes: 1e10, inodeUsage: 0.1 }), psi: () => 0, fileHandles: () => ({ allocated: 1000, max: 1e6 }),
  uptimeSeconds: () => 1e5, oomKillCounter: () => 0,
};
const light = Array.from({ length: 200 }, (_, i) => `check n${i} { warning disk_usage("/") > 80%; critical load1 > 8 for 5m; }`).join('\n');
const lightChecks = checks.compileSource(light, 'light.patrol').checks;
const ex = new checks.Executor({ sources: { node, events: checks.EventCounters ? new checks.EventCounters() : new checks.EventHistory(1024) }, concurrency: 4 });
ex.setChecks(lightChecks);
await ex.runAll(); // warm up
const perRunUs = [];
for (let r = 0; r < ROUNDS; r++) {
  const t0 = nowMs();
  await ex.runAll();
  perRunUs.push(((nowMs() - t0) * 1000) / lightChecks.length);
}

// ------------------------------------------------------------------ the default pack, for real
const packDir = path.join(ROOT, 'checks');
const pack = checks.compileFiles(readdirSync(packDir).filter((f) => f.endsWith('.patrol')).map((f) => path.join(packDir, f)));
const real = new checks.Executor({ sources: localSources(), concurrency: 4 });
real.setChecks(pack.checks);
await real.runAll(); // first run samples CPU for 100 ms; measure steady state
const packCpuMs = [];
const packWallMs = [];
for (let r = 0; r < ROUNDS; r++) {
  await sleep(1100); // let the shared /proc scan (1 s) expire: every round pays for its scan
  const c0 = process.cpuUsage();
  const t0 = nowMs();
  await real.runAll();
  packWallMs.push(nowMs() - t0);
  const c = process.cpuUsage(c0);
  packCpuMs.push((c.user + c.system) / 1000);
}
const packCpu = median(packCpuMs);

// ------------------------------------------------------------------ store write rate
const dir = mkdtempSync(path.join(tmpdir(), 'patrol-bench-checks-'));
const store = CheckStore.open(path.join(dir, 's.db'), { runs: { maxAgeMs: 0, maxRows: 0 }, alerts: { maxAgeMs: 0, maxRows: 0 }, flushIntervalMs: 1000 });
const sample = (await real.runAll())[0];
const ROWS = QUICK ? 20_000 : 100_000;
const BATCH = 100;
const t0 = nowMs();
for (let i = 0; i < ROWS; i += BATCH) {
  for (let k = 0; k < BATCH; k++) store.recordResult({ ...sample, at: i + k });
  const r = store.flush();
  if (r.error) throw new Error(r.error);
}
const storeRowsPerS = ROWS / ((nowMs() - t0) / 1000);
store.close();
rmSync(dir, { recursive: true, force: true });

// ------------------------------------------------------------------ the agent, with and without the pack (root)
async function agentCpu(withChecks) {
  const d = mkdtempSync(path.join(tmpdir(), 'patrol-bench-agent-'));
  mkdirSync(path.join(d, 'state'));
  const cfg = path.join(d, 'patrol.yaml');
  writeFileSync(cfg, `store: { path: ${d}/state/p.db }\napi: { socket: ${d}/p.sock }\nagent: { lock_file: ${d}/p.pid, pin_dir: /sys/fs/bpf/patrol-bench-checks }\nlog: { level: warn, format: json }\n`);
  // every check of the pack at 30 s, as the issue's target asks
  const every30 = path.join(d, 'checks');
  mkdirSync(every30);
  for (const f of readdirSync(packDir).filter((x) => x.endsWith('.patrol'))) {
    writeFileSync(path.join(every30, f), readFileSync(path.join(packDir, f), 'utf8').replace(/every [0-9]+[smhd];/g, 'every 30s;'));
  }
  const c = startChild(PATROL, ['agent', '--config', cfg, ...(withChecks ? ['--checks', every30] : [])], { stdout: 'ignore' });
  await sleep(5000);
  const a = procUsage(c.pid);
  const t0 = nowMs();
  await sleep(AGENT_S * 1000);
  const b = procUsage(c.pid);
  const ms = nowMs() - t0;
  await stopChild(c, 'SIGTERM');
  rmSync(d, { recursive: true, force: true });
  return round(((b.runNs - a.runNs) / 1e6 / ms) * 100, 3);
}
const AGENT_S = Number(process.env.BENCH_AGENT_S ?? (QUICK ? 35 : 65));
let agent = null;
if (process.getuid?.() === 0 && process.env.BENCH_CHECKS_AGENT !== '0') {
  // alternate (with, without, without, with, ...) so background load drifts hit both sides
  const AB = Number(process.env.BENCH_CHECKS_AB_ROUNDS ?? 2);
  const withs = [];
  const withouts = [];
  for (let r = 0; r < AB; r++) {
    for (const w of r % 2 === 0 ? [true, false] : [false, true]) (w ? withs : withouts).push(await agentCpu(w));
  }
  const without = median(withouts);
  const withPack = median(withs);
  agent = { window_s: AGENT_S, rounds: AB, cpu_pct_without_checks: without, cpu_pct_with_pack_every_30s: withPack, difference_pct: round(withPack - without, 3), samples_with: withs, samples_without: withouts };
}

const result = {
  bench: 'checks',
  machine: machine(),
  parse_check_1000_ms_median: round(median(parseMs), 2),
  parse_check_per_check_us: round((median(parseMs) * 1000) / 1000, 1),
  executor_overhead_per_run_us_median: round(median(perRunUs), 1),
  default_pack_checks: pack.checks.length,
  default_pack_cpu_ms_per_run_median: round(packCpu, 2),
  default_pack_wall_ms_per_run_median: round(median(packWallMs), 2),
  default_pack_cpu_pct_of_one_core_at_30s: round((packCpu / 30_000) * 100, 4),
  store_rows_per_s: Math.round(storeRowsPerS),
  store_batch_rows: BATCH,
  rounds: ROUNDS,
  agent_one_core_pct: agent,
  event_feed: feed,
};
console.log(JSON.stringify(result));
console.log(`parse + check 1,000 checks: ${result.parse_check_1000_ms_median} ms (median of ${ROUNDS})
executor overhead per check run (no I/O): ${result.executor_overhead_per_run_us_median} µs
default pack (${pack.checks.length} checks) one run: ${result.default_pack_cpu_ms_per_run_median} ms CPU, ${result.default_pack_wall_ms_per_run_median} ms wall → ${result.default_pack_cpu_pct_of_one_core_at_30s}% of one core every 30 s
${feedSummary()}
check store: ${result.store_rows_per_s} rows/s (flush per ${BATCH} rows)${
  agent ? `\nagent CPU over ${agent.window_s} s, % of one core: ${agent.cpu_pct_without_checks} without checks, ${agent.cpu_pct_with_pack_every_30s} with the default pack every 30 s (difference ${agent.difference_pct})` : ''}`);
