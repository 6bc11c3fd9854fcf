// The parts of issue 17's wiring that a reload replaces (docs/reload.md): argv redaction, alert
// delivery, OTLP export, the CRI socket. Each is make-new-then-swap: prepare() builds the new
// part from the new settings and throws (changing nothing) when it cannot; the commit it returns
// swaps the new part in and only then closes the old one. Callers read the running part through
// these holders at every use, so nothing keeps a stale reference.
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import type { LifecycleEvent } from '../shared/events.js';
import type { Alert } from '../checks/index.js';
import type { Enriched } from '../process/index.js';
import { CriIdentity } from '../process/index.js';
import { Outbox } from '../store/index.js';
import { Redactor } from '../export/redact.js';
import { AlertDelivery, createSender, outboundAlert, type AlertsConfig, type OutboundAlert, type OutputStats } from '../export/alerts/index.js';
import type { OtlpExport, OtlpMetricSources } from '../export/otlp/index.js';
import type { OtlpConfig } from '../export/otlp/types.js';
import { CriClient } from '../host/cri.js';
import { WallClock } from '../kernel/index.js';
import { VERSION } from '../shared/version.js';
import type { ExportConfig, IdentityConfig } from './config-integrations.js';

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A swap to run once every part of a section was prepared; null: nothing changed. */
export type Commit = (() => Promise<void> | void) | null;

// ------------------------------------------------------------------ redaction

export class LiveRedaction {
  private current: Redactor;
  private cfg: Pick<ExportConfig, 'redact' | 'redactDefaults'>;
  /** argv lists masked by the redactors replaced so far */
  private redactedBefore = 0;

  constructor(cfg: ExportConfig) {
    this.cfg = { redact: [...cfg.redact], redactDefaults: cfg.redactDefaults };
    this.current = Redactor.fromConfig(cfg);
  }

  get redactor(): Redactor {
    return this.current;
  }

  /** On the exec path: the running redactor's masked copy, or null. */
  argv: Redactor['argv'] = (args) => this.current.argv(args);
  text = (s: string): string => this.current.text(s);

  prepare(cfg: ExportConfig): Commit {
    const next = { redact: [...cfg.redact], redactDefaults: cfg.redactDefaults };
    if (same(next, this.cfg)) return null;
    // compiles every pattern (the config loader checked each one already; RE2.Set may still refuse)
    const r = Redactor.fromConfig(next);
    return () => {
      this.redactedBefore += this.current.redacted;
      this.current = r;
      this.cfg = next;
    };
  }

  stats(): { patterns: number; redacted: number } {
    return { patterns: this.current.patterns.length, redacted: this.redactedBefore + this.current.redacted };
  }
}

// ------------------------------------------------------------------ alert delivery

export class LiveAlerts {
  private outbox: Outbox<OutboundAlert> | null = null;
  private delivery: AlertDelivery | null = null;
  private cfg: AlertsConfig | null = null;
  private node: string | null = null;

  constructor(
    private readonly storePath: string,
    private readonly log: Logger,
    private readonly redactText: (s: string) => string,
  ) {}

  /** Queues the alert for the running outputs; null without any. */
  enqueue(a: Alert, attribution: unknown): OutboundAlert | null {
    return this.delivery?.enqueue(a, attribution) ?? null;
  }

  get hasOutputs(): boolean {
    return (this.cfg?.outputs.length ?? 0) > 0;
  }

  /** The delivery for these settings: new senders (a webhook's key file is read now), the same
   *  outbox table (opened on first use), a delivery held until the swap. */
  prepare(cfg: AlertsConfig, node: string): Commit {
    if (this.cfg !== null && same(cfg, this.cfg) && node === this.node) return null;
    if (this.cfg === null && cfg.outputs.length === 0) {
      this.cfg = cfg;
      this.node = node;
      return null;
    }
    const senders = cfg.outputs.map(createSender);
    let opened: Outbox<OutboundAlert> | null = null;
    if (this.outbox === null) opened = Outbox.open<OutboundAlert>(this.storePath, { maxRows: cfg.queueMax });
    const outbox = opened ?? this.outbox!;
    const next = new AlertDelivery({ config: { ...cfg, node }, outbox, senders, log: this.log, redactText: this.redactText });
    return async () => {
      const old = this.delivery;
      this.outbox = outbox;
      outbox.setMaxRows(cfg.queueMax);
      // alerts raised from here on queue into the new delivery; it sends once the old one has
      // finished its requests (no row goes out twice)
      this.delivery = next;
      this.cfg = cfg;
      this.node = node;
      await old?.close();
      next.start();
      if (cfg.outputs.length > 0) this.log.info({ outputs: cfg.outputs.map((o) => o.name) }, 'alerts: delivering to outputs');
    };
  }

  stats(): Record<string, OutputStats> | undefined {
    return this.delivery && this.hasOutputs ? this.delivery.stats() : undefined;
  }

  async close(): Promise<void> {
    await this.delivery?.close();
    this.delivery = null;
    this.outbox?.close();
    this.outbox = null;
  }
}

// ------------------------------------------------------------------ OTLP

// The OpenTelemetry SDK and its protobuf exporters cost ~23 MB of RSS and 0.25 s of start-up:
// loaded at the first config that asks for OTLP, never by an agent without it.
let otlpModule: typeof import('../export/otlp/index.js') | null = null;

/** Loads the OTLP exporter's modules when `cfg` asks for OTLP (before LiveOtlp.prepare). */
export async function loadOtlp(cfg: OtlpConfig | null): Promise<void> {
  if (cfg !== null && otlpModule === null) otlpModule = await import('../export/otlp/index.js');
}

export class LiveOtlp {
  private current: OtlpExport | null = null;
  private cfg: OtlpConfig | null = null;
  private node: string | null = null;
  private metrics: { src: OtlpMetricSources; names: Array<{ name: string; type: string; help: string }> } | null = null;
  private readonly clock = new WallClock();

  constructor(private readonly log: Logger) {}

  get exporter(): OtlpExport | null {
    return this.current;
  }

  get config(): OtlpConfig | null {
    return this.cfg;
  }

  /** On the event path. */
  onLifecycle = (ev: LifecycleEvent, en: Enriched): void => {
    this.current?.onLifecycle(ev, en);
  };

  onAlert(a: OutboundAlert): void {
    this.current?.onAlert(a);
  }

  /** The metric sources (read at each export: they follow a restart of the resource windows). */
  attachMetrics(src: OtlpMetricSources, names: Array<{ name: string; type: string; help: string }>): void {
    this.metrics = { src, names };
    this.current?.attachMetrics(src, names);
  }

  prepare(cfg: OtlpConfig | null, node: string): Commit {
    if (same(cfg, this.cfg) && node === this.node) return null;
    if (cfg !== null && otlpModule === null) throw new Error('internal: loadOtlp() before prepare()');
    const next = cfg === null ? null : new otlpModule!.OtlpExport(cfg, { log: this.log, version: VERSION, node, epochMs: (ns) => this.clock.epochMs(ns) });
    return async () => {
      const old = this.current;
      this.current = next;
      this.cfg = cfg;
      this.node = node;
      if (next !== null && this.metrics !== null) next.attachMetrics(this.metrics.src, this.metrics.names);
      if (cfg !== null) this.log.info({ endpoint: cfg.endpoint, protocol: cfg.protocol }, 'otlp: exporting metrics and logs');
      // what the old exporter holds is sent before it shuts down
      await old?.close();
    };
  }

  async close(): Promise<void> {
    await this.current?.close();
    this.current = null;
  }
}

// ------------------------------------------------------------------ the CRI socket

export function criSource(cfg: IdentityConfig): CriClient | null {
  return cfg.criSocket === null ? null : new CriClient({ socket: cfg.criSocket, timeoutMs: cfg.criTimeoutMs });
}

export class LiveCri {
  readonly cri: CriIdentity;
  private cfg: IdentityConfig;

  constructor(cfg: IdentityConfig) {
    this.cfg = { ...cfg };
    this.cri = new CriIdentity(criSource(cfg), cfg.criSocket);
  }

  prepare(cfg: IdentityConfig): Commit {
    if (same(cfg, this.cfg)) return null;
    const src = criSource(cfg);
    return () => {
      this.cri.setSource(src, cfg.criSocket);
      this.cfg = { ...cfg };
    };
  }
}

/** Runs every commit (after all were prepared); a throw in one leaves the earlier ones applied,
 *  so commits do no more than swap and close. */
export async function commitAll(commits: Commit[]): Promise<boolean> {
  let changed = false;
  for (const c of commits) {
    if (c === null) continue;
    changed = true;
    await c();
  }
  return changed;
}

/** A prepare() that threw, as the reload reports it. */
export function prepareError(section: string, e: unknown): PatrolError {
  if (e instanceof PatrolError) return e;
  return new PatrolError(`E_${section.toUpperCase()}`, (e as Error).message);
}

export { outboundAlert };
