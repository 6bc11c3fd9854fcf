// The parts of a sensor reload that need no kernel: the BTF reader (on the built objects and the
// kernel's own BTF), the pre-flight verdicts, load-failure classification, and the overlap's
// duplicate filter.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Btf, BtfError, kernelBtfTracepoints, loadFailure, mapMismatch, missingTracepoints, native, preflight, type InspectMap, type ObjectFacts } from '../../src/kernel/index.js';
import { OverlapDedupe } from '../../src/app/overlap.js';
import type { LifecycleEvent } from '../../src/shared/events.js';
import { LAYOUT } from '../../src/wire/index.js';

const OBJ = fileURLToPath(new URL('../../bpf/.output/lifecycle.bpf.o', import.meta.url));

function factsOf(path: string): ObjectFacts {
  const n = native();
  const o = n.open(path, {});
  try {
    return n.inspect(o);
  } finally {
    n.close(o);
  }
}

describe('BTF reader', () => {
  it("reads the object's BTF: .rodata variables where the generated layout has them", () => {
    const f = factsOf(OBJ);
    expect(f.btf).not.toBeNull();
    const b = Btf.parse(f.btf!);
    const vars = Object.fromEntries(b.sectionVars('.rodata').map((v) => [v.name, v]));
    for (const [name, v] of Object.entries(LAYOUT.rodata.vars as Record<string, { offset: number; size: number; kind: string }>)) {
      expect(vars[name], name).toMatchObject({ offset: v.offset, size: v.size, ...(v.kind === 'opaque' ? {} : { kind: v.kind }) });
    }
    expect(vars.generation).toMatchObject({ size: 4, kind: 'u32' });
  });

  it('describes a layout by member names, offsets and widths, through typedefs', () => {
    const b = Btf.parse(factsOf(OBJ).btf!);
    expect(b.layout(b.find('pt_ring_ctl', 4)!.id)).toBe('struct8{consumer_sleeping@0:u32;pad0@32:u32}');
    expect(b.layout(b.find('pt_hdr', 4)!.id)).toBe('struct24{ktime_ns@0:u64;seq@64:u64;size@128:u32;cpu@160:u16;op@176:u8;flags@184:u8}');
    const exec = b.layout(b.find('pt_exec', 4)!.id);
    expect(exec).toContain('exec_seq@');
    expect(exec).toContain('comm@');
    expect(exec).toMatch(/comm@\d+:(s8|u8)\[16\]/);
  });

  it('refuses what is not BTF', () => {
    expect(() => Btf.parse(Buffer.from('not btf at all, not at all'))).toThrow(BtfError);
  });

  it.skipIf(!existsSync('/sys/kernel/btf/vmlinux'))("lists the kernel's BTF tracepoints", () => {
    const tps = kernelBtfTracepoints();
    for (const tp of ['sched_process_exec', 'sched_process_fork', 'sched_process_exit', 'sched_switch', 'sched_process_free', 'sched_wakeup']) expect(tps.has(tp), tp).toBe(true);
    expect(tps.has('patrol_no_such_tracepoint')).toBe(false);
    expect(kernelBtfTracepoints()).toBe(tps); // read once
  });
});

describe('pre-flight', () => {
  const facts = factsOf(OBJ);
  const tps = new Set(facts.programs.flatMap((p) => (p.section.startsWith('tp_btf/') ? [p.section.slice(7)] : [])));
  const input = (next: ObjectFacts) => ({
    sensor: 'lifecycle', running: facts, next, programs: ['handle_exec', 'handle_fork'], wireTypes: ['pt_hdr', 'pt_exec'],
    generation: { map: 'pt_gen', variable: 'generation' }, tracepoints: tps,
  });

  it('the same object: every map shared, .rodata from its own BTF', () => {
    const r = preflight(input(facts));
    expect(r.reuse).toEqual(expect.arrayContaining(['pt_events', 'pt_counters', 'pt_seq', 'pt_ring_ctl', 'pt_exits', 'pt_pending_exit', 'pt_exec_args', 'pt_gen', 'pt_free_last']));
    expect(r.reuse.some((m) => m.startsWith('.'))).toBe(false);
    expect(r.rodataVars.generation).toMatchObject({ size: 4 });
  });

  it('a program it needs is missing: E_SENSOR_PROGRAM', () => {
    const next = { ...facts, programs: facts.programs.filter((p) => p.name !== 'handle_fork') };
    expect(() => preflight(input(next))).toThrow(expect.objectContaining({ code: 'E_SENSOR_PROGRAM', message: 'lifecycle: the new object has no program handle_fork' }));
  });

  it('a tracepoint the kernel lacks: E_SENSOR_BTF naming btf_trace_<tp> and the program', () => {
    const next = { ...facts, programs: [...facts.programs, { name: 'handle_new', section: 'tp_btf/sched_new_thing', autoload: true }, { name: 'off', section: 'tp_btf/also_missing', autoload: false }] };
    expect(missingTracepoints(next, tps)).toEqual([{ program: 'handle_new', tracepoint: 'sched_new_thing' }]);
    expect(() => preflight(input(next))).toThrow(expect.objectContaining({ code: 'E_SENSOR_BTF', message: expect.stringContaining('btf_trace_sched_new_thing (program handle_new, tp_btf/sched_new_thing)') }));
  });

  it('a shared map of another size or type: E_SENSOR_MAP_LAYOUT naming each difference', () => {
    const maps = facts.maps.map((m): InspectMap => (m.name === 'pt_exits' ? { ...m, valueSize: 32, maxEntries: 131072 } : m.name === 'pt_seq' ? { ...m, type: 2 } : m));
    expect(() => preflight(input({ ...facts, maps }))).toThrow(
      expect.objectContaining({ code: 'E_SENSOR_MAP_LAYOUT', message: expect.stringMatching(/pt_seq \(type percpu_array → array\).*pt_exits \(value 24 → 32 bytes, max_entries 65536 → 131072\)|pt_exits \(value 24 → 32 bytes, max_entries 65536 → 131072\).*pt_seq \(type percpu_array → array\)/) }),
    );
  });

  it('same sizes, another layout (fields moved): named by its BTF layout', () => {
    const b = Btf.parse(facts.btf!);
    const m = facts.maps.find((x) => x.name === 'pt_ring_ctl')!;
    // pt_hdr has the size of no map value here; compare two maps' value types directly
    const other = { ...m, btfValueTypeId: b.find('pt_hdr', 4)!.id };
    expect(mapMismatch(m, b, other, b)).toMatch(/^value layout struct8\{consumer_sleeping@0:u32;pad0@32:u32\} → struct24\{ktime_ns@0/);
    expect(mapMismatch(m, b, m, b)).toBeNull();
  });

  it('a map only the new object has starts empty; one only the old had is dropped', () => {
    const next = { ...facts, maps: [...facts.maps.filter((m) => m.name !== 'pt_waitid'), { ...facts.maps.find((m) => m.name === 'pt_exits')!, name: 'pt_new' }] };
    const r = preflight(input(next));
    expect(r.reuse).not.toContain('pt_new');
    expect(r.reuse).not.toContain('pt_waitid');
  });

  it('no generation word shared: E_SENSOR_GENERATION', () => {
    const next = { ...facts, maps: facts.maps.filter((m) => m.name !== 'pt_gen') };
    expect(() => preflight(input(next))).toThrow(expect.objectContaining({ code: 'E_SENSOR_GENERATION' }));
  });

  it('load failures: a CO-RE relocation names the type and field; a verifier refusal the program', () => {
    const core = loadFailure('lifecycle', {
      message: "load failed: program 'x' failed to load",
      program: 'x',
      log: ['0: (85) call unknown#195896080', 'failed to resolve CO-RE relocation <byte_off> [12] struct task_struct___x.no_field (0:1 @ offset 8)'],
    });
    expect(core).toMatchObject({ code: 'E_SENSOR_BTF', message: "lifecycle: this kernel's BTF lacks struct task_struct___x.no_field (a CO-RE relocation of the new object cannot be resolved)" });
    expect(loadFailure('state', { message: "program 'st_switch' failed to load (verifier: R1 invalid mem access)", program: 'st_switch', log: [] })).toMatchObject({ code: 'E_SENSOR_VERIFIER' });
    expect(loadFailure('state', { message: 'bpf_object__load: Cannot allocate memory' })).toMatchObject({ code: 'E_SENSOR_LOAD' });
  });

});

describe('the overlap filter', () => {
  const base = { ktimeNs: 1n, seq: 0n, cpu: 0, flags: 0 };
  const fork = (tid: number, start: bigint): LifecycleEvent => ({ ...base, type: 'fork', pid: tid, tid, startNs: start, ppid: 1, parentTid: 1, parentStartNs: 0n, comm: { text: 'x' }, thread: false });
  const exec = (pid: number, start: bigint, execSeq: number): LifecycleEvent => ({
    ...base, type: 'exec', pid, oldTid: pid, ppid: 1, startNs: start, parentStartNs: 0n, cgroupId: 0n, uid: 0, gid: 0, euid: 0, comm: { text: 'x' }, filename: { text: '/x' },
    filenameTruncated: false, args: [], argsTruncated: false, argsFault: false, argsFullLen: 0, execSeq,
  });
  const reap = (pid: number, start: bigint): LifecycleEvent => ({ ...base, type: 'reap', pid, startNs: start, exitNs: 0n });

  it('outside a window it touches nothing', () => {
    const d = new OverlapDedupe();
    const evs = [fork(10, 5n), fork(10, 5n)];
    d.filter(evs);
    expect(evs).toHaveLength(2);
    expect(d.total).toBe(0n);
  });

  it('in a window, removes what it saw already (across batches), keeps distinct events, counts by type', () => {
    const d = new OverlapDedupe();
    d.open();
    const a = [fork(10, 5n), exec(10, 5n, 1), fork(10, 5n), exec(10, 5n, 2), exec(10, 5n, 1)];
    d.filter(a);
    expect(a.map((e) => (e.type === 'exec' ? `exec${e.execSeq}` : e.type))).toEqual(['fork', 'exec1', 'exec2']);
    const b = [reap(10, 5n), reap(11, 5n), reap(10, 5n), exec(10, 6n, 1)];
    d.filter(b);
    expect(b.map((e) => `${e.type}${e.pid}`)).toEqual(['reap10', 'reap11', 'exec10']);
    expect(d.duplicates).toMatchObject({ fork: 1n, exec: 1n, reap: 1n, exit: 0n });
    expect(d.lastDuplicates).toBe(3);
  });

  it('closes with the first batch handled after its grace, having filtered every chunk of that batch', () => {
    const d = new OverlapDedupe();
    d.open();
    d.filter([fork(1, 1n)]);
    d.batchDone(0);
    d.closeAfter(50, 100);
    const late = [fork(1, 1n)];
    d.filter(late);
    d.batchDone(120);
    expect(late).toHaveLength(0); // still open: a duplicate within the grace is caught…
    expect(d.active).toBe(true);
    // …and the batch past the grace, in two chunks: its second chunk repeats its first
    const first = [fork(2, 1n)];
    const second = [fork(2, 1n), fork(1, 1n)];
    d.filter(first);
    d.filter(second);
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(0);
    d.batchDone(150);
    expect(d.active).toBe(false); // then it closes
    const after = [fork(1, 1n)];
    d.filter(after);
    expect(after).toHaveLength(1);
  });
});
