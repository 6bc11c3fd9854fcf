// Shared helpers of the benchmark scripts: paths, child processes, percentiles, /proc
// sampling, machine facts and result files. Plain Node ESM: no TypeScript toolchain at run time.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync, statSync } from 'node:fs';
import { createHash, randomInt } from 'node:crypto';
import { cpus, release, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
// BENCH_TREE: measure another built checkout (its dist/, native/build/, bpf/.output/, bin/),
// e.g. a candidate branch or an experiment, with this bench/. Default: this repository.
export const TREE = process.env.BENCH_TREE ? path.resolve(process.env.BENCH_TREE) : ROOT;
export const BENCH = path.join(ROOT, 'bench');
export const BUILD = path.join(BENCH, 'build');
export const RESULTS = path.join(BENCH, 'results');
// BENCH_OBJ: an experimental build of the object (recorded in every result as object_sha256_12)
export const OBJ = process.env.BENCH_OBJ ?? path.join(TREE, 'bpf/.output/lifecycle.bpf.o');
export const PATROL = path.join(TREE, 'bin/patrol');
export const EXECSNOOP = '/usr/sbin/execsnoop';
export const FORKEXEC = path.join(BUILD, 'forkexec');
export const C_CONSUMER = path.join(BUILD, 'c-consumer');
export const PRODUCER = path.join(BUILD, 'bpf-produce');

/** Imports from the compiled TypeScript (bash scripts/build.sh). */
export async function dist(mod) {
  const p = path.join(TREE, 'dist', mod);
  if (!existsSync(p)) throw new Error(`${p} missing: run bash scripts/build.sh`);
  return import(p);
}

export function ensureBuilt() {
  for (const p of [OBJ, path.join(TREE, 'dist/app/lifecycle.js'), path.join(TREE, 'native/build/Release/patrol_native.node')]) {
    if (!existsSync(p)) throw new Error(`${p} missing: run bash scripts/build.sh`);
  }
  execFileSync('make', ['-s', '-C', BENCH], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (process.getuid?.() !== 0) throw new Error('benchmarks load BPF programs: run as root');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
export const token = () => randomInt(1_000_000, 2 ** 31);
export const nonce = () => randomInt(2 ** 40).toString(36);

/** Starts a child; resolves `ready` when `readyLine` (a predicate on stdout lines) matches.
 *  Keeps stdout lines (unless discardStdout) and stderr text. */
export function startChild(cmd, args, { readyLine, stdout = 'pipe', discardStdout = false, env } = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', stdout, 'pipe'], env: env ?? process.env });
  const lines = [];
  let stderr = '';
  let buf = '';
  let readyResolve, readyReject;
  const ready = new Promise((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  if (!readyLine) readyResolve();
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (readyLine && readyLine(line)) {
        readyResolve();
        readyLine = null;
      }
      if (!discardStdout) lines.push(line);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((res) => {
    child.on('exit', (code, signal) => {
      if (buf && !discardStdout) lines.push(buf);
      readyReject(new Error(`${path.basename(cmd)} exited (${code ?? signal}) before ready: ${stderr.trim().slice(-500)}`));
      res({ code, signal });
    });
  });
  ready.catch(() => {});
  return { child, pid: child.pid, lines, ready, exited, stderr: () => stderr };
}

/** Runs a command to completion; returns its last stdout line parsed as JSON. */
export async function runJson(cmd, args) {
  const c = startChild(cmd, args);
  const { code, signal } = await c.exited;
  const last = c.lines.filter((l) => l.startsWith('{')).pop();
  if (!last) throw new Error(`${path.basename(cmd)} ${args.join(' ')}: no JSON (exit ${code ?? signal}): ${c.stderr().trim().slice(-500)}`);
  return JSON.parse(last);
}

/** SIGINT/SIGTERM a child (by its pid) and wait for it, SIGKILL after graceMs. */
export async function stopChild(c, sig = 'SIGINT', graceMs = 15000) {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(sig);
  const t = setTimeout(() => c.child.kill('SIGKILL'), graceMs);
  const r = await c.exited;
  clearTimeout(t);
  return r;
}

/** Number of BPF links and programs held by a process (from /proc/<pid>/fdinfo). */
export function bpfFds(pid) {
  let links = 0;
  let progs = 0;
  const progIds = new Set();
  let fds = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { links, progs, progIds };
  }
  for (const fd of fds) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (!target.startsWith('anon_inode:bpf') && !target.startsWith('anon_inode:[perf_event]')) continue;
    let info = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    if (/^link_type:/m.test(info)) links++;
    const m = /^prog_id:\s*(\d+)/m.exec(info);
    if (m) {
      progIds.add(Number(m[1]));
      if (target.includes('bpf-prog')) progs++;
    }
  }
  return { links, progs, progIds };
}

/** Waits until `pid` holds at least `minLinks` BPF links (its programs are attached). */
export async function waitAttached(pid, minLinks, timeoutMs = 20000) {
  const t0 = nowMs();
  while (nowMs() - t0 < timeoutMs) {
    if (bpfFds(pid).links >= minLinks) return nowMs() - t0;
    await sleep(20);
  }
  throw new Error(`pid ${pid}: fewer than ${minLinks} BPF links after ${timeoutMs} ms`);
}

/** Nearest-rank percentiles of numbers (any unit). */
export function percentiles(values, ps = [50, 90, 99, 99.9, 100]) {
  const v = Float64Array.from(values).sort();
  const out = {};
  for (const p of ps) {
    const i = Math.min(v.length, Math.max(1, Math.ceil((p / 100) * v.length)));
    out[p === 100 ? 'max' : `p${String(p).replace('.', '')}`] = v.length ? v[i - 1] : null;
  }
  out.n = v.length;
  return out;
}

export const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

export const round = (x, d = 1) => (x === null || x === undefined ? x : Math.round(x * 10 ** d) / 10 ** d);

/** utime+stime (ticks → s), summed thread schedstat run time (ns, precise), VmRSS/VmHWM (kB).
 *  Threads that exited during the window are missing from the schedstat sum (not from cpuS). */
export function procUsage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const hz = 100; // USER_HZ
  const cpuS = (Number(f[11]) + Number(f[12])) / hz;
  let runNs = 0;
  let mainNs = 0;
  let switches = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ss = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
      runNs += ss[0];
      switches += ss[2];
      if (Number(t) === pid) mainNs = ss[0];
    } catch {
      /* thread gone */
    }
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  // mainNs: the main thread (for node: the JS thread); switches: timeslices of all threads
  return { cpuS, runNs, mainNs, switches, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), threads: kb('Threads') };
}

function procStatTotals() {
  const l = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = l[3] + (l[4] ?? 0);
  const total = l.reduce((a, b) => a + b, 0);
  return { idle, total };
}

/** Machine busy % (all CPUs) over `ms`, and the busiest other processes. */
export async function machineBusy(ms = 1000) {
  const a = procStatTotals();
  await sleep(ms);
  const b = procStatTotals();
  const dt = b.total - a.total;
  return dt > 0 ? round(100 * (1 - (b.idle - a.idle) / dt), 1) : 0;
}

/** Waits (bounded) for the machine to be quiet before measuring; returns what it saw. */
export async function waitQuiet({ thresholdPct = 10, maxWaitMs = Number(process.env.BENCH_QUIET_WAIT_MS ?? 60000) } = {}) {
  const t0 = nowMs();
  let busy = await machineBusy(1000);
  while (busy > thresholdPct && nowMs() - t0 < maxWaitMs) busy = await machineBusy(2000);
  return { background_busy_pct: busy, waited_s: round((nowMs() - t0) / 1000, 1), quiet: busy <= thresholdPct };
}

/** Busy % of the machine excluding the given pids' own CPU time, sampled around a window. */
export class BusyMeter {
  constructor() {
    this.a = procStatTotals();
  }
  stop() {
    const b = procStatTotals();
    const dt = b.total - this.a.total;
    return dt > 0 ? round(100 * (1 - (b.idle - this.a.idle) / dt), 1) : 0;
  }
}

function gitFacts() {
  try {
    const head = execFileSync('git', ['-C', TREE, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', TREE, 'status', '--porcelain', '--', 'src', 'native', 'bpf'], { encoding: 'utf8' }).trim();
    return { head, dirty_src_native_bpf: dirty ? dirty.split('\n').length : 0 };
  } catch {
    return { head: null };
  }
}

export function machine() {
  const c = cpus();
  const objHash = existsSync(OBJ) ? createHash('sha256').update(readFileSync(OBJ)).digest('hex').slice(0, 12) : null;
  return {
    date: new Date().toISOString(),
    tree: TREE,
    host: hostname(),
    kernel: release(),
    cpus: c.length,
    cpu_model: c[0]?.model ?? '',
    node: process.version,
    git: gitFacts(),
    object_sha256_12: objHash,
    object_mtime: existsSync(OBJ) ? statSync(OBJ).mtime.toISOString() : null,
  };
}

// Background-noise meter over the whole script: machine busy time minus this process tree's
// (own + waited-for descendants: load generators, tools, consumers; kernel BPF time is charged
// to the exec'ing processes, which are waited for). What remains is other users of the machine
// (and unattributed kernel threads). Reported as background_cpu_pct, % of all CPUs.
function treeTicks() {
  const st = readFileSync('/proc/self/stat', 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
  return f[11] + f[12] + f[13] + f[14];
}
function machineTicks() {
  const l = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: l.reduce((a, b) => a + b, 0) - l[3] - (l[4] ?? 0), total: l.reduce((a, b) => a + b, 0) };
}
const noise0 = { tree: treeTicks(), m: machineTicks() };
export function backgroundCpuPct() {
  const m = machineTicks();
  const dt = m.total - noise0.m.total;
  const other = m.busy - noise0.m.busy - (treeTicks() - noise0.tree);
  return dt > 0 ? round((100 * Math.max(0, other)) / dt, 1) : 0;
}

/** Prints the one-line JSON result, writes bench/results/<name>.json, then the summary. */
export function report(name, result, summaryLines) {
  const out = { bench: name, ...result, background_cpu_pct_during: backgroundCpuPct(), machine: machine() };
  mkdirSync(RESULTS, { recursive: true });
  // runs against another tree or object (experiments) do not overwrite this tree's figures
  const tag = TREE !== ROOT ? `.tree-${path.basename(TREE)}` : process.env.BENCH_OBJ ? `.obj-${path.basename(OBJ, '.o')}` : '';
  writeFileSync(path.join(RESULTS, `${name}${tag}.json`), JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(JSON.stringify(out) + '\n');
  process.stdout.write(summaryLines.map((l) => `  ${l}`).join('\n') + '\n');
  process.stdout.write(`  (other load on the machine during this benchmark: ${out.background_cpu_pct_during}% of all CPUs)\n`);
}

/** A copy of /bin/true under a unique name, so its execs have a unique comm. */
export function markedTrue(name) {
  const dir = '/tmp/patrol-bench';
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  if (!existsSync(p)) writeFileSync(p, readFileSync('/bin/true'), { mode: 0o755 });
  return p;
}
