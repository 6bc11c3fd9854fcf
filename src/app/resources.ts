// Composition of the resource windows (issue 5): the sweep timer, its source (BPF task iterator
// or /proc), the process/cgroup/node windows, exits from the lifecycle stream, and /metrics.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import type { ExitEvent } from '../shared/events.js';
import type { ProcUsage } from '../shared/usage.js';
import { boottimeNs } from '../kernel/index.js';
import { UsageSweepDecoder } from '../wire/index.js';
import { execIdFactory, readBootId, readProcUsage, type ProcessTable } from '../process/index.js';
import { CgroupResolver } from '../host/index.js';
import {
  CgroupWindows, MAX_SAMPLES_PER_WINDOW, NodeWindows, PatrolMetrics, ProcessWindows, nodeStrip, nsToMs, processHistory, topGroups, topRows,
  type AgentHealth, type SeriesOptions, type TopGroup, type TopRow, type TopSort,
} from '../metrics/index.js';
import { formatDurationMs } from './duration.js';
import type { MetricsConfig } from './config.js';
import type { ResourcesView } from '../api/index.js';
import type { AccountingReport } from './lifecycle.js';
import { Ticker, type Tick } from './ticker.js';

const COARSE_NS = 10_000_000n; // /proc start times are in 10 ms ticks

export interface SweepStats {
  sweeps: number;
  source: 'bpf' | 'proc';
  lastMs: number;
  lastProcesses: number;
  errors: number;
}

export interface TopRequest {
  windowMs: number;
  sort: TopSort;
  limit: number;
  byCgroup: boolean;
}

export class ResourcePipeline {
  readonly processes: ProcessWindows;
  readonly node: NodeWindows;
  readonly cgroups: CgroupWindows;
  readonly resolver = new CgroupResolver();
  readonly metrics: PatrolMetrics;
  readonly sweep: SweepStats;
  private tick: Tick | null = null;
  private lastNodeSampleMs = -Infinity;
  private server: FastifyInstance | null = null;
  listenAddress: string | null = null;
  /** runs before a scrape is answered (the agent drains the lifecycle ring: counters current) */
  beforeScrape: (() => void) | null = null;

  private constructor(
    readonly cfg: MetricsConfig,
    private readonly table: ProcessTable,
    private readonly readBpf: (() => Buffer) | null,
    health: () => AgentHealth,
    private readonly log: Logger,
  ) {
    const maxWindowMs = Math.max(...cfg.windowsMs);
    // Sub-windows of a tenth of the shortest window (≥ the sweep), so every window is read
    // from at least 10 of them.
    const slotMs = Math.max(cfg.sweepMs, Math.floor(Math.min(...cfg.windowsMs) / 10));
    const series: SeriesOptions = { maxWindowMs, slotMs, maxEntries: 512, resolution: 0.01 };
    const idOf = execIdFactory(readBootId());
    this.processes = new ProcessWindows((pid, startNs) => this.identify(pid, startNs), idOf, { series, maxKeys: cfg.maxProcesses, maxExited: cfg.maxExited });
    this.node = new NodeWindows(series);
    this.cgroups = new CgroupWindows((id) => this.resolver.resolve(id), cfg.cgroupsMax, series);
    this.sweep = { sweeps: 0, source: cfg.source === 'proc' || !readBpf ? 'proc' : 'bpf', lastMs: 0, lastProcesses: 0, errors: 0 };
    this.metrics = new PatrolMetrics({
      node: this.node,
      cgroups: this.cgroups,
      processes: this.processes,
      health,
      nowMs: () => nsToMs(boottimeNs()),
      windows: cfg.windowsMs.map((ms) => ({ ms, label: formatDurationMs(ms) })),
      keyWindow: { ms: cfg.prometheus.windowMs, label: formatDurationMs(cfg.prometheus.windowMs) },
      topN: cfg.prometheus.topN,
    });
  }

  static async start(cfg: MetricsConfig, table: ProcessTable, readBpf: (() => Buffer) | null, health: () => AgentHealth, log: Logger, ticker?: Ticker): Promise<ResourcePipeline> {
    const p = new ResourcePipeline(cfg, table, readBpf, health, log);
    p.sweepOnce();
    // the sweep keeps the process alive (a pipeline started on its own serves /metrics)
    p.tick = (ticker ?? new Ticker()).every(cfg.sweepMs, () => p.sweepOnce(), { ref: true });
    if (cfg.prometheus.enabled) await p.listen();
    return p;
  }

  /** One answer object, refilled at every call: the sweep asks for every process every second,
   *  and ProcessWindows reads the answer before its next question (it never keeps it). */
  private readonly who = { execId: '', comm: '', cgroupId: null as bigint | null, exited: false };
  /** The BPF sweep's decoder: a process keeps its answer object from sweep to sweep, so an idle
   *  process costs its counters' reads and no allocation (the windows copy what they keep). */
  private readonly usage = new UsageSweepDecoder();

  private identify(pid: number, startNs: bigint) {
    const e = this.table.byPid(pid);
    if (!e) return undefined;
    // equal start times (the usual case) need no bigint arithmetic, which allocates
    if (e.startNs !== startNs) {
      const d = e.startNs - startNs;
      if (d >= COARSE_NS || d <= -COARSE_NS) return undefined;
    }
    const who = this.who;
    who.execId = e.execId;
    who.comm = e.comm;
    who.cgroupId = e.cgroupId;
    who.exited = e.exitNs !== null;
    return who;
  }

  /** One sweep: read every process, then node and cgroup counters, into the windows. */
  sweepOnce(): void {
    const t0 = performance.now();
    // The sweep's time is taken before the read: a process that exits during the read then has
    // its exit record after the sample, so applyExit still closes the remaining interval.
    const tNs = boottimeNs();
    let procs: ProcUsage[];
    if (this.sweep.source === 'bpf') {
      try {
        procs = this.usage.decode(this.readBpf!());
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'BPF usage iterator failed; sweeping /proc from now on');
        this.sweep.source = 'proc';
        this.sweep.errors++;
        procs = readProcUsage();
      }
    } else {
      procs = readProcUsage();
    }
    const tMs = nsToMs(tNs);
    this.processes.applySweep(tNs, procs);
    try {
      // Node and cgroup series get at most MAX_SAMPLES_PER_WINDOW samples per longest window,
      // like processes: a sub-second sweep then costs no more memory or merge time there.
      if (tMs - this.lastNodeSampleMs >= (Math.max(...this.cfg.windowsMs) / MAX_SAMPLES_PER_WINDOW) * 0.75) {
        this.lastNodeSampleMs = tMs;
        this.node.sample(tNs, tMs);
        this.cgroups.sample(tNs, tMs, procs);
      }
    } catch (e) {
      this.sweep.errors++;
      this.log.warn({ err: (e as Error).message }, 'node sample failed');
    }
    const ms = performance.now() - t0;
    this.metrics.sweepSeconds.observe({ source: this.sweep.source }, ms / 1000);
    this.sweep.sweeps++;
    this.sweep.lastMs = ms;
    this.sweep.lastProcesses = procs.length;
  }

    /** Health figures for /metrics from the lifecycle accounting. */
  static health(
    acc: () => AccountingReport,
    tableSize: () => number,
    extra: () => { consumerErrors: Record<string, number>; degraded: string[] } = () => ({ consumerErrors: {}, degraded: [] }),
  ): () => AgentHealth {
    return () => {
      const a = acc();
      const events: Record<string, bigint> = {};
      const lostKernel: Record<string, bigint> = {};
      const lostUserspace: Record<string, bigint> = {};
      for (const [t, x] of Object.entries(a.perType)) {
        events[t] = x.captured;
        lostKernel[t] = x.lostReserve;
        lostUserspace[t] = x.lostUserspace;
      }
      return { events, lostKernel, lostUserspace, tableEntries: tableSize(), ...extra() };
    };
  }

  /** Exits close their process with exact totals. */
  onExit(ev: ExitEvent, en: { execId: string; entry: { cgroupId: bigint | null } }): void {
    this.processes.applyExit(ev, en.execId, en.entry.cgroupId);
  }

  top(req: TopRequest): TopRow[] | TopGroup[] {
    const q = { nowMs: nsToMs(boottimeNs()), windowMs: req.windowMs, sort: req.sort, limit: req.limit, resolveCgroup: (id: bigint) => this.resolver.resolve(id) };
    return req.byCgroup ? topGroups(this.processes, q) : topRows(this.processes, q);
  }

  private async listen(): Promise<void> {
    const app = Fastify({ logger: false });
    app.get('/metrics', async (_req, reply) => {
      this.beforeScrape?.();
      reply.header('content-type', this.metrics.contentType);
      return this.metrics.text();
    });
    app.get('/', async (_req, reply) => reply.type('text/plain').send('patrol agent: metrics at /metrics\n'));
    const { host, port } = this.cfg.prometheus;
    try {
      this.listenAddress = await app.listen({ host, port });
    } catch (e) {
      await app.close();
      const err = e as NodeJS.ErrnoException;
      throw new PatrolError('E_METRICS_LISTEN', `metrics.prometheus: cannot listen on ${host}:${port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another exporter or agent has the port: set metrics.prometheus.port, or metrics.prometheus.enabled: false)' : ''}`);
    }
    this.server = app;
    this.log.info({ address: this.listenAddress }, 'Prometheus metrics listening');
  }

  async close(): Promise<void> {
    this.tick?.cancel();
    this.tick = null;
    await this.server?.close();
    this.server = null;
  }
}

/** What the API serves from the resource windows. */
export function resourcesView(r: ResourcePipeline): ResourcesView {
  // the windows' CLOCK_BOOTTIME ms → wall ms, read at each request (the wall clock may step)
  const clock = () => {
    const nowMs = nsToMs(boottimeNs());
    const offset = Date.now() - nowMs;
    return { nowMs, toWall: (t: number) => t + offset };
  };
  return {
    top: (req) => r.top(req),
    node: (windowMs) => {
      const c = clock();
      return nodeStrip(r.node, c.nowMs, windowMs, c.toWall);
    },
    history: (execId, windowMs) => {
      const c = clock();
      return processHistory(r.processes, execId, c.nowMs, windowMs, c.toWall);
    },
    windowsMs: r.cfg.windowsMs,
    maxWindowMs: Math.max(...r.cfg.windowsMs),
    sweep: r.sweep,
    metricsText: () => r.metrics.text(),
    metricsContentType: r.metrics.contentType,
  };
}
