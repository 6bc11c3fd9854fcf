// One tree run: the event as a rule sees it (a Trigger) and the Scope that answers the tree's
// field references, computing process facts, windows and history figures on first use. A Scope
// exists only for a rule that passed the trigger index; the gates never make one.
import { PROCESS_SOURCES, type FieldRef, type SourceKind } from './catalogue.js';
import type { AlertLike, NodeStateFacts, ProcFact, ProcessFacts, RuleClock, WindowFacts, WriterFigure } from './facts.js';
import { commandKey, type History } from './history.js';
import type { CompiledRule, EvalScope } from './tree.js';
import type { Value } from './units.js';

/** An event as the rules see it, built for a tree run. */
export interface Trigger {
  source: SourceKind;
  tNs: bigint;
  fields: Record<string, Value>;
  /** one of `fields` without building the record (undefined: the event has no such field) */
  field?(name: string): Value | undefined;
  line?: string;
  execId?: string | null;
  /** the event's parent, for execs_by_parent */
  parentExecId?: string | null;
  command?: string;
  alert?: AlertLike;
  summary: string;
  /** set when a deferred evaluation is retried: no second deferral */
  retried?: boolean;
}

export interface EngineFacts {
  processes?: ProcessFacts;
  windows?: WindowFacts;
  states?: NodeStateFacts;
  clock: RuleClock;
}

/** What a Scope needs of the engine. */
export interface ScopeHost {
  facts(): EngineFacts;
  readonly history: History;
}

/** boottime ns → ms, truncated (a number: exact to well under a µs at any uptime) */
export const msOf = (ns: bigint) => Math.floor(Number(ns) / 1e6);

/** A field of the trigger's event; a lifecycle trigger reads it alone, without its field record
 *  (a storm's firing reads one or two fields, at every exec). */
export function triggerField(t: Trigger, name: string): Value | undefined {
  if (t.field !== undefined) return t.field(name);
  return name in t.fields ? t.fields[name] : undefined;
}

/** Per-evaluation view of one event for one rule: values computed on first use. */
export class Scope implements EvalScope {
  // A tree asks for a handful of names at most, so the caches are flat arrays of (name, value)
  // searched in order, not Maps: a storm's firing made two Maps per exec (4 % of what the agent
  // allocated at 200 exec/s). The first entry of each is held in fields, and an array is made
  // only for a second: a storm's firing asks for one name and one figure, and its two arrays
  // were still ~3 % of what the agent allocated at 200 exec/s (bench/README.md, "Session 25").
  private cacheName: string | null = null;
  private cacheVal: Value | undefined = undefined;
  private cache: (string | Value | undefined)[] | null = null;
  private procDone = false;
  private procVal: ProcFact | null = null;
  /** largest window asked of each figure family, for evidence: the first (fn, ms) in fields,
   *  further pairs in an array, on first use */
  private windowFn: string | null = null;
  private windowMs = 0;
  private windows: (string | number)[] | null = null;

  windowFor(fn: string): number | undefined {
    if (this.windowFn === fn) return this.windowMs;
    const w = this.windows;
    if (w !== null) for (let i = 0; i < w.length; i += 2) if (w[i] === fn) return w[i + 1] as number;
    return undefined;
  }

  /** Keeps the largest window asked of figure family `fn`. */
  private noteWindow(fn: string, ms: number): void {
    if (this.windowFn === null) {
      this.windowFn = fn;
      this.windowMs = ms;
      return;
    }
    if (this.windowFn === fn) {
      if (ms > this.windowMs) this.windowMs = ms;
      return;
    }
    const w = (this.windows ??= []);
    let i = 0;
    while (i < w.length && w[i] !== fn) i += 2;
    if (i === w.length) w.push(fn, ms);
    else if (ms > (w[i + 1] as number)) w[i + 1] = ms;
  }

  constructor(
    private readonly engine: ScopeHost,
    readonly rule: CompiledRule,
    readonly trigger: Trigger,
    readonly captured: Record<string, Value> | null,
  ) {}

  proc(): ProcFact | null {
    if (this.procDone) return this.procVal;
    this.procDone = true;
    const pf = this.engine.facts().processes;
    if (!pf) return null;
    const t = this.trigger;
    if (t.execId) this.procVal = pf.get(t.execId);
    else if (this.rule.processField) {
      const pid = this.captured?.[this.rule.processField] ?? null;
      if (typeof pid === 'number') this.procVal = pf.byPid(pid, t.tNs);
    } else if (PROCESS_SOURCES.has(t.source)) {
      const pid = triggerField(t, 'pid');
      if (typeof pid === 'number') this.procVal = pf.byPid(pid, t.tNs);
    }
    return this.procVal;
  }

  value(ref: FieldRef): Value | undefined {
    // captures and event fields are plain lookups: no cache needed. A figure (a windowed
    // function) is neither, and asking the trigger would build its field record.
    if (ref.fn === undefined) {
      if (this.captured !== null && ref.name in this.captured) return this.captured[ref.name];
      const v = triggerField(this.trigger, ref.name);
      if (v !== undefined) return v;
    }
    // a count limited for a comparison is not the figure an explanation shows: not cached by name
    // (the history remembers its last count itself)
    if (ref.countLimit !== undefined) return this.compute(ref);
    if (this.cacheName === ref.name) return this.cacheVal;
    const c = this.cache;
    if (c !== null) for (let i = 0; i < c.length; i += 2) if (c[i] === ref.name) return c[i + 1] as Value | undefined;
    const v = this.compute(ref);
    if (this.cacheName === null) {
      this.cacheName = ref.name;
      this.cacheVal = v;
    } else (this.cache ??= []).push(ref.name, v);
    return v;
  }

  private compute(ref: FieldRef): Value | undefined {
    const name = ref.name;
    const f = this.engine.facts();
    if (name === 'exec_id' || name.startsWith('proc.')) return procField(name, this.proc(), f.processes, this.trigger.tNs);
    if (ref.fn) {
      this.noteWindow(ref.fn, ref.windowMs!);
      return this.figure(ref.fn, ref.windowMs!, ref.countLimit);
    }
    const now = f.clock.nowNs();
    if (name.startsWith('zombies.')) {
      const z = f.states?.zombies(now);
      if (!z) return undefined;
      if (name === 'zombies.count') return z.length;
      const top = topParent(z);
      return name === 'zombies.top_parent_count' ? (top?.count ?? 0) : (top?.comm ?? null);
    }
    if (name.startsWith('stuck_d.')) {
      const d = f.states?.stuckD(now);
      if (!d) return undefined;
      return name === 'stuck_d.count' ? d.length : d.reduce((m, x) => Math.max(m, x.dMs), 0);
    }
    return undefined;
  }

  private figure(fn: string, windowMs: number, limit?: number): Value | undefined {
    const t = this.trigger;
    const toMs = msOf(t.tNs);
    const fromMs = toMs - windowMs;
    const h = this.engine.history;
    switch (fn) {
      case 'history.failures': {
        const cmd = t.command ?? this.commandOfProc();
        return cmd === null ? undefined : h.countFailures(cmd, fromMs, toMs, limit);
      }
      case 'history.execs_by_parent': {
        const parent = t.parentExecId ?? this.proc()?.parentExecId ?? null;
        return parent === null ? undefined : h.countExecs(parent, fromMs, toMs, limit);
      }
      case 'history.top_writer_bytes':
        return topWriters(this.engine, windowMs, t.tNs, 1)[0]?.bytes ?? 0;
      default: {
        const w = rssWindow(this.engine.facts(), this.proc(), windowMs, t.tNs);
        if (!w) return undefined;
        return fn === 'window.rss_growth' ? w.last - w.first : fn === 'window.rss_first' ? w.first : w.max;
      }
    }
  }

  private commandOfProc(): string | null {
    const p = this.proc();
    return p ? commandKey(p.comm, p.filename) : null;
  }
}

/** Heaviest writers in the window: the resource windows' figures (live and exited processes)
 *  when there are any, merged with the exits the engine saw (exact totals at exit). */
export function topWriters(engine: ScopeHost, windowMs: number, atNs: bigint, limit: number): WriterFigure[] {
  const toMs = msOf(atNs);
  const by = new Map<string, WriterFigure>();
  for (const w of engine.facts().windows?.topWriters?.(windowMs, atNs, limit * 2) ?? []) by.set(w.execId, w);
  for (const x of engine.history.writersWithin(toMs - windowMs, toMs)) {
    const prev = by.get(x.execId);
    if (!prev || prev.bytes < x.writeBytes) by.set(x.execId, { execId: x.execId, pid: x.pid, comm: x.comm, bytes: x.writeBytes });
  }
  return [...by.values()].sort((a, b) => b.bytes - a.bytes).slice(0, limit);
}

export interface RssFigures {
  first: number;
  last: number;
  max: number;
  samples: number;
  spanMs: number;
  fromExit: boolean;
  /** the process started inside the window: growth counts from its start (RSS 0) */
  fromStart: boolean;
}

/** RSS over the window: samples when a sampler runs; else the exit's max RSS, growing from zero
 *  when the process started inside the window. */
export function rssWindow(f: { windows?: WindowFacts }, p: ProcFact | null, windowMs: number, atNs: bigint): RssFigures | null {
  if (!p) return null;
  const s = f.windows?.rss(p.execId, windowMs, atNs) ?? [];
  if (s.length > 0) {
    let max = 0;
    for (const x of s) if (x.bytes > max) max = x.bytes;
    if (p.maxRssBytes !== null && p.maxRssBytes > max) max = p.maxRssBytes;
    const startedInside = p.startNs >= atNs - BigInt(windowMs) * 1_000_000n;
    const first = startedInside ? Math.min(s[0]!.bytes, 0) : s[0]!.bytes;
    const last = Math.max(s[s.length - 1]!.bytes, p.maxRssBytes ?? 0);
    const spanFrom = startedInside ? p.startNs : s[0]!.tNs;
    const spanTo = p.exitNs ?? s[s.length - 1]!.tNs;
    return { first, last, max, samples: s.length, spanMs: Number(spanTo - spanFrom) / 1e6, fromExit: false, fromStart: startedInside };
  }
  if (p.maxRssBytes === null) return null;
  const startedInside = p.startNs >= atNs - BigInt(windowMs) * 1_000_000n;
  if (!startedInside) return null;
  const end = p.exitNs ?? atNs;
  return { first: 0, last: p.maxRssBytes, max: p.maxRssBytes, samples: 0, spanMs: Number(end - p.startNs) / 1e6, fromExit: true, fromStart: true };
}

function procField(name: string, p: ProcFact | null, pf: ProcessFacts | undefined, atNs: bigint): Value | undefined {
  if (!p) return undefined;
  switch (name) {
    case 'exec_id':
    case 'proc.exec_id':
      return p.execId;
    case 'proc.pid':
      return p.pid;
    case 'proc.ppid':
      return p.ppid;
    case 'proc.comm':
      return p.comm;
    case 'proc.args':
      return p.args ? p.args.join(' ') : null;
    case 'proc.cgroup':
      return p.cgroup;
    case 'proc.exit_code':
      return p.exitCode;
    case 'proc.signal':
      return p.signal;
    case 'proc.max_rss':
      return p.maxRssBytes;
    case 'proc.parent_exec_id':
      return p.parentExecId;
    case 'proc.parent_comm':
      return p.parentExecId ? (pf?.get(p.parentExecId)?.comm ?? null) : null;
    case 'proc.ancestry':
      return (pf?.ancestry(p.execId) ?? []).map((a) => a.comm).join(' ← ');
    case 'proc.age':
      return Number((p.exitNs ?? atNs) - p.startNs) / 1e6;
    default:
      return undefined;
  }
}

function topParent(z: ReturnType<NodeStateFacts['zombies']>): { count: number; comm: string | null } | null {
  const by = new Map<string, { count: number; comm: string | null }>();
  for (const x of z) {
    const k = x.parentExecId ?? `pid:${x.ppid}`;
    const e = by.get(k) ?? { count: 0, comm: x.parentComm };
    e.count++;
    by.set(k, e);
  }
  let best: { count: number; comm: string | null } | null = null;
  for (const e of by.values()) if (!best || e.count > best.count) best = e;
  return best;
}
