// The Scope's per-run caches: the first name and the first figure family are held in fields, the
// rest in arrays. Each name is computed once per run, and each family keeps its largest window
// (what evidence reads), however many names and families a tree asks for.
import { describe, expect, it } from 'vitest';
import { Scope, type ProcFact } from '../../src/rules/index.js';
import type { FieldRef } from '../../src/rules/catalogue.js';
import type { CompiledRule } from '../../src/rules/tree.js';
import type { History } from '../../src/rules/history.js';
import type { ScopeHost } from '../../src/rules/scope.js';

const proc = (execId: string, comm: string, parentExecId: string | null): ProcFact => ({
  execId, pid: 10, ppid: 1, parentExecId, comm, args: null, filename: null, cgroup: null,
  startNs: 0n, exitNs: null, exitCode: null, signal: null, maxRssBytes: null,
});

function host() {
  const calls = { facts: 0, get: 0, execs: 0, failures: 0 };
  const procs = new Map([['c1', proc('c1', 'child', 'p1')], ['p1', proc('p1', 'parent', null)]]);
  const processes = {
    byPid: () => null,
    get: (id: string) => {
      calls.get++;
      return procs.get(id) ?? null;
    },
    ancestry: () => [],
  };
  const history = {
    countExecs: (_parent: string, fromMs: number, toMs: number) => {
      calls.execs++;
      return toMs - fromMs;
    },
    countFailures: (_cmd: string, fromMs: number, toMs: number) => {
      calls.failures++;
      return (toMs - fromMs) / 2;
    },
  } as unknown as History;
    // every computed name asks for the facts once: a name served from a cache does not
  const facts = { processes, clock: { nowNs: () => 0n, nowMs: () => 0 } as never };
  const h: ScopeHost = {
    facts: () => {
      calls.facts++;
      return facts;
    },
    history,
  };
  return { h, calls };
}

const ref = (name: string, fn?: string, windowMs?: number): FieldRef => ({ name, type: 'number', fn, windowMs, needsProc: false }) as FieldRef;
const rule = { processField: null } as unknown as CompiledRule;
const trigger = { source: 'exec' as const, tNs: 100_000_000_000n, fields: {}, field: () => undefined, execId: 'c1', parentExecId: 'p1', command: 'child', summary: '' };

describe('Scope caches', () => {
  it('computes each name once, the first and the later ones alike', () => {
    const { h, calls } = host();
    const s = new Scope(h, rule, trigger, null);
    const names = ['proc.comm', 'proc.parent_comm', 'proc.pid', 'proc.parent_exec_id'];
    const first = names.map((n) => s.value(ref(n)));
    expect(first).toEqual(['child', 'parent', 10, 'p1']);
    const asked = calls.facts;
    const gets = calls.get;
    expect(names.map((n) => s.value(ref(n)))).toEqual(first);
    // nothing computed again: the first name from the fields, the rest from the array
    expect(calls.facts).toBe(asked);
    expect(calls.get).toBe(gets);
  });

  it('keeps the largest window of each figure family, the first family and the later ones', () => {
    const { h } = host();
    const s = new Scope(h, rule, trigger, null);
    expect(s.value(ref('history.execs_by_parent(10s)', 'history.execs_by_parent', 10_000))).toBe(10_000);
    expect(s.value(ref('history.failures(30s)', 'history.failures', 30_000))).toBe(15_000);
    expect(s.value(ref('history.execs_by_parent(1m)', 'history.execs_by_parent', 60_000))).toBe(60_000);
    expect(s.value(ref('history.failures(5s)', 'history.failures', 5_000))).toBe(2_500);
    expect(s.value(ref('history.failures(2m)', 'history.failures', 120_000))).toBe(60_000);
    expect(s.windowFor('history.execs_by_parent')).toBe(60_000);
    expect(s.windowFor('history.failures')).toBe(120_000);
    expect(s.windowFor('window.rss_growth')).toBeUndefined();
  });

  it('a figure asked twice by the same name is computed once', () => {
    const { h, calls } = host();
    const s = new Scope(h, rule, trigger, null);
    s.value(ref('proc.comm'));
    for (let i = 0; i < 3; i++) {
      expect(s.value(ref('history.failures(30s)', 'history.failures', 30_000))).toBe(15_000);
      expect(s.value(ref('history.execs_by_parent(10s)', 'history.execs_by_parent', 10_000))).toBe(10_000);
    }
    expect(calls.failures).toBe(1);
    expect(calls.execs).toBe(1);
  });
});
