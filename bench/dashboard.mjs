// The dashboard with 10,000 processes (issue 16): a synthetic agent (the real API, startApi, over
// a real ProcessTable fed 10,000 synthetic processes, and synthetic resource windows), the real
// `patrol dashboard` server, and Debian's Chromium through playwright-core. Measures:
// - the agent side of one poll: /v1/processes and /v1/top for 10,000 rows, full vs fields=;
// - the processes page: navigation to rendered table (median of rounds), with its parts
//   (fetch, join, render), a sort, a filter, and scrolling frames;
// - an hour in an open tab, sped up: polls every POLL_MS instead of 1 s (900 s: ~3,000 polls),
//   then the event page fed EVENTS_PER_S for 240 s, heap after forced GCs sampled along each
//   run (it must stay flat).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'node:http';
import { ROOT, dist, median, nowMs, report, round, sleep, waitQuiet } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const N = Number(process.env.BENCH_PROCESSES ?? 10_000);
const ROUNDS = QUICK ? 3 : 7;
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 50);
// an hour of 1 s polls = 3,600 polls; at POLL_MS (bounded below by each poll's own time: a poll
// of 10,000 processes waits at least as long as it took), so the run reports the polls it made
const SOAK_S = Number(process.env.BENCH_SOAK_S ?? (QUICK ? 60 : 900));
const EVENTS_SOAK_S = Number(process.env.BENCH_EVENTS_SOAK_S ?? (QUICK ? 60 : 240));
const EVENTS_PER_S = Number(process.env.BENCH_EVENTS_PER_S ?? 1000);

const quiet = await waitQuiet();
const { ProcessTable } = await dist('process/index.js');
const { startApi } = await dist('api/index.js');
const { startDashboard } = await dist('cli/dashboard/server.js');
const { chromium } = await import(path.join(ROOT, 'node_modules/playwright-core/index.mjs'));
const { pino } = await import(path.join(ROOT, 'node_modules/pino/pino.js'));

// --- a synthetic agent ---------------------------------------------------------------------
const SEC = 1_000_000_000n;
const BOOT_EPOCH = Date.now() - 86_400_000;
let nowNs = 86_400n * SEC;
const noProc = { listPids: () => [], readStat: () => null, readCmdline: () => null, readUid: () => null };
const table = new ProcessTable({ bootId: '0f6c9c1e-5b0e-4d7e-a1c2-6d3f4e5a6b7c', procfs: noProc, now: () => nowNs, graceMs: 5_000, maxEntries: 65_536 });
const listeners = new Set();
let seq = 0n;
const kt = (text) => ({ text });
const hdr = (type, at) => ({ type, ktimeNs: at, seq: seq++, cpu: 0, flags: 0 });
const startOf = new Map();
function publish(e) {
  const en = table.apply(e);
  for (const l of listeners) l(e, en);
}
const usage = { cpuNs: 1_500_000n, utimeNs: 0n, stimeNs: 0n, maxRssKb: 2048, readBytes: 0n, writeBytes: 0n, rchar: 0n, wchar: 0n, minflt: 0n, majflt: 0n, nvcsw: 0n, nivcsw: 0n };
function spawnProc(pid, ppid, comm, args) {
  const at = (nowNs += 1000n);
  startOf.set(pid, at);
  publish({ ...hdr('fork', at), pid, tid: pid, startNs: at, ppid, parentTid: ppid, parentStartNs: startOf.get(ppid) ?? 0n, comm: kt('init'), thread: false });
  publish({
    ...hdr('exec', at + 500n), pid, oldTid: pid, ppid, startNs: at, parentStartNs: startOf.get(ppid) ?? 0n, cgroupId: 77n, uid: 1000, gid: 1000, euid: 1000,
    comm: kt(comm), filename: kt(`/usr/bin/${comm}`), filenameTruncated: false, args: args.map(kt), argsTruncated: false, argsFault: false, argsFullLen: 40,
  });
}
function endProc(pid, ppid, comm, code) {
  const at = (nowNs += 1000n);
  publish({ ...hdr('exit', at), pid, tid: pid, ppid, startNs: startOf.get(pid), status: code << 8, exitCode: code, signal: null, coreDumped: false, comm: kt(comm), usage });
  publish({ ...hdr('reap', at + 1000n), pid, startNs: startOf.get(pid), exitNs: at });
}
spawnProc(1, 0, 'systemd', ['/sbin/init']);
for (let i = 0; i < N - 1; i++) {
  const pid = 100 + i;
  const ppid = i < 50 ? 1 : 100 + (i % 50); // 50 services with children
  spawnProc(pid, ppid, `worker-${i % 97}`, [`worker-${i % 97}`, '--id', String(i), '--config', `/etc/worker/${i % 13}.yaml`]);
}
const live = [...table.values()].filter((e) => e.state === 'live');
const rnd = (k) => ((k * 2654435761) % 4294967296) / 4294967296;
let tick = 0;
const points = (n, f) => Array.from({ length: n }, (_, i) => [Date.now() - (n - i) * 1000, round(f(i), 2)]);
const resources = {
  windowsMs: [10_000, 60_000, 300_000],
  maxWindowMs: 300_000,
  sweep: { sweeps: 1, source: 'bpf', lastMs: 3, lastProcesses: N, errors: 0 },
  metricsText: async () => '',
  metricsContentType: 'text/plain',
  top: (req) => {
    tick++;
    const rows = live.map((e, i) => {
      const cpu = 100 * rnd(i + tick) ** 8;
      return {
        pid: e.pid, ppid: e.ppid, exec_id: e.execId, comm: e.comm, cgroup_id: '77', cgroup: '/system.slice/worker.service', owner: 'worker.service', exited: false,
        cpu: { avg: round(cpu, 2), p95: round(cpu, 2), max: round(cpu, 2), last: round(cpu, 2) }, cpu_seconds: round((cpu * req.windowMs) / 100_000, 3),
        rss_bytes: { max: 4096 * (1000 + (i % 5000)), avg: 4096 * (1000 + (i % 5000)), last: 4096 * (1000 + (i % 5000)) }, io_read_bytes: 0, io_write_bytes: i % 7 === 0 ? 4096 : 0, exit: null, aggregate: null,
      };
    });
    rows.sort((a, b) => b.cpu_seconds - a.cpu_seconds);
    return rows.slice(0, req.limit);
  },
  node: () => ({
    cpu: { avg: 20, p95: 40, max: 60, last: 25 }, iowait: null, steal: null, cpus: 2, memory: { avg: 40, p95: 41, max: 42, last: 40 }, memory_bytes: null, memory_total_bytes: 8 << 30, swap: null,
    load1: { avg: 1, p95: 1, max: 1, last: 1 }, load5: null, load15: null, psi: [], disk_read_bytes_per_s: 0, disk_write_bytes_per_s: 0, disks: [], filesystems: [], net: [],
    series: { cpu: points(60, (i) => 20 + 10 * Math.sin(i / 5)), memory: points(60, () => 40), load1: points(60, () => 1), psi_cpu: [], psi_memory: [], psi_io: [], disk_read: [], disk_write: [] },
  }),
  history: (id) => ({ exec_id: id, cpu: points(60, (i) => 5 + 5 * Math.sin(i)), rss: points(60, (i) => 1e7 + i * 1000), io_read: [], io_write: [] }),
};
const view = {
  states: null,
  nowNs: () => nowNs,
  version: 'bench',
  startedAt: Date.now(),
  pid: process.pid,
  config: { ringBytes: 4 << 20, argsCap: 4096 },
  table,
  clock: { iso: (ns) => new Date(BOOT_EPOCH + Number(ns / 1_000_000n)).toISOString() },
  stats: () => ({ programs: ['x'], accounting: { perType: {}, identityHolds: true, seqGaps: 0n, malformed: 0, threadExits: 0n, threadForks: 0n }, table: table.stats(), ring: null, store: null }),
  subscribe: (l) => (listeners.add(l), () => listeners.delete(l)),
  resources,
};
const dir = mkdtempSync(path.join(tmpdir(), 'patrol-bench-dash-'));
const socket = path.join(dir, 'patrol.sock');
const api = await startApi(view, { socket, log: pino({ level: 'silent' }) });
const dash = await startDashboard({ socket, port: 0 });
const base = `http://127.0.0.1:${dash.port}`;

// --- the agent side of one poll ------------------------------------------------------------
function timed(p) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    request({ socketPath: socket, path: p }, (res) => {
      let n = 0;
      res.on('data', (c) => (n += c.length));
      res.on('end', () => resolve({ ms: nowMs() - t0, bytes: n }));
    })
      .on('error', reject)
      .end();
  });
}
const PF = 'exec_id,pid,ppid,parent_exec_id,comm,args,uid,state,state_ms,lifecycle,start_time,exit_code,signal,core_dumped';
const TF = 'pid,ppid,exec_id,comm,exited,cpu_seconds,rss_bytes,io_read_bytes,io_write_bytes,exit,aggregate';
async function agentSide(p) {
  const xs = [];
  for (let i = 0; i < ROUNDS + 1; i++) xs.push(await timed(p));
  xs.shift(); // warm-up
  return { ms: round(median(xs.map((x) => x.ms)), 1), bytes: xs[0].bytes };
}
const agent = {
  processes_full: await agentSide('/v1/processes'),
  processes_fields: await agentSide(`/v1/processes?fields=${PF}`),
  top_full: await agentSide('/v1/top?limit=10000&window=1m'),
  top_fields: await agentSide(`/v1/top?limit=10000&window=1m&fields=${TF}`),
};

// --- the page ------------------------------------------------------------------------------
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
const page = await ctx.newPage();
await page.goto(dash.url);
const ds = () => page.evaluate(() => ({ ...document.querySelector('[data-page=processes]').dataset }));
const nav = [];
const cold = [];
for (let i = 0; i < ROUNDS; i++) {
  const c0 = nowMs();
  await page.goto(`${base}/#/health`);
  await page.reload();
  await page.goto(`${base}/#/processes`);
  await page.waitForSelector('[data-page=processes][data-ready=true]', { timeout: 30_000 });
  cold.push(nowMs() - c0);
  await page.evaluate(() => (location.hash = '#/health'));
  await page.waitForSelector('[data-page=health]');
  const t0 = nowMs();
  await page.evaluate(() => (location.hash = '#/processes'));
  await page.waitForSelector('[data-page=processes][data-ready=true]', { timeout: 30_000 });
  const d = await ds();
  nav.push({ ms: nowMs() - t0, fetch: Number(d.fetchMs), model: Number(d.modelMs), render: Number(d.renderMs), rows: Number(d.rows) });
}
// a sort, a filter, a scroll through the table (frames measured in the page)
await page.click('.vth[data-key=pid]');
const sortMs = Number((await ds()).renderMs);
await page.fill('#proc-filter', 'worker-7');
const filterMs = Number((await ds()).renderMs);
await page.fill('#proc-filter', '');
const frames = await page.evaluate(async () => {
  const s = document.querySelector('.vscroll');
  const ts = [];
  let last = performance.now();
  for (let i = 0; i < 120; i++) {
    s.scrollTop += 600;
    await new Promise((r) => requestAnimationFrame(r));
    const t = performance.now();
    ts.push(t - last);
    last = t;
  }
  ts.sort((a, b) => a - b);
  return { p50: ts[60], p95: ts[114], max: ts[119] };
});
await page.screenshot({ path: path.join(dir, 'processes-10000.png') });

// --- an hour sped up: heap after GC along the way --------------------------------------------
const cdp = await ctx.newCDPSession(page);
const heap = async () => {
  await cdp.send('HeapProfiler.collectGarbage');
  return (await cdp.send('Runtime.getHeapUsage')).usedSize;
};
async function soak(route, seconds) {
  await page.evaluate((ms) => localStorage.setItem('patrol.pollMs', String(ms)), POLL_MS);
  await page.goto(`${base}/#${route}`);
  await page.reload();
  await page.waitForSelector(`[data-page]`);
  await page.evaluate(() => performance.setResourceTimingBufferSize(1_000_000));
  await sleep(3000);
  const samples = [];
  const polls0 = await page.evaluate(() => performance.getEntriesByType('resource').length);
  const t0 = nowMs();
  while (nowMs() - t0 < seconds * 1000) {
    samples.push(round((await heap()) / 1048576, 2));
    await sleep((seconds * 1000) / 12);
  }
  samples.push(round((await heap()) / 1048576, 2));
  const requests = (await page.evaluate(() => performance.getEntriesByType('resource').length)) - polls0;
  await page.evaluate(() => localStorage.removeItem('patrol.pollMs'));
  return { heap_mib: samples, first: samples[1], last: samples.at(-1), max: Math.max(...samples.slice(1)), requests };
}
const procSoak = await soak('/processes', SOAK_S);
// the event page: a synthetic stream of exec/exit/reap at EVENTS_PER_S
let evPid = 200_000;
let published = 0;
const feeder = setInterval(() => {
  for (let i = 0; i < EVENTS_PER_S / 50 / 4; i++) {
    const pid = evPid++;
    if (evPid > 4_000_000) evPid = 200_000;
    spawnProc(pid, 1, 'burst', ['burst', String(pid)]);
    endProc(pid, 1, 'burst', pid % 3 === 0 ? 1 : 0);
    published += 4;
  }
  nowNs += 20_000_000n; // time moves on: dead entries leave after the grace period
}, 20);
const evSoak = await soak('/events', EVENTS_SOAK_S);
clearInterval(feeder);
const received = Number(await page.getAttribute('[data-page=events]', 'data-received'));
const rowsShown = await page.locator('#event-rows tr').count();

await browser.close();
await dash.close();
await api.close();

const med = (k) => round(median(nav.map((x) => x[k])), 1);
report(
  'dashboard',
  {
    processes: N,
    quick: QUICK,
    ...quiet,
    agent_side: agent,
    page: { navigate_ms_median: med('ms'), fetch_ms_median: med('fetch'), join_ms_median: med('model'), render_ms_median: med('render'), cold_load_ms_median: round(median(cold), 0), rows: nav[0].rows, rounds: nav.map((x) => round(x.ms, 0)) },
    sort_render_ms: sortMs,
    filter_render_ms: filterMs,
    scroll_frame_ms: { p50: round(frames.p50, 1), p95: round(frames.p95, 1), max: round(frames.max, 1) },
    soak_processes: { seconds: SOAK_S, poll_ms: POLL_MS, ...procSoak },
    soak_events: { seconds: EVENTS_SOAK_S, poll_ms: POLL_MS, events_per_s: EVENTS_PER_S, published, received, rows_shown: rowsShown, ...evSoak },
  },
  [
    `agent, one poll of ${N} processes: /v1/processes ${agent.processes_full.ms} ms / ${round(agent.processes_full.bytes / 1048576, 1)} MiB, with fields= ${agent.processes_fields.ms} ms / ${round(agent.processes_fields.bytes / 1048576, 1)} MiB; /v1/top ${agent.top_full.ms} → ${agent.top_fields.ms} ms`,
    `processes page, ${nav[0].rows} rows: navigate → rendered ${med('ms')} ms (fetch ${med('fetch')}, join ${med('model')}, render ${med('render')}); cold load ${round(median(cold), 0)} ms`,
    `sort ${sortMs} ms, filter ${filterMs} ms, scroll frames p50 ${round(frames.p50, 1)} / p95 ${round(frames.p95, 1)} ms`,
    `processes page polled every ${POLL_MS} ms for ${SOAK_S} s (${procSoak.requests} requests): heap after GC ${procSoak.first} → ${procSoak.last} MiB (max ${procSoak.max})`,
    `events page at ${EVENTS_PER_S}/s for ${EVENTS_SOAK_S} s (${received} received, ${rowsShown} rows kept): heap after GC ${evSoak.first} → ${evSoak.last} MiB (max ${evSoak.max})`,
  ],
);
writeFileSync(path.join(dir, 'done'), '');
process.exit(0);
