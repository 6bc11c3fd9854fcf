#!/usr/bin/env node
// Issue 14: fleet state at scale. N simulated members (default 1,000) run through the same module
// an agent runs (src/fleet FleetNode: lease, registration, election, desired watch, observed
// state, probes) against a three-member etcd cluster on loopback (test/fleet/etcd-cluster.mjs,
// Debian's etcd 3.4). The members live in worker threads (FLEET_BENCH_WORKERS, default 4: real
// agents are separate processes, and one event loop for thousands of members would itself be the
// bottleneck), 25 to a gRPC client. Then 10,000 if the machine allows (FLEET_BENCH_10K=1 forces,
// =0 skips; default: when the first run says it fits). Agent defaults: lease_ttl 10 s,
// observed_interval 10 s, probe_interval 1 s (FLEET_BENCH_PROBE_MS to change it).
//
// Per run, over windows of FLEET_BENCH_WINDOW_S (default 30 s):
//   - quiet: inputs that never change: what a steady fleet costs (keepalives, probes, no writes);
//   - churn: every member's observed state changes at every refresh: the write bound
//     (at most one observed write per member per observed_interval);
// from etcd's own /metrics: raft proposals/s (every write, lease grants and revokes; the
// leader's), mvcc puts/s, keepalives/s and ranges/s (summed over members: each request reaches
// one), each member's CPU; the members' own state (how many stayed connected); then the p99
// latency of a desired-state change (desired/all) reaching every member (10 changes), etcd's
// database size, and memory per simulated member (process RSS and worker heaps, over N).
// Extrapolates linearly to 10,000 nodes and says where etcd saturates.
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ROOT, dist, nowMs, percentiles, report, round, sleep, waitQuiet } from './lib.mjs';
import { EtcdCluster, etcdAvailable } from '../test/fleet/etcd-cluster.mjs';

const PER_CLIENT = 25;
const PREFIX = '/patrol/';

if (!isMainThread) await worker();
else await main();

// ------------------------------------------------------------------ worker: simulated members

async function worker() {
  const fleet = await dist('fleet/index.js');
  const { createLogger } = await dist('shared/log.js');
  const log = createLogger({ level: process.env.PATROL_LOG_LEVEL ?? 'silent' });
  const { endpoints, from, count, probeMs } = workerData;
  let churn = false;
  let flip = 0;
  const inputs = {
    ...fleet.quietInputs,
    // each member reports a steady agent of its own, not this busy simulator's CPU and RSS
    usage: () => ({ cpuPct: 0.5, rssBytes: 120 << 20 }),
    // churn: every refresh sees another health, so an observed write is always due
    health: () => (churn && flip++ & 1 ? { status: 'degraded', reasons: [{ kind: 'loss', message: `bench ${flip}` }] } : { status: 'ok', reasons: [] }),
  };
  const applied = new Map(); // bundle → [wall ms]
  const clients = [];
  const members = [];
  // the baseline: this worker with the module loaded and nothing running
  globalThis.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  parentPort.postMessage({ type: 'loaded' });
  await new Promise((r) => parentPort.once('message', r));
  for (let i = 0; i < count; i++) {
    if (i % PER_CLIENT === 0) clients.push(new fleet.EtcdClient({ endpoints, timeoutMs: 5000 }));
    const n = from + i;
    const m = new fleet.FleetNode({
      endpoints,
      node: `sim-${String(n).padStart(5, '0')}`,
      labels: { role: n % 2 ? 'web' : 'db', zone: `z${n % 3}` },
      prefix: PREFIX,
      leaseTtlMs: 10_000,
      observedIntervalMs: 10_000,
      skewBoundMs: 3_600_000,
      tls: null,
      stateFile: null,
      version: '0.1.0',
      startedAt: Date.now(),
      pid: process.pid,
      inputs,
      log,
      client: clients[clients.length - 1],
      timing: { probeMs, probeDeadlineMs: Math.max(500, Math.round(probeMs * 1.5)), detectMs: Math.max(1000, 3 * probeMs) },
      onDesired: (e) => {
        if (e.bundle === null) return;
        let l = applied.get(e.bundle);
        if (!l) applied.set(e.bundle, (l = []));
        l.push(Date.now());
      },
    });
    members.push(m);
    m.start();
    // a fleet does not boot in one millisecond either: ~200 members a second over all workers
    if (i % 10 === 9) await sleep(Math.round((10 * 1000 * workerData.workers) / 200));
  }
  parentPort.on('message', async (msg) => {
    if (msg.type === 'count') {
      let registered = 0;
      let localOnly = 0;
      for (const m of members) {
        const l = m.local();
        if (l.registered && l.state === 'connected') registered++;
        if (l.state === 'local-only') localOnly++;
      }
      parentPort.postMessage({ type: 'count', registered, localOnly, heap: process.memoryUsage().heapUsed - heap0, episodes: members.reduce((a, m) => a + m.counters.local_only_episodes, 0) });
    } else if (msg.type === 'churn') {
      churn = msg.on;
      parentPort.postMessage({ type: 'ok' });
    } else if (msg.type === 'applied') {
      parentPort.postMessage({ type: 'applied', times: applied.get(msg.bundle) ?? [] });
    } else if (msg.type === 'gc') {
      globalThis.gc?.();
      parentPort.postMessage({ type: 'ok' });
    } else if (msg.type === 'stop') {
      await Promise.all(members.map((m) => m.stop().catch(() => {})));
      for (const c of clients) c.close();
      parentPort.postMessage({ type: 'stopped' });
    }
  });
  parentPort.postMessage({ type: 'started' });
}

// ------------------------------------------------------------------ main

function ask(w, msg, type) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m.type === type) {
        w.off('message', on);
        resolve(m);
      }
    };
    w.on('message', on);
    w.postMessage(msg);
  });
}

/** Counters from each member's /metrics. */
async function scrape(cluster) {
  const out = [];
  for (let i = 0; i < cluster.size; i++) {
    const text = await (await fetch(`${cluster.endpoint(i)}/metrics`)).text();
    const get = (re) => {
      let sum = 0;
      for (const line of text.split('\n')) if (re.test(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      return sum;
    };
    out.push({
      t: nowMs(),
      proposals: get(/^etcd_server_proposals_committed_total /),
      puts: get(/^etcd_mvcc_put_total /),
      keepalives: get(/^grpc_server_msg_received_total\{grpc_method="LeaseKeepAlive"/),
      ranges: get(/^grpc_server_handled_total\{[^}]*grpc_method="Range"/),
      cpu: get(/^process_cpu_seconds_total /),
      isLeader: get(/^etcd_server_is_leader /) === 1,
      dbBytes: get(/^etcd_mvcc_db_total_size_in_bytes /),
    });
  }
  return out;
}

function rates(a, b) {
  const s = (b[0].t - a[0].t) / 1000;
  const leader = Math.max(0, b.findIndex((m) => m.isLeader));
  return {
    seconds: round(s, 1),
    raft_proposals_per_s: round((b[leader].proposals - a[leader].proposals) / s, 1),
    mvcc_puts_per_s: round((b[leader].puts - a[leader].puts) / s, 1),
    keepalives_per_s: round(b.reduce((x, m, i) => x + m.keepalives - a[i].keepalives, 0) / s, 1),
    ranges_per_s: round(b.reduce((x, m, i) => x + m.ranges - a[i].ranges, 0) / s, 1),
    etcd_cpu_pct: b.map((m, i) => round((100 * (m.cpu - a[i].cpu)) / s, 1)),
    etcd_leader: leader,
  };
}

async function run(n, o) {
  const fleet = await dist('fleet/index.js');
  const cluster = await EtcdCluster.start();
  const client = new fleet.EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 10_000 });
  const W = Math.min(o.workers, n);
  const workers = [];
  const counts = async () => {
    const r = await Promise.all(workers.map((w) => ask(w, { type: 'count' }, 'count')));
    return { registered: r.reduce((a, x) => a + x.registered, 0), localOnly: r.reduce((a, x) => a + x.localOnly, 0), heap: r.reduce((a, x) => a + x.heap, 0), episodes: r.reduce((a, x) => a + x.episodes, 0) };
  };
  try {
    const loaded = [];
    for (let k = 0; k < W; k++) {
      const from = Math.floor((k * n) / W);
      const count = Math.floor(((k + 1) * n) / W) - from;
      const w = new Worker(new URL(import.meta.url), { workerData: { endpoints: cluster.endpoints, from, count, probeMs: o.probeMs, workers: W } });
      workers.push(w);
      w.on('error', (e) => console.error(`fleet-scale worker: ${e.stack ?? e}`));
      loaded.push(new Promise((r) => w.once('message', r)));
    }
    await Promise.all(loaded);
    await sleep(1000);
    globalThis.gc?.();
    const rss0 = process.memoryUsage().rss; // workers loaded, no member yet
    const t0 = nowMs();
    for (const w of workers) w.postMessage({ type: 'start' });
    // every member registered and connected at once; on a starved machine members flap between
    // connected and local-only (that is what the probe is for), so after 5 minutes 95 % will do
    let c = { registered: 0 };
    let best = 0;
    for (const end = nowMs() + 10 * 60_000; nowMs() < end; await sleep(1000)) {
      c = await counts();
      best = Math.max(best, c.registered);
      o.progress(`${n} members: ${c.registered} registered and connected after ${round((nowMs() - t0) / 1000, 0)} s`);
      if (c.registered === n || (nowMs() - t0 > 5 * 60_000 && c.registered >= 0.95 * n)) break;
    }
    const registerS = round((nowMs() - t0) / 1000, 1);
    if (c.registered < 0.95 * n) throw new Error(`at most ${best} of ${n} members were registered and connected at once within 10 minutes (the machine is too busy for this size)`);
    await sleep(12_000); // first observed writes and desired reads settle
    await Promise.all(workers.map((w) => ask(w, { type: 'gc' }, 'ok')));
    globalThis.gc?.();
    const mem = await counts();
    const rss1 = process.memoryUsage().rss;

    const window = async (phase) => {
      const before = await counts();
      const a = await scrape(cluster);
      const ca = process.cpuUsage();
      const ta = nowMs();
      let minConnected = n;
      for (const end = nowMs() + o.windowS * 1000; nowMs() < end; ) {
        await sleep(2000);
        minConnected = Math.min(minConnected, (await counts()).registered);
      }
      const b = await scrape(cluster);
      const cu = process.cpuUsage(ca);
      const after = await counts();
      return {
        phase,
        ...rates(a, b),
        simulator_cpu_pct: round((100 * (cu.user + cu.system)) / 1000 / (nowMs() - ta), 1),
        members_connected_min: minConnected,
        local_only_episodes: after.episodes - before.episodes,
      };
    };
    o.progress(`${n} members registered in ${registerS} s; quiet window`);
    const quiet = await window('quiet');
    await Promise.all(workers.map((w) => ask(w, { type: 'churn', on: true }, 'ok')));
    await sleep(11_000); // one interval: every member has picked the churn up
    o.progress(`${n} members: churn window`);
    const churn = await window('churn');
    await Promise.all(workers.map((w) => ask(w, { type: 'churn', on: false }, 'ok')));

    o.progress(`${n} members: desired-state changes`);
    const perMember = [];
    const reachAll = [];
    const keys = new fleet.Keys(PREFIX);
    for (let i = 0; i < o.changes; i++) {
      const bundle = `bench-${n}-${i}`;
      const tw = Date.now();
      await fleet.writeDesired(client, keys, bundle, { all: true }, 'bench');
      let times = [];
      for (const end = nowMs() + 60_000; nowMs() < end; await sleep(100)) {
        times = (await Promise.all(workers.map((w) => ask(w, { type: 'applied', bundle }, 'applied')))).flatMap((x) => x.times);
        if (times.length >= n) break;
      }
      if (times.length < n) throw new Error(`desired change ${bundle} reached ${times.length} of ${n} members in 60 s`);
      const lat = times.map((t) => t - tw);
      perMember.push(...lat);
      reachAll.push(Math.max(...lat));
      await sleep(1000);
    }
    const status = await cluster.status(0);
    return {
      members: n,
      workers: W,
      register_s: registerS,
      connected_at_start: c.registered,
      quiet,
      churn,
      desired_latency_ms: { per_member: percentiles(perMember), reach_all: percentiles(reachAll, [50, 99, 100]) },
      etcd_db_bytes: Number(status.dbSize),
      etcd_db_bytes_per_member: round(Number(status.dbSize) / n, 0),
      memory_per_member_bytes: { rss: round((rss1 - rss0) / n, 0), heap: round(mem.heap / n, 0) },
    };
  } finally {
    await Promise.all(workers.map((w) => ask(w, { type: 'stop' }, 'stopped').then(() => w.terminate())));
    client.close();
    await cluster.stop();
  }
}

/** Linear extrapolation to `target` nodes; where etcd saturates: the busiest member reaching
 *  one core, and (on this machine) the three members together reaching all its CPUs. */
function extrapolate(r, target) {
  const k = target / r.members;
  const busiest = (w) => Math.max(...w.etcd_cpu_pct);
  const total = (w) => w.etcd_cpu_pct.reduce((a, b) => a + b, 0);
  const at = (w) => ({
    writes_per_s: round(w.raft_proposals_per_s * k, 0),
    keepalives_per_s: round(w.keepalives_per_s * k, 0),
    linearizable_reads_per_s: round(w.ranges_per_s * k, 0),
    busiest_etcd_member_cpu_pct: round(busiest(w) * k, 0),
    nodes_at_one_core_per_member: Math.floor((r.members * 100) / Math.max(0.1, busiest(w))),
    nodes_at_this_machine: Math.floor((r.members * 100 * cpus().length) / Math.max(0.1, total(w))),
  });
  return { target, from: r.members, quiet: at(r.quiet), churn: at(r.churn), etcd_db_bytes: round(r.etcd_db_bytes_per_member * target, 0), simulator_rss_bytes: round(r.memory_per_member_bytes.rss * target, 0) };
}

async function main() {
  if (!etcdAvailable()) {
    console.error('fleet-scale: /usr/bin/etcd missing: run bash scripts/etcd-server.sh');
    process.exit(1);
  }
  if (!existsSync(path.join(ROOT, 'dist/fleet/index.js'))) {
    console.error('fleet-scale: not built: run bash scripts/build.sh');
    process.exit(1);
  }
  // Ctrl-C / SIGTERM: exit normally, so the harness stops its etcd members
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));
  const o = {
    workers: Number(process.env.FLEET_BENCH_WORKERS ?? 4),
    windowS: Number(process.env.FLEET_BENCH_WINDOW_S ?? (process.env.BENCH_QUICK ? 10 : 30)),
    probeMs: Number(process.env.FLEET_BENCH_PROBE_MS ?? 1000),
    changes: 10,
    progress: (m) => process.env.FLEET_BENCH_VERBOSE && process.stderr.write(`fleet-scale: ${m}\n`),
  };
  const N = Number(process.env.FLEET_BENCH_MEMBERS ?? 1000);
  const TRY_10K = process.env.FLEET_BENCH_10K ?? 'auto';
  const quiet = await waitQuiet();
  const runs = [await run(N, o)];
  const first = runs[0];
  const tenK = { attempted: false, reason: '' };
  if (N < 10_000) {
    const k = 10_000 / N;
    const estRss = first.memory_per_member_bytes.rss * 10_000;
    const estCpu = Math.max(first.quiet.simulator_cpu_pct, first.churn.simulator_cpu_pct) * k;
    const estEtcd = Math.max(...first.quiet.etcd_cpu_pct.map((x, i) => x + first.quiet.etcd_cpu_pct.filter((_, j) => j !== i).reduce((a, b) => a + b, 0))) * k;
    const fits = estRss < 6 * 2 ** 30 && estCpu + estEtcd < 80 * cpus().length;
    if (TRY_10K === '1' || (TRY_10K === 'auto' && fits)) {
      tenK.attempted = true;
      tenK.reason = TRY_10K === '1' ? 'forced' : 'the first run says it fits';
      try {
        runs.push(await run(10_000, o));
      } catch (e) {
        tenK.error = e.message;
      }
    } else {
      tenK.reason = TRY_10K === '0' ? 'skipped (FLEET_BENCH_10K=0)' : `skipped: at 10,000 this machine would need ~${round((estCpu + estEtcd) / 100, 1)} cores (simulator ${round(estCpu, 0)}% + etcd ${round(estEtcd, 0)}%) of its ${cpus().length}, and ~${round(estRss / 2 ** 30, 1)} GiB for the simulator`;
    }
  }
  const last = runs[runs.length - 1];
  const ext = extrapolate(last, 10_000);
  const line = (r) =>
    `${r.members} members (${r.workers} workers): registered in ${r.register_s} s; quiet: ${r.quiet.raft_proposals_per_s} writes/s, ${r.quiet.keepalives_per_s} keepalives/s, ${r.quiet.ranges_per_s} reads/s, etcd CPU ${r.quiet.etcd_cpu_pct.join('/')}% (leader m${r.quiet.etcd_leader}), ${r.quiet.members_connected_min} stayed connected; churn: ${r.churn.raft_proposals_per_s} writes/s, etcd CPU ${r.churn.etcd_cpu_pct.join('/')}%, ${r.churn.members_connected_min} stayed connected`;
  report('fleet-scale', { ...quiet, probe_ms: o.probeMs, window_s: o.windowS, runs, ten_thousand: tenK, extrapolated: ext }, [
    ...runs.map(line),
    ...runs.map((r) => `${r.members} members: a desired change reaches a member in p50 ${r.desired_latency_ms.per_member.p50} ms, p99 ${r.desired_latency_ms.per_member.p99} ms; reaches every member in p99 ${r.desired_latency_ms.reach_all.p99} ms; etcd db ${round(r.etcd_db_bytes / 2 ** 20, 1)} MiB (${r.etcd_db_bytes_per_member} B/member); simulator memory ${round(r.memory_per_member_bytes.rss / 1024, 1)} KiB RSS, ${round(r.memory_per_member_bytes.heap / 1024, 1)} KiB heap per member`),
    `10,000 measured: ${tenK.attempted ? (tenK.error ? `attempted, failed: ${tenK.error}` : 'yes, above') : tenK.reason}`,
    `extrapolated to 10,000 (from ${ext.from}): quiet ${ext.quiet.writes_per_s} writes/s, ${ext.quiet.keepalives_per_s} keepalives/s, ${ext.quiet.linearizable_reads_per_s} linearizable reads/s; churn ${ext.churn.writes_per_s} writes/s; etcd db ~${round(ext.etcd_db_bytes / 2 ** 20, 0)} MiB`,
    `saturation: the busiest etcd member would need ${ext.quiet.busiest_etcd_member_cpu_pct}% of a core quiet, ${ext.churn.busiest_etcd_member_cpu_pct}% in churn; one core per member lasts to ~${ext.churn.nodes_at_one_core_per_member} nodes in churn (~${ext.quiet.nodes_at_one_core_per_member} quiet); three members sharing this ${cpus().length}-vCPU machine, ~${ext.churn.nodes_at_this_machine}`,
  ]);
}
