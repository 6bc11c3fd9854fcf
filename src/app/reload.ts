// The one reload entry point (issue 13): `patrol reload`, POST /v1/reload and SIGHUP all come
// here. Parts, in this order:
//   config  — read and validate the whole file; every changed key is applied live, or named in
//             the reply as not live (it keeps its running value until a restart);
//   sensors — make-before-break when their objects changed on disk, a key they take at load
//             changed, or the caller forces it (sensor-reload.ts);
//   rules, checks — read and compile everything, swap only a fully valid set, atomically.
// Each part answers applied, unchanged or rejected (with a code), and carries its version: the
// sha256 of its canonical content. Reloads run one at a time, in the order asked.
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import { CONFIG_SECTIONS, ConfigError, changedKeys, configVersion, withKeys, type AgentConfig, type ConfigSection } from './config.js';

export type PartResult = 'applied' | 'unchanged' | 'rejected';

/** Reload codes the reply and the log carry (besides those of the parts: E_CONFIG, rule and
 *  check diagnostic codes, E_SENSOR_*). */
export const E_NOT_LIVE = 'E_NOT_LIVE';

export interface SectionReport {
  result: PartResult;
  /** keys (file form, dotted) whose value changed in the file */
  keys: string[];
  /** keys now in effect */
  applied: string[];
  /** keys that cannot change while the agent runs: they keep their running value */
  not_live: string[];
  code?: string;
  reason?: string;
}

export interface PartReport {
  result: PartResult;
  /** version (sha256) running after the reload; null: the part does not run */
  version: string | null;
  previous_version: string | null;
  code?: string;
  reason?: string;
  diagnostics?: string[];
}

export interface ConfigPartReport extends PartReport {
  sections: Record<ConfigSection, SectionReport>;
}

export interface SensorObjectReport {
  result: PartResult;
  version: string | null;
  code?: string;
  reason?: string;
  /** maps the new object took over from the running one */
  maps_reused?: string[];
  programs?: string[];
  /** ms from the first new program attached until the last old one was unhooked */
  overlap_ms?: number;
  /** ms the old programs' detach took to return, from its start: classic tracepoint links
   *  wait out an RCU grace period after unhooking, while the kernel no longer calls them */
  detach_ms?: number;
}

export interface SensorsPartReport extends PartReport {
  /** the generation running after the reload (it moves by one per applied sensor reload) */
  generation: number;
  /** why the sensors were loaded again: forced (--sensors), objects (changed on disk), config
   *  (a key they take at load changed); null: they were not */
  reason_loaded: 'forced' | 'objects' | 'config' | null;
  /** ms both generations were attached (the longest of the sensors) */
  overlap_ms: number | null;
  /** records captured twice during the overlap and removed */
  duplicates: number | null;
  sensors: Record<string, SensorObjectReport>;
}

export interface ReloadReply {
  /** nothing was rejected: every part and every changed key is in effect */
  ok: boolean;
  trigger: ReloadTrigger;
  /** ISO time the reload started */
  at: string;
  duration_ms: number;
  parts: { config: ConfigPartReport; sensors: SensorsPartReport; rules: PartReport; checks: PartReport };
}

/** api: `patrol reload` / POST /v1/reload; signal: SIGHUP; bundle: a fleet bundle applied */
export type ReloadTrigger = 'api' | 'signal' | 'bundle';

export interface ReloadRequest {
  trigger: ReloadTrigger;
  /** load the sensors again even if nothing they depend on changed */
  sensors?: boolean;
}

/** What a section does with its changed keys. */
export interface SectionApplier {
  /** Why `key` cannot change live, or null when it can. */
  notLive(key: string): string | null;
  /** Applies the live keys (already filtered). Throw a PatrolError to reject them all. */
  apply?(next: AgentConfig, keys: readonly string[]): void | Promise<void>;
}

export interface SensorsOutcome {
  report: SensorsPartReport;
}

/** The sensors as the coordinator drives them (sensor-reload.ts implements it). */
export interface SensorsReloader {
  /** what would make a reload necessary now: 'objects' when an object changed on disk */
  changedOnDisk(cfg: AgentConfig): boolean;
  /** config keys the sensors take at load (a change needs a sensor reload to apply) */
  takesKey(key: string): boolean;
  reload(cfg: AgentConfig, why: 'forced' | 'objects' | 'config'): Promise<SensorsPartReport>;
  status(): { version: string | null; generation: number };
  /** the pre-flight of the objects `cfg` names, without a load: null when they pass */
  preflight?(cfg: AgentConfig): { sensor: string; code: string; reason: string } | null;
}

export interface SetOutcome {
  ok: boolean;
  changed: boolean;
  version: string | null;
  code?: string;
  diagnostics?: string[];
}

/** Rules or checks: reloads with the (possibly new) config; version() is the running set's. */
export interface SetReloader {
  reload(cfg: AgentConfig, prev: AgentConfig): SetOutcome | Promise<SetOutcome>;
  version(): string | null;
}

export interface ReloadParts {
  log: Logger;
  /** reads the configuration again (defaults ← file ← the flags the agent started with) */
  readConfig(): AgentConfig;
  sections: Record<ConfigSection, SectionApplier>;
  sensors: SensorsReloader | null;
  rules: SetReloader;
  checks: SetReloader;
}

/** The last reload, for status. */
export interface ReloadStatus {
  versions: { config: string; sensors: string | null; rules: string | null; checks: string | null };
  generation: number;
  reloads: number;
  last_reload: {
    at: string;
    trigger: ReloadTrigger;
    ok: boolean;
    duration_ms: number;
    results: Record<'config' | 'sensors' | 'rules' | 'checks', PartResult>;
    /** codes of what was rejected */
    codes: string[];
    overlap_ms: number | null;
    duplicates: number | null;
  } | null;
}

/** What the fleet module reports per node (src/fleet/inputs.ts ReloadInfo, by shape). */
export interface PartsRunning {
  parts: Record<'config' | 'sensors' | 'rules' | 'checks', { version: string | null; since: string | null }>;
  generation: number;
  lastReload: { at: string | null; result: string };
}

export class ReloadCoordinator {
  private running: AgentConfig;
  private chain: Promise<unknown> = Promise.resolve();
  private last: ReloadReply | null = null;
  private count = 0;
  /** each part's version and since when it runs */
  private readonly since = new Map<string, { version: string | null; since: string }>();

  constructor(
    cfg: AgentConfig,
    private readonly parts: ReloadParts,
  ) {
    this.running = cfg;
    this.noteVersions(new Date().toISOString());
  }

  /** Records when a part's version changed (a reload, or the checks directory's own watcher). */
  private noteVersions(at: string): void {
    const v = this.status().versions;
    for (const [part, version] of Object.entries(v)) {
      const prev = this.since.get(part);
      if (!prev || prev.version !== version) this.since.set(part, { version, since: at });
    }
  }

  /** Each part's version and since when it runs, the generation, the last reload: what the
   *  fleet module publishes for this node. */
  partsRunning(): PartsRunning {
    this.noteVersions(new Date().toISOString());
    const part = (p: string) => ({ version: this.since.get(p)?.version ?? null, since: this.since.get(p)?.since ?? null });
    const l = this.last;
    return {
      parts: { config: part('config'), sensors: part('sensors'), rules: part('rules'), checks: part('checks') },
      generation: this.parts.sensors?.status().generation ?? 0,
      lastReload: { at: l?.at ?? null, result: !l ? 'none' : l.ok ? 'applied' : `rejected: ${rejectedCodes(l).join(', ')}` },
    };
  }

  get config(): AgentConfig {
    return this.running;
  }

  /** Resolves once no reload runs (the agent waits for it before it stops). */
  settled(): Promise<void> {
    return this.chain.then(() => {});
  }

  /** Queued behind a reload in progress; never rejects (failures are in the reply). */
  reload(req: ReloadRequest): Promise<ReloadReply> {
    const p = this.chain.then(() => this.run(req));
    this.chain = p.catch(() => {});
    return p;
  }

  status(): ReloadStatus {
    const s = this.parts.sensors?.status() ?? { version: null, generation: 0 };
    const l = this.last;
    return {
      versions: { config: configVersion(this.running), sensors: s.version, rules: this.parts.rules.version(), checks: this.parts.checks.version() },
      generation: s.generation,
      reloads: this.count,
      last_reload: l && {
        at: l.at,
        trigger: l.trigger,
        ok: l.ok,
        duration_ms: l.duration_ms,
        results: { config: l.parts.config.result, sensors: l.parts.sensors.result, rules: l.parts.rules.result, checks: l.parts.checks.result },
        codes: rejectedCodes(l),
        overlap_ms: l.parts.sensors.overlap_ms,
        duplicates: l.parts.sensors.duplicates,
      },
    };
  }

  private async run(req: ReloadRequest): Promise<ReloadReply> {
    const log = this.parts.log;
    const t0 = performance.now();
    const at = new Date().toISOString();
    const prev = this.running;
    const prevVersion = configVersion(prev);

    // ---- config: all or nothing at the file level; then key by key
    let next: AgentConfig = prev;
    let configError: { code: string; reason: string; diagnostics: string[] } | null = null;
    try {
      next = this.parts.readConfig();
    } catch (e) {
      const problems = e instanceof ConfigError ? [...e.problems] : [(e as Error).message];
      configError = { code: codeOf(e, 'E_CONFIG'), reason: `the configuration is invalid; the running one stays`, diagnostics: problems };
    }
    const changed = configError ? [] : changedKeys(prev, next);
    const sections = Object.fromEntries(CONFIG_SECTIONS.map((s) => [s, emptySection()])) as Record<ConfigSection, SectionReport>;
    const live: string[] = [];
    for (const k of changed) {
      const s = k.split('.')[0] as ConfigSection;
      const sec = sections[s];
      sec.keys.push(k);
      const why = this.parts.sections[s].notLive(k);
      if (why === null) live.push(k);
      else {
        sec.not_live.push(k);
        sec.reason = sec.reason ? `${sec.reason}; ${why}` : why;
      }
    }
    // the config as it would run with every live key applied
    let candidate = live.length ? withKeys(prev, next, live) : prev;

    // ---- sensors (first: the keys they take at load are applied by their reload)
    const sensors = this.parts.sensors;
    const sensorKeys = sensors ? live.filter((k) => sensors.takesKey(k)) : [];
    let sensorsReport: SensorsPartReport;
    const why: SensorsPartReport['reason_loaded'] = req.sensors ? 'forced' : sensors?.changedOnDisk(candidate) ? 'objects' : sensorKeys.length ? 'config' : null;
    if (!sensors) {
      sensorsReport = sensorsNotRunning(req.sensors === true);
    } else if (why === null) {
      const st = sensors.status();
      sensorsReport = { result: 'unchanged', version: st.version, previous_version: st.version, generation: st.generation, reason_loaded: null, overlap_ms: null, duplicates: null, sensors: {} };
    } else {
      try {
        sensorsReport = await sensors.reload(candidate, why);
      } catch (e) {
        // not expected (refusals are reports): an agent stopping under a reload, a bug
        const st = sensors.status();
        const code = codeOf(e, 'E_SENSOR_LOAD');
        log.error({ err: (e as Error).message, code }, 'sensor reload failed');
        sensorsReport = { result: 'rejected', version: st.version, previous_version: st.version, generation: st.generation, reason_loaded: why, overlap_ms: null, duplicates: null, sensors: {}, code, reason: (e as Error).message };
      }
      if (sensorsReport.result === 'rejected' && sensorKeys.length) {
        // the keys that needed the new sensors are not in effect
        for (const k of sensorKeys) rejectKey(sections, k, sensorsReport.code ?? 'E_SENSOR', `${k} needs the sensors loaded again, which was refused: ${sensorsReport.reason ?? ''}`);
        candidate = withKeys(prev, next, live.filter((k) => !sensorKeys.includes(k)));
      }
    }
    const appliedKeys = new Set(live.filter((k) => !sensorKeys.includes(k) || sensorsReport.result !== 'rejected'));

    // ---- the other sections' live keys
    for (const s of CONFIG_SECTIONS) {
      const keys = sections[s].keys.filter((k) => appliedKeys.has(k) && !(sensors?.takesKey(k) ?? false));
      const apply = this.parts.sections[s].apply;
      if (keys.length === 0 || !apply) continue;
      try {
        await apply(candidate, keys);
      } catch (e) {
        const code = codeOf(e, 'E_RELOAD');
        for (const k of keys) {
          appliedKeys.delete(k);
          rejectKey(sections, k, code, `${(e as Error).message}`);
        }
      }
    }
    // ---- rules and checks: their sections' keys are applied by their own reload, which
    // changes nothing when it fails
    const withApplied = () => (appliedKeys.size ? withKeys(prev, next, [...appliedKeys]) : prev);
    const rules = await this.setPart(this.parts.rules, withApplied(), prev);
    this.revertIfRejected(sections, 'rules', rules, appliedKeys);
    const checks = await this.setPart(this.parts.checks, withApplied(), prev);
    this.revertIfRejected(sections, 'checks', checks, appliedKeys);

    for (const s of CONFIG_SECTIONS) {
      const sec = sections[s];
      sec.applied = sec.keys.filter((k) => appliedKeys.has(k));
      sec.result = sec.keys.length === 0 ? 'unchanged' : sec.applied.length === sec.keys.length ? 'applied' : 'rejected';
      if (sec.result === 'rejected') {
        sec.code ??= E_NOT_LIVE;
        sec.reason ??= 'not applied';
      }
    }
    const running = withApplied();
    this.running = running;

    const version = configVersion(running);
    const anySectionRejected = CONFIG_SECTIONS.some((s) => sections[s].result === 'rejected');
    const config: ConfigPartReport = configError
      ? { result: 'rejected', version, previous_version: prevVersion, code: configError.code, reason: configError.reason, diagnostics: configError.diagnostics, sections }
      : {
          result: appliedKeys.size > 0 ? 'applied' : anySectionRejected ? 'rejected' : 'unchanged',
          version,
          previous_version: prevVersion,
          ...(anySectionRejected ? { code: E_NOT_LIVE, reason: `not in effect until a restart or a valid reload: ${CONFIG_SECTIONS.flatMap((s) => sections[s].keys.filter((k) => !appliedKeys.has(k))).join(', ')}` } : {}),
          sections,
        };
    const reply: ReloadReply = {
      ok: !configError && !anySectionRejected && sensorsReport.result !== 'rejected' && rules.result !== 'rejected' && checks.result !== 'rejected',
      trigger: req.trigger,
      at,
      duration_ms: Math.round((performance.now() - t0) * 100) / 100,
      parts: { config, sensors: sensorsReport, rules, checks },
    };
    this.last = reply;
    this.count++;
    this.noteVersions(at);
    const summary = {
      trigger: req.trigger, ok: reply.ok, duration_ms: reply.duration_ms,
      config: config.result, sensors: sensorsReport.result, rules: rules.result, checks: checks.result,
      generation: sensorsReport.generation, overlap_ms: sensorsReport.overlap_ms, duplicates: sensorsReport.duplicates,
      codes: rejectedCodes(reply),
    };
    if (reply.ok) log.info(summary, 'reload done');
    else log.error({ ...summary, rejected: rejectedReasons(reply) }, 'reload done; what was rejected keeps running as it was');
    return reply;
  }

  private revertIfRejected(sections: Record<ConfigSection, SectionReport>, s: 'rules' | 'checks', part: PartReport, applied: Set<string>): void {
    if (part.result !== 'rejected') return;
    for (const k of sections[s].keys) {
      if (!applied.delete(k)) continue;
      rejectKey(sections, k, part.code ?? 'E_RELOAD', `${k}: the ${s} part was rejected (${part.reason ?? part.code ?? ''})`);
    }
  }

  private async setPart(part: SetReloader, cfg: AgentConfig, prev: AgentConfig): Promise<PartReport> {
    const before = part.version();
    let o: SetOutcome;
    try {
      o = await part.reload(cfg, prev);
    } catch (e) {
      o = { ok: false, changed: false, version: before, code: codeOf(e, 'E_RELOAD'), diagnostics: [(e as Error).message] };
    }
    if (!o.ok) {
      return { result: 'rejected', version: part.version(), previous_version: before, code: o.code ?? 'E_RELOAD', reason: o.diagnostics?.[0] ?? 'rejected', diagnostics: o.diagnostics ?? [] };
    }
    return { result: o.changed ? 'applied' : 'unchanged', version: part.version(), previous_version: before, ...(o.diagnostics?.length ? { diagnostics: o.diagnostics } : {}) };
  }
}

/** The error's code (PatrolError, or a Node error's), else `fallback`. */
function codeOf(e: unknown, fallback: string): string {
  if (e instanceof PatrolError) return e.code;
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' && /^E[A-Z0-9_]+$/.test(c) ? c : fallback;
}

function emptySection(): SectionReport {
  return { result: 'unchanged', keys: [], applied: [], not_live: [] };
}

function rejectKey(sections: Record<ConfigSection, SectionReport>, key: string, code: string, reason: string): void {
  const sec = sections[key.split('.')[0] as ConfigSection];
  sec.code = code;
  sec.reason = sec.reason ? `${sec.reason}; ${reason}` : reason;
}

function sensorsNotRunning(forced: boolean): SensorsPartReport {
  return {
    result: forced ? 'rejected' : 'unchanged', version: null, previous_version: null, generation: 0, reason_loaded: null, overlap_ms: null, duplicates: null, sensors: {},
    ...(forced ? { code: 'E_SENSOR_UNAVAILABLE', reason: 'this agent runs no reloadable sensors' } : {}),
  };
}

function rejectedCodes(r: ReloadReply): string[] {
  const out: string[] = [];
  for (const p of Object.values(r.parts)) if (p.result === 'rejected' && p.code) out.push(p.code);
  for (const s of Object.values(r.parts.config.sections)) if (s.result === 'rejected' && s.code && !out.includes(s.code)) out.push(s.code);
  return out;
}

function rejectedReasons(r: ReloadReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, p] of Object.entries(r.parts)) if (p.result === 'rejected') out[name] = `${p.code ?? ''}: ${p.diagnostics?.join('; ') || p.reason || ''}`;
  for (const [name, s] of Object.entries(r.parts.config.sections)) if (s.result === 'rejected') out[`config.${name}`] = `${s.code ?? ''}: ${s.reason ?? ''}`;
  return out;
}
