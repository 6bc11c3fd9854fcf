// The trigger index: an ordinary event (exit 0, fork, exec, reap of a normal process) runs no
// decision tree, builds no evidence and asks the process table nothing; failures still find
// their causes; and the gates never turn away an event whose tree would fire (property test
// against a plain tree walk).
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExecEvent, ExitEvent, ForkEvent, KText, ReapEvent } from '../../src/shared/events.js';
import { EXIT_CLEAN, EXIT_CODE, EXIT_SIGNAL, RuleEngine, Scope, compileRuleSet, decide, lifecycleFields, loadRuleFiles, type EventContext, type ProcFact, type RuleClock, type RuleSet } from '../../src/rules/index.js';

const PACK = fileURLToPath(new URL('../../rules', import.meta.url));
const S = 1_000_000_000n;
const kt = (text: string): KText => ({ text });
const clock: RuleClock = { nowNs: () => 1000n * S, epochMs: (ns) => Number(ns / 1_000_000n), fromEpochMs: (ms) => BigInt(ms) * 1_000_000n };

function pack(): RuleSet {
  const r = loadRuleFiles(PACK);
  if (!r.ok) throw new Error('pack does not load');
  return r.set;
}

/** An engine over a process table stand-in that counts how often it is asked. */
function engine(set: RuleSet) {
  const procs = new Map<string, ProcFact>();
  const asked = { get: 0, byPid: 0, ancestry: 0 };
  const e = new RuleEngine({
    clock,
    processes: {
      get: (id) => (asked.get++, procs.get(id) ?? null),
      byPid: (pid) => (asked.byPid++, [...procs.values()].find((p) => p.pid === pid) ?? null),
      ancestry: () => (asked.ancestry++, []),
    },
  });
  e.setRules(set);
  const add = (execId: string, pid: number, comm: string) =>
    procs.set(execId, { execId, pid, ppid: 500, parentExecId: 'sh0', comm, args: [comm], filename: `/usr/bin/${comm}`, cgroup: null, startNs: 900n * S, exitNs: null, exitCode: null, signal: null, maxRssBytes: null });
  add('sh0', 500, 'bash');
  return { e, asked, add };
}

const usage = { cpuNs: 0n, utimeNs: 0n, stimeNs: 0n, maxRssKb: 1000, readBytes: 0n, writeBytes: 0n, rchar: 0n, wchar: 0n, minflt: 0n, majflt: 0n, nvcsw: 0n, nivcsw: 0n };
const exitEv = (pid: number, comm: string, t: bigint, code: number | null, signal: number | null): ExitEvent => ({
  type: 'exit', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid, tid: pid, ppid: 500, startNs: t - S, status: 0, exitCode: signal !== null ? null : code, signal, coreDumped: false, comm: kt(comm), usage,
});
const forkEv = (pid: number, t: bigint): ForkEvent => ({ type: 'fork', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid, tid: pid, startNs: t, ppid: 500, parentTid: 500, parentStartNs: 0n, comm: kt('bash'), thread: false });
const execEv = (pid: number, comm: string, t: bigint): ExecEvent => ({
  type: 'exec', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid, oldTid: pid, ppid: 500, startNs: t, parentStartNs: 0n, cgroupId: 0n, uid: 0, gid: 0, euid: 0,
  comm: kt(comm), filename: kt(`/usr/bin/${comm}`), filenameTruncated: false, args: [kt(comm)], argsTruncated: false, argsFault: false, argsFullLen: comm.length + 1,
});
const reapEv = (pid: number, t: bigint): ReapEvent => ({ type: 'reap', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid, startNs: t - S, exitNs: t });
const ctx = (execId: string, comm: string, o: Partial<EventContext> = {}): EventContext => ({ execId, parentExecId: 'sh0', ppid: 500, comm, ...o });

describe('trigger index', () => {
  it('runs no tree, builds no evidence and asks the process table nothing for ordinary events', () => {
    const { e, asked, add } = engine(pack());
    let t = 1000n * S;
    for (let i = 0; i < 50; i++) {
      const id = `ok${i}`;
      add(id, 2000 + i, 'true');
      e.onLifecycle(forkEv(2000 + i, (t += 1_000_000n)), ctx(id, 'bash'));
      e.onLifecycle(execEv(2000 + i, 'true', (t += 1_000_000n)), ctx(id, 'true'));
      e.onLifecycle(exitEv(2000 + i, 'true', (t += 1_000_000n), 0, null), ctx(id, 'true', { durationNs: 2_000_000n }));
      e.onLifecycle(reapEv(2000 + i, (t += 1_000_000n)), ctx(id, 'true', { zombieNs: 1_000_000n }));
    }
    expect(e.stats()).toMatchObject({ treeRuns: 0, evidenceBuilds: 0, findings: 0 });
    expect(asked).toEqual({ get: 0, byPid: 0, ancestry: 0 });
    expect(e.profile().every((p) => p.treeRuns === 0)).toBe(true);
    // an exit 0 is offered to no rule at all; the exec only to the storm rule's counter gate
    expect(e.indexed('exit', EXIT_CLEAN)).toEqual([]);
    expect(e.indexed('exit', EXIT_CODE)).toEqual(['crash-loop']);
    expect(e.indexed('exit', EXIT_SIGNAL)).toEqual(['crash-loop', 'crash-signal']);
    expect(e.profile().find((p) => p.rule === 'exec-storm')).toMatchObject({ evaluations: 50, treeRuns: 0 });
  });

  it('still finds a segfault exit and a crash loop of non-zero exits, running only their trees', () => {
    const { e, add } = engine(pack());
    add('segv', 3000, 'crasher');
    e.onLifecycle(exitEv(3000, 'crasher', 1000n * S, null, 11), ctx('segv', 'crasher', { durationNs: 5_000_000n }));
    expect(e.stats()).toMatchObject({ treeRuns: 1, evidenceBuilds: 1, findings: 1 });
    const [segv] = e.rankRecent();
    expect(segv).toMatchObject({ cause: 'segfault', rule: 'crash-signal', confidence: 0.75, exec_id: 'segv' });
    expect(segv!.explanation).toBe('pid 3000 (crasher, exec_id segv) was killed by SIGSEGV after 5 ms; started by bash');
    expect(segv!.evidence.map((x) => x.kind)).toEqual(['event', 'process', 'ancestry']);
    // non-zero exits: the crash-loop gate counts failures; the tree runs from the third
    for (let i = 0; i < 4; i++) {
      add(`w${i}`, 3100 + i, 'worker');
      e.onLifecycle(exitEv(3100 + i, 'worker', 1001n * S + BigInt(i) * S, 2, null), ctx(`w${i}`, 'worker'));
    }
    expect(e.profile().find((p) => p.rule === 'crash-loop')).toMatchObject({ evaluations: 5, treeRuns: 2, matches: 2 });
    expect(e.rankRecent().find((c) => c.cause === 'crash_loop')).toMatchObject({ count: 2, explanation: expect.stringMatching(/^worker failed 4 times in 10 min/) });
    expect(e.stats()).toMatchObject({ treeRuns: 3, evidenceBuilds: 3 });
  });

  it('runs the exec-storm tree only past the threshold, and renders a burst of firings once', () => {
    const { e, add } = engine(pack());
    for (let i = 0; i < 210; i++) add(`x${i}`, 4000 + i, 'sleep');
    for (let i = 0; i < 210; i++) e.onLifecycle(execEv(4000 + i, 'sleep', 1000n * S + BigInt(i) * 1_000_000n), ctx(`x${i}`, 'sleep'));
    expect(e.profile().find((p) => p.rule === 'exec-storm')).toMatchObject({ evaluations: 210, treeRuns: 11, matches: 11 });
    // eleven firings within a second: counted at once, rendered once more, from the latest, on read
    expect(e.stats()).toMatchObject({ evidenceBuilds: 1, findings: 1 });
    const [storm] = e.rankRecent();
    expect(storm).toMatchObject({ cause: 'exec_storm', count: 11, explanation: 'bash (exec_id sh0) started 210 programs in 10 s, the latest sleep' });
    expect(storm!.evidence.find((x) => x.kind === 'children')!.data).toMatchObject({ count: 210, top: [{ comm: 'sleep', n: 210 }] });
    expect(e.stats()).toMatchObject({ evidenceBuilds: 2 });
  });

  it('never turns away an event whose tree would fire (gates against a plain tree walk)', () => {
    const field = fc.constantFrom(
      { f: 'exit_code', v: fc.constantFrom(0, 1, 2, 137) },
      { f: 'signal', v: fc.constantFrom(6, 9, 11) },
      { f: 'failed', v: fc.boolean() },
      { f: 'comm', v: fc.constantFrom('a', 'b') },
      { f: 'proc.comm', v: fc.constantFrom('a', 'b') },
      { f: 'history.failures(1m)', v: fc.constantFrom(1, 2, 3) },
      { f: 'history.execs_by_parent(1m)', v: fc.constantFrom(0, 1, 2) },
    );
    const atom = field.chain(({ f, v }) =>
      fc.tuple(fc.constantFrom(...(typeof f === 'string' && ['comm', 'proc.comm', 'failed'].includes(f) ? ['eq', 'ne', 'exists'] : ['eq', 'ne', 'gte', 'lt', 'exists'])), v).map(([op, x]) =>
        op === 'exists' ? `{ field: ${f}, exists: ${x !== 0 && x !== 'b'} }` : `{ field: ${f}, ${op}: ${JSON.stringify(x)} }`,
      ),
    );
    const cond: fc.Arbitrary<string> = fc.letrec<{ c: string }>((tie) => ({
      c: fc.oneof({ depthSize: 'small', withCrossShrink: true }, atom, fc.tuple(fc.constantFrom('all', 'any'), fc.array(tie('c'), { minLength: 1, maxLength: 3 })).map(([k, xs]) => `{ ${k}: [${xs.join(', ')}] }`), tie('c').map((x) => `{ not: ${x} }`)),
    })).c;
    const leaf = "{ cause: c, confidence: 0.5, explanation: 'x' }";
    const tree: fc.Arbitrary<string> = fc.letrec<{ t: string }>((tie) => ({
      t: fc.oneof({ depthSize: 'small' }, fc.constant(leaf), fc.tuple(cond, tie('t'), fc.option(tie('t'))).map(([c, a, b]) => `{ if: ${c}, then: ${a}${b === null ? '' : `, else: ${b}`} }`)),
    })).t;
    const event = fc.record({ code: fc.constantFrom(0, 1, 2, 137), signal: fc.constantFrom(null, null, 9, 11, 6), comm: fc.constantFrom('a', 'b'), parent: fc.boolean() });
    fc.assert(
      fc.property(tree, fc.array(event, { minLength: 1, maxLength: 12 }), (tr, evs) => {
        const set = compileRuleSet([{ file: 'p.yaml', text: `rules:\n  - id: p\n    source: exit\n    tree: ${tr}\n` }]);
        if (!set.ok) throw new Error(set.diagnostics.map((d) => d.message).join('; '));
        const { e, add } = engine(set.set);
        const rule = set.set.rules[0]!;
        let fired = 0;
        evs.forEach((x, i) => {
          const id = `p${i}`;
          add(id, 5000 + i, x.comm === 'a' ? 'b' : 'a');
          const ev = exitEv(5000 + i, x.comm, 1000n * S + BigInt(i) * S, x.code, x.signal);
          const en = ctx(id, x.comm, { parentExecId: x.parent ? 'sh0' : null });
          e.onLifecycle(ev, en);
          const scope = new Scope(e, rule, { source: 'exit', tNs: ev.ktimeNs, execId: id, parentExecId: en.parentExecId, command: e.commandOf(ev, en), fields: lifecycleFields('exit', ev, en), summary: '' }, null);
          if (decide(rule.tree, scope) !== null) fired++;
        });
        expect(e.profile()[0]!.matches).toBe(fired);
      }),
      { numRuns: 300 },
    );
  });
});
