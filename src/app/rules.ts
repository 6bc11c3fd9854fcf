// Wires attribution into the agent: the rule set (reloaded atomically on SIGHUP), the kernel log,
// tailed log files, and the lifecycle/state streams into the engine; adapts the process table,
// the state tracker and (when present) the check engine's alerts to src/rules' interfaces.
import { readFileSync } from 'node:fs';
import type { Logger } from '../shared/log.js';
import type { LifecycleEvent, StateStreamEvent } from '../shared/events.js';
import type { DeadFields, Enriched, ProcessEntry, ProcessTable, StuckD, ZombieInfo } from '../process/index.js';
import type { ExplainView } from '../api/index.js';
import { nsToMs } from '../metrics/index.js';
import type { ResourcePipeline } from './resources.js';
import type { Tick, Ticker } from './ticker.js';
import { rssFacts } from './window-query.js';
import { native } from '../kernel/index.js';
import {
  FileTailer,
  KmsgReader,
  type KmsgReaderOptions,
  RuleEngine,
  RuleRegistry,
  formatDiagnostic,
  systemClock,
  type AlertLike,
  type AlertSource,
  type LoadResult,
  type ProcFact,
  type ProcessFacts,
  type RankedCause,
  type RuleProfile,
  type WindowFacts,
  type WriterFigure,
} from '../rules/index.js';
import { projectPath } from '../shared/paths.js';

/** The pack shipped in rules/ (from the project's root: src/shared/paths.ts). */
export const BUILTIN_RULES_DIR = projectPath('rules');

export interface RulesConfig {
  /** rule file or directory; null = the built-in pack */
  dir: string | null;
  /** read /dev/kmsg */
  kmsg: boolean;
  /** ms a lifecycle event may wait to reach the engine with the ones after it (0: at once;
   *  absent: 0). See LifecycleBatch below. */
  batchIntervalMs?: number;
}

export const DEFAULT_RULES: RulesConfig = { dir: null, kmsg: true };

interface StatesLike {
  zombies(nowNs: bigint): ZombieInfo[];
  stuckD(nowNs: bigint, thresholdNs: bigint): StuckD[];
  dThresholdNs: bigint;
}

/** cgroup path of a live process: the v2 path, or the v1 memory controller's when v2 is "/"
 *  (hybrid hosts keep memory on v1). Null once the process is gone. */
export function readCgroupPath(pid: number): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
  let v2: string | null = null;
  let mem: string | null = null;
  for (const line of text.split('\n')) {
    const [, ctrl, p] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (ctrl === '') v2 = p ?? null;
    else if (ctrl?.split(',').includes('memory')) mem = p ?? null;
  }
  return v2 !== null && v2 !== '/' ? v2 : (mem ?? v2);
}

/** exits TableFacts remembers by pid */
const EXITED_KEPT = 8192;

/** A process table entry as a rule sees it. A class, not an object literal with a getter: a rule
 *  that fires at every exec of a storm asks for one, and a literal's accessor made each a
 *  dictionary-mode object with a fresh closure. */
class EntryFact implements ProcFact {
  constructor(
    private readonly e: ProcessEntry,
    private readonly facts: TableFacts,
  ) {}
  get execId() { return this.e.execId; }
  get pid() { return this.e.pid; }
  get ppid() { return this.e.ppid; }
  get parentExecId() { return this.e.parentExecId; }
  get comm() { return this.e.comm; }
  get args() { return this.e.args; }
  get filename() { return this.e.filename; }
  /** read from /proc on first use: most evaluations never ask */
  get cgroup() { return this.facts.cgroupFor(this.e); }
  get startNs() { return this.e.startNs; }
  get exitNs() { return this.e.exitNs; }
  get exitCode() { return this.e.exit?.exitCode ?? null; }
  get signal() { return this.e.exit?.signal ?? null; }
  get maxRssBytes() { const kb = this.e.exit?.maxRssKb; return kb == null ? null : kb * 1024; }
}

/** A reaped process kept as a table record, as a rule sees it: its fields read once from the
 *  record (DeadFields), not a copy of its whole entry (bench/README.md, "Session 21"). */
class RecordFact implements ProcFact {
  private argsCache: string[] | null | undefined = undefined;
  constructor(
    private readonly r: DeadFields,
    private readonly facts: TableFacts,
  ) {}
  get execId() { return this.r.execId; }
  get pid() { return this.r.pid; }
  get ppid() { return this.r.ppid; }
  get parentExecId() { return this.r.parentExecId; }
  get comm() { return this.r.comm; }
  get args() { return (this.argsCache ??= this.r.argv === null ? null : this.r.argv.map((k) => k.text)); }
  get filename() { return this.r.filename; }
  /** only what was learned while it lived: its /proc is gone */
  get cgroup() { return this.facts.knownCgroup(this.r.execId); }
  get startNs() { return this.r.startNs; }
  get exitNs() { return this.r.exitNs; }
  get exitCode() { return this.r.exitCode; }
  get signal() { return this.r.signal; }
  get maxRssBytes() { const kb = this.r.maxRssKb; return kb === null ? null : kb * 1024; }
}

/** The process table as ProcessFacts. The cgroup path is read from /proc on first use and kept. */
export class TableFacts implements ProcessFacts {
  private readonly cgroups = new Map<string, string | null>();
  /** pid → exec_id of its last exit: kernel lines about a process often arrive after its reap.
   *  The last EXITED_KEPT exits, in a ring: evicting the oldest key of a Map walks the holes its
   *  deletes left at the front, at every exit once it is full. */
  private readonly exited = new Map<number, string>();
  private readonly ringPid = new Int32Array(EXITED_KEPT).fill(-1);
  private readonly ringExec: string[] = new Array<string>(EXITED_KEPT).fill('');
  private ringAt = 0;

  constructor(private readonly table: ProcessTable) {}

  noteExit(pid: number, execId: string): void {
    const i = this.ringAt;
    const old = this.ringPid[i]!;
    // the oldest exit leaves, unless its pid has exited again since (a newer entry holds it)
    if (old >= 0 && this.exited.get(old) === this.ringExec[i]) this.exited.delete(old);
    this.ringPid[i] = pid;
    this.ringExec[i] = execId;
    this.ringAt = i + 1 === EXITED_KEPT ? 0 : i + 1;
    this.exited.set(pid, execId);
  }

  /** The cgroup path, read from /proc on first use while the process lives, then kept. */
  private cgroupOf(e: ProcessEntry): string | null {
    let cg = this.cgroups.get(e.execId);
    if (cg === undefined && e.state === 'live') {
      cg = readCgroupPath(e.pid);
      if (cg !== null) {
        if (this.cgroups.size > 10_000) this.cgroups.clear();
        this.cgroups.set(e.execId, cg);
      }
    }
    return cg ?? null;
  }

  private fact(e: ProcessEntry | undefined): ProcFact | null {
    return e ? new EntryFact(e, this) : null;
  }

  /** @internal EntryFact's cgroup getter */
  cgroupFor(e: ProcessEntry): string | null {
    return this.cgroupOf(e);
  }

  /** @internal RecordFact's cgroup getter: a reaped process's path, if it was learned */
  knownCgroup(execId: string): string | null {
    return this.cgroups.get(execId) ?? null;
  }

  /** The process `execId` as a fact: the table's entry, or a reaped process's record. */
  private factOf(execId: string): ProcFact | null {
    const e = this.table.entryOf(execId);
    if (e !== undefined) return new EntryFact(e, this);
    const r = this.table.recordFields(execId);
    return r === undefined ? null : new RecordFact(r, this);
  }

  /** The process holding `pid` at `atNs`: the live one if it started by then, else the one that
   *  exited with that pid within 10 s before (the table keeps it for its grace period). */
  byPid(pid: number, atNs: bigint): ProcFact | null {
    // kmsg stamps with local_clock(), a few ms off CLOCK_BOOTTIME: a process that lived 1 ms
    // can look as if it started after its own kernel line. 100 ms of slack; pid reuse is slower.
    const slack = 100_000_000n;
    const live = this.table.byPid(pid);
    if (live && live.startNs <= atNs + slack) return this.fact(live);
    const id = this.exited.get(pid);
    const dead = id === undefined ? null : this.factOf(id);
    if (dead && dead.startNs <= atNs + slack && (dead.exitNs === null || dead.exitNs >= atNs - 10_000_000_000n)) return dead;
    return live ? this.fact(live) : null;
  }

  get(execId: string): ProcFact | null {
    return this.factOf(execId);
  }

  ancestry(execId: string): ProcFact[] {
    return this.table.ancestry(execId).slice(1).map((e) => this.fact(e)!);
  }

  /** Learns the cgroup while the process is alive (call at exec for processes of interest). */
  remember(execId: string, pid: number): void {
    if (!this.cgroups.has(execId)) this.cgroups.set(execId, readCgroupPath(pid));
  }
}

export interface RulesServiceOptions {
  config: RulesConfig;
  table: ProcessTable;
  log: Logger;
  nowNs: () => bigint;
  states?: StatesLike | null;
  /** kernel-log records older than this many ms at start are skipped (default 60 s) */
  kmsgBacklogMs?: number;
  /** a throw from the engine while a batch of lifecycle events is applied (the rest of the
   *  batch is still applied); without it the first throw is rethrown after the batch */
  onError?: (e: unknown) => void;
  /** runs before a kernel-log or tailed line goes in (the agent drains the lifecycle ring, so
   *  the line meets the process events the kernel wrote before it) */
  beforeInput?: () => void;
  windows?: WindowFacts;
  alerts?: AlertSource;
  /** the agent's shared periodic wakeup: coalesced firings are rendered there, once a second,
   *  rather than on a timer of their own (without it: the 500 ms expiry timer renders them) */
  ticker?: Pick<Ticker, 'every'>;
}

export interface ExplainResult {
  alert: AlertLike | null;
  causes: RankedCause[];
  /** version of the rule set that ranked the causes (each cause names the set that found it) */
  version: string;
}

/** What a rules reload did (ReloadCoordinator reports it per part). */
export interface RulesReloadReport {
  ok: boolean;
  /** the running set changed content (its version moved) */
  changed: boolean;
  /** version of the running set after the reload */
  version: string;
  /** code of the first diagnostic, when rejected */
  code?: string;
  diagnostics: string[];
}

/** The addon's readiness poll and libuv fd watch, when the addon is there (rules also run
 *  without BPF): /dev/kmsg is then read when the kernel logs, with no timer. */
function fdReadableOption(): Pick<KmsgReaderOptions, 'readable' | 'watch'> {
  try {
    const n = native();
    const f = n.fdReadable;
    const W = n.FdWatch;
    return { ...(f ? { readable: (fd: number) => f(fd) } : {}), ...(W ? { watch: (fd: number, cb: () => void) => new W(fd, cb) } : {}) };
  } catch {
    return {};
  }
}

export class RulesService {
  private readonly eng: RuleEngine;
  /** The engine, with every lifecycle event received so far applied: a reader from outside
   *  (the API, tests) never sees a batch still waiting. */
  get engine(): RuleEngine {
    this.flushLifecycle();
    return this.eng;
  }
  readonly registry = new RuleRegistry();
  readonly facts: TableFacts;
  private kmsg: KmsgReader | null = null;
  private expiry: NodeJS.Timeout | null = null;
  /** the ticker's once-a-second rendering of coalesced firings (when the agent gave a ticker) */
  private findingsTick: Tick | null = null;
  private closed = false;
  private tailers = new Map<string, FileTailer>();
  alerts: AlertSource | null;
  /** diagnostics of the last rejected reload (empty when the last load succeeded) */
  lastDiagnostics: string[] = [];
  private loaded = false;

  private constructor(private readonly opts: RulesServiceOptions) {
    this.facts = new TableFacts(opts.table);
    this.alerts = opts.alerts ?? null;
    const states = opts.states;
    this.eng = new RuleEngine({
      clock: systemClock(opts.nowNs),
      processes: this.facts,
      ...(opts.windows ? { windows: opts.windows } : {}),
      ...(states
        ? {
            states: {
              zombies: (now: bigint) => states.zombies(now),
              stuckD: (now: bigint) => states.stuckD(now, states.dThresholdNs),
            },
          }
        : {}),
    });
  }

  get dir(): string {
    return this.opts.config.dir ?? BUILTIN_RULES_DIR;
  }

  /** sha256 of the running set's canonical content */
  get version(): string {
    return this.registry.set.version;
  }

  /** A new rules config (reload): the next reload() reads `dir`; the kernel log reader starts or
   *  stops with `kmsg`. */
  setConfig(config: RulesConfig): void {
    // the waiting events were received under the old config: they go in first
    this.flushLifecycle();
    (this.opts as { config: RulesConfig }).config = config;
    if (config.kmsg && !this.kmsg) this.startKmsg();
    else if (!config.kmsg && this.kmsg) {
      this.kmsg.close();
      this.kmsg = null;
    }
  }

  private startKmsg(): void {
    const opts = this.opts;
    try {
      this.kmsg = new KmsgReader((rec) => (this.opts.beforeInput?.(), this.engine.onKmsg(rec), this.armExpiry()), { sinceNs: opts.nowNs() - BigInt(opts.kmsgBacklogMs ?? 60_000) * 1_000_000n, ...fdReadableOption() }).start();
    } catch (e) {
      opts.log.warn({ err: (e as Error).message }, 'cannot read /dev/kmsg: kernel-log rules (OOM, segfault, hung task) are off');
    }
  }

  /** Loads the rules (a bad set at start is an error: the agent refuses to run with it). */
  static start(opts: RulesServiceOptions): RulesService {
    const s = new RulesService(opts);
    const r = s.reload();
    if (!r.ok) throw new Error(`rules: ${r.diagnostics.map(formatDiagnostic).join('\n')}`);
    if (opts.config.kmsg) s.startKmsg();
    // the ticker drained the ring before its tick: the batch goes in, then the firings render
    if (opts.ticker) s.findingsTick = opts.ticker.every(1000, () => s.engine.flushFindings());
    return s;
  }

  /** read → compile → swap; a failing set keeps the running one. The swap is one assignment on
   *  the event loop: every event before it meets the old set, every event after it the new. */
  reload(): LoadResult {
    return this.reloadReport().result;
  }

  reloadReport(): RulesReloadReport & { result: LoadResult } {
    const prev = this.loaded ? this.registry.set.version : null;
    const r = this.registry.reload(this.dir);
    if (r.ok) {
      this.engine.setRules(r.set);
      this.loaded = true;
      this.lastDiagnostics = [];
      this.syncTailers();
      const changed = r.set.version !== prev;
      this.opts.log.info({ rules: r.set.rules.length, dir: this.dir, version: r.set.version, changed }, 'rules loaded');
      return { ok: true, changed, version: r.set.version, diagnostics: [], result: r };
    }
    this.lastDiagnostics = r.diagnostics.map(formatDiagnostic);
    const code = r.diagnostics[0]?.code ?? 'E_RULES';
    this.opts.log.error({ code, diagnostics: this.lastDiagnostics, version: this.registry.set.version }, 'rule set rejected; the running set stays');
    return { ok: false, changed: false, version: this.registry.set.version, code, diagnostics: this.lastDiagnostics, result: r };
  }

  private syncTailers(): void {
    const want = new Set(this.engine.logPaths());
    for (const [p, t] of this.tailers) {
      if (!want.has(p)) {
        t.close();
        this.tailers.delete(p);
      }
    }
    for (const p of want) {
      if (!this.tailers.has(p)) this.tailers.set(p, new FileTailer(p, (line) => (this.opts.beforeInput?.(), this.engine.onLogLine(p, line, this.opts.nowNs()), this.armExpiry())).start());
    }
  }

  // Lifecycle events reach the engine in batches (rules.batch_interval, 250 ms by default).
  //
  // Why. While a live stream is followed the agent drains the ring every 15 ms, and on the VM
  // we measured a drain's largest cost is the first touch, after the thread slept, of each
  // consumer's code and data: the rules cost less for fifty processes at once than for three at
  // a time, 67 times a second (bench/README.md, "Session 16"). Findings are read by people and
  // alert pipelines, for whom a quarter of a second is nothing. (Unwatched, each drain is itself
  // a batch: the agent applies what waits at its end, `onDrained`.)
  //
  // Order. The engine sees the same inputs in the same order as without the batch: every other
  // way in (a kernel-log line, a tailed line, a state event, a reload, the expiry timer, any
  // reader of `engine`) applies the waiting events first. Events carry their own kernel times,
  // which the rules' history and windows use; `en` is the table's answer at the event. What a
  // rule reads live when it fires (the process table for proc.* fields and evidence, the states
  // for zombies.* and stuck_d.*) is read when the batch is applied, up to the interval later.
  //
  // When. A batch is applied at the event that arrives `batchIntervalMs` (kernel time) after its
  // first one, so a steady stream adds no wakeup; when the stream stops, a timer applies the
  // rest 1.25 × the interval after the first arrived.
  private readonly waitingEv: LifecycleEvent[] = [];
  private readonly waitingEn: Enriched[] = [];
  /** kernel time at which the waiting batch is due (its first event's + the interval) */
  private dueNs = 0n;
  private batchTimer: NodeJS.Timeout | null = null;
  /** events applied in batches, and the batches (stats) */
  private batched = { events: 0, batches: 0, maxEvents: 0 };
  /** a batch this large is applied at once (a burst must not hold a second of events) */
  static readonly MAX_BATCH = 4096;

  onLifecycle(ev: LifecycleEvent, en: Enriched): void {
    if (ev.type === 'exec_failed' && ev.pathProbe === true) return; // a search step, not a failure
    const ms = this.opts.config.batchIntervalMs ?? 0;
    if (ms <= 0 || this.closed) {
      this.applyLifecycle(ev, en);
      if (this.expiry === null && this.expiryDue()) this.armExpiry();
      return;
    }
    const evs = this.waitingEv;
    if (evs.length === 0) {
      this.dueNs = ev.ktimeNs + BigInt(ms) * 1_000_000n;
      // cleared at every application, so a stopped stream costs one wakeup and a reload's new
      // interval takes effect at the next batch
      this.batchTimer = setTimeout(this.onBatchTimer, Math.ceil(ms * 1.25));
      this.batchTimer.unref();
    }
    evs.push(ev);
    this.waitingEn.push(en);
    if (ev.ktimeNs >= this.dueNs || evs.length >= RulesService.MAX_BATCH) this.flushLifecycle();
  }

  /** lifecycle events received and not yet applied */
  get waitingEvents(): number {
    return this.waitingEv.length;
  }

  private readonly onBatchTimer = (): void => {
    this.batchTimer = null;
    this.flushLifecycle();
  };

  /** Applies the waiting lifecycle events, in order. */
  flushLifecycle(): void {
    const evs = this.waitingEv;
    const n = evs.length;
    if (n === 0) return;
    if (this.batchTimer !== null) {
      clearTimeout(this.batchTimer);
      this.batchTimer = null;
    }
    const ens = this.waitingEn;
    let first: unknown = null;
    let failed = false;
    for (let i = 0; i < n; i++) {
      try {
        this.applyLifecycle(evs[i]!, ens[i]!);
      } catch (e) {
        // one event's throw must not drop the rest of the batch
        if (this.opts.onError) this.opts.onError(e);
        else if (!failed) {
          failed = true;
          first = e;
        }
      }
    }
    evs.length = 0;
    ens.length = 0;
    const b = this.batched;
    b.events += n;
    b.batches++;
    if (n > b.maxEvents) b.maxEvents = n;
    if (this.expiry === null && this.expiryDue()) this.armExpiry();
    if (failed) throw first;
  }

  private applyLifecycle(ev: LifecycleEvent, en: Enriched): void {
    if (ev.type === 'exit') this.facts.noteExit(ev.pid, en.execId);
    this.eng.onLifecycle(ev, en);
  }

  /** Whether the 500 ms expiry timer has work: deferred lines always; coalesced firings only
   *  without a ticker (with one they render at its tick, so a storm, which keeps a firing
   *  pending all the time, adds no wakeup and no drain of its own). */
  private expiryDue(): boolean {
    return this.findingsTick !== null ? this.eng.hasDeferredLines() : this.eng.hasPendingWork();
  }

  /** Deferred lines (and, without a ticker, coalesced firings) are settled 500 ms later; the
   *  timer runs only while there are some, so a quiet agent does not wake for it. */
  private armExpiry(): void {
    if (this.expiry !== null || this.closed || !this.expiryDue()) return;
    this.expiry = setTimeout(() => {
      this.expiry = null;
      // a kernel line waiting for its process: what the kernel wrote since goes in first
      this.opts.beforeInput?.();
      this.engine.expireDeferred();
      this.armExpiry();
    }, 500);
    this.expiry.unref();
  }

  onState(ev: StateStreamEvent): void {
    if (ev.type !== 'state') return;
    const e = this.opts.table.byPid(ev.pid);
    this.engine.onState(ev, e && e.startNs === ev.startNs ? e.execId : (e?.execId ?? null));
    if (this.expiry === null) this.armExpiry();
  }

  /** Causes for one alert; null when the alert is unknown. */
  explain(alertId: string): ExplainResult | null {
    const alert = this.alerts?.get(alertId) ?? null;
    if (!alert) return null;
    return { alert, causes: this.engine.explain(alert), version: this.version };
  }

  /** Ranked causes of an alert that is not stored yet (the check engine asks as it fires), as
   *  plain JSON: kernel bigints become numbers. `version`: the rule set that ranked them. */
  attribute(a: AlertLike): { causes: unknown[]; version: string } {
    const causes = this.engine.explain(a);
    const version = this.version;
    return JSON.parse(JSON.stringify({ causes, version }, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))) as { causes: unknown[]; version: string };
  }

  /** The latest alerts with their causes, and the notable findings (OOM kills, segfaults, crash loops). */
  explainRecent(limit = 10): { alerts: ExplainResult[]; causes: RankedCause[]; version: string } {
    const version = this.version;
    const alerts = (this.alerts?.recent(limit) ?? []).map((a) => ({ alert: a, causes: this.engine.explain(a), version }));
    return { alerts, causes: this.engine.rankRecent(limit * 2), version };
  }

  profile(): RuleProfile[] {
    return this.engine.profile();
  }

  stats() {
    return { ...this.engine.stats(), lifecycleBatches: { ...this.batched }, kmsg: this.kmsg?.stats ?? null, tailers: [...this.tailers.values()].map((t) => ({ path: t.path, ...t.stats })) };
  }

  close(): void {
    // a stopping agent (or a reload replacing this service) applies what waits: nothing is lost
    try {
      this.flushLifecycle();
    } finally {
      if (this.batchTimer) clearTimeout(this.batchTimer);
      this.batchTimer = null;
      this.closed = true;
      if (this.expiry) clearTimeout(this.expiry);
      this.expiry = null;
      this.findingsTick?.cancel();
      this.findingsTick = null;
      this.kmsg?.close();
      for (const t of this.tailers.values()) t.close();
      this.tailers.clear();
    }
  }
}

/** The API's view of attribution. */
export function explainView(rules: RulesService): ExplainView {
  return {
    explain: (id) => rules.explain(id),
    explainRecent: (limit) => rules.explainRecent(limit),
    rules: () => ({
      dir: rules.dir,
      version: rules.version,
      rules: rules.registry.set.rules.length,
      diagnostics: rules.lastDiagnostics,
      profile: rules.profile().map((p) => ({
        rule: p.rule, source: p.source, evaluations: p.evaluations, pattern_matches: p.patternMatches, tree_runs: p.treeRuns, matches: p.matches,
        time_ms: p.timeNs / 1e6, max_us: p.maxNs / 1e3,
      })),
      stats: rules.stats() as unknown as Record<string, unknown>,
    }),
  };
}

/** The resource windows (src/metrics) as the rules' WindowFacts: RSS samples, top writers. */
export function rssWindows(resources: ResourcePipeline): WindowFacts {
  const procs = resources.processes;
  return {
    // RSS samples with the peaks (hiwater, the exit record's max RSS) merged in
    rss: rssFacts(procs).rss,
    topWriters(windowMs, nowNs, limit) {
      const nowMs = nsToMs(nowNs);
      const out: WriterFigure[] = [];
      for (const e of procs.windows.values()) {
        const bytes = procs.figures(e, 'io_write', nowMs, windowMs)?.sum ?? 0;
        if (bytes > 0) out.push({ execId: e.meta.execId, pid: e.meta.pid, comm: e.meta.comm, bytes });
      }
      for (const r of procs.exited.records(nowMs - windowMs, nowMs)) {
        if (r.writeBytes > 0) out.push({ execId: r.execId, pid: r.pid, comm: r.comm, bytes: r.writeBytes });
      }
      return out.sort((a, b) => b.bytes - a.bytes).slice(0, limit);
    },
  };
}

/** rssWindows of whatever resource pipeline runs now (a reload may restart or stop it); no
 *  samples and no writers while none runs. */
export function lazyRssWindows(get: () => ResourcePipeline | null): WindowFacts {
  let source: ResourcePipeline | null = null;
  let facts: WindowFacts | null = null;
  const current = (): WindowFacts | null => {
    const r = get();
    if (r !== source) {
      source = r;
      facts = r ? rssWindows(r) : null;
    }
    return facts;
  };
  return {
    rss: (execId, windowMs, nowNs) => current()?.rss(execId, windowMs, nowNs) ?? [],
    topWriters: (windowMs, nowNs, limit) => current()?.topWriters?.(windowMs, nowNs, limit) ?? [],
  };
}

/** A stored alert as the check engine keeps it (issue 6: `name` is the check's name, `at` epoch ms). */
export interface StoredAlertLike {
  id: string;
  name: string;
  state: string;
  at: number;
  evidence: unknown;
}

/** The check engine's alert query as the rules' AlertSource: wire with
 *  `rules.alerts = alertSource((q) => checks.alerts(q))` once both run in the agent. */
export function alertSource(query: (q: { limit: number }) => StoredAlertLike[]): AlertSource {
  const like = (a: StoredAlertLike): AlertLike => ({ id: a.id, check: a.name, state: a.state, ts: a.at, evidence: a.evidence });
  return {
    get: (id) => {
      const a = query({ limit: 1000 }).find((x) => x.id === id);
      return a ? like(a) : null;
    },
    recent: (limit) => query({ limit }).map(like),
  };
}
