// The dashboard's process model (web/src/pages/process-model.ts) and state timeline, in Node:
// the join of the table with the windows, escaping of process text, filter, sort, the tree
// (ancestors of matches kept, no recursion limit), and 10,000 processes in a few milliseconds.
import { describe, expect, it } from 'vitest';
import { ProcessModel } from '../../web/src/pages/process-model.js';
import { segments } from '../../web/src/timeline.js';
import type { Proc, ProcDetail, TopRow } from '../../web/src/types.js';

const id = (n: number) => n.toString(16).padStart(16, '0');

function proc(pid: number, ppid: number, comm: string, over: Partial<Proc> = {}): Proc {
  return {
    exec_id: id(pid), pid, ppid, parent_exec_id: ppid ? id(ppid) : null, comm, filename: null, args: [comm, String(pid)], args_truncated: false,
    uid: 0, gid: 0, euid: 0, cgroup_id: null, state: 'S', state_ms: 1000, lifecycle: 'live', rq_p50_us: null, rq_p95_us: null, rq_max_us: null,
    nvcsw: null, nivcsw: null, start_time: new Date(1_700_000_000_000 + pid).toISOString(), start_ns: String(pid), coarse_start: false, source: 'fork',
    exec_count: 1, exit_code: null, signal: null, core_dumped: null, exit_time: null, reap_time: null, child_count: 0, ...over,
  };
}

function top(pid: number, cpuSeconds: number, over: Partial<TopRow> = {}): TopRow {
  return {
    pid, ppid: 1, exec_id: id(pid), comm: `p${pid}`, exited: false, cpu: { avg: 50, p95: 0, max: 0, last: 0 }, cpu_seconds: cpuSeconds,
    rss_bytes: { max: 2048, avg: 0, last: 1024 }, io_read_bytes: 1, io_write_bytes: 2, exit: null, aggregate: null, ...over,
  };
}

const q = { filter: '', state: '', tree: false, sort: 'cpu', desc: true };

describe('ProcessModel', () => {
  it('joins the windows by exec_id: CPU % is CPU time over the window; exited-only rows marked', () => {
    const m = new ProcessModel();
    m.update([proc(1, 0, 'init'), proc(10, 1, 'busy'), proc(11, 1, 'gone', { lifecycle: 'zombie', state: 'Z', exit_code: 3 })], [top(10, 30), top(11, 1), top(99, 6, { exited: true, comm: 'short', exit: { duration_ns: 1, exit_code: 0, signal: 11 } }), top(0, 9, { exec_id: '', aggregate: { count: 5 }, exited: true })], 60);
    const rows = m.view(q);
    expect(rows.map((r) => r.pid)).toEqual([10, 99, 11, 1]);
    expect(rows[0]!.cpu).toBe(50);
    expect(rows[1]).toMatchObject({ pid: 99, exited: true, detail: false, exit: 'SIGSEGV', cpu: 10 });
    expect(rows[2]).toMatchObject({ exited: true, exit: 'exit 3', detail: true });
    expect(rows[3]!.cpu).toBeNull();
    expect(m.counts).toEqual({ total: 4, live: 2, zombies: 1, exited: 2 });
  });

  it('process text is escaped once and searched as shown', () => {
    const m = new ProcessModel();
    m.update([proc(5, 1, 'esc\x1b[31mred', { args: ['<img src=x onerror=alert(1)>', 'a b', "it's"] })], null, 60);
    const [r] = m.view({ ...q, filter: 'ONERROR' });
    expect(r!.comm).toBe('esc\\x1b[31mred');
    expect(r!.args).toBe(`'<img src=x onerror=alert(1)>' 'a b' 'it'\\''s'`);
    expect(m.view({ ...q, filter: '\\x1b' })).toHaveLength(1);
    expect(m.view({ ...q, filter: 'nothing' })).toHaveLength(0);
  });

  it('filters by state and lifecycle; sorts both ways; pid breaks ties', () => {
    const m = new ProcessModel();
    m.update([proc(3, 1, 'c', { state: 'R' }), proc(2, 1, 'b', { state: 'D' }), proc(4, 1, 'a', { state: 'D' })], null, 60);
    expect(m.view({ ...q, state: 'D' }).map((r) => r.pid)).toEqual([2, 4]);
    expect(m.view({ ...q, sort: 'comm', desc: false }).map((r) => r.comm)).toEqual(['a', 'b', 'c']);
    expect(m.view({ ...q, sort: 'pid', desc: true }).map((r) => r.pid)).toEqual([4, 3, 2]);
  });

  it('the tree: children under parents, collapsible; a filter keeps the ancestors of matches', () => {
    const m = new ProcessModel();
    m.update([proc(1, 0, 'init'), proc(2, 1, 'sshd'), proc(3, 2, 'bash'), proc(4, 3, 'vim'), proc(5, 1, 'cron')], null, 60);
    const t = m.view({ ...q, tree: true, sort: 'pid', desc: false });
    expect(t.map((r) => `${'-'.repeat(r.depth)}${r.comm}`)).toEqual(['init', '-sshd', '--bash', '---vim', '-cron']);
    expect(m.view({ ...q, tree: true, sort: 'pid', desc: false, filter: 'vim' }).map((r) => r.comm)).toEqual(['init', 'sshd', 'bash', 'vim']);
    m.toggle(id(2));
    expect(m.view({ ...q, tree: true, sort: 'pid', desc: false }).map((r) => r.comm)).toEqual(['init', 'sshd', 'cron']);
  });

  it('a 20,000-deep fork chain nests without overflowing the stack', () => {
    const m = new ProcessModel();
    m.update(Array.from({ length: 20_000 }, (_, i) => proc(i + 1, i, `p${i}`)), null, 60);
    const t = m.view({ ...q, tree: true });
    expect(t).toHaveLength(20_000);
    expect(t[19_999]!.depth).toBe(19_999);
  });

  it('10,000 processes: join, filter, sort and nest without quadratic work', () => {
    const procs = Array.from({ length: 10_000 }, (_, i) => proc(i + 2, 1, `worker-${i % 50}`));
    const tops = procs.map((p, i) => top(p.pid, (i * 7919) % 100));
    const m = new ProcessModel();
    m.update(procs, tops, 60); // first: builds the display text
    const t0 = performance.now();
    m.update(procs, tops, 60);
    const t1 = performance.now();
    const rows = m.view(q);
    const t2 = performance.now();
    m.view({ ...q, filter: 'worker-7' });
    const t3 = performance.now();
    m.view({ ...q, tree: true });
    const t4 = performance.now();
    expect(rows).toHaveLength(10_000);
    expect(rows[0]!.cpu! >= rows[1]!.cpu!).toBe(true);
    // catches quadratic work, not speed (bench/dashboard.mjs measures that): typical figures
    // are 5–30 ms each on a 2 vCPU VM
    for (const ms of [t1 - t0, t2 - t1, t3 - t2, t4 - t3]) expect(ms).toBeLessThan(1000);
  });
});

describe('state timeline', () => {
  const base = Date.parse('2026-01-01T00:00:00.000Z');
  const iso = (ms: number) => new Date(base + ms).toISOString();

  it('observed states, then zombie at the exit and reaped at the reap, from the lifecycle', () => {
    const d: ProcDetail = {
      process: proc(7, 1, 'x', { start_time: iso(0), exit_time: iso(5000), reap_time: iso(8000), lifecycle: 'dead', state: 'X' }),
      ancestry: [],
      children: [],
      states: [{ state: 'R', since: iso(0) }, { state: 'S', since: iso(1000) }, { state: 'D', since: iso(2000) }],
    };
    expect(segments(d, base + 9000).map((s) => [s.state, s.from - base, s.to - base])).toEqual([
      ['R', 0, 1000],
      ['S', 1000, 2000],
      ['D', 2000, 5000],
      ['Z', 5000, 8000],
      ['X', 8000, 9000],
    ]);
  });

  it('no state log (no state sensor, or the log starts late): unknown until the first observation', () => {
    const d: ProcDetail = { process: proc(7, 1, 'x', { start_time: iso(0) }), ancestry: [], children: [], states: [{ state: 'S', since: iso(3000) }] };
    expect(segments(d, base + 4000).map((s) => s.state)).toEqual(['?', 'S']);
    const none: ProcDetail = { process: proc(7, 1, 'x', { start_time: iso(0), state: 'R' }), ancestry: [], children: [] };
    expect(segments(none, base + 4000).map((s) => s.state)).toEqual(['R']);
  });
});
