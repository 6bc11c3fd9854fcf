#!/usr/bin/env node
// Benchmark 4: completeness under an exec storm. `patrol trace --json` and libbpf-tools
// `execsnoop` run at the same time, each writing to a file; bench/build/forkexec then runs
// 20,000 fork+execs, one loop per CPU, flat out, of a copy of /bin/true named `pbstorm` with
// argv[1] = a unique marker. Reported: how many of the storm's execs each tool printed, and
// patrol's own accounting (generated = captured + lost, per type) from its summary record.
import { cpus } from 'node:os';
import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { openSync, closeSync } from 'node:fs';
import {
  EXECSNOOP,
  FORKEXEC,
  PATROL,
  ensureBuilt,
  markedTrue,
  nonce,
  report,
  runJson,
  sleep,
  startChild,
  stopChild,
  waitAttached,
  waitQuiet,
} from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
ensureBuilt();
const N = QUICK ? 5000 : 20000;
const marker = `pbstorm-${nonce()}`;
const bin = markedTrue('pbstorm');
const dir = '/tmp/patrol-bench';
mkdirSync(dir, { recursive: true });
const patrolOut = `${dir}/storm-patrol.ndjson`;
const snoopOut = `${dir}/storm-execsnoop.txt`;

const quiet = await waitQuiet();
const pfd = openSync(patrolOut, 'w');
const sfd = openSync(snoopOut, 'w');
const patrol = startChild(PATROL, ['trace', '--json'], { stdout: pfd });
const snoop = startChild(EXECSNOOP, [], { stdout: sfd });
await Promise.all([waitAttached(patrol.pid, 5), waitAttached(snoop.pid, 2)]);
await sleep(1000);
const load = await runJson(FORKEXEC, ['-n', String(N), '-j', String(cpus().length), '-e', bin, '--', 'pbstorm', marker]);
await sleep(1500);
await Promise.all([stopChild(patrol, 'SIGINT'), stopChild(snoop, 'SIGINT')]);
closeSync(pfd);
closeSync(sfd);

let patrolExecs = 0;
let patrolExits = 0;
let summary = null;
for await (const line of createInterface({ input: createReadStream(patrolOut) })) {
  if (!line.includes(marker) && !line.includes('"summary"')) continue;
  const r = JSON.parse(line);
  if (r.type === 'summary') summary = r;
  else if (r.type === 'exec' && r.args?.[1] === marker) patrolExecs++;
  else if (r.type === 'exit' && r.comm === 'pbstorm' && r.args?.[1] === marker) patrolExits++;
}
let snoopExecs = 0;
for await (const line of createInterface({ input: createReadStream(snoopOut) })) {
  // PCOMM PID PPID RET ARGS; the load generator's own exec also carries the marker
  if (line.startsWith('pbstorm ') && line.includes(` ${marker}`)) snoopExecs++;
}
const snoopLost = [...snoop.stderr().matchAll(/lost (\d+) events/gi)].reduce((a, m) => a + Number(m[1]), 0);
if (!process.env.BENCH_KEEP) {
  rmSync(patrolOut, { force: true });
  rmSync(snoopOut, { force: true });
}

const result = {
  ...quiet,
  quick: QUICK,
  storm: { execs: load.execs, failed: load.failed, rate: load.rate, jobs: load.jobs },
  patrol: {
    execs_seen: patrolExecs,
    exits_seen: patrolExits,
    complete: patrolExecs === load.execs,
    identity_holds: summary?.identity_holds ?? null,
    generated: summary?.generated ?? null,
    captured: summary?.captured ?? null,
    lost_reserve: summary?.lost_reserve ?? null,
    lost_userspace: summary?.lost_userspace ?? null,
    seq_gaps: summary?.seq_gaps ?? null,
  },
  execsnoop: { execs_seen: snoopExecs, complete: snoopExecs === load.execs, lost_reported: snoopLost },
};
const lostTotal = summary ? summary.totals.lost : '?';
report('completeness', result, [
  `storm: ${load.execs} execs at ${Math.round(load.rate)}/s (${load.jobs} loops)`,
  `patrol:    ${patrolExecs}/${load.execs} execs (${patrolExits} exits); accounting identity ${summary?.identity_holds ? 'holds' : 'BROKEN'}, lost ${lostTotal} of ${summary?.totals.generated ?? '?'} records, seq gaps ${summary?.seq_gaps ?? '?'}`,
  `execsnoop: ${snoopExecs}/${load.execs} execs (lost reported on stderr: ${snoopLost})`,
]);
