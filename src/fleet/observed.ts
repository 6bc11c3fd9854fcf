// observed/<node>: built from the agent's inputs every refresh, written when it changed and at
// most once per interval. "Changed" ignores noise: CPU counts in 5-point steps and RSS in 10 %
// steps, so an idle agent writes nothing but its lease keepalive (docs/fleet.md, "Write rate").
import { SCHEMA, type ObservedValue } from './keys.js';
import type { FleetInputs } from './inputs.js';

const LOSS_WINDOW_MS = 60_000;
/** CPU is read over the last 10 s (a rollout gate compares it: one busy second is not a trend),
 *  and over at least 0.5 s (a shorter span is noise) */
const CPU_WINDOW_MS = 10_000;
const MIN_CPU_SPAN_MS = 500;
/** after a restart (a bundle applied), the first reading that counts covers this long */
const CPU_SETTLE_MS = 2000;

export class ObservedBuilder {
  private lossSamples: Array<{ t: number; lost: number }> = [];
  private cpuSamples: Array<{ t: number; us: number }> = [];
  private cpuPct = 0;

  constructor(
    private readonly node: string,
    private readonly inputs: FleetInputs,
    private readonly now: () => number = Date.now,
  ) {}

  /** Samples CPU and loss (call every refresh, so the rates cover the recent past). */
  sample(): void {
    const t = this.now();
    const u = process.cpuUsage();
    const cs = this.cpuSamples;
    cs.push({ t, us: u.user + u.system });
    while (cs.length > 2 && cs[1]!.t <= t - CPU_WINDOW_MS) cs.shift();
    const first = cs[0]!;
    if (t - first.t >= MIN_CPU_SPAN_MS) this.cpuPct = ((cs[cs.length - 1]!.us - first.us) / 1000 / (t - first.t)) * 100;
    this.lossSamples.push({ t, lost: this.inputs.lostTotal() });
    while (this.lossSamples.length > 2 && this.lossSamples[1]!.t <= t - LOSS_WINDOW_MS) this.lossSamples.shift();
  }

  /** The next CPU reading starts now: after a bundle is applied, the one-off cost of the swap
   *  (loading and verifying objects, compiling) is not read as what the bundle costs to run;
   *  until then the reading from before stays. */
  restartCpuWindow(): void {
    const u = process.cpuUsage();
    this.cpuSamples = [{ t: this.now(), us: u.user + u.system }];
  }

  /** The CPU reading covers CPU_SETTLE_MS since the window (re)started. */
  cpuReady(): boolean {
    const cs = this.cpuSamples;
    return cs.length > 1 && cs[cs.length - 1]!.t - cs[0]!.t >= CPU_SETTLE_MS;
  }

  /** records lost per second over the last minute */
  lostRate(): number {
    const a = this.lossSamples[0];
    const b = this.lossSamples[this.lossSamples.length - 1];
    if (!a || !b || b.t <= a.t) return 0;
    return Math.max(0, (b.lost - a.lost) / ((b.t - a.t) / 1000));
  }

  build(desired: { bundle: string | null; revision: number } | null): ObservedValue {
    const r = this.inputs.reload();
    const checks = this.inputs.checkStates();
    const h = this.inputs.health();
    const usage = this.inputs.usage?.();
    const last = this.lossSamples[this.lossSamples.length - 1];
    const b = this.inputs.bundle?.() ?? null;
    return {
      schema: SCHEMA,
      node: this.node,
      at: new Date(this.now()).toISOString(),
      parts: Object.fromEntries(Object.entries(r.parts).map(([k, p]) => [k, { version: p.version, since: p.since }])),
      generation: r.generation,
      last_reload: r.lastReload,
      health: { status: h.status, reasons: h.reasons.map((x) => ({ kind: x.kind, message: x.message })) },
      lost_rate: Math.round(this.lostRate() * 1000) / 1000,
      lost_total: last?.lost ?? this.inputs.lostTotal(),
      agent_cpu: Math.round((usage?.cpuPct ?? this.cpuPct) * 10) / 10,
      agent_rss: usage?.rssBytes ?? process.memoryUsage.rss(),
      checks,
      checks_critical: checks.critical ?? 0,
      alerts_firing: this.inputs.firingAlerts().length,
      desired,
      bundle: b?.id ?? null,
      bundle_apply: b ? { target: b.target, result: b.result, code: b.code, reason: b.reason, incompatible: b.incompatible, at: b.at, previous: b.previous } : null,
    };
  }
}

/** What must change for observed/<node> to be written again. */
export function observedSignature(v: ObservedValue): string {
  const { at: _at, agent_cpu, agent_rss, lost_total: _lt, ...rest } = v;
  return JSON.stringify({
    ...rest,
    cpu: Math.round(agent_cpu / 5),
    rss: agent_rss > 0 ? Math.round(Math.log(agent_rss) / Math.log(1.1)) : 0,
  });
}
