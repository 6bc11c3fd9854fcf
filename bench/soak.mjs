// The fault suite at the issue's full length (issue 12), with figures: each fault is its
// test/faults file run by vitest with the long settings, and the `[fault] name: {json}` line it
// prints is its figures. So the soak and CI check the same thing; CI just runs it shorter.
//
//   node bench/soak.mjs                      # all (the 1M processes alone take 10 min to an hour)
//   node bench/soak.mjs storm kill           # some: storm overload million kill disk consumer hostile
//   SOAK_MILLION_N=200000 node bench/soak.mjs million
//
// | fault    | long setting                               | CI setting                  |
// |----------|--------------------------------------------|-----------------------------|
// | storm    | 60 s flat out                              | 12 s                        |
// | million  | 1,000,000 processes, default table (65536), RSS criterion | 50,000 (≤ 60 s), table 1024 |
// | kill     | 100 kill -9                                | 20                          |
// | others   | as in CI                                   |                             |
//
// Writes bench/results/soak.json and prints a markdown table for bench/README.md.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS, ROOT, machine, waitQuiet } from './lib.mjs';

const FAULTS = {
  storm: { file: 'exec-storm', env: { FAULT_STORM_S: process.env.SOAK_STORM_S ?? '60' } },
  overload: { file: 'overload', env: {} },
  million: {
    file: 'short-processes',
    env: { FAULT_SHORT_N: process.env.SOAK_MILLION_N ?? '1000000', FAULT_SHORT_S: '14400', FAULT_SHORT_BOUND: '65536', FAULT_SHORT_RSS: '1' },
  },
  kill: { file: 'kill9', env: { FAULT_KILL_ROUNDS: process.env.SOAK_KILL_ROUNDS ?? '100' } },
  disk: { file: 'disk-full', env: {} },
  consumer: { file: 'consumer-fault', env: {} },
  hostile: { file: 'hostile', env: {} },
};

/** Runs one fault file; resolves with its figures and whether its test passed. */
function runFault(name, { file, env }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    // this Node (the project's runtime) runs vitest, whatever `node` PATH would find
    const c = spawn(process.execPath, [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', `test/faults/${file}.test.ts`, '--reporter=default'], {
      cwd: ROOT,
      env: { ...process.env, ...env, PATROL_REQUIRE_BPF: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const keep = (b) => {
      out += b;
      process.stdout.write(b);
    };
    c.stdout.on('data', keep);
    c.stderr.on('data', keep);
    c.on('exit', (code) => {
      const m = /^\[fault\] [^:]+: (\{.*\})$/m.exec(out);
      resolve({ name, file, settings: env, passed: code === 0, seconds: Math.round((Date.now() - t0) / 1000), figures: m ? JSON.parse(m[1]) : null, ...(code === 0 ? {} : { failure: failureOf(out) }) });
    });
  });
}

function failureOf(out) {
  const m = /(AssertionError|Error): ([^\n]+)/.exec(out);
  return m ? `${m[1]}: ${m[2]}`.slice(0, 300) : 'see the log';
}

const fmt = (v) => (v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** One markdown row per fault: the figures that answer its pass criteria. */
function row(r) {
  const f = r.figures ?? {};
  const verdict = r.passed ? '✓' : `✗ (${r.failure})`;
  switch (r.name) {
    case 'storm':
      return `| exec storm, ${f.seconds} s flat out (${f.jobs} loops) | ${f.execs} execs, ${f.exec_per_s}/s; identity ${fmt(f.identity)}, lost ${f.lost}; the API stream got ${f.stream?.exec} execs and ${f.stream?.exit} exits, ${f.stream?.dropped} dropped | ${verdict} |`;
    case 'overload':
      return `| 5× overload (bench_produce into the agent's ring) | consumer ${f.consumer_rec_per_s} rec/s, offered ${f.offered_rec_per_s} rec/s (×${f.offered_over_captured} of what it took); from the first drop: /v1/stats (patrol status) ${f.status_ms} ms, /metrics ${f.metrics_ms} ms, lost alert ${f.alert_ms} ms (answers before the overload: ${fmt(f.baseline_answer_ms)} ms); patrol status run ${f.status_cli_run_ms} ms | ${verdict} |`;
    case 'million':
      return `| ${f.processes} short processes (${f.seconds} s) | table ≤ ${f.table_max_seen} of its bound ${f.table_bound} (${f.evictions} evictions); RSS ${f.rss_mb?.at20} MB at 20 %, ${f.rss_mb?.end} MB at 100 % (max ${f.rss_mb?.max}): growth ${f.rss_growth_pct} %${f.rss_trajectory?.length ? ` (RSS MB by tenths of the run: ${f.rss_trajectory.map((x) => x.rss_mb).join(', ')})` : ''}; lost ${f.lost} | ${verdict} |`;
    case 'kill':
      return `| kill -9 under load × ${f.rounds} | leftover programs, links, maps: ${f.leftover} (programs freed within ${f.worst_free_ms} ms); integrity ok every time; ${f.acknowledged_rows} rows acknowledged, ${f.lost_acknowledged} lost; slowest restart ${f.slowest_start_ms} ms | ${verdict} |`;
    case 'disk':
      return `| disk full under the store (${f.tmpfs} tmpfs) | degraded (store) ${f.degraded_after_ms} ms after the disk filled; ${f.captured_during} execs captured meanwhile; ok again ${f.recovered_after_ms} ms after space returned; ${f.stored_after}/40 exits stored after, ${f.dropped} dropped | ${verdict} |`;
    case 'consumer':
      return `| consumer throwing on every 10th event | rules threw ${f.rules_errors} times; stream ${f.stream?.execs}/${f.processes} execs, store ${f.store_exits}/${f.processes} exits, checks counted ${f.checks_count}, windows ${f.windows_exited}; others' errors: ${fmt(f.others_errors)} | ${verdict} |`;
    case 'hostile':
      return `| hostile argv (${f.argv_bytes} B, NUL, newline, ESC, invalid UTF-8, ESC in comm) | exec records lossless: ${fmt(f.exec_records)}; escaped in ${f.human_outputs_checked?.join(', ')}; /metrics ${f.metrics_bytes} B parsed, comm label exact: ${f.metrics_comm_label_exact}; consumer errors ${f.consumer_errors} | ${verdict} |`;
  }
  return `| ${r.name} | ${fmt(f)} | ${verdict} |`;
}

const selected = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(FAULTS);
for (const s of selected) if (!FAULTS[s]) throw new Error(`unknown fault ${s}; one of: ${Object.keys(FAULTS).join(' ')}`);
const quiet = await waitQuiet();
const results = [];
for (const name of selected) {
  process.stdout.write(`== soak: ${name}\n`);
  results.push(await runFault(name, FAULTS[name]));
}
mkdirSync(RESULTS, { recursive: true });
const doc = { bench: 'soak', ...quiet, results, machine: machine() };
writeFileSync(path.join(RESULTS, 'soak.json'), JSON.stringify(doc, null, 2) + '\n');
process.stdout.write(JSON.stringify(doc) + '\n');
process.stdout.write(['', '| fault | figures | pass |', '|---|---|---|', ...results.map(row), ''].join('\n'));
process.exitCode = results.every((r) => r.passed) ? 0 : 1;
