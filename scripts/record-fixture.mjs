#!/usr/bin/env node
// Records the wire fixtures of test/fixtures from the real kernel (root needed):
//   <name>.bin           ring records of a few known commands, in the addon's batch framing
//   <name>.counters.bin  the per-CPU pt_counters value after the run (mapLookup output)
//   <name>.tasks.bin     pt_task_snap records of pids 1 and 2 and of this recorder (iterRead output;
//                        the task iterator of some kernels never visits pid 1)
//   <name>.json          what was run: pids, expected outcomes, marker argv
// The ring sees the whole machine, so only records of the recorder's own children and their
// descendants are kept (each record's bytes untouched, re-framed): small, and nobody else's argv.
// Usage: sudo node scripts/record-fixture.mjs [obj] [outdir] [name]   (after the full build)
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OBJ = process.argv[2] ?? join(ROOT, 'bpf/.output/lifecycle.bpf.o');
const OUT = process.argv[3] ?? join(ROOT, 'test/fixtures');
const NAME = process.argv[4] ?? 'lifecycle-basic';
const ADDON = join(ROOT, 'native/build/Release/patrol_native.node');
const LAYOUT_JSON = join(ROOT, 'src/wire/generated/lifecycle.layout.json');

for (const f of [OBJ, ADDON, LAYOUT_JSON]) {
  if (!existsSync(f)) {
    console.error(`record-fixture: ${f} missing; run the build first (bash scripts/build.sh)`);
    process.exit(1);
  }
}
if (process.getuid?.() !== 0) {
  console.error('record-fixture: needs root (loads BPF programs)');
  process.exit(1);
}
const LAYOUT = JSON.parse(readFileSync(LAYOUT_JSON, 'utf8'));

const n = createRequire(import.meta.url)(ADDON);
const off = (s, f) => LAYOUT.structs[s].fields.find((x) => x.name === f).offset;
const OP = LAYOUT.enums.pt_op.values;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a command; resolves with its pid and how it ended. `during` runs once it has started. */
function run(file, args, during) {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('spawn', () => during?.(c));
    c.on('exit', (code, signal) => resolve({ pid: c.pid, code, signal }));
  });
}

// ---- load and attach ----------------------------------------------------------------------

// As src/app/lifecycle.ts attaches them. Core programs missing from an older object are
// skipped; optional ones (syscall tracepoints, need tracefs) may fail to attach.
const CORE_PROGS = ['handle_exec', 'handle_fork', 'handle_exit', 'handle_switch', 'handle_free'];
const WAIT_PROGS = ['handle_wait4_exit', 'handle_waitid_enter', 'handle_waitid_exit'];
const EXEC_FAILED_PROGS = ['handle_execve_enter', 'handle_execveat_enter', 'handle_execve_exit', 'handle_execveat_exit'];
const obj = n.open(OBJ, { maxEntries: { pt_scratch: n.numPossibleCpus }, autoload: { bench_produce: false } });
const rodata = n.readRodata(obj);
const pageKb = LAYOUT.rodata.vars.page_kb;
rodata.writeBigUInt64LE(BigInt(n.pageSize / 1024), pageKb.offset); // as the loader does
n.load(obj, { rodata });

const batches = [];
const ring = n.ringStart(obj, 'pt_events', { tagOffset: off('pt_hdr', 'op'), sleepFlag: { map: 'pt_ring_ctl', offset: 0 } }, (batch) => batches.push(batch));
const links = [];
const attached = [];
function attach(prog, required) {
  try {
    links.push(n.attach(obj, prog));
    attached.push(prog);
    return true;
  } catch (e) {
    if (required && e.code !== 'ENOENT') throw e;
    console.error(`record-fixture: ${prog} not attached (${e.message})`);
    return false;
  }
}
for (const p of CORE_PROGS) attach(p, true);
for (const p of WAIT_PROGS) attach(p, false);
const execFailed = EXEC_FAILED_PROGS.map((p) => attach(p, false)).every(Boolean);

// ---- the known commands -------------------------------------------------------------------

const cases = [];
try {
  const exit3 = await run('/bin/sh', ['-c', 'exit 3']);
  cases.push({ name: 'exit3', argv: ['/bin/sh', '-c', 'exit 3'], pid: exit3.pid, expect: { exitCode: 3, signal: null } });

  const killed = await run('/bin/sleep', ['30'], (c) => setTimeout(() => c.kill('SIGKILL'), 200));
  cases.push({ name: 'sigkill', argv: ['/bin/sleep', '30'], pid: killed.pid, expect: { exitCode: null, signal: 9 } });

  // Node passes argv as UTF-8, so the shell makes the raw bytes 0xff 0xfe and execs with them.
  const script = '/bin/true "patrol-marker-$(printf \'\\377\\376\')-end"';
  const nonUtf8 = await run('/bin/sh', ['-c', script]);
  const marker = Buffer.concat([Buffer.from('patrol-marker-'), Buffer.from([0xff, 0xfe]), Buffer.from('-end')]);
  cases.push({ name: 'non-utf8', argv: ['/bin/sh', '-c', script], pid: nonUtf8.pid, expect: { exitCode: 0, childArgvHex: ['/bin/true', marker.toString('hex')] } });

  const long = ['patrol-long', 'A'.repeat(5000)];
  const trunc = await run('/bin/true', long);
  cases.push({ name: 'truncated', argv: ['/bin/true', 'patrol-long', 'A x 5000'], pid: trunc.pid, expect: { exitCode: 0, argsFullLen: 10 + 12 + 5001, argsLen: 4096 } });

  const missing = '/nonexistent/patrol-missing';
  const failed = await run('/bin/sh', ['-c', missing]);
  cases.push({ name: 'exec-failed', argv: ['/bin/sh', '-c', missing], pid: failed.pid, expect: { exitCode: 127, errno: 2, filename: missing, recorded: execFailed } });

  await sleep(500); // reaps come after an RCU grace period
} finally {
  for (const l of links) n.detach(l);
}
await n.ringStop(ring);
const counters = n.mapLookup(obj, 'pt_counters', Buffer.alloc(4));
const tasks = n.iterRead(obj, 'snapshot_tasks');
n.close(obj);

// ---- keep our own records -----------------------------------------------------------------

function* records(batch) {
  for (let o = 0; o + 8 <= batch.length; ) {
    const len = batch.readUInt32LE(o);
    yield batch.subarray(o + 8, o + 8 + len);
    o += 8 + len + ((8 - (len & 7)) & 7);
  }
}

const tree = new Set(cases.map((c) => c.pid));
const kept = [];
const hdrOp = off('pt_hdr', 'op');
for (const rec of batches.flatMap((b) => [...records(b)])) {
  const op = rec[hdrOp];
  let pid;
  if (op === OP.PT_OP_FORK) {
    const child = rec.readUInt32LE(off('pt_fork', 'child_pid'));
    if (tree.has(rec.readUInt32LE(off('pt_fork', 'parent_pid')))) tree.add(child); // descendants
    pid = child;
  } else if (op === OP.PT_OP_EXEC) pid = rec.readUInt32LE(off('pt_exec', 'pid'));
  else if (op === OP.PT_OP_EXIT) pid = rec.readUInt32LE(off('pt_exit', 'pid'));
  else if (op === OP.PT_OP_REAP) pid = rec.readUInt32LE(off('pt_reap', 'pid'));
  else if (op === OP.PT_OP_EXEC_FAILED) pid = rec.readUInt32LE(off('pt_exec_failed', 'pid'));
  if (tree.has(pid)) kept.push(rec);
}

const frame = (recs) =>
  Buffer.concat(recs.flatMap((r) => {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(r.length, 0);
    return [h, r, Buffer.alloc((8 - (r.length & 7)) & 7)];
  }));

const snapSize = LAYOUT.structs.pt_task_snap.size;
const snaps = [];
for (let o = 0; o + snapSize <= tasks.length; o += snapSize) {
  const pid = tasks.readUInt32LE(o + off('pt_task_snap', 'pid'));
  if (pid === 1 || pid === 2 || pid === process.pid) snaps.push(tasks.subarray(o, o + snapSize));
}

const events = frame(kept);
writeFileSync(join(OUT, `${NAME}.bin`), events);
writeFileSync(join(OUT, `${NAME}.counters.bin`), counters);
writeFileSync(join(OUT, `${NAME}.tasks.bin`), Buffer.concat(snaps));
const meta = {
  recorder: 'scripts/record-fixture.mjs',
  kernel: release(),
  numPossibleCpus: n.numPossibleCpus,
  pageSize: n.pageSize,
  recorderPid: process.pid,
  argsCap: 4096,
  attached,
  records: kept.length,
  pids: [...tree],
  cases,
};
writeFileSync(join(OUT, `${NAME}.json`), JSON.stringify(meta, null, 2) + '\n');
console.log(`record-fixture: ${kept.length} records (${events.length} bytes) of ${batches.length} batches; ${snaps.length} task records; wrote ${OUT}/${NAME}.*`);
