// Decodes bytes recorded from the real kernel (scripts/record-fixture.mjs) and checks them
// against what the recorder ran: the layout, text and status rules hold on real records.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ExecEvent, ExecFailedEvent, ExitEvent, ForkEvent, LifecycleEvent, ReapEvent } from '../../src/shared/events.js';
import { decodeBatch, decodeCounters, decodeTaskSnaps, OP_EVENT_TYPE, SeqTracker } from '../../src/wire/index.js';

const dir = new URL('../fixtures/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir));

interface Case {
  name: string;
  argv: string[];
  pid: number;
  expect: Record<string, unknown>;
}
const meta = JSON.parse(read('lifecycle-basic.json').toString()) as {
  numPossibleCpus: number;
  recorderPid: number;
  argsCap: number;
  records: number;
  cases: Case[];
};
const byName = (n: string) => meta.cases.find((c) => c.name === n)!;

describe('fixture lifecycle-basic', () => {
  const seq = new SeqTracker();
  const r = decodeBatch(read('lifecycle-basic.bin'), { seq });
  const ev = r.events;
  const of = <T extends LifecycleEvent>(type: T['type'], pid: number) => ev.filter((e): e is T => e.type === type && (e as { pid: number }).pid === pid);

  it('decodes every recorded record, nothing malformed', () => {
    expect(r).toMatchObject({ records: meta.records, malformed: 0, stop: null });
    expect(ev).toHaveLength(meta.records);
    expect(seq.received).toBe(meta.records);
  });

  it('each command: fork by the recorder, exec, exit, reap, one process identity', () => {
    for (const c of meta.cases) {
      const [fork] = of<ForkEvent>('fork', c.pid);
      const [exec] = of<ExecEvent>('exec', c.pid);
      const [exit] = of<ExitEvent>('exit', c.pid);
      const [reap] = of<ReapEvent>('reap', c.pid);
      expect(fork, c.name).toMatchObject({ ppid: meta.recorderPid, tid: c.pid, thread: false, comm: { text: 'node' } });
      expect(exec, c.name).toMatchObject({ ppid: meta.recorderPid, oldTid: c.pid, filename: { text: c.argv[0] } });
      expect(exit, c.name).toMatchObject({ ppid: meta.recorderPid, tid: c.pid, exitCode: c.expect.exitCode ?? null });
      for (const e of [exec, exit, reap]) expect(e!.startNs, c.name).toBe(fork!.startNs);
      expect(exec!.parentStartNs).toBe(fork!.parentStartNs);
      expect(exit!.ktimeNs > exec!.ktimeNs && exec!.ktimeNs > fork!.ktimeNs).toBe(true);
      expect(reap!.exitNs > 0n && reap!.exitNs <= exit!.ktimeNs).toBe(true);
      expect(exit!.usage.maxRssKb).toBeGreaterThan(0);
    }
  });

  it('sh -c "exit 3": argv and exit status', () => {
    const c = byName('exit3');
    const [exec] = of<ExecEvent>('exec', c.pid);
    expect(exec!.args).toEqual(c.argv.map((text) => ({ text })));
    expect(exec!).toMatchObject({ comm: { text: 'sh' }, argsTruncated: false, argsFullLen: Buffer.byteLength(c.argv.join('\0') + '\0') });
    expect(of<ExitEvent>('exit', c.pid)[0]).toMatchObject({ status: 3 << 8, exitCode: 3, signal: null, coreDumped: false });
  });

  it('SIGKILL: signal, no exit code', () => {
    const c = byName('sigkill');
    expect(of<ExitEvent>('exit', c.pid)[0]).toMatchObject({ status: 9, exitCode: null, signal: 9, coreDumped: false, comm: { text: 'sleep' } });
  });

  it('a non-UTF-8 argv byte survives as raw bytes', () => {
    const c = byName('non-utf8');
    const want = c.expect.childArgvHex as string[];
    const child = ev.find((e): e is ExecEvent => e.type === 'exec' && e.ppid === c.pid)!;
    expect(child.filename.text).toBe(want[0]);
    expect(child.args[0]).toEqual({ text: want[0] });
    expect(child.args[1]!.raw!.toString('hex')).toBe(want[1]);
    expect(child.args[1]!.text).toBe(Buffer.from(want[1]!, 'hex').toString('utf8'));
    expect(child.args[1]!.text).toContain('\ufffd');
  });

  it('a 5000-byte argv is cut at the 4096-byte cap, partial last arg kept', () => {
    const c = byName('truncated');
    const [exec] = of<ExecEvent>('exec', c.pid);
    expect(exec).toMatchObject({ argsTruncated: true, argsFullLen: c.expect.argsFullLen, argsFault: false });
    const lens = exec!.args.map((a) => Buffer.byteLength(a.text));
    expect(lens.reduce((s, n) => s + n + 1, 0) - 1).toBe(meta.argsCap); // no NUL after the cut arg
    expect(exec!.args.slice(0, 2).map((a) => a.text)).toEqual(['/bin/true', 'patrol-long']);
    expect(exec!.args[2]!.text).toMatch(/^A+$/);
  });

  it('a failed exec: errno and filename, child exits 127', () => {
    const c = byName('exec-failed');
    // The shipped fixture was recorded with tracefs: this case must be in it (a fixture recorded
    // without the syscall tracepoints would silently test nothing here).
    expect(c.expect.recorded, 'the fixture holds a failed exec (re-record with tracefs mounted)').toBe(true);
    const failed = ev.find((e): e is ExecFailedEvent => e.type === 'exec_failed')!;
    expect(failed).toMatchObject({ errno: c.expect.errno, filename: { text: c.expect.filename }, comm: { text: 'sh' } });
    expect(of<ExitEvent>('exit', failed.pid)[0]).toMatchObject({ exitCode: 127 });
    expect(of<ForkEvent>('fork', failed.pid)[0]).toMatchObject({ ppid: c.pid });
  });

  it('per-CPU counters cover at least the recorded records', () => {
    const c = decodeCounters(read('lifecycle-basic.counters.bin'), meta.numPossibleCpus);
    expect(c.perCpu).toHaveLength(meta.numPossibleCpus);
    const seen = new Map<string, number>();
    for (const e of ev) seen.set(e.type, (seen.get(e.type) ?? 0) + 1);
    c.total.generated.forEach((g, op) => {
      const type = OP_EVENT_TYPE[op];
      expect(g).toBeGreaterThanOrEqual(BigInt(type ? (seen.get(type) ?? 0) : 0));
    });
  });

  it('task snapshot records of the recorder and kthreadd', () => {
    const snaps = decodeTaskSnaps(read('lifecycle-basic.tasks.bin'));
    expect(snaps.find((s) => s.pid === meta.recorderPid)).toMatchObject({ comm: { text: 'node' }, exitState: 0 });
    expect(snaps.find((s) => s.pid === 2)).toMatchObject({ ppid: 0, comm: { text: 'kthreadd' }, nrThreads: 1 });
    const node = snaps.find((s) => s.pid === meta.recorderPid)!;
    expect(node.nrThreads).toBeGreaterThan(1);
    const fork = ev.find((e): e is ForkEvent => e.type === 'fork' && e.ppid === meta.recorderPid)!;
    expect(fork.parentStartNs).toBe(node.startNs); // same identity from the ring and the iterator
  });
});
