// Applying a fleet bundle on this agent, through hot reload (docs/fleet.md, "Applying a
// bundle"). A bundle is a configuration layer over the node's own (config.ts `overlay`): its
// rules/, checks/ and bpf/ become rules.dir, checks.dir and agent.bpf_dir, its config.yaml is
// merged over the file. Before anything is swapped:
//   1. the signature was verified (bundle-keeper.ts) and the kernel is recent enough;
//   2. the configuration with the bundle validates, and every key the bundle changes applies
//      live (a key that needs a restart is refused: E_NOT_LIVE, nothing applied);
//   3. every rule and check compiles;
//   4. the objects pass the sensors' BTF pre-flight against the running ones, without a load
//      (a node whose kernel lacks what they need is incompatible, and nothing was touched);
// then the reload swaps it in (sensors make-before-break). Should the reload still refuse a
// part, the previous layer goes back with a second reload: the bundle is rejected as a whole.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import { checkFilesIn, compileFiles } from '../checks/index.js';
import { loadRuleFiles } from '../rules/index.js';
// not the src/fleet barrel: that loads etcd3 and gRPC, which only an agent with a fleet needs
import { BPF_OBJECTS, checkOverlayText } from '../fleet/bundle.js';
import { INCOMPATIBLE_CODES, type BundleApplyOutcome, type BundleHost, type StagedBundle } from '../fleet/bundle-keeper.js';
import { readFileSync } from 'node:fs';
import { ConfigError, changedKeys, loadConfig, type AgentConfig, type ConfigOverlay, type ConfigSection, type LoadConfigOptions } from './config.js';
import type { ReloadCoordinator, ReloadParts, ReloadReply } from './reload.js';
import { objectPaths } from './sensor-reload.js';

/** The configuration layer of a staged bundle (null: none). */
export function overlayOf(b: StagedBundle | null): ConfigOverlay | null {
  if (b === null) return null;
  const parts = new Set(b.manifest.parts);
  let values: Record<string, unknown> = {};
  if (parts.has('config')) values = structuredClone(checkOverlayText(readFileSync(join(b.dir, 'config.yaml'), 'utf8'), 'E_BUNDLE_FORMAT'));
  const set = (section: string, key: string, v: string) => {
    const s = (values[section] && typeof values[section] === 'object' ? values[section] : {}) as Record<string, unknown>;
    values[section] = { ...s, [key]: v };
  };
  if (parts.has('rules')) set('rules', 'dir', join(b.dir, 'rules'));
  if (parts.has('checks')) set('checks', 'dir', join(b.dir, 'checks'));
  if (parts.has('bpf')) set('agent', 'bpf_dir', join(b.dir, 'bpf'));
  return { source: `bundle ${b.id}`, values };
}

export interface AgentBundleHostOptions {
  loadOpts: LoadConfigOptions;
  coordinator: ReloadCoordinator;
  parts: ReloadParts;
  log: Logger;
}

export class AgentBundleHost implements BundleHost {
  /** the layer the agent's configuration is read with: the running bundle's */
  active: ConfigOverlay | null = null;
  /** the last outcome's reload replies (tests, status) */
  lastReplies: ReloadReply[] = [];

  constructor(private readonly o: AgentBundleHostOptions) {}

  /** The agent starts with this bundle (its state file says it ran it). */
  setStartup(b: StagedBundle | null): void {
    this.completeObjects(b);
    this.active = overlayOf(b);
  }

  private load(overlay: ConfigOverlay | null): AgentConfig {
    return loadConfig({ ...this.o.loadOpts, overlay: () => overlay });
  }

  /** bpf/ with one object only: the other is the node's own, copied in (the sensors load the
   *  pair from one directory). */
  private completeObjects(b: StagedBundle | null): void {
    if (!b || !b.manifest.parts.includes('bpf')) return;
    const base = objectPaths(this.load(null).agent.bpfDir);
    const dir = join(b.dir, 'bpf');
    mkdirSync(dir, { recursive: true });
    for (const f of BPF_OBJECTS) {
      if (!existsSync(join(dir, f))) copyFileSync(f === 'lifecycle.bpf.o' ? base.lifecycle : base.state, join(dir, f));
    }
  }

  async apply(next: StagedBundle | null, current: StagedBundle | null): Promise<BundleApplyOutcome> {
    const reject = (code: string, reason: string): BundleApplyOutcome => ({ result: 'rejected', code, reason, incompatible: INCOMPATIBLE_CODES.has(code) });
    let nextLayer: ConfigOverlay | null;
    let before: AgentConfig;
    let after: AgentConfig;
    try {
      this.completeObjects(next);
      nextLayer = overlayOf(next);
      before = this.load(this.active);
      after = this.load(nextLayer);
    } catch (e) {
      if (e instanceof ConfigError) return reject('E_CONFIG', `the configuration with ${next ? `bundle ${next.id}` : 'no bundle'} is invalid: ${e.problems.join('; ')}`);
      return reject(e instanceof PatrolError ? e.code : 'E_BUNDLE', (e as Error).message);
    }
    // 2. every key the bundle changes must apply live
    const keys = changedKeys(before, after);
    const notLive = keys.map((k) => this.o.parts.sections[k.split('.')[0] as ConfigSection]?.notLive(k)).filter((x): x is string => !!x);
    if (notLive.length) return reject('E_NOT_LIVE', `the bundle changes what needs a restart: ${notLive.join('; ')}`);
    // 3. rules and checks compile (the directories the bundle brings; the node's own ran already)
    const parts = new Set(next?.manifest.parts ?? []);
    if (parts.has('rules') && after.rules.dir !== null) {
      const r = loadRuleFiles(after.rules.dir);
      if (!r.ok) return reject(r.diagnostics[0]?.code ?? 'E_RULES', `rules: ${r.diagnostics.slice(0, 5).map((d) => `${d.file}:${d.line}: ${d.message}`).join('; ')}`);
    }
    if (parts.has('checks') && after.checks.dir !== null) {
      const c = compileFiles(checkFilesIn(after.checks.dir));
      const errs = c.diagnostics.filter((d) => d.severity === 'error');
      if (errs.length) return reject(errs[0]!.code, `checks: ${errs.slice(0, 5).map((d) => `${d.file}:${d.span.line}: ${d.message}`).join('; ')}`);
    }
    // 4. the objects' pre-flight, nothing loaded
    const pf = this.o.parts.sensors?.preflight?.(after) ?? null;
    if (pf) return reject(pf.code, `pre-flight of the ${pf.sensor} object: ${pf.reason}`);

    // the swap
    const prevLayer = this.active;
    this.active = nextLayer;
    const reply = await this.o.coordinator.reload({ trigger: 'bundle' });
    this.lastReplies = [reply];
    const refused = refusedParts(reply, keys);
    if (refused === null) {
      this.o.log.info({ bundle: next?.id ?? null, previous: current?.id ?? null, keys: keys.length, generation: reply.parts.sensors.generation, overlap_ms: reply.parts.sensors.overlap_ms }, 'bundle swapped in');
      return { result: 'applied' };
    }
    // a part refused at the swap: the previous layer goes back
    this.active = prevLayer;
    const back = await this.o.coordinator.reload({ trigger: 'bundle' });
    this.lastReplies.push(back);
    const still = refusedParts(back, keys);
    if (still !== null) this.o.log.error({ bundle: current?.id ?? null, refused: still }, 'the previous bundle could not be put back in full; what was refused keeps running as it was');
    return reject(refused.code, refused.reason);
  }
}

/** The first part of a reload that refused what the bundle brings, or null. */
function refusedParts(r: ReloadReply, bundleKeys: readonly string[]): { code: string; reason: string } | null {
  for (const name of ['sensors', 'rules', 'checks'] as const) {
    const p = r.parts[name];
    if (p.result === 'rejected') return { code: p.code ?? 'E_RELOAD', reason: `${name}: ${p.reason ?? ''}` };
  }
  for (const [s, sec] of Object.entries(r.parts.config.sections)) {
    const missed = sec.keys.filter((k) => bundleKeys.includes(k) && !sec.applied.includes(k));
    if (missed.length) return { code: sec.code ?? 'E_NOT_LIVE', reason: `config.${s}: ${missed.join(', ')}: ${sec.reason ?? 'not applied'}` };
  }
  if (r.parts.config.result === 'rejected' && r.parts.config.code === 'E_CONFIG') return { code: 'E_CONFIG', reason: r.parts.config.reason ?? 'invalid configuration' };
  return null;
}
