// Checks in the app: the sources a standalone `patrol check` uses, the replay of a recording,
// and the agent's check service (load a directory, swap atomically on change, run the schedule,
// store results and alerts). The only place that wires src/checks to the other stages.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import type { LifecycleEvent, StateStreamEvent } from '../shared/events.js';
import type { Enriched, ProcessStates, ProcessTable } from '../process/index.js';
import { boottimeNs } from '../kernel/index.js';
import {
  EventCounters, Executor, FakeClock, FsSystemSource, Unavailable, HostNodeSource, ProcFsProcessSource, checkFilesIn, collectAggregates, compileFiles, formatAll,
  type AgentSource, type Alert, type CheckResult, type CheckSources, type CompiledCheck, type Diagnostic, type EventCountSource, type EventFact, type WindowQuery,
  type ProcessInfo, type ProcessSource,
} from '../checks/index.js';
import { CheckStore } from '../store/index.js';
import type { ChecksView } from '../api/index.js';
import type { AgentConfig } from './config.js';
import type { ResourcePipeline } from './resources.js';
import { windowQuery } from './window-query.js';

/**
 * The agent's process list for checks (zombie_count, d_state_count, process_count): its process
 * table, with each process's state from the state sensor, instead of a /proc walk. The walk read
 * one stat file per process: on a node of 1,000 processes it was the costliest check at idle
 * (bench/README.md, "Session 13"). A zombie is a process whose group exited and that is not
 * reaped yet (the exit record), and D is the leader's state at the last state sweep or exact
 * transition. Until both pipelines run (the checks start first), the list comes from /proc.
 * A walk of the table reads no file, so unlike the /proc source it keeps no cached list.
 */
export class AgentProcessSource implements ProcessSource {
  constructor(
    private readonly view: () => { table: ProcessTable; states: ProcessStates } | null,
    private readonly fallback: ProcessSource = new ProcFsProcessSource(),
  ) {}

  list(): Promise<readonly ProcessInfo[]> | readonly ProcessInfo[] {
    const v = this.view();
    if (v === null) return this.fallback.list();
    const out: ProcessInfo[] = [];
    for (const e of v.table.values()) {
      if (e.state === 'dead') continue;
      // a process the state sensor has not placed yet is sleeping, as most processes are
      out.push({ pid: e.pid, comm: e.comm, state: e.state === 'zombie' ? 'Z' : (v.states.letterOf(e.execId) ?? 'S') });
    }
    return out;
  }
}

/** Node, process and system sources of this machine; no windows; events only when given. */
export function localSources(events?: EventCountSource): CheckSources {
  return { node: new HostNodeSource(), processes: new ProcFsProcessSource(), system: new FsSystemSource(), ...(events ? { events } : {}) };
}

// ------------------------------------------------------------------ replay

/** An NDJSON record (docs/ndjson.md) → an event fact on the recording's clock (ktime ms). */
const EVENT_RECORD_TYPES: ReadonlySet<string> = new Set(['exec', 'fork', 'exit', 'reap', 'exec_failed', 'state']);

export function factFromRecord(r: Record<string, unknown>): EventFact | null {
  if (typeof r.ktime_ns !== 'string' && typeof r.ktime_ns !== 'number') return null;
  const t = Number(BigInt(r.ktime_ns) / 1_000_000n);
  const n = (v: unknown) => (typeof v === 'number' ? v : null);
  const s = (v: unknown) => (typeof v === 'string' ? v : null);
  const secs = (v: unknown) => (typeof v === 'number' ? v / 1e9 : null);
  switch (r.type) {
    case 'exec':
      return { kind: 'exec', t, f: { pid: n(r.pid), ppid: n(r.ppid), uid: n(r.uid), comm: s(r.comm), filename: s(r.filename) } };
    case 'fork':
      return r.thread === true ? null : { kind: 'fork', t, f: { pid: n(r.pid), ppid: n(r.ppid), comm: s(r.comm) } };
    case 'exit': {
      if (typeof r.tid === 'number' && r.tid !== r.pid) return null;
      const usage = (r.usage ?? {}) as Record<string, unknown>;
      return {
        kind: 'exit', t,
        f: {
          pid: n(r.pid), ppid: n(r.ppid), comm: s(r.comm), exit_code: n(r.exit_code), signal: n(r.signal), core_dumped: r.core_dumped === true,
          failed: r.signal !== null || r.exit_code !== 0, duration: secs(r.duration_ns), cpu: secs(usage.cpu_ns), max_rss: typeof usage.max_rss_kb === 'number' ? usage.max_rss_kb * 1024 : null,
        },
      };
    }
    case 'exec_failed':
      // a PATH-search probe is not a failure (the agent does not count it either)
      if (r.path_probe === true) return null;
      return { kind: 'exec_failed', t, f: { pid: n(r.pid), comm: s(r.comm), filename: s(r.filename), errno: n(r.errno) } };
    case 'reap':
      return { kind: 'reap', t, f: { pid: n(r.pid), zombie: secs(r.zombie_ns) } };
    case 'state':
      return { kind: 'state', t, f: { pid: n(r.pid), comm: s(r.comm), from: s(r.from), to: s(r.to), duration: secs(r.duration_ns) } };
    default:
      return null;
  }
}

export interface ReplayOutcome {
  /** every run, in time order */
  runs: CheckResult[];
  alerts: Alert[];
  /** the last result of each check */
  final: CheckResult[];
  events: number;
  /** checks left out because they read more than events */
  skipped: CompiledCheck[];
}

/** Evaluates the event-based checks against a recording, deterministically: the clock is the
 *  recording's (ktime), each check runs on its own schedule from the first event on, and once
 *  more after the last. Times in the outcome are wall ms, from the records' `time`. */
export async function replayRecording(checks: readonly CompiledCheck[], path: string): Promise<ReplayOutcome> {
  const facts: EventFact[] = [];
  let offset: number | null = null;
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new PatrolError('E_REPLAY', `${path}:${lineNo}: not a JSON record (is this a patrol record / trace --json file?)`);
      }
      const f = factFromRecord(rec);
      if (f === null) {
        // an event record that cannot be placed in time would silently change every count
        if (EVENT_RECORD_TYPES.has(rec.type as string) && typeof rec.ktime_ns !== 'string' && typeof rec.ktime_ns !== 'number') {
          throw new PatrolError('E_REPLAY', `${path}:${lineNo}: ${String(rec.type)} record without ktime_ns (record with patrol record or patrol trace --json)`);
        }
        continue;
      }
      if (offset === null && typeof rec.time === 'string' && !Number.isNaN(Date.parse(rec.time))) offset = Date.parse(rec.time) - f.t;
      facts.push(f);
    }
  } catch (e) {
    if (e instanceof PatrolError) throw e;
    throw new PatrolError('E_REPLAY', `${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  facts.sort((a, b) => a.t - b.t);
  const eventChecks = checks.filter((c) => c.usesEvents);
  const skipped = checks.filter((c) => !c.usesEvents);
  const out: ReplayOutcome = { runs: [], alerts: [], final: [], events: facts.length, skipped };
  if (eventChecks.length === 0) return out;
  const start = facts[0]?.t ?? 0;
  const clock = new FakeClock(start);
  // the same counters the agent keeps, fed on the recording's clock
  const counters = new EventCounters();
  counters.configure(collectAggregates(eventChecks), start);
  const toWall = (ms: number) => ms + (offset ?? 0);
  const exec = new Executor({
    sources: { events: counters },
    clock,
    concurrency: 1,
    onResult: (r) => out.runs.push({ ...r, at: toWall(r.at) }),
    onAlert: (a) => out.alerts.push({ ...a, at: toWall(a.at) }),
  });
  exec.setChecks(eventChecks);
  exec.start();
  for (const f of facts) {
    // runs due before this event's millisecond happen first; a run at exactly f.t sees it
    if (f.t - 1 > clock.now()) await clock.advance(f.t - 1 - clock.now());
    counters.addFact(f);
  }
  // one more run of every check at the end of the recording
  const longest = Math.max(...eventChecks.map((c) => c.everyMs));
  await clock.advance(longest);
  await exec.idle();
  exec.stop();
  const last = new Map<string, CheckResult>();
  for (const r of out.runs) last.set(r.check_id, r);
  out.final = eventChecks.flatMap((c) => (last.has(c.id) ? [last.get(c.id)!] : []));
  return out;
}

// ------------------------------------------------------------------ the agent's check service

export interface ReloadReport {
  /** ms since the epoch */
  at: number;
  ok: boolean;
  checks: number;
  files: number;
  /** formatted diagnostics (errors and warnings) */
  diagnostics: string[];
  errors: number;
  /** version of the set read (null when it could not be read); running only when `ok` */
  version: string | null;
  /** the running set changed (ok and a different version) */
  changed: boolean;
  /** code of the first error, when not ok */
  code?: string;
}

export interface CheckServiceOptions {
  dir: string;
  log: Logger;
  store: CheckStore | null;
  concurrency: number;
  /** resource windows, when src/metrics runs */
  windows?: WindowQuery;
  /** ranked causes of a firing alert (the attribution engine), stored with the alert */
  attribute?: (a: Alert) => unknown;
  /** ms on the event clock (default CLOCK_BOOTTIME, the clock of event ktimes) */
  eventNow?: () => number;
  /** the agent's own figures (events_lost) */
  agent?: AgentSource;
  /** alert delivery (issue 17): queues the alert durably for the configured outputs */
  deliver?: (a: Alert, attribution: unknown) => void;
  /** the process list (the agent's: AgentProcessSource); /proc when absent */
  processes?: ProcessSource;
  /** before checks run: the agent drains its lifecycle ring (Executor's beforeRun) */
  beforeRun?: () => void;
}

const bootMs = () => Number(boottimeNs() / 1_000_000n);

export class CheckService {
  /** one counter per event aggregate of the running set; events feed only these */
  readonly counters = new EventCounters();
  readonly executor: Executor;
  private readonly eventNow: () => number;
  lastReload: ReloadReport | null = null;
  /** version of the running set (null until a set loads) */
  version: string | null = null;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;

  constructor(private readonly opts: CheckServiceOptions) {
    this.eventNow = opts.eventNow ?? bootMs;
    const sources: CheckSources = {
      ...localSources(this.counters), ...(opts.windows ? { windows: opts.windows } : {}), ...(opts.agent ? { agent: opts.agent } : {}),
      ...(opts.processes ? { processes: opts.processes } : {}),
    };
    const seeded = opts.store?.lastAlertedStates();
    this.executor = new Executor({
      sources,
      concurrency: opts.concurrency,
      ...(opts.beforeRun ? { beforeRun: opts.beforeRun } : {}),
      eventNow: this.eventNow,
      onResult: (r) => opts.store?.recordResult(r),
      onAlert: (a) => {
        // Attribution is taken when the alert fires, so the stored alert says what the engine
        // knew then; `patrol explain` recomputes it with whatever arrived since.
        let attribution: unknown = null;
        if (opts.attribute && (a.kind === 'firing' || a.kind === 'flapping')) {
          try {
            attribution = opts.attribute(a);
          } catch (e) {
            opts.log.warn({ alert_id: a.id, err: (e as Error).message }, 'checks: attribution failed');
          }
        }
        // Delivery first, then the check store at once: a kill between them re-alerts after the
        // restart (a duplicate page) instead of never delivering (a lost one).
        opts.deliver?.(a, attribution);
        opts.store?.recordAlert({ ...a, attribution });
        if (opts.deliver) opts.store?.flush();
        const level = a.kind === 'resolved' || a.kind === 'flapping_end' ? 'info' : 'warn';
        opts.log[level]({ alert_id: a.id, check: a.name, kind: a.kind, state: a.state, previous: a.previous }, `check alert: ${a.message}`);
      },
    });
    if (seeded) this.executor.seedAlerted(seeded);
  }

  /** Loads the directory and starts the schedule; a bad set at start runs nothing until fixed. */
  start(): ReloadReport {
    const r = this.reload('start');
    this.executor.start();
    try {
      this.watcher = watch(this.opts.dir, () => {
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.reload('change'), 300);
        this.debounce.unref();
      });
      this.watcher.unref();
      this.watcher.on('error', (e) => this.opts.log.warn({ err: e.message }, 'checks: watching the directory failed; reload with SIGHUP'));
    } catch (e) {
      this.opts.log.warn({ dir: this.opts.dir, err: (e as Error).message }, 'checks: cannot watch the directory; reload with SIGHUP');
    }
    return r;
  }

  /** Reads and compiles every file; swaps the running set only if all compiled without error. */
  reload(why: string): ReloadReport {
    let files: string[] = [];
    let report: ReloadReport;
    try {
      files = checkFilesIn(this.opts.dir);
      const c = compileFiles(files);
      const errs = c.diagnostics.filter((d: Diagnostic) => d.severity === 'error');
      const errors = errs.length;
      const diagnostics = c.diagnostics.length ? formatAll(c.diagnostics, c.sources).split('\n\n') : [];
      const changed = errors === 0 && c.version !== this.version;
      report = { at: Date.now(), ok: errors === 0, checks: c.checks.length, files: files.length, diagnostics, errors, version: c.version, changed, ...(errors ? { code: errs[0]!.code } : {}) };
      if (errors === 0) {
        // counters first: the new set's first run must find every aggregate it reads. One
        // synchronous step: no run starts between the two, and every later run carries the new
        // version (a run already going keeps the version it started under).
        this.counters.configure(collectAggregates(c.checks), this.eventNow());
        this.executor.setChecks(c.checks, c.version);
        this.version = c.version;
      }
    } catch (e) {
      report = {
        at: Date.now(), ok: false, checks: 0, files: files.length, diagnostics: [`${this.opts.dir}: ${(e as Error).message}`], errors: 1, version: null, changed: false,
        code: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'E_CHECKS_DIR' : 'E_CHECKS_READ',
      };
    }
    this.lastReload = report;
    if (report.ok) this.opts.log.info({ why, dir: this.opts.dir, files: report.files, checks: report.checks, warnings: report.diagnostics.length, version: report.version, changed: report.changed }, 'checks loaded');
    else {
      this.opts.log.error({ why, dir: this.opts.dir, code: report.code, errors: report.errors, diagnostics: report.diagnostics, version: this.version }, `checks: the new set has ${report.errors} error(s); the running set stays (${this.executor.checks.length} checks)`);
    }
    return report;
  }

  /** On the agent's hot path: an event of a kind no check reads costs one lookup. */
  onLifecycle(ev: LifecycleEvent, en: Enriched): void {
    // PATH-search probes are not failures: exec_failed counts and exit_failures leave them out
    if (ev.type === 'exec_failed' && ev.pathProbe === true) return;
    this.counters.onLifecycle(ev, en);
  }

  /** The agent's own figures changed (a record was lost): the checks reading them run now, so
   *  their alert does not wait for the schedule. */
  agentFiguresChanged(): void {
    this.executor.runNow((c) => c.usesAgent);
  }

  onState(ev: StateStreamEvent): void {
    if (ev.type === 'state') this.counters.onState(ev);
  }

  close(): void {
    this.executor.stop();
    this.watcher?.close();
    if (this.debounce) clearTimeout(this.debounce);
  }
}

// ------------------------------------------------------------------ agent wiring

export interface AgentChecks {
  service: CheckService;
  view: ChecksView;
  close(): void;
}

/** The resource windows as the checks see them, once the resource pipeline runs (it starts
 *  after the checks); with metrics disabled, windowed checks are unknown and say why. */
export function lazyWindows(get: () => ResourcePipeline | null): WindowQuery {
  let source: ResourcePipeline | null = null;
  let query: ReturnType<typeof windowQuery> | null = null;
  const current = (): ReturnType<typeof windowQuery> => {
    const r = get();
    if (r === null) throw new Unavailable('resource windows are not running (metrics.enabled: false, or still starting)');
    if (r !== source || query === null) {
      source = r;
      query = windowQuery(r.processes, r.cgroups, r.node);
    }
    return query;
  };
  return {
    aggregate(metric, agg, windowMs, by) {
      return current().aggregate(metric, agg, windowMs, by);
    },
    trend(metric, windowMs, by) {
      return current().trend(metric, windowMs, by);
    },
    memoryLimit(by, key) {
      return current().memoryLimit(by, key);
    },
  };
}

/** Starts the check service of the agent: its own store connection (same file), the schedule,
 *  the directory watch. null when checks.dir is not set. */
export function startAgentChecks(
  cfg: AgentConfig,
  log: Logger,
  resources: () => ResourcePipeline | null = () => null,
  attribute?: (a: Alert) => unknown,
  agent?: AgentSource,
  deliver?: (a: Alert, attribution: unknown) => void,
  processes?: ProcessSource,
  beforeRun?: () => void,
): AgentChecks | null {
  if (cfg.checks.dir === null) return null;
  // A wrong directory is a typo, not an empty pack: stop before running zero checks silently
  // (a bad rules directory stops the agent too).
  let dirStat;
  try {
    dirStat = statSync(cfg.checks.dir);
  } catch (e) {
    throw new PatrolError('E_CONFIG', `checks.dir: ${cfg.checks.dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : ((e as NodeJS.ErrnoException).code ?? (e as Error).message)}`);
  }
  if (!dirStat.isDirectory()) throw new PatrolError('E_CONFIG', `checks.dir: ${cfg.checks.dir} is not a directory`);
  const store = CheckStore.open(cfg.store.path, {
    runs: cfg.checks.retention,
    alerts: cfg.checks.retention,
    flushIntervalMs: Math.max(cfg.store.flushIntervalMs, 1000),
    log,
  });
  store.startTimer();
  const service = new CheckService({
    dir: cfg.checks.dir, log, store, concurrency: cfg.checks.concurrency, windows: lazyWindows(resources),
    ...(attribute ? { attribute } : {}), ...(agent ? { agent } : {}), ...(deliver ? { deliver } : {}), ...(processes ? { processes } : {}),
    ...(beforeRun ? { beforeRun } : {}),
  });
  service.start();
  const view: ChecksView = {
    status: () => ({
      dir: cfg.checks.dir!,
      checks: service.executor.checks.map((c) => ({ id: c.id, name: c.name, file: c.file, line: c.line, every_ms: c.everyMs, timeout_ms: c.timeoutMs, labels: c.labels })),
      version: service.version,
      last_reload: service.lastReload,
    }),
    results: (q) => {
      store.flush();
      return store.queryRuns(q);
    },
    alerts: (q) => {
      store.flush();
      return store.queryAlerts(q);
    },
  };
  return {
    service,
    view,
    close: () => {
      service.close();
      store.close();
    },
  };
}
