// Attribution engine costs, in process (no root): per-event evaluation time (p50/p99) with the
// built-in pack and with 1,000 more rules, with and without the RE2.Set line prefilter; the
// throughput of an ordinary stream (exit 0, and fork/exec/exit 0/reap of normal processes);
// log-line matching throughput; rule-set compile time; and RE2 on the pathological (a+)+$.
import path from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { ROOT, dist, percentiles, report, round } from './lib.mjs';

const R = await dist('rules/index.js');
const S = 1_000_000_000n;
const PACK = path.join(ROOT, 'rules');

const clock = { t: 1000n * S };
const ruleClock = { nowNs: () => clock.t, epochMs: (ns) => Number(ns / 1_000_000n), fromEpochMs: (ms) => BigInt(ms) * 1_000_000n };

// a process table stand-in: 4096 processes, a parent chain of 3
const procs = new Map();
for (let i = 0; i < 4096; i++) {
  procs.set(`e${i}`, { execId: `e${i}`, pid: 10_000 + i, ppid: i < 2 ? 1 : 10_000 + (i >> 1), parentExecId: i < 2 ? null : `e${i >> 1}`, comm: `c${i % 64}`, args: ['x', String(i)], filename: `/usr/bin/c${i % 64}`, cgroup: '/app.slice', startNs: 0n, exitNs: null, exitCode: null, signal: null, maxRssBytes: null });
}
const byPid = new Map([...procs.values()].map((p) => [p.pid, p]));
const processes = {
  byPid: (pid) => byPid.get(pid) ?? null,
  get: (id) => procs.get(id) ?? null,
  ancestry: (id) => {
    const out = [];
    for (let p = procs.get(id); p?.parentExecId && out.length < 64; ) {
      p = procs.get(p.parentExecId);
      if (p) out.push(p);
    }
    return out;
  },
};

const KMSG = [
  'eth0: Link is Up - 10Gbps/Full - flow control off',
  'EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.',
  'audit: type=1400 audit(1700000000.000:42): apparmor="DENIED" operation="open" profile="snap" name="/proc/1/x"',
  'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.',
  'nf_conntrack: nf_conntrack: table full, dropping packet',
  'systemd-journald[312]: Received SIGTERM from PID 1 (systemd).',
  'IPv6: ADDRCONF(NETDEV_CHANGE): veth1a2b3c: link becomes ready',
  'docker0: port 2(veth1a2b3c) entered forwarding state',
];
const OOM = (pid) => `oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app.slice,task_memcg=/app.slice,task=c1,pid=${pid},uid=0`;
const SEGV = (pid) => `c2[${pid}]: segfault at 0 ip 0000000000401000 sp 00007ffd00000000 error 6 in c2[401000+1000]`;

const kt = (text) => ({ text });
const usage = { cpuNs: 0n, utimeNs: 0n, stimeNs: 0n, maxRssKb: 1000, readBytes: 0n, writeBytes: 4096n, rchar: 0n, wchar: 0n, minflt: 0n, majflt: 0n, nvcsw: 0n, nivcsw: 0n };

/** A deterministic mix: 40% exec, 40% exit (1 in 8 failing), 20% kernel lines (1% OOM/segfault). */
function* events(n) {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < n; i++) {
    clock.t += 1_000_000n;
    const p = procs.get(`e${2 + Math.floor(rnd() * 4094)}`);
    const en = { execId: p.execId, parentExecId: p.parentExecId, ppid: p.ppid, comm: p.comm, durationNs: 5_000_000n };
    const r = rnd();
    if (r < 0.4) {
      yield { kind: 'exec', ev: { type: 'exec', ktimeNs: clock.t, seq: 0n, cpu: 0, flags: 0, pid: p.pid, oldTid: p.pid, ppid: p.ppid, startNs: 0n, parentStartNs: 0n, cgroupId: 0n, uid: 0, gid: 0, euid: 0, comm: kt(p.comm), filename: kt(p.filename), filenameTruncated: false, args: p.args.map(kt), argsTruncated: false, argsFault: false, argsFullLen: 8 }, en };
    } else if (r < 0.8) {
      const failed = rnd() < 0.125;
      yield { kind: 'exit', ev: { type: 'exit', ktimeNs: clock.t, seq: 0n, cpu: 0, flags: 0, pid: p.pid, tid: p.pid, ppid: p.ppid, startNs: 0n, status: 0, exitCode: failed ? 1 : 0, signal: null, coreDumped: false, comm: kt(p.comm), usage }, en };
    } else {
      const q = rnd();
      const msg = q < 0.005 ? OOM(p.pid) : q < 0.01 ? SEGV(p.pid) : KMSG[Math.floor(rnd() * KMSG.length)];
      yield { kind: 'kmsg', rec: { tNs: clock.t, level: 6, facility: 0, seq: BigInt(i), message: msg } };
    }
  }
}

function manyRules(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    if (k < 5) {
      out.push(`  - id: gen-k${i}\n    source: kmsg\n    pattern: 'svc${i}\\[(?P<pid>\\d+)\\]: (?P<what>error|failure) code=(?P<code>\\d+)'\n    fields: { pid: int, code: int }\n    process: pid\n    tree:\n      if: { field: code, gte: 100 }\n      then: { cause: gen_${i}, confidence: 0.5, explanation: 'svc${i} {what} {code} in {proc.comm}', evidence: [line, process] }\n`);
    } else if (k < 8) {
      out.push(`  - id: gen-x${i}\n    source: exit\n    tree:\n      if: { all: [ { field: comm, eq: 'c${i % 64}' }, { field: exit_code, eq: ${100 + i} } ] }\n      then: { cause: gen_${i}, confidence: 0.5, explanation: '{comm} exited {exit_code}', evidence: [event] }\n`);
    } else {
      out.push(`  - id: gen-e${i}\n    source: exec\n    tree:\n      if: { field: filename, eq: '/opt/never/${i}' }\n      then: { cause: gen_${i}, confidence: 0.5, explanation: '{comm} started', evidence: [event] }\n`);
    }
  }
  return 'rules:\n' + out.join('');
}

function loadSet(extra) {
  const pack = R.loadRuleFiles(PACK);
  if (!pack.ok) throw new Error('pack');
  if (!extra) return pack.set;
  const t0 = performance.now();
  const more = R.compileRuleSet([{ file: 'gen.yaml', text: manyRules(extra) }]);
  const ms = performance.now() - t0;
  if (!more.ok) throw new Error(more.diagnostics.map(R.formatDiagnostic).join('\n'));
  return { rules: [...pack.set.rules, ...more.set.rules], files: [], loadedAt: 0, compileMs: ms };
}

function perEvent(set, prefilter, n = 60_000) {
  clock.t = 1000n * S;
  const e = new R.RuleEngine({ clock: ruleClock, processes, prefilter });
  e.setRules(set);
  const byKind = { exec: [], exit: [], kmsg: [] };
  let i = 0;
  for (const x of events(n)) {
    const t0 = process.hrtime.bigint();
    if (x.kind === 'kmsg') e.onKmsg(x.rec);
    else e.onLifecycle(x.ev, x.en);
    const dt = Number(process.hrtime.bigint() - t0) / 1000;
    if (i++ >= 5000) byKind[x.kind].push(dt); // after warm-up
  }
  const all = [...byKind.exec, ...byKind.exit, ...byKind.kmsg];
  const pc = (v) => {
    const p = percentiles(v, [50, 99]);
    return { p50_us: round(p.p50, 2), p99_us: round(p.p99, 2), n: p.n };
  };
  return { all: pc(all), exec: pc(byKind.exec), exit: pc(byKind.exit), kmsg: pc(byKind.kmsg), findings: e.stats().findings };
}

/** An ordinary stream, nothing failing: `exit0` is exits with code 0 only; `lifecycle` is fork,
 *  exec, exit 0 and reap of each process, 64 parents taking turns (no parent near the exec-storm
 *  threshold). For contrast, `storm` is execs by one parent at 200/s, where a rule does fire. Events are made up front and replayed, so the loop itself allocates nothing; the
 *  figure is wall time per event over `n` events after a warm-up pass, and the young-generation
 *  GCs the engine caused. */
/** A child of e2 in the table stand-in, so its parent_exec_id agrees with the event's. */
function stormChild(i) {
  const id = `s${i}`;
  if (!procs.has(id)) {
    const p = { ...procs.get('e2'), execId: id, pid: 30_000 + i, ppid: procs.get('e2').pid, parentExecId: 'e2', comm: `c${i % 64}`, filename: `/usr/bin/c${i % 64}` };
    procs.set(id, p);
    byPid.set(p.pid, p);
  }
  return procs.get(id);
}

async function ordinaryStream(set, kind, n = 400_000) {
  clock.t = 1000n * S;
  const e = new R.RuleEngine({ clock: ruleClock, processes });
  e.setRules(set);
  const evs = [];
  const ens = [];
  const N = 8192;
  for (let i = 0; i < N; i++) {
    const p = kind === 'storm' ? stormChild(i % 4000) : procs.get(`e${64 + (i % 4000)}`);
    const parent = procs.get(`e${2 + (i % 64)}`);
    // storm: every exec by one parent, 5 ms apart (200 exec/s): past the exec-storm threshold
    // (200 in 10 s), so the storm rule fires on each exec, merging into one finding
    const par = kind === 'storm' ? procs.get('e2') : parent;
    const en = { execId: p.execId, parentExecId: par.execId, ppid: par.pid, comm: p.comm, durationNs: 5_000_000n, zombieNs: 10_000n };
    const t = 1000n * S + BigInt(i) * 5_000_000n; // 200 events/s of simulated time
    const exit = { type: 'exit', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid: p.pid, tid: p.pid, ppid: parent.pid, startNs: 0n, status: 0, exitCode: 0, signal: null, coreDumped: false, comm: kt(p.comm), usage };
    if (kind === 'exit0') {
      evs.push(exit);
      ens.push(en);
      continue;
    }
    const k = kind === 'storm' ? 1 : i & 3;
    const ev =
      k === 0 ? { type: 'fork', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid: p.pid, tid: p.pid, startNs: 0n, ppid: parent.pid, parentTid: parent.pid, parentStartNs: 0n, comm: kt(parent.comm), thread: false }
      : k === 1 ? { type: 'exec', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid: p.pid, oldTid: p.pid, ppid: parent.pid, startNs: 0n, parentStartNs: 0n, cgroupId: 0n, uid: 0, gid: 0, euid: 0, comm: kt(p.comm), filename: kt(p.filename), filenameTruncated: false, args: p.args.map(kt), argsTruncated: false, argsFault: false, argsFullLen: 8 }
      : k === 2 ? exit
      : { type: 'reap', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid: p.pid, startNs: 0n, exitNs: t };
    evs.push(ev);
    ens.push(en);
  }
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const x of list.getEntries()) if (x.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs++;
  });
  for (let i = 0; i < N * 4; i++) e.onLifecycle(evs[i % N], ens[i % N]); // warm-up
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) e.onLifecycle(evs[i % N], ens[i % N]);
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 100)); // GC entries are delivered asynchronously
  obs.disconnect();
  const st = e.stats();
  return { kind, events: n, ns_per_event: round((ms * 1e6) / n, 1), events_per_s: Math.round(n / (ms / 1000)), minor_gcs: gcs, findings: st.findings, tree_runs: st.treeRuns ?? null };
}

function logThroughput(nRules, prefilter) {
  const file = '/var/log/app.log';
  const rules = [];
  for (let i = 0; i < nRules; i++) {
    rules.push(`  - id: log${i}\n    source: log\n    path: ${file}\n    pattern: '(?P<level>ERROR|FATAL) \\[(?P<svc>svc${i})\\] (?P<msg>.*)'\n    tree: { cause: log_${i}, confidence: 0.5, explanation: '{svc}: {msg}', evidence: [line] }\n`);
  }
  const set = R.compileRuleSet([{ file: 'log.yaml', text: 'rules:\n' + rules.join('') }]);
  if (!set.ok) throw new Error('log set');
  const e = new R.RuleEngine({ clock: ruleClock, prefilter });
  e.setRules(set.set);
  const lines = [];
  for (let i = 0; i < 1000; i++) {
    lines.push(i % 100 === 0 ? `2026-01-01T00:00:00Z ERROR [svc${i % nRules}] request ${i} failed: upstream timeout` : `2026-01-01T00:00:00Z INFO [web] GET /api/v1/items/${i} 200 ${i % 97} ms user=u${i}`);
  }
  const n = nRules >= 100 ? 100_000 : 400_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) e.onLogLine(file, lines[i % 1000], clock.t);
  const s = (performance.now() - t0) / 1000;
  return { rules: nRules, lines: n, lines_per_s: Math.round(n / s) };
}

/** Catastrophic patterns for a backtracker, on a 100 kB line: median ms and the cost of 8× the
 *  input (≈8 = linear). `(a+)+$` RE2 settles from the end; `(x+x+)+y` makes it scan every byte. */
function pathological() {
  const one = (src, ch) => {
    const c = R.compilePattern(src);
    const time = (len) => {
      const line = ch.repeat(len) + '!';
      const ts = [];
      for (let i = 0; i < 21; i++) {
        const t0 = process.hrtime.bigint();
        c.re.exec(line);
        ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return ts.sort((a, b) => a - b)[10];
    };
    time(1000);
    const ms100k = time(100_000);
    const ms12k = time(12_500);
    return { pattern: src, line_bytes: 100_001, median_ms: round(ms100k, 4), ratio_8x_input: round(ms100k / ms12k, 2) };
  };
  return [one('(a+)+$', 'a'), one('(x+x+)+y', 'x')];
}

function compileTimes() {
  const out = {};
  for (const n of [1000, 10_000]) {
    const text = manyRules(n);
    const t0 = performance.now();
    const r = R.compileRuleSet([{ file: 'gen.yaml', text }]);
    out[`rules_${n}`] = { ok: r.ok, ms: Math.round(performance.now() - t0), bytes: text.length };
  }
  const big = 'rules: []\n#' + 'x'.repeat(10 << 20);
  const t0 = performance.now();
  const r = R.compileRuleSet([{ file: 'big.yaml', text: big }]);
  out.file_10mb = { ok: r.ok, code: r.diagnostics[0]?.code, ms: round(performance.now() - t0, 1) };
  return out;
}

const pack = loadSet(0);
if (process.argv.includes('--storm')) {
  // just the exec storm, three passes (profiling the firing path: node --cpu-prof bench/rules.mjs --storm)
  const runs = [];
  for (let k = 0; k < 3; k++) runs.push(await ordinaryStream(pack, 'storm', 300_000));
  report('rules-storm', { storm: runs }, runs.map((o, i) => `exec storm pass ${i + 1}: ${o.ns_per_event} ns/event, ${o.minor_gcs} minor GCs, tree runs ${o.tree_runs}`));
  process.exit(0);
}
if (process.argv.includes('--ordinary')) {
  // just the ordinary-stream figures (quick before/after comparisons)
  const plus = loadSet(1000);
  const result = { builtin_rules: pack.rules.length, ordinary: [await ordinaryStream(pack, 'exit0'), await ordinaryStream(pack, 'lifecycle'), await ordinaryStream(plus, 'exit0'), await ordinaryStream(plus, 'lifecycle')], storm: await ordinaryStream(pack, 'storm', 100_000) };
  const tag = (o, i) => `${o.kind}${i >= 2 ? ' +1,000 rules' : ''}`;
  const line = (o, label) => `${label}: ${o.ns_per_event} ns/event, ${o.events_per_s.toLocaleString('en')} events/s, ${o.minor_gcs} minor GCs, tree runs ${o.tree_runs}`;
  report('rules-ordinary', result, [...result.ordinary.map((o, i) => line(o, `ordinary ${tag(o, i)}`)), line(result.storm, 'exec storm (firing on every exec)')]);
  process.exit(0);
}
const plus = loadSet(1000);
const result = {
  builtin_rules: pack.rules.length,
  per_event_builtin: perEvent(pack, true),
  per_event_1000: perEvent(plus, true),
  per_event_1000_no_prefilter: perEvent(plus, false),
  ordinary: [await ordinaryStream(pack, 'exit0'), await ordinaryStream(pack, 'lifecycle'), await ordinaryStream(plus, 'exit0'), await ordinaryStream(plus, 'lifecycle')],
  log_lines: [logThroughput(5, true), logThroughput(1000, true), logThroughput(1000, false)],
  pathological: pathological(),
  compile: compileTimes(),
};
report('rules', result, [
  `per event, built-in pack (${pack.rules.length} rules): p50 ${result.per_event_builtin.all.p50_us} µs, p99 ${result.per_event_builtin.all.p99_us} µs (kmsg p99 ${result.per_event_builtin.kmsg.p99_us} µs)`,
  `per event, +1,000 rules: p50 ${result.per_event_1000.all.p50_us} µs, p99 ${result.per_event_1000.all.p99_us} µs (kmsg p99 ${result.per_event_1000.kmsg.p99_us} µs; without the RE2.Set prefilter ${result.per_event_1000_no_prefilter.kmsg.p99_us} µs)`,
  ...result.ordinary.map((o, i) => `ordinary ${o.kind}${i >= 2 ? ' +1,000 rules' : ''}: ${o.ns_per_event} ns/event, ${o.events_per_s.toLocaleString('en')} events/s, ${o.minor_gcs} minor GCs`),
  `log lines: ${result.log_lines.map((l) => `${l.rules} rules ${l.lines_per_s.toLocaleString('en')} lines/s`).join('; ')} (last: no prefilter)`,
  ...result.pathological.map((p) => `${p.pattern} on a 100 kB line: ${p.median_ms} ms median; 8× the input costs ${p.ratio_8x_input}×`),
  `compile: 1,000 rules ${result.compile.rules_1000.ms} ms; 10,000 rules ${result.compile.rules_10000.ms} ms; 10 MB file rejected (${result.compile.file_10mb.code}) in ${result.compile.file_10mb.ms} ms`,
]);
