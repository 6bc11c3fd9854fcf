#!/usr/bin/env node
// Issue 11: the cost of the whole `patrol agent --checks checks` (default configuration) side by
// side with Debian's libbpf-tools `execsnoop` and `exitsnoop` run together (the peer: they
// report the same exec and exit events), in one run, alternating.
//
// Loads: idle (no workload), RATE exec/s paced (`forkexec -r RATE -j 1`), and one fork+exec
// loop flat out (`forkexec -j 1`). Each (load, tool) measurement starts the tool afresh, waits
// for it to attach, warms it up at the same load for WARMUP s (V8 keeps compiling newly hot
// functions for a while), then measures a WINDOW s window:
//   - CPU of the tool's whole process tree (every thread of every descendant; both snoops
//     summed): per-thread schedstat run time (ns, exact), plus the CPU of children reaped during
//     the window (cutime+cstime), in % of one core. utime+stime ticks are kept as a cross-check;
//   - RSS: VmRSS summed over the tree, at the start and the end of the window, and its peak
//     (sampled every second);
//   - the workload's achieved rate (forkexec's own count), and flat out also bare (no tool);
//   - the agent's CPU per thread name (/proc/<pid>/task/<tid>/comm);
//   - the machine's other load during the window (busy time minus tool and workload), in % of
//     all CPUs.
// Then, for the agent under load, a separate latency window (the subscriber costs CPU in the
// agent and in this process, so it is kept out of the CPU window): this script subscribes to the
// agent's `GET /v1/events?comm=<marked comm>` over its unix socket, runs the same load with a
// unique argv[1], and for each exec record takes CLOCK_BOOTTIME on arrival of the chunk minus
// the record's `ktime_ns` (bpf_ktime_get_boot_ns at sched_process_exec). This is exec → line
// received by a client: it includes the agent's handling, serialization, one setImmediate and the
// socket, so it is an upper bound of exec → handler. The agent's CPU during that window is
// reported too (`cpu_pct_with_subscriber`).
//
// The order of the tools rotates from round to round (A B, B A, ...) so background load hits
// both alike; per-round ratios and their medians are the figures to compare.
//
//   node bench/agent-cost.mjs
//   AGENT_COST_ROUNDS=2 AGENT_COST_WINDOW_S=20 AGENT_COST_WARMUP_S=15 node bench/agent-cost.mjs
//   AGENT_COST_TREE=/work/main node bench/agent-cost.mjs              # the agent of another built tree
//   AGENT_COST_TREES='before=/work/main;after=.' node bench/agent-cost.mjs   # A/B of two trees + the snoops, alternating
//
// knobs (env): AGENT_COST_ROUNDS (2), AGENT_COST_WINDOW_S (20), AGENT_COST_WARMUP_S (15),
// AGENT_COST_LAT_S (latency window, 10; 0 = no latency pass), AGENT_COST_RATE (200),
// AGENT_COST_LOADS (idle,rate,flat), AGENT_COST_OUT (result name, agent-cost),
// AGENT_COST_AGENT_ARGS (extra `patrol agent` flags, space-separated), AGENT_COST_DB_SEED (a store
// file every agent starts on a copy of, e.g. one near store.retention.max_rows), BENCH_QUICK=1 (1 round,
// 8 s windows, 5 s warm-up, 5 s latency). Results: bench/results/<AGENT_COST_OUT>.json.
import http from 'node:http';
import path from 'node:path';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  BENCH,
  EXECSNOOP,
  FORKEXEC,
  ROOT,
  TREE,
  markedTrue,
  median,
  nonce,
  nowMs,
  percentiles,
  report,
  round,
  runJson,
  sleep,
  startChild,
  stopChild,
  waitAttached,
  waitQuiet,
} from './lib.mjs';

// This driver runs from a copy of its node binary, which replaces this process (execve). The
// agent gives the binary's start-up pages back (src/app/startup-pages.ts), and the kernel leaves
// alone a page another process maps too: a driver run by the agent's own runtime binary (or a
// parent waiting on the copy) kept them all in the agent's RSS, as no process on a real node does.
if (process.env.AGENT_COST_DRIVER_COPY !== '1') {
  const copy = path.join(BENCH, 'build', 'node-driver');
  if (!existsSync(copy) || statSync(copy).size !== statSync(process.execPath).size) {
    execFileSync('make', ['-s', '-C', BENCH], { stdio: ['ignore', 'ignore', 'inherit'] });
    copyFileSync(process.execPath, copy);
    chmodSync(copy, 0o755);
  }
  const env = { ...process.env, AGENT_COST_DRIVER_COPY: '1' };
  const argv = [...process.execArgv, ...process.argv.slice(1)];
  if (typeof process.execve === 'function') process.execve(copy, [copy, ...argv], env); // Node >= 23.11
  process.stderr.write('agent-cost: this Node has no process.execve; the driver keeps the runtime binary mapped, and the agents\' RSS reads high\n');
  const r = spawnSync(copy, argv, { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}

const QUICK = process.env.BENCH_QUICK === '1';
const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const ROUNDS = env('AGENT_COST_ROUNDS', QUICK ? 1 : 2);
const WINDOW_S = env('AGENT_COST_WINDOW_S', QUICK ? 8 : 20);
const WARMUP_S = env('AGENT_COST_WARMUP_S', QUICK ? 5 : 15);
const LAT_S = env('AGENT_COST_LAT_S', QUICK ? 5 : 10);
const RATE = env('AGENT_COST_RATE', 200);
const LOADS = (process.env.AGENT_COST_LOADS ?? 'idle,rate,flat').split(',').map((s) => s.trim()).filter(Boolean);
const OUT = process.env.AGENT_COST_OUT ?? 'agent-cost';
const AGENT_ARGS = (process.env.AGENT_COST_AGENT_ARGS ?? '').split(/\s+/).filter(Boolean);
const DB_SEED = process.env.AGENT_COST_DB_SEED || null;
const EXITSNOOP = '/usr/sbin/exitsnoop';
for (const l of LOADS) if (!['idle', 'rate', 'flat'].includes(l)) throw new Error(`AGENT_COST_LOADS: unknown load ${l} (idle, rate, flat)`);

// Agent variants: AGENT_COST_TREES='label=path;label=path', or AGENT_COST_TREE=path (one
// variant), else this tree (or BENCH_TREE). Each tree must be built (bash scripts/build.sh).
function variants() {
  const spec = process.env.AGENT_COST_TREES;
  const list = spec
    ? spec.split(';').filter(Boolean).map((v) => {
        const i = v.indexOf('=');
        const [label, tree] = i > 0 ? [v.slice(0, i), v.slice(i + 1)] : [path.basename(path.resolve(ROOT, v)), v];
        return { label, tree: path.resolve(ROOT, tree) };
      })
    : [{ label: 'agent', tree: process.env.AGENT_COST_TREE ? path.resolve(ROOT, process.env.AGENT_COST_TREE) : TREE }];
  for (const v of list) {
    if (v.label === 'snoops' || v.label === 'bare') throw new Error(`AGENT_COST_TREES: label ${v.label} is reserved`);
    for (const p of ['bin/patrol', 'dist/cli/main.js', 'native/build/Release/patrol_native.node', 'bpf/.output/lifecycle.bpf.o']) {
      if (!existsSync(path.join(v.tree, p))) throw new Error(`${v.tree}: ${p} missing: run bash scripts/build.sh there`);
    }
    if (!existsSync(path.join(v.tree, 'checks'))) throw new Error(`${v.tree}: no checks/ directory`);
  }
  return list;
}
const AGENTS = variants();
const TOOLS = [...AGENTS.map((a) => a.label), 'snoops'];

if (process.getuid?.() !== 0) throw new Error('agent-cost loads BPF programs: run as root');
for (const p of [EXECSNOOP, EXITSNOOP]) if (!existsSync(p)) throw new Error(`${p} missing: apt-get install libbpf-tools`);
execFileSync('make', ['-s', '-C', BENCH], { stdio: ['ignore', 'ignore', 'inherit'] });
// CLOCK_BOOTTIME from this tree's addon (the clock of the records' ktime_ns)
const nativeJs = path.join(ROOT, 'dist/kernel/native.js');
if (!existsSync(nativeJs)) throw new Error(`${nativeJs} missing: run bash scripts/build.sh`);
const clockBoottimeNs = (await import(nativeJs)).native().clockBoottimeNs;

// The workload: a copy of /bin/true with its own comm, so the latency client can filter on it.
const COMM = 'pbcost';
const TRUE = markedTrue(COMM);
const loadArgs = (load, secs, tag = 'cpu') => [...(load === 'rate' ? ['-r', String(RATE)] : []), '-j', '1', '-d', String(secs), '-e', TRUE, '--', COMM, tag];

// ---------------------------------------------------------------- children and cleanup
const live = new Set();
const workdir = mkdtempSync(path.join(tmpdir(), 'patrol-agent-cost-'));
function cleanupSync() {
  for (const c of live) {
    try {
      c.child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(workdir, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    process.stderr.write(`agent-cost: ${sig}: stopping children\n`);
    await Promise.all([...live].map((c) => stopChild(c, 'SIGTERM', 5000).catch(() => {})));
    process.exit(130);
  });
}
function track(c) {
  live.add(c);
  c.exited.then(() => live.delete(c));
  return c;
}

// ---------------------------------------------------------------- /proc sampling
const CLK_TCK = 100;
function readStat(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
}

/** The roots and all their descendant processes. */
function treePids(roots) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    try {
      const { ppid } = readStat(d);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      /* gone */
    }
  }
  const out = [];
  const todo = [...roots];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    for (const k of kids.get(p) ?? []) todo.push(k);
  }
  return out;
}

function rssKb(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)/m.exec(st)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Every thread of the tree: schedstat run ns and timeslices, thread name; tick counters. */
function snapTree(roots) {
  const pids = treePids(roots);
  const threads = new Map();
  let ticks = 0;
  let childTicks = 0;
  let rss = 0;
  for (const pid of pids) {
    try {
      const st = readStat(pid);
      ticks += st.ticks;
      if (roots.includes(pid)) childTicks += st.childTicks;
      rss += rssKb(pid);
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        try {
          const ss = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ');
          const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
          threads.set(`${pid}/${t}`, { ns: Number(ss[0]), slices: Number(ss[2]), comm, main: String(pid) === t });
        } catch {
          /* thread gone */
        }
      }
    } catch {
      /* process gone */
    }
  }
  return { t: nowMs(), pids, threads, ticks, childTicks, rssKb: rss };
}

function selfTicks() {
  const st = readStat('self');
  return st.ticks + st.childTicks;
}
function machineTicks() {
  const text = readFileSync('/proc/stat', 'utf8');
  const l = text.split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = l.reduce((a, b) => a + b, 0);
  // forks since boot: every tool traces the whole machine, so other users' process churn is load too
  return { busy: total - l[3] - (l[4] ?? 0), total, forks: Number(/^processes (\d+)/m.exec(text)?.[1] ?? 0) };
}

/** Samples the tree's RSS every second until stop(); the pid set is refreshed every 5 s. */
function rssSampler(roots) {
  let pids = treePids(roots);
  let peak = 0;
  let n = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (++n % 5 === 0) pids = treePids(roots);
      peak = Math.max(peak, pids.reduce((a, p) => a + rssKb(p), 0));
      await sleep(1000);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return peak;
  };
}

/** Starts a window: returns end() → the figures of the window. */
function startWindow(roots) {
  const a = snapTree(roots);
  const m0 = machineTicks();
  const s0 = selfTicks();
  const stopRss = roots.length ? rssSampler(roots) : null;
  return async () => {
    const peakKb = stopRss ? await stopRss() : 0;
    const b = roots.length ? snapTree(roots) : { t: nowMs(), threads: new Map(), ticks: 0, childTicks: 0, rssKb: 0, pids: [] };
    const m1 = machineTicks();
    const s1 = selfTicks();
    const wall = (b.t - a.t) / 1000;
    let ns = 0;
    let mainNs = 0;
    let slices = 0;
    const byComm = {};
    for (const [k, th] of b.threads) {
      const p = a.threads.get(k);
      const d = th.ns - (p?.ns ?? 0);
      const ds = th.slices - (p?.slices ?? 0);
      ns += d;
      slices += ds;
      if (th.main) mainNs += d;
      // the main thread (tid = pid; for node, the JS thread) apart from others of the same name
      // (native std::threads, e.g. the addon's ring consumers, inherit the name MainThread)
      const g = (byComm[th.main ? `${th.comm} [main]` : th.comm] ??= { ns: 0, slices: 0, threads: 0 });
      g.ns += d;
      g.slices += ds;
      g.threads++;
    }
    // children reaped during the window (none expected: the tools spawn nothing)
    const reapedNs = ((b.childTicks - a.childTicks) / CLK_TCK) * 1e9;
    const toolTicks = b.ticks - a.ticks + (b.childTicks - a.childTicks);
    const other = m1.busy - m0.busy - toolTicks - (s1 - s0);
    const pct = (x) => round((100 * x) / 1e9 / wall, 3);
    return {
      wall_s: round(wall, 2),
      cpu_pct: pct(ns + reapedNs),
      cpu_pct_ticks: round((100 * toolTicks) / CLK_TCK / wall, 2),
      main_threads_pct: pct(mainNs),
      timeslices_per_s: round(slices / wall, 0),
      processes: b.pids.length,
      threads: b.threads.size,
      rss_mb_start: round(a.rssKb / 1024, 1),
      rss_mb_end: round(b.rssKb / 1024, 1),
      rss_mb_peak: round(Math.max(peakKb, a.rssKb, b.rssKb) / 1024, 1),
      by_thread: Object.fromEntries(
        Object.entries(byComm)
          .sort((x, y) => y[1].ns - x[1].ns)
          .map(([c, g]) => [c, { cpu_pct: pct(g.ns), threads: g.threads, timeslices_per_s: round(g.slices / wall, 0) }]),
      ),
      // machine busy time that is neither the tool, the workload nor this script, % of all CPUs
      background_pct: round((100 * Math.max(0, other)) / (m1.total - m0.total), 1),
      // every fork on the machine (the workload's included), per second
      machine_forks_per_s: round((m1.forks - m0.forks) / wall, 0),
      // the tool's CPU per fork on the machine: both tools trace every process of the machine,
      // so this is less sensitive than cpu_pct to the rate the workload reached under contention
      cpu_us_per_machine_fork: m1.forks > m0.forks ? round((ns + reapedNs) / 1000 / (m1.forks - m0.forks), 1) : null,
    };
  };
}

// ---------------------------------------------------------------- the tools
let agentSeq = 0;
async function startAgent(v) {
  const dir = path.join(workdir, `agent-${++agentSeq}`);
  execFileSync('mkdir', ['-p', dir]);
  // a full store is the agent's steady state: its indexes are large, and retention deletes
  if (DB_SEED) execFileSync('cp', [DB_SEED, path.join(dir, 'patrol.db')]);
  // the default configuration, except where it would collide with another agent on the machine
  writeFileSync(
    path.join(dir, 'patrol.yaml'),
    [
      'store:',
      `  path: ${dir}/patrol.db`,
      'api:',
      `  socket: ${dir}/patrol.sock`,
      'agent:',
      `  lock_file: ${dir}/patrol.pid`,
      `  pin_dir: ${dir}/pins`,
      'metrics:',
      '  prometheus:',
      '    port: 0',
      '',
    ].join('\n'),
  );
  const logPath = path.join(dir, 'agent.log');
  const fd = openSync(logPath, 'w');
  const args = ['agent', '--config', path.join(dir, 'patrol.yaml'), '--checks', path.join(v.tree, 'checks'), '--log-format', 'json', ...AGENT_ARGS];
  const c = track(startChild(path.join(v.tree, 'bin/patrol'), args, { stdout: fd, env: { ...process.env, PATROL_SOCKET: path.join(dir, 'patrol.sock') } }));
  closeSync(fd);
  const log = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  const t0 = nowMs();
  while (!log().includes('"patrol agent ready"')) {
    if (c.child.exitCode !== null || c.child.signalCode !== null || nowMs() - t0 > 60000) {
      await stopChild(c, 'SIGTERM', 5000);
      throw new Error(`${v.label}: agent not ready (${c.child.exitCode ?? c.child.signalCode ?? 'timeout'}): ${log().slice(-800)} ${c.stderr().slice(-800)}`);
    }
    await sleep(100);
  }
  await waitAttached(c.pid, 5);
  return {
    roots: [c.pid],
    socket: path.join(dir, 'patrol.sock'),
    ready_s: round((nowMs() - t0) / 1000, 1),
    async stop() {
      const r = await stopChild(c, 'SIGTERM', 20000);
      if (r.code !== 0) process.stderr.write(`  ${v.label}: agent exited ${r.code ?? r.signal}: ${c.stderr().slice(-400)}\n`);
    },
  };
}

async function startSnoops() {
  const a = track(startChild(EXECSNOOP, [], { stdout: 'ignore' }));
  const b = track(startChild(EXITSNOOP, [], { stdout: 'ignore' }));
  await waitAttached(a.pid, 2);
  await waitAttached(b.pid, 1);
  return {
    roots: [a.pid, b.pid],
    async stop() {
      await Promise.all([stopChild(a, 'SIGINT'), stopChild(b, 'SIGINT')]);
    },
  };
}

async function runLoad(load, secs, tag) {
  if (load === 'idle') {
    await sleep(secs * 1000);
    return null;
  }
  const c = track(startChild(FORKEXEC, loadArgs(load, secs, tag)));
  const { code, signal } = await c.exited;
  const last = c.lines.filter((l) => l.startsWith('{')).pop();
  if (!last) throw new Error(`forkexec exited ${code ?? signal} without a result: ${c.stderr().slice(-400)}`);
  return JSON.parse(last);
}

// ---------------------------------------------------------------- latency through /v1/events
function subscribe(socket) {
  const lat = [];
  let dropped = 0;
  let tag = null;
  let buf = '';
  let readyResolve;
  const ready = new Promise((r) => (readyResolve = r));
  const req = http.request({ socketPath: socket, path: `/v1/events?comm=${COMM}`, method: 'GET' }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (d) => {
      const now = clockBoottimeNs();
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('{"type":"exec"')) {
          if (tag === null || !line.includes(`"args":["${COMM}","${tag}"]`)) continue;
          const m = /"ktime_ns":"(\d+)"/.exec(line);
          if (m) lat.push(Number(now - BigInt(m[1])));
        } else if (line.startsWith('{"type":"ready"')) readyResolve();
        else if (line.startsWith('{"type":"dropped"')) dropped += Number(/"count":(\d+)/.exec(line)?.[1] ?? 0);
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return {
    ready,
    setTag: (t) => (tag = t),
    close() {
      req.destroy();
      return { lat, dropped };
    },
  };
}

async function latencyWindow(load, tool) {
  const sub = subscribe(tool.socket);
  await Promise.race([sub.ready, sleep(10000).then(() => Promise.reject(new Error('no ready record from /v1/events')))]);
  const tag = `lat-${nonce()}`;
  sub.setTag(tag);
  const end = startWindow(tool.roots);
  const wl = await runLoad(load, LAT_S, tag);
  const w = await end();
  await sleep(500); // the last execs' records
  const { lat, dropped } = sub.close();
  const q = percentiles(lat, [50, 90, 99, 100]);
  return {
    samples: q.n,
    execs: wl.execs,
    dropped,
    p50_ms: round(q.p50 / 1e6, 2),
    p90_ms: round(q.p90 / 1e6, 2),
    p99_ms: round(q.p99 / 1e6, 2),
    max_ms: round(q.max / 1e6, 2),
    cpu_pct_with_subscriber: w.cpu_pct,
    exec_rate: round(wl.rate, 1),
    lat_ns: lat,
  };
}

// ---------------------------------------------------------------- one measurement
async function measure(load, toolName) {
  let tool = null;
  const t0 = nowMs();
  if (toolName === 'snoops') tool = await startSnoops();
  else if (toolName !== 'bare') tool = await startAgent(AGENTS.find((a) => a.label === toolName));
  try {
    if (tool) {
      await sleep(1000);
      await runLoad(load, WARMUP_S, 'warm');
    }
    const end = startWindow(tool?.roots ?? []);
    const wl = await runLoad(load, WINDOW_S, 'cpu');
    const w = await end();
    const row = { load, tool: toolName, ...(tool ? w : { wall_s: w.wall_s, background_pct: w.background_pct, machine_forks_per_s: w.machine_forks_per_s }) };
    if (tool?.ready_s !== undefined) row.ready_s = tool.ready_s;
    if (wl) Object.assign(row, { exec_rate: round(wl.rate, 1), execs: wl.execs, late: wl.late, failed: wl.failed });
    if (tool?.socket && load !== 'idle' && LAT_S > 0) row.latency = await latencyWindow(load, tool);
    row.took_s = round((nowMs() - t0) / 1000, 0);
    return row;
  } finally {
    await tool?.stop();
  }
}

// ---------------------------------------------------------------- the run
const quiet = await waitQuiet();
const rows = [];
const t0 = nowMs();
for (let r = 0; r < ROUNDS; r++) {
  for (const load of LOADS) {
    const names = load === 'flat' ? ['bare', ...TOOLS] : TOOLS;
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const tool of order) {
      const row = { round: r + 1, ...(await measure(load, tool)) };
      rows.push(row);
      const lat = row.latency ? `, latency p50 ${row.latency.p50_ms} p99 ${row.latency.p99_ms} max ${row.latency.max_ms} ms (cpu with subscriber ${row.latency.cpu_pct_with_subscriber}%)` : '';
      const cpu = row.cpu_pct !== undefined ? `cpu ${row.cpu_pct}% rss ${row.rss_mb_end} MB (peak ${row.rss_mb_peak})` : '';
      process.stderr.write(
        `  round ${r + 1} ${load.padEnd(4)} ${tool.padEnd(8)} ${cpu}${row.exec_rate !== undefined ? ` ${row.exec_rate} exec/s` : ''}${lat}, background ${row.background_pct}%, machine ${row.machine_forks_per_s} forks/s, ${row.took_s} s\n`,
      );
    }
  }
}

// ---------------------------------------------------------------- summary
const loadName = { idle: 'idle', rate: `${RATE} exec/s`, flat: 'flat out, 1 loop' };
const pick = (load, tool) => rows.filter((x) => x.load === load && x.tool === tool);
const med = (xs) => (xs.some((x) => x === undefined || x === null) ? null : median(xs));
const summary = {};
for (const load of LOADS) {
  const s = (summary[load] = { tools: {}, ratios: {} });
  const names = load === 'flat' ? ['bare', ...TOOLS] : TOOLS;
  for (const tool of names) {
    const rs = pick(load, tool);
    const t = (s.tools[tool] = {
      cpu_pct: rs.map((x) => x.cpu_pct),
      cpu_pct_median: med(rs.map((x) => x.cpu_pct)),
      cpu_us_per_machine_fork_median: med(rs.map((x) => x.cpu_us_per_machine_fork)),
      rss_mb_end_median: med(rs.map((x) => x.rss_mb_end)),
      rss_mb_peak_max: rs.length && rs[0].rss_mb_peak !== undefined ? Math.max(...rs.map((x) => x.rss_mb_peak)) : null,
      exec_rate_median: load === 'idle' ? null : med(rs.map((x) => x.exec_rate)),
      background_pct: rs.map((x) => x.background_pct),
    });
    if (tool === 'bare') {
      delete t.cpu_pct;
      delete t.cpu_pct_median;
      delete t.cpu_us_per_machine_fork_median;
      delete t.rss_mb_end_median;
      delete t.rss_mb_peak_max;
    }
    const lats = rs.filter((x) => x.latency);
    if (lats.length) {
      const all = lats.flatMap((x) => x.latency.lat_ns);
      const q = percentiles(all, [50, 99, 100]);
      t.latency = {
        samples: q.n,
        p50_ms: round(q.p50 / 1e6, 2),
        p99_ms: round(q.p99 / 1e6, 2),
        max_ms: round(q.max / 1e6, 2),
        dropped: lats.reduce((a, x) => a + x.latency.dropped, 0),
        per_round: lats.map((x) => ({ p50_ms: x.latency.p50_ms, p99_ms: x.latency.p99_ms, max_ms: x.latency.max_ms })),
        cpu_pct_with_subscriber_median: med(lats.map((x) => x.latency.cpu_pct_with_subscriber)),
      };
    }
    if (tool !== 'snoops' && tool !== 'bare') {
      // per thread name, median over rounds
      const comms = [...new Set(rs.flatMap((x) => Object.keys(x.by_thread)))];
      t.by_thread_median = Object.fromEntries(
        comms
          .map((c) => [c, { cpu_pct: round(median(rs.map((x) => x.by_thread[c]?.cpu_pct ?? 0)), 3), threads: Math.max(...rs.map((x) => x.by_thread[c]?.threads ?? 0)), timeslices_per_s: median(rs.map((x) => x.by_thread[c]?.timeslices_per_s ?? 0)) }])
          .sort((a, b) => b[1].cpu_pct - a[1].cpu_pct),
      );
    }
  }
  // ratios per round (same round = same background), then their median
  const perRound = (f) => {
    const out = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const v = f(r);
      if (v !== null && Number.isFinite(v)) out.push(round(v, 3));
    }
    return { per_round: out, median: out.length ? median(out) : null };
  };
  const one = (tool, r) => rows.find((x) => x.load === load && x.tool === tool && x.round === r);
  for (const a of AGENTS) {
    s.ratios[`${a.label}_cpu_over_snoops`] = perRound((r) => one(a.label, r).cpu_pct / one('snoops', r).cpu_pct);
    if (load !== 'idle') s.ratios[`${a.label}_us_per_fork_over_snoops`] = perRound((r) => one(a.label, r).cpu_us_per_machine_fork / one('snoops', r).cpu_us_per_machine_fork);
    if (load === 'flat') s.ratios[`${a.label}_rate_over_bare`] = perRound((r) => one(a.label, r).exec_rate / one('bare', r).exec_rate);
    if (load === 'flat') s.ratios[`${a.label}_rate_over_snoops`] = perRound((r) => one(a.label, r).exec_rate / one('snoops', r).exec_rate);
  }
  if (load === 'flat') s.ratios.snoops_rate_over_bare = perRound((r) => one('snoops', r).exec_rate / one('bare', r).exec_rate);
  if (AGENTS.length > 1) for (const a of AGENTS.slice(1)) s.ratios[`${a.label}_cpu_over_${AGENTS[0].label}`] = perRound((r) => one(a.label, r).cpu_pct / one(AGENTS[0].label, r).cpu_pct);
}

// markdown table
const f = (x, d = 2) => (x === null || x === undefined ? '–' : String(round(x, d)));
const table = [
  '| load | tool | CPU, % of a core (per round) | CPU µs per machine fork | RSS end / peak, MB | workload exec/s | exec → client p50 / p99 / max, ms | agent ÷ snoops CPU (per round) | other load, % of all CPUs |',
  '|---|---|---|---|---|---|---|---|---|',
];
for (const load of LOADS) {
  const s = summary[load];
  for (const [tool, t] of Object.entries(s.tools)) {
    const label = tool === 'snoops' ? 'execsnoop + exitsnoop' : tool === 'bare' ? 'bare (no tool)' : `${tool} (\`patrol agent --checks checks\`)`;
    const cpu = t.cpu_pct_median !== undefined ? `${f(t.cpu_pct_median)} (${t.cpu_pct.map((x) => f(x)).join(' / ')})` : '–';
    const rss = t.rss_mb_end_median !== undefined ? `${f(t.rss_mb_end_median, 1)} / ${f(t.rss_mb_peak_max, 1)}` : '–';
    let rate = load === 'idle' ? '–' : f(t.exec_rate_median, 0);
    if (load === 'flat' && tool !== 'bare') rate += ` (×${f(s.ratios[tool === 'snoops' ? 'snoops_rate_over_bare' : `${tool}_rate_over_bare`].median, 3)} bare)`;
    const lat = t.latency ? `${f(t.latency.p50_ms)} / ${f(t.latency.p99_ms)} / ${f(t.latency.max_ms)}` : '–';
    const ratio = s.ratios[`${tool}_cpu_over_snoops`] ? `×${f(s.ratios[`${tool}_cpu_over_snoops`].median, 1)} (${s.ratios[`${tool}_cpu_over_snoops`].per_round.map((x) => f(x, 1)).join(' / ')})` : '';
    const perFork = load === 'idle' || t.cpu_us_per_machine_fork_median === undefined ? '–' : f(t.cpu_us_per_machine_fork_median, 0);
    table.push(`| ${loadName[load]} | ${label} | ${cpu} | ${perFork} | ${rss} | ${rate} | ${lat} | ${ratio} | ${t.background_pct.map((x) => f(x, 0)).join(' / ')} |`);
  }
}
const threadLines = [];
for (const a of AGENTS) {
  const t = summary.rate?.tools[a.label];
  if (!t) continue;
  threadLines.push('', `${a.label} at ${RATE} exec/s, CPU by thread name (median over rounds, % of a core):`, '| thread | threads | CPU % | timeslices/s |', '|---|---|---|---|');
  for (const [c, g] of Object.entries(t.by_thread_median)) threadLines.push(`| ${c} | ${g.threads} | ${f(g.cpu_pct, 3)} | ${g.timeslices_per_s} |`);
}
for (const r of rows) if (r.latency) delete r.latency.lat_ns;

const lines = [
  `${ROUNDS} round(s), ${WINDOW_S} s windows after ${WARMUP_S} s warm-up, latency windows ${LAT_S} s; tools: ${TOOLS.join(', ')}; took ${round((nowMs() - t0) / 1000, 0)} s`,
  ...AGENTS.map((a) => `${a.label}: ${a.tree}`),
  '',
  ...table,
  ...threadLines,
  '',
  'CPU: the whole process tree, summed thread schedstat. Latency: a separate window with a /v1/events subscriber (exec ktime → line received).',
];
report(
  OUT,
  {
    ...quiet,
    quick: QUICK,
    config: { rounds: ROUNDS, window_s: WINDOW_S, warmup_s: WARMUP_S, latency_s: LAT_S, rate: RATE, loads: LOADS, agents: AGENTS, agent_args: AGENT_ARGS, db_seed: DB_SEED, execsnoop: EXECSNOOP, exitsnoop: EXITSNOOP },
    summary,
    markdown: table.join('\n') + '\n' + threadLines.join('\n'),
    rows,
  },
  lines,
);
