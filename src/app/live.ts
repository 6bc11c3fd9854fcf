// What each config section does on reload (src/app/reload.ts drives it): the keys that apply
// live and how, and the few that cannot, with the reason the reply gives. The parts that can be
// started, stopped or replaced while the agent runs (rules, checks, resource windows) live in
// `slots`, which the agent reads on every use.
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import type { ProcessTable } from '../process/index.js';
import type { Store } from '../store/index.js';
import { loadConfig, type AgentConfig, type ConfigSection, type LoadConfigOptions } from './config.js';
import type { ReloadParts, SectionApplier, SensorsReloader, SetOutcome, SetReloader } from './reload.js';
import type { RulesService } from './rules.js';
import type { AgentChecks } from './checks.js';
import type { ResourcePipeline } from './resources.js';
import type { StatePipeline } from './states.js';
import type { AgentIntegrations } from './integrations.js';

export interface LiveSlots {
  rules: RulesService | null;
  checks: AgentChecks | null;
  resources: ResourcePipeline | null;
}

export interface LiveContext {
  log: Logger;
  loadOpts: LoadConfigOptions;
  store: Store;
  table: ProcessTable;
  states: StatePipeline | null;
  sensors: SensorsReloader | null;
  slots: LiveSlots;
  /** start attribution with this config (throws on a bad rule set) */
  startRules(cfg: AgentConfig): RulesService;
  /** start the checks with this config (throws when checks.dir is not a directory) */
  startChecks(cfg: AgentConfig): AgentChecks | null;
  startResources(cfg: AgentConfig): Promise<ResourcePipeline>;
  /** alert delivery, redaction, OTLP, the CRI socket (absent: those sections wait for a restart) */
  integrations?: Pick<AgentIntegrations, 'apply'>;
  /** lifecycle.unwatched_interval, applied to the running consumer */
  setUnwatchedInterval?: (ms: number) => void;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Keys that cannot change while the agent runs, with the reason the reply gives. */
const NOT_LIVE: Record<string, string> = {
  'log.format': 'log.format: the log output is opened once, at start',
  'lifecycle.ring_size': 'lifecycle.ring_size: both generations of the sensor share one ring buffer, so its size is fixed while the agent runs',
  'store.path': 'store.path: the store file is opened at start and holds this run',
  'agent.lock_file': 'agent.lock_file: the single-instance lock is taken at start',
  'agent.pin_dir': 'agent.pin_dir: cleaned at start only',
};

function notLiveIn(section: ConfigSection, extra: (key: string) => string | null = () => null): SectionApplier['notLive'] {
  return (key) => {
    if (NOT_LIVE[key]) return NOT_LIVE[key]!;
    if (section === 'api') return `${key}: the API listeners carry this very request; they are bound at start`;
    if (section === 'fleet') return `${key}: the etcd session, its lease and the election start with the agent`;
    return extra(key);
  };
}

export function buildReloadParts(ctx: LiveContext): ReloadParts {
  const { log, slots } = ctx;
  const integ = ctx.integrations;
  // alerts, export, identity: built anew and swapped in (integrations-live.ts); without the
  // integrations (tests' agents), they wait for a restart
  const integrationSection = (s: 'alerts' | 'export' | 'identity'): SectionApplier =>
    integ
      ? {
          notLive: notLiveIn(s),
          apply: async (next, keys) => {
            await integ.apply(s, next);
            // new patterns also mask the argv of processes the table already holds
            if (keys.some((k) => k.startsWith('export.redact'))) {
              const n = ctx.table.redactAgain();
              if (n > 0) log.info({ processes: n }, 'export.redact: argv of known processes masked with the new patterns');
            }
          },
        }
      : { notLive: notLiveIn(s, (k) => `${k}: this agent runs without live integrations`) };
  const sensorKey = (k: string) => ctx.sensors?.takesKey(k) ?? false;
  const sections: Record<ConfigSection, SectionApplier> = {
    log: {
      notLive: notLiveIn('log'),
      apply: (next) => {
        log.level = next.log.level;
      },
    },
    lifecycle: {
      // without reloadable sensors, what they take at load waits for a restart
      notLive: notLiveIn('lifecycle', (k) => (ctx.sensors || ['lifecycle.table_max_entries', 'lifecycle.table_grace', 'lifecycle.table_dead_max', 'lifecycle.unwatched_interval'].includes(k) ? null : `${k}: taken by the sensors at load, and this agent cannot load them again`)),
      apply: (next, keys) => {
        ctx.table.setLimits({ maxEntries: next.lifecycle.tableMaxEntries, graceMs: next.lifecycle.tableGraceMs, deadMax: next.lifecycle.tableDeadMax });
        if (keys.includes('lifecycle.unwatched_interval')) ctx.setUnwatchedInterval?.(next.lifecycle.unwatchedIntervalMs);
      },
    },
    state: {
      notLive: notLiveIn('state', (k) => (ctx.sensors || k === 'state.sweep_interval' ? null : `${k}: taken by the state sensor at load, and this agent cannot load it again`)),
      apply: (next, keys) => {
        if (keys.includes('state.sweep_interval')) ctx.states?.setSweepMs(next.state.sweepMs);
      },
    },
    store: {
      notLive: notLiveIn('store'),
      apply: (next) => ctx.store.setOptions({ flushIntervalMs: next.store.flushIntervalMs, retention: next.store.retention }),
    },
    api: { notLive: notLiveIn('api') },
    agent: { notLive: notLiveIn('agent', (k) => (sensorKey(k) ? null : `${k}: read at start`)) },
    // applied by the rules and checks parts themselves (below), which change nothing on failure
    rules: { notLive: notLiveIn('rules') },
    checks: { notLive: notLiveIn('checks') },
    alerts: integrationSection('alerts'),
    export: integrationSection('export'),
    identity: integrationSection('identity'),
    fleet: { notLive: notLiveIn('fleet') },
    metrics: {
      notLive: notLiveIn('metrics'),
      // The windows restart with the new settings (their history starts empty); a failure to
      // start them puts the running settings back.
      apply: async (next, keys) => {
        const old = slots.resources;
        await old?.close();
        slots.resources = null;
        try {
          if (next.metrics.enabled) slots.resources = await ctx.startResources(next);
        } catch (e) {
          if (old) {
            try {
              slots.resources = await ctx.startResources({ ...next, metrics: old.cfg });
            } catch (e2) {
              log.error({ err: (e2 as Error).message }, 'metrics: the previous settings could not be restored either; resource windows are off');
            }
          }
          throw new PatrolError((e as PatrolError).code ?? 'E_METRICS', `${keys.join(', ')}: ${(e as Error).message}`);
        }
      },
    },
  };

  const rules: SetReloader = {
    version: () => slots.rules?.version ?? null,
    reload(cfg, prev): SetOutcome {
      const r = slots.rules;
      if (!cfg.rules.enabled) {
        r?.close();
        slots.rules = null;
        return { ok: true, changed: r !== null, version: null };
      }
      if (!r) {
        try {
          slots.rules = ctx.startRules(cfg);
        } catch (e) {
          return { ok: false, changed: false, version: null, code: (e as PatrolError).code ?? 'E_RULES', diagnostics: [(e as Error).message] };
        }
        return { ok: true, changed: true, version: slots.rules.version };
      }
      const config = { dir: cfg.rules.dir, kmsg: cfg.rules.kmsg, batchIntervalMs: cfg.rules.batchIntervalMs };
      const before = { dir: prev.rules.dir, kmsg: prev.rules.kmsg, batchIntervalMs: prev.rules.batchIntervalMs };
      if (!same(config, before)) r.setConfig(config);
      const o = r.reloadReport();
      // a new directory that does not compile: the old one stays, with its set
      if (!o.ok && !same(config, before)) r.setConfig(before);
      return { ok: o.ok, changed: o.changed, version: o.version, ...(o.code ? { code: o.code } : {}), diagnostics: o.diagnostics };
    },
  };

  const checks: SetReloader = {
    version: () => slots.checks?.service.version ?? null,
    reload(cfg, prev): SetOutcome {
      const c = slots.checks;
      if (c && same(cfg.checks, prev.checks)) {
        const r = c.service.reload('reload');
        return { ok: r.ok, changed: r.changed, version: c.service.version, ...(r.code ? { code: r.code } : {}), diagnostics: r.diagnostics };
      }
      // another directory, concurrency or retention: a new service; the old one runs until the
      // new one has loaded a valid set
      let fresh: AgentChecks | null;
      try {
        fresh = ctx.startChecks(cfg);
      } catch (e) {
        return { ok: false, changed: false, version: c?.service.version ?? null, code: (e as PatrolError).code ?? 'E_CHECKS', diagnostics: [(e as Error).message] };
      }
      const first = fresh?.service.lastReload;
      if (fresh && first && !first.ok) {
        fresh.close();
        return { ok: false, changed: false, version: c?.service.version ?? null, code: first.code ?? 'E_CHECKS', diagnostics: first.diagnostics };
      }
      c?.close();
      slots.checks = fresh;
      return { ok: true, changed: (c?.service.version ?? null) !== (fresh?.service.version ?? null), version: fresh?.service.version ?? null };
    },
  };

  return { log, readConfig: () => loadConfig(ctx.loadOpts), sections, sensors: ctx.sensors, rules, checks };
}
