// Smoke test of the native addon against the real kernel: needs root (or CAP_BPF+CAP_PERFMON),
// `make -C bpf` and `npx node-gyp rebuild --directory native --nodedir=/usr`.
// Skipped when not root, unless PATROL_REQUIRE_BPF=1, which makes it run (and fail) anyway.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Native from '../../native/patrol_native.js';
import { LAYOUT, PT_OP_EXEC, PT_OP_EXIT } from '../../src/wire/generated/lifecycle.js';

const required = process.env.PATROL_REQUIRE_BPF === '1';
const enabled = required || process.getuid?.() === 0;
const OBJECT = fileURLToPath(new URL('../../bpf/.output/lifecycle.bpf.o', import.meta.url));
// Offsets come from the layout generated out of the object's BTF, never written by hand.
const field = (struct: keyof typeof LAYOUT.structs, name: string): number =>
  (LAYOUT.structs[struct].fields as ReadonlyArray<{ name: string; offset: number }>).find((f) => f.name === name)!.offset;
const OP_OFFSET = field('pt_hdr', 'op');
const OP_EXEC = PT_OP_EXEC;
const OP_EXIT = PT_OP_EXIT;
const EXEC_PID_OFFSET = field('pt_exec', 'pid');
const EXIT_PID_OFFSET = field('pt_exit', 'pid');
const TASK_SNAP_SIZE = LAYOUT.structs.pt_task_snap.size;

function* records(batch: Buffer): Generator<Buffer> {
  for (let off = 0; off < batch.length; ) {
    const len = batch.readUInt32LE(off);
    yield batch.subarray(off + 8, off + 8 + len);
    off += 8 + ((len + 7) & ~7);
  }
}

/** Program ids this process holds fds for (programs and links), from /proc/self/fdinfo. */
function heldProgIds(): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  return ids;
}

/** Which of these ids bpftool still lists (other patrol instances on the host do not count). */
function stillLoaded(ids: Set<number>): number {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j']).toString()) as Array<{ id: number }>;
  return progs.filter((p) => ids.has(p.id)).length;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

describe.skipIf(!enabled)('native addon on the live kernel', () => {
  let native: typeof Native;
  let obj: Native.BpfObject;
  const seen: Buffer[] = [];
  let consumer: Native.RingConsumer;

  beforeAll(() => {
    native = createRequire(import.meta.url)('../../native/build/Release/patrol_native.node') as typeof Native;
    obj = native.open(OBJECT, {
      maxEntries: { pt_scratch: native.numPossibleCpus },
      autoload: {
        handle_execve_enter: false,
        handle_execveat_enter: false,
        handle_execve_exit: false,
        handle_execveat_exit: false,
        handle_wait4_exit: false,
        handle_waitid_enter: false,
        handle_waitid_exit: false,
        bench_produce: false,
      },
    });
    native.load(obj);
    // handle_switch emits the exit record at the dying thread's final context switch.
    for (const p of ['handle_exec', 'handle_fork', 'handle_exit', 'handle_switch', 'handle_free']) native.attach(obj, p);
    consumer = native.ringStart(
      obj,
      'pt_events',
      { tagOffset: OP_OFFSET, sleepFlag: { map: 'pt_ring_ctl', offset: 0 } },
      (batch, n) => {
        const recs = [...records(batch)];
        expect(recs.length).toBe(n);
        seen.push(...recs.map((r) => Buffer.from(r)));
      },
    );
  });

  afterAll(() => {
    if (obj) native.close(obj);
  });

  it('delivers exec and exit records of a spawned /bin/true', async () => {
    const child = spawnSync('/bin/true');
    expect(child.status).toBe(0);
    const pid = child.pid;
    const has = (op: number, at: number) => seen.some((r) => r[OP_OFFSET] === op && r.readUInt32LE(at) === pid);
    expect(await until(() => has(OP_EXEC, EXEC_PID_OFFSET) && has(OP_EXIT, EXIT_PID_OFFSET), 3000)).toBe(true);
    for (const r of seen) expect(r[OP_OFFSET]).toBeGreaterThanOrEqual(1);
    const stats = native.ringStats(consumer);
    expect(stats.droppedRecords).toBe(0);
    expect(stats.timedRecords).toBe(0); // no missed wakeup
  });

  it('reads the task iterator as whole pt_task_snap records', () => {
    const snap = native.iterRead(obj, 'snapshot_tasks');
    expect(snap.length).toBeGreaterThan(0);
    expect(snap.length % TASK_SNAP_SIZE).toBe(0);
  });

  it('throws typed errors', () => {
    expect(() => native.attach(obj, 'no_such_prog')).toThrow(expect.objectContaining({ code: 'ENOENT', errno: 2, syscall: 'attach' }));
  });

  it('leaves no program loaded after ringStop and close', async () => {
    const ids = heldProgIds();
    expect(ids.size).toBeGreaterThanOrEqual(5);
    await native.ringStop(consumer);
    expect(native.ringStats(consumer).running).toBe(false);
    native.close(obj);
    native.close(obj); // idempotent
    expect(() => native.iterRead(obj, 'snapshot_tasks')).toThrow(expect.objectContaining({ code: 'EBADF' }));
    // The kernel releases programs asynchronously (RCU), so allow it a moment.
    expect(await until(() => stillLoaded(ids) === 0, 2000)).toBe(true);
  });
});
