// `patrol agent`: the long-running daemon. Composition root: it holds the lock, the sensors, the
// process table and states, the store and the local API, and owns their start and stop order.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from '../shared/log.js';
import { createLogger, setLogger } from '../shared/log.js';
import { VERSION } from '../shared/version.js';
import { PatrolError } from '../shared/errors.js';
import type { LifecycleEvent, StateStreamEvent } from '../shared/events.js';
import { WallClock, boottimeNs } from '../kernel/index.js';
import type { Enriched } from '../process/index.js';
import { Store, blankSummary, exitSummary } from '../store/index.js';
import { startApi, type AgentView, type EventListener } from '../api/index.js';
import { LifecyclePipeline } from './lifecycle.js';
import { StatePipeline } from './states.js';
import { ResourcePipeline, resourcesView } from './resources.js';
import { PidLock } from './lock.js';
import { removeStalePins } from './hygiene.js';
import { loadConfig, type AgentConfig, type LoadConfigOptions } from './config.js';
import { RulesService, alertSource, explainView, lazyRssWindows } from './rules.js';
import { AgentProcessSource, startAgentChecks } from './checks.js';
import { Consumers } from './consumers.js';
import { HealthMonitor } from './health.js';
import { ReloadCoordinator } from './reload.js';
import { buildReloadParts, type LiveSlots } from './live.js';
import { SensorReloader, objectPaths } from './sensor-reload.js';
import { Unavailable } from '../checks/index.js';
import { startIntegrations } from './integrations.js';
import { startHeapGovernor } from './heap-governor.js';
import { scheduleStartupPageRelease } from './startup-pages.js';
import { Ticker } from './ticker.js';
import { ExitBatch, type ExitSlot } from './exit-batch.js';
import { AgentBundleHost, overlayOf } from './bundle-host.js';
// not the src/fleet barrel: that loads etcd3 and gRPC, which only an agent with a fleet needs
import { BundleKeeper, type StagedBundle } from '../fleet/bundle-keeper.js';

export interface AgentHandle {
  /** resolves with the process exit code once the agent stopped */
  done: Promise<number>;
  stop(reason: string): Promise<void>;
}

function makeLogger(cfg: AgentConfig): Logger {
  const pretty = cfg.log.format === 'pretty' || (cfg.log.format === 'auto' && process.stdout.isTTY === true);
  return createLogger({ level: cfg.log.level, fd: 1, pretty });
}

function readToken(path: string): string {
  let token: string;
  // The token guards the API: a copy readable by others is a leaked credential.
  try {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0) {
      throw new PatrolError('E_CONFIG', `api.tcp.token_file: ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
    }
  } catch (e) {
    if (e instanceof PatrolError) throw e;
  }
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new PatrolError('E_CONFIG', `api.tcp.token_file: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (token.length < 16) throw new PatrolError('E_CONFIG', `api.tcp.token_file: the token in ${path} is shorter than 16 characters`);
  return token;
}

/** Starts every part in dependency order; any failure unwinds what was started. With a fleet,
 *  the agent starts with the bundle it ran (docs/fleet.md); should that fail (its objects no
 *  longer load here, say), it starts once more with its own configuration, and its observed
 *  state says why. */
export async function startAgent(loadOpts: LoadConfigOptions): Promise<AgentHandle> {
  const base = loadConfig(loadOpts);
  const dir = base.fleet ? bundlesDir(base) : null;
  const startup = dir ? BundleKeeper.startup(dir) : null;
  if (!startup) return start(loadOpts, null);
  try {
    return await start(loadOpts, startup);
  } catch (e) {
    const code = e instanceof PatrolError ? e.code : 'E_BUNDLE_START';
    createLogger({ level: 'info', fd: 1, pretty: false }).error({ bundle: startup.id, code, err: (e as Error).message }, 'cannot start with the bundle this agent ran; starting with its own configuration');
    BundleKeeper.demoteCurrent(dir!, code, (e as Error).message);
    return start(loadOpts, null);
  }
}

/** Where a fleet agent keeps its bundles: beside its store. */
export const bundlesDir = (cfg: AgentConfig): string => join(dirname(cfg.store.path), 'bundles');

async function start(plainOpts: LoadConfigOptions, startupBundle: StagedBundle | null): Promise<AgentHandle> {
  // the configuration is read with the running bundle's layer, at start and at every reload
  let bundleHost: AgentBundleHost | null = null;
  const startLayer = overlayOf(startupBundle);
  const loadOpts: LoadConfigOptions = { ...plainOpts, overlay: () => (bundleHost ? bundleHost.active : startLayer) };
  const cfg = loadConfig(loadOpts);
  const log = makeLogger(cfg);
  setLogger(log);
  if (startupBundle) log.info({ bundle: startupBundle.id }, 'starting with the fleet bundle this agent ran');
  const lock = new PidLock(cfg.agent.lockFile);
  lock.acquire();
  const cleanups: Array<() => Promise<void> | void> = [() => lock.release()];
  const unwind = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'cleanup step failed');
      }
    }
  };

  try {
    removeStalePins(cfg.agent.pinDir, log);
    const store = Store.open(cfg.store.path, { retention: cfg.store.retention, flushIntervalMs: cfg.store.flushIntervalMs, log });
    store.beginRun(process.pid, VERSION);
    store.startTimer();
    let stopReason = 'crash';
    cleanups.push(() => {
      store.endRun(stopReason);
      store.close();
    });

    // redaction, identity, alert delivery, OTLP (issue 17)
    const integ = await startIntegrations(cfg, log);
    cleanups.push(() => integ.close());

    const listeners = new Set<EventListener>();
    let healthRef: HealthMonitor | null = null;
    const stateListeners = new Set<(ev: StateStreamEvent) => void>();
    let states: StatePipeline | null = null;
    // Parts a reload can start, stop or replace: read through `slots` at every use.
    const slots: LiveSlots = { rules: null, checks: null, resources: null };
    // The lifecycle pipeline starts after the checks (their counters must exist before the
    // first event): events_lost reads its loss accounting through this closure.
    let lifecycle: LifecyclePipeline | null = null;
    // Watched and unwatched delivery (docs/architecture.md, "Delivery policies"): while nobody
    // follows the live stream the ring is drained every lifecycle.unwatched_interval, and every
    // reader drains it first: an API request, a scrape, the sweeps, a check run, a state record,
    // a kernel-log line. What they read is then as current as the kernel's records.
    let drainFailures = 0;
    const freshen = () => {
      try {
        lifecycle?.drainNow();
      } catch (e) {
        // the consumers guard themselves; a reader then reads what was handed over before
        if (drainFailures++ % 1000 === 0) log.error({ err: (e as Error).message, failures: drainFailures }, 'could not hand over the latest records before a read');
      }
    };
    const agentFacts = {
      lostRecords: () => {
        if (lifecycle === null) throw new Unavailable('the lifecycle pipeline is still starting');
        const t = lifecycle.accounting().totals;
        return Number(t.lostReserve + t.lostUserspace);
      },
    };
    // zombie_count, d_state_count and process_count read the process table and the state
    // sensor once both run, not /proc (checks.ts, AgentProcessSource)
    const processList = new AgentProcessSource(() => (lifecycle !== null && states !== null ? { table: lifecycle.table, states: states.states } : null));
    // rules start later (they need the state pipeline); alerts ask them through this closure
    const startChecks = (c: AgentConfig) =>
      startAgentChecks(c, log, () => slots.resources, (a) => slots.rules?.attribute({ id: a.id, check: a.name, state: a.state, ts: a.at, evidence: a.evidence }) ?? null, agentFacts, integ.deliver, processList, freshen);
    slots.checks = startChecks(cfg);
    cleanups.push(() => slots.checks?.close());
    // Each consumer behind its own boundary (consumers.ts): a throw is counted and logged, and
    // the event still reaches the others.
    const consumers = new Consumers(log);
    const gStates = consumers.guard('states');
    const gRules = consumers.guard('rules');
    const gChecks = consumers.guard('checks');
    const gStore = consumers.guard('store');
    const gResources = consumers.guard('resources');
    const gStream = consumers.guard('api_stream');
    // Exits reach the store and the resource windows in batches, on the store's flush cadence
    // (exit-batch.ts): neither is read within a drain. A slot holds a copy of the exit.
    // one summary, refilled for every exit: the store copies it (Store.recordExit)
    const summaryScratch = blankSummary();
    const applyExit = (s: ExitSlot) => {
      if (s.kind === 'exit') {
        try {
          gStore.inject();
          store.recordExit(exitSummary(s.ev, s.en, summaryScratch));
        } catch (e) {
          gStore.fail(e);
        }
        const resources = slots.resources;
        if (resources) {
          try {
            gResources.inject();
            resources.onExit(s.ev, s.en);
          } catch (e) {
            gResources.fail(e);
          }
        }
      } else if (!s.paired) {
        try {
          gStore.inject();
          store.recordReap(s.en.execId, s.en.zombieNs!);
        } catch (e) {
          gStore.fail(e);
        }
      }
    };
    // The periodic work shares one wakeup a second (ticker.ts): the sweeps (states, resources,
    // health, the heap governor), the ring's unwatched drain (the ticker drains first, `before`)
    // and the exit batch with its store commit.
    const ticker = new Ticker({ before: freshen });
    const exits = new ExitBatch({ intervalMs: () => store.flushInterval, maxEvents: 1024, apply: applyExit, done: () => store.commit(), ticker });
    // runs after the pipeline's close (cleanups unwind in reverse), so the stream's tail is applied
    cleanups.push(() => exits.close());
    const onEvent = (ev: LifecycleEvent, en: Enriched) => {
      if (states) {
        try {
          gStates.inject();
          states.states.applyLifecycle(ev, en);
        } catch (e) {
          gStates.fail(e);
        }
      }
      const rules = slots.rules;
      if (rules) {
        try {
          gRules.inject();
          rules.onLifecycle(ev, en);
        } catch (e) {
          gRules.fail(e);
        }
      }
      const checks = slots.checks;
      if (checks) {
        try {
          gChecks.inject();
          checks.service.onLifecycle(ev, en);
        } catch (e) {
          gChecks.fail(e);
        }
      }
      if (ev.type === 'exit' || (ev.type === 'reap' && en.zombieNs !== undefined)) exits.push(ev, en);
      for (const l of listeners) {
        try {
          l(ev, en);
        } catch (e) {
          gStream.fail(e);
        }
      }
      integ.onLifecycle(ev, en);
    };
    const objects = objectPaths(cfg.agent.bpfDir);
    const pipeline = LifecyclePipeline.start({ ...cfg.lifecycle, ...integ.tableHooks }, log, onEvent, { objectPath: objects.lifecycle });
    lifecycle = pipeline;
    // unwatched, the ring is drained in the ticker's wakeups, not on a timer of its own
    pipeline.setPacer(ticker);
    cleanups.push(() => pipeline.close());
    // Unwatched, a drain holds a second of events, handed over a chunk at a time: each chunk is
    // already the rules' batch, so it goes in now rather than waiting for the next one (less
    // held, and less copied and promoted by the GC).
    pipeline.onDrained = () => {
      if (!pipeline.isWatched) slots.rules?.flushLifecycle();
    };
    states = StatePipeline.start(cfg.state, pipeline.table, log, (ev) => {
      slots.rules?.onState(ev);
      slots.checks?.service.onState(ev);
      for (const l of stateListeners) l(ev);
    }, { objectPath: objects.state, ticker, beforeBatch: freshen });
    cleanups.push(() => states!.close());
    const startResources = async (c: AgentConfig) => {
      const agentHealth = ResourcePipeline.health(
        () => pipeline.accounting(),
        () => pipeline.table.size,
        () => {
          const r = healthRef?.report();
          return {
            consumerErrors: Object.fromEntries(Object.entries({ ...consumers.faults(), ...pipeline.faults() }).map(([k, f]) => [k, f.errors])),
            degraded: [...new Set(r?.reasons.map((x) => x.kind) ?? [])],
          };
        },
      );
      const r = await ResourcePipeline.start(c.metrics, pipeline.table, () => pipeline.readUsage(), agentHealth, log, ticker);
      r.beforeScrape = freshen;
      integ.attachResources(r);
      return r;
    };
    if (cfg.metrics.enabled) slots.resources = await startResources(cfg);
    cleanups.push(() => slots.resources?.close());
    const startRules = (c: AgentConfig) =>
      RulesService.start({
        config: c.rules, table: pipeline.table, log, nowNs: boottimeNs, states,
        // a throw inside a batch of lifecycle events counts against the rules like one at the event
        onError: (e) => gRules.fail(e),
        beforeInput: freshen,
        ticker,
        // both read the current part: a reload may restart the windows or the checks
        windows: lazyRssWindows(() => slots.resources),
        alerts: alertSource((q) => slots.checks?.view.alerts({ limit: q.limit }) ?? []),
      });
    if (cfg.rules.enabled) slots.rules = startRules(cfg);
    cleanups.push(() => slots.rules?.close());

    const faults = () => ({ ...consumers.faults(), ...pipeline.faults() });
    const health = new HealthMonitor({
      storeError: () => store.stats().lastError,
      consumerErrors: () => Object.fromEntries(Object.entries(faults()).map(([k, f]) => [k, f.errors])),
      lost: () => pipeline.lostTotal(),
      missing: () => {
        const m = pipeline.missingPrograms();
        return m.length ? [`lifecycle programs not attached: ${m.join(', ')}`] : [];
      },
      identity: () => integ.problems(),
    }, Date.now, () => slots.checks?.service.agentFiguresChanged());
    health.start(ticker);
    healthRef = health;
    // a loss seen under pressure is sampled at once, not at the next second (lifecycle.ts)
    pipeline.onLoss = () => health.sampleNow();
    cleanups.push(() => health.stop());

    const startedAt = Date.now();
    const clock = new WallClock();
    const heapGovernor = startHeapGovernor(log, { ticker });
    cleanups.push(() => heapGovernor?.stop());
    // the runtime's start-up pages leave the RSS once the agent is warm (startup-pages.ts)
    const startupPages = scheduleStartupPageRelease(log);
    cleanups.push(() => startupPages.stop());
    const reloadParts = buildReloadParts({
      log, loadOpts, store, table: pipeline.table, states, slots, startRules, startChecks, startResources, integrations: integ,
      setUnwatchedInterval: (ms) => pipeline.setUnwatchedInterval(ms),
      sensors: new SensorReloader({ lifecycle: pipeline, states, log, config: cfg }),
    });
    const coordinator = new ReloadCoordinator(cfg, reloadParts);
    if (cfg.fleet) {
      bundleHost = new AgentBundleHost({ loadOpts: plainOpts, coordinator, parts: reloadParts, log: log.child({ component: 'bundles' }) });
      bundleHost.setStartup(startupBundle);
    }
    // fleet (issue 14): created here for the view, started once the API listens
    let tcpApi: { host: string; port: number } | null = null;
    // etcd3 and gRPC cost ~34 MB of RSS: loaded only when the config has a fleet section
    const fleet = cfg.fleet
      ? (await import('./fleet.js')).createFleet(cfg, cfg.fleet, log, {
          health: () => health.report(),
          lostTotal: () => {
            const t = pipeline.accounting().totals;
            return Number(t.lostReserve + t.lostUserspace);
          },
          // read at each use: a reload may replace the checks
          get checks() {
            return slots.checks;
          },
          apiAddress: () => (tcpApi ? `${tcpApi.host}:${tcpApi.port}` : null),
          startedAt,
          reload: () => coordinator.partsRunning(),
          ...(bundleHost ? { bundles: { dir: bundlesDir(cfg), host: bundleHost } } : {}),
        })
      : null;
    const view: AgentView = {
      version: VERSION,
      startedAt,
      pid: process.pid,
      // a getter: a sensor reload can change args_cap
      get config() {
        return { ringBytes: pipeline.config.ringBytes, argsCap: pipeline.config.argsCap };
      },
      table: pipeline.table,
      clock,
      states,
      nowNs: boottimeNs,
      stats: () => {
        const a = pipeline.accounting();
        return {
          programs: [...pipeline.attached, ...['st_switch', 'st_wakeup', 'st_wakeup_new']],
          accounting: a,
          table: pipeline.table.stats(),
          ring: a.ring,
          store: { ...store.stats() },
          consumers: faults(),
          health: health.report(),
          ...integ.stats(),
        };
      },
      subscribe: (l) => {
        listeners.add(l);
        pipeline.setWatched(true);
        return () => {
          listeners.delete(l);
          pipeline.setWatched(listeners.size > 0);
        };
      },
      freshen,
      subscribeState,
      health: () => health.report(),
      get explain() {
        return slots.rules ? explainView(slots.rules) : undefined;
      },
      get checks() {
        return slots.checks?.view;
      },
      get resources() {
        return slots.resources ? resourcesView(slots.resources) : undefined;
      },
      identityOf: (id) => integ.identity.peek(id),
      reload: (req) => coordinator.reload({ trigger: 'api', ...(req.sensors ? { sensors: true } : {}) }),
      reloadStatus: () => coordinator.status(),
      ...(fleet ? { fleet: fleet.view } : {}),
    };
    function subscribeState(l: (ev: StateStreamEvent) => void): () => void {
      stateListeners.add(l);
      return () => stateListeners.delete(l);
    }
    const api = await startApi(view, {
      socket: cfg.api.socket,
      ...(cfg.api.tcp.enabled ? { tcp: { host: cfg.api.tcp.host, port: cfg.api.tcp.port, token: readToken(cfg.api.tcp.tokenFile!) } } : {}),
      log,
    });
    cleanups.push(() => api.close());
    if (fleet) {
      tcpApi = api.addresses.tcp;
      fleet.start();
      // not awaited: leaving the fleet (two requests, 1 s deadlines each) must not hold up
      // detaching the sensors; its pending requests keep the process alive until they end
      cleanups.push(() => void fleet.stop());
    }
    log.info({ pid: process.pid, version: VERSION, socket: cfg.api.socket, store: cfg.store.path, programs: pipeline.attached.length }, 'patrol agent ready');

    let stopping: Promise<void> | null = null;
    let resolveDone!: (code: number) => void;
    const done = new Promise<number>((r) => (resolveDone = r));
    const stop = (reason: string): Promise<void> => {
      stopping ??= (async () => {
        const t0 = performance.now();
        stopReason = reason;
        // a reload in progress finishes first: its sensors are half swapped until it does
        await coordinator.settled();
        // Detach first: within milliseconds nothing of ours is attached, whatever follows.
        await unwind();
        log.info({ reason, ms: Math.round(performance.now() - t0) }, 'patrol agent stopped');
        resolveDone(0);
      })();
      return stopping;
    };

    // SIGHUP is `patrol reload`: the reply goes to the log.
    const onHup = () => void coordinator.reload({ trigger: 'signal' });
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    cleanups.push(() => {
      process.off('SIGHUP', onHup);
    });
    return { done, stop };
  } catch (e) {
    await unwind();
    throw e;
  }
}
