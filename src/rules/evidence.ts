// The evidence chain of a finding: what the operator can verify. Each item names its kind, time,
// a one-line summary, and the exec_id it links to when there is one.
import type { ExitEvent } from '../shared/events.js';
import type { EvidenceKind } from './catalogue.js';
import type { ProcFact, RuleClock } from './facts.js';
import { signalName } from './event-fields.js';
import { msOf, rssWindow, topWriters, type Scope, type ScopeHost } from './scope.js';
import type { CompiledRule } from './tree.js';
import { formatBytes, formatMs, type Value } from './units.js';

export interface Evidence {
  kind: 'kmsg' | 'log' | 'event' | 'process' | 'ancestry' | 'window' | 'exit' | 'failures' | 'children' | 'zombies' | 'stuck_d' | 'top_writers' | 'check' | 'prediction';
  /** ISO time of what the item shows */
  ts: string;
  summary: string;
  exec_id?: string;
  data?: Record<string, Value | number | object | undefined>;
}

export interface EvidenceInput {
  engine: ScopeHost;
  clock: RuleClock;
  rule: CompiledRule;
  trigger: { source: string; tNs: bigint; line?: string; summary: string; fields: Record<string, Value>; execId?: string | null; parentExecId?: string | null; command?: string; alert?: { id: string; check: string; state: string; evidence: unknown } };
  proc: ProcFact | null;
  scope: Scope;
}

const iso = (clock: RuleClock, ns: bigint) => new Date(clock.epochMs(ns)).toISOString();
const DEFAULT_WINDOW_MS = 600_000;

export function buildEvidence(kinds: readonly EvidenceKind[], x: EvidenceInput): Evidence[] {
  const out: Evidence[] = [];
  for (const k of kinds) {
    const e = one(k, x);
    if (e) out.push(...(Array.isArray(e) ? e : [e]));
  }
  return out;
}

function procLine(p: ProcFact): string {
  const args = p.args ? ` ${p.args.join(' ').slice(0, 160)}` : '';
  return `pid ${p.pid} (${p.comm}) exec_id ${p.execId}${p.cgroup ? ` in cgroup ${p.cgroup}` : ''}${args ? ` —${args}` : ''}`;
}

function one(k: EvidenceKind, x: EvidenceInput): Evidence | Evidence[] | null {
  const { trigger: t, proc: p, clock, engine } = x;
  const ts = iso(clock, t.tNs);
  const windowOf = (fn: string) => x.scope.windowFor(fn) ?? DEFAULT_WINDOW_MS;
  const toMs = msOf(t.tNs);
  switch (k) {
    case 'line':
      if (t.line === undefined) return null;
      return { kind: t.source === 'log' ? 'log' : 'kmsg', ts, summary: t.line, ...(p ? { exec_id: p.execId } : {}), data: t.source === 'log' ? { file: t.fields.file } : { seq: t.fields.seq } };
    case 'event':
      return { kind: 'event', ts, summary: t.summary, ...(t.execId ? { exec_id: t.execId } : {}) };
    case 'process':
      if (!p) return null;
      return {
        kind: 'process', ts: iso(clock, p.startNs), summary: procLine(p), exec_id: p.execId,
        data: { pid: p.pid, ppid: p.ppid, comm: p.comm, cgroup: p.cgroup, args: p.args ?? null, parent_exec_id: p.parentExecId },
      };
    case 'ancestry': {
      if (!p) return null;
      const chain = x.engine.facts().processes?.ancestry(p.execId) ?? [];
      return {
        kind: 'ancestry', ts, exec_id: p.execId,
        summary: [p, ...chain].map((a) => `${a.comm}[${a.pid}]`).join(' ← '),
        data: { chain: chain.map((a) => ({ pid: a.pid, comm: a.comm, exec_id: a.execId })) },
      };
    }
    case 'rss': {
      const win = x.scope.windowFor('window.rss_growth') ?? 300_000;
      const w = rssWindow(engine.facts(), p, win, t.tNs);
      if (!w || !p) return null;
      const src = w.fromExit ? ' (max RSS at exit; no samples)' : ` (${w.samples} samples)`;
      return {
        kind: 'window', ts, exec_id: p.execId,
        summary: `RSS grew from ${formatBytes(w.first)}${w.fromStart ? ' at its start' : ''} to ${formatBytes(w.max)} in ${formatMs(w.spanMs)}${src}`,
        data: { metric: 'rss', window_ms: win, from_start: w.fromStart, first: w.first, last: w.last, max: w.max, samples: w.samples, span_ms: Math.round(w.spanMs) },
      };
    }
    case 'exit':
      if (!p || p.exitNs === null) return null;
      return {
        kind: 'exit', ts: iso(clock, p.exitNs), exec_id: p.execId,
        summary: `pid ${p.pid} (${p.comm}) ${p.signal !== null ? `killed by ${signalName(p.signal)}` : `exited with code ${p.exitCode}`}${p.maxRssBytes !== null ? `, max RSS ${formatBytes(p.maxRssBytes)}` : ''}`,
        data: { exit_code: p.exitCode, signal: p.signal, max_rss: p.maxRssBytes },
      };
    case 'failures': {
      const win = windowOf('history.failures');
      const cmd = t.command ?? (p ? `${p.comm}\u0000${p.filename ?? ''}` : null);
      if (cmd === null) return null;
      const list = engine.history.failures(cmd, toMs - win, toMs);
      if (list.length === 0) return null;
      const comm = list[list.length - 1]!.comm;
      return {
        kind: 'failures', ts, summary: `${list.length} failed exits of ${comm} in ${formatMs(win)}: ${list.slice(-5).map((f) => (f.signal !== null ? signalName(f.signal) : `code ${f.exitCode}`)).join(', ')}`,
        data: { window_ms: win, count: list.length, exits: list.slice(-20).map((f) => ({ exec_id: f.execId, pid: f.pid, exit_code: f.exitCode, signal: f.signal, ts: new Date(clock.epochMs(BigInt(f.tMs) * 1_000_000n)).toISOString() })) },
      };
    }
    case 'children': {
      const win = windowOf('history.execs_by_parent');
      const parent = t.parentExecId ?? p?.parentExecId ?? null;
      if (!parent) return null;
      const { count, byComm } = engine.history.execCommCounts(parent, toMs - win, toMs);
      const pp = engine.facts().processes?.get(parent);
      const top = [...byComm].sort((a, b) => b[1] - a[1]).slice(0, 5);
      return {
        kind: 'children', ts, exec_id: parent,
        summary: `${count} execs by parent ${pp ? `pid ${pp.pid} (${pp.comm})` : parent} in ${formatMs(win)}: ${top.map(([c, n]) => `${c}×${n}`).join(', ')}`,
        data: { window_ms: win, count, top: top.map(([comm, n]) => ({ comm, n })) },
      };
    }
    case 'zombies': {
      const z = engine.facts().states?.zombies(clock.nowNs());
      if (!z || z.length === 0) return null;
      const by = new Map<string, { ppid: number; comm: string | null; execId: string | null; n: number; oldestMs: number }>();
      for (const y of z) {
        const key = y.parentExecId ?? `pid:${y.ppid}`;
        const e = by.get(key) ?? { ppid: y.ppid, comm: y.parentComm, execId: y.parentExecId, n: 0, oldestMs: 0 };
        e.n++;
        e.oldestMs = Math.max(e.oldestMs, y.zombieMs);
        by.set(key, e);
      }
      return [...by.values()].sort((a, b) => b.n - a.n).slice(0, 3).map((e) => ({
        kind: 'zombies' as const, ts, ...(e.execId ? { exec_id: e.execId } : {}),
        summary: `parent pid ${e.ppid} (${e.comm ?? '?'}) has not reaped ${e.n} child${e.n === 1 ? '' : 'ren'}, the oldest for ${formatMs(e.oldestMs)}`,
        data: { ppid: e.ppid, comm: e.comm, count: e.n, oldest_ms: e.oldestMs },
      }));
    }
    case 'stuck_d': {
      if (t.source === 'state') {
        return { kind: 'stuck_d', ts, ...(t.execId ? { exec_id: t.execId } : {}), summary: t.summary, data: { pid: t.fields.pid, d_ms: t.fields.state_duration } };
      }
      const d = engine.facts().states?.stuckD(clock.nowNs());
      if (!d || d.length === 0) return null;
      return [...d].sort((a, b) => b.dMs - a.dMs).slice(0, 5).map((s) => ({
        kind: 'stuck_d' as const, ts, ...(s.execId ? { exec_id: s.execId } : {}),
        summary: `pid ${s.pid} (${s.comm}) in D state for ${formatMs(s.dMs)}`, data: { pid: s.pid, comm: s.comm, d_ms: s.dMs },
      }));
    }
    case 'top_writers': {
      const win = x.scope.windowFor('history.top_writer_bytes') ?? DEFAULT_WINDOW_MS;
      const list = topWriters(engine, win, t.tNs, 5);
      if (list.length === 0) return null;
      return list.map((e) => ({
        kind: 'top_writers' as const, ts, exec_id: e.execId,
        summary: `pid ${e.pid} (${e.comm}) wrote ${formatBytes(e.bytes)} in the last ${formatMs(win)}`,
        data: { pid: e.pid, comm: e.comm, write_bytes: e.bytes },
      }));
    }
    case 'check':
      if (!t.alert) return null;
      return { kind: 'check', ts, summary: `${t.alert.check} ${t.alert.state} (alert ${t.alert.id})`, data: { evidence: (t.alert.evidence ?? null) as object } };
  }
}

export function exitEvidence(ev: ExitEvent, execId: string, clock: RuleClock): Evidence {
  const how = ev.signal !== null ? `killed by ${signalName(ev.signal)}${ev.coreDumped ? ' (core dumped)' : ''}` : `exited with code ${ev.exitCode}`;
  return {
    kind: 'exit', ts: iso(clock, ev.ktimeNs), exec_id: execId,
    summary: `pid ${ev.pid} (${ev.comm.text}) ${how}, max RSS ${formatBytes(ev.usage.maxRssKb * 1024)}`,
    data: { exit_code: ev.exitCode, signal: ev.signal, max_rss: ev.usage.maxRssKb * 1024 },
  };
}
