// PATH-search probes (src/process/path-probe.ts): a failed exec followed by the same task's
// exec of the same program is a probe; the last failure of a search that never succeeds is not.
import { describe, expect, it } from 'vitest';
import { PathProbeMarker } from '../../src/process/path-probe.js';
import type { ExecFailedEvent, LifecycleEvent } from '../../src/shared/events.js';

let t = 0n;
const base = () => ({ ktimeNs: (t += 1000n), seq: 0n, cpu: 0, flags: 0 });
const failed = (tid: number, filename: string, errno = 2): ExecFailedEvent => ({ ...base(), type: 'exec_failed', pid: tid, tid, startNs: 1n, errno, filename: { text: filename }, comm: { text: 'env' } });
const exec = (pid: number, filename: string) => ({ ...base(), type: 'exec', pid, filename: { text: filename } }) as unknown as LifecycleEvent;
const exit = (pid: number) => ({ ...base(), type: 'exit', pid, tid: pid }) as unknown as LifecycleEvent;

function run(m: PathProbeMarker, batch: LifecycleEvent[]): LifecycleEvent[] {
  const out: LifecycleEvent[] = [];
  m.process(batch, out);
  return out;
}

describe('PathProbeMarker', () => {
  it('marks the misses of a search that succeeds, in one batch, keeping the order', () => {
    const m = new PathProbeMarker();
    const a = failed(10, '/usr/local/sbin/sh');
    const b = failed(10, '/usr/local/bin/sh');
    const c = failed(10, '/usr/sbin/sh');
    const ok = exec(10, '/usr/bin/sh');
    const other = exec(11, '/bin/true');
    const out = run(m, [a, other, b, c, ok]);
    expect(out).toEqual([a, other, b, c, ok]);
    expect([a, b, c].map((x) => x.pathProbe)).toEqual([true, true, true]);
    expect(m.probes).toBe(3);
  });

  it('a search that never succeeds ends in a real failure (command not found)', () => {
    const m = new PathProbeMarker();
    const a = failed(20, '/usr/local/bin/nosuch');
    const b = failed(20, '/usr/bin/nosuch');
    const out = run(m, [a, b, exit(20)]);
    expect(out.length).toBe(3);
    expect(a.pathProbe).toBe(true);
    expect(b.pathProbe).toBeUndefined();
  });

  it('a different program next is not a probe (a script that runs something else)', () => {
    const m = new PathProbeMarker();
    const a = failed(30, '/opt/app/run');
    run(m, [a, exec(30, '/bin/sh')]);
    expect(a.pathProbe).toBeUndefined();
  });

  it('EPERM and other errors are never probes', () => {
    const m = new PathProbeMarker();
    const a = failed(40, '/usr/local/bin/x', 1);
    run(m, [a, exec(40, '/usr/bin/x')]);
    expect(a.pathProbe).toBeUndefined();
  });

  it('a verdict in the next batch: the failure waits, then comes first', () => {
    const m = new PathProbeMarker();
    const a = failed(50, '/usr/local/bin/sh');
    const x = exec(51, '/bin/true');
    expect(run(m, [x, a])).toEqual([x]);
    expect(m.waiting).toBe(1);
    const ok = exec(50, '/usr/bin/sh');
    expect(run(m, [ok])).toEqual([a, ok]);
    expect(a.pathProbe).toBe(true);
  });

  it('a failure with no next attempt is released after the hold, as a failure', () => {
    const m = new PathProbeMarker();
    const a = failed(60, '/usr/bin/gone');
    expect(run(m, [a])).toEqual([]);
    const out: LifecycleEvent[] = [];
    m.flushStale(a.ktimeNs + 1_000_000n, out);
    expect(out).toEqual([]);
    m.flushStale(a.ktimeNs + 60_000_000n, out);
    expect(out).toEqual([a]);
    expect(a.pathProbe).toBeUndefined();
  });
});
