// Issue 17's wiring: argv redaction and cgroup identity (hooks of the process table), alert
// delivery (the store's outbox + src/export/alerts), OTLP export. The agent and `patrol trace`
// call this; the logic lives in src/export and src/process.
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import type { LifecycleEvent } from '../shared/events.js';
import type { Alert } from '../checks/index.js';
import { IdentityCache, identityMatches, hasIdentityFilter, type Enriched, type IdentityFilter, type ProcessIdentity, type ProcessTableOptions } from '../process/index.js';
import { Outbox } from '../store/index.js';
import { Redactor } from '../export/redact.js';
import { AlertDelivery, createSender, outboundAlert, type OutboundAlert, type OutputStats } from '../export/alerts/index.js';
import type { OtlpExport, OtlpProcessRow } from '../export/otlp/index.js';
import { WallClock } from '../kernel/index.js';
import { hostname } from 'node:os';
import { VERSION } from '../shared/version.js';
import type { ResourcePipeline } from './resources.js';
import { loadConfig, type AgentConfig } from './config.js';
import type { ExportConfig } from './config-integrations.js';

export interface TableHooks {
  redactArgv?: ProcessTableOptions['redactArgv'];
  identify?: ProcessTableOptions['identify'];
}

function hooks(redactor: Redactor | null, identity: IdentityCache): TableHooks {
  return {
    ...(redactor !== null && redactor.patterns.length > 0 ? { redactArgv: (argv) => redactor.argv(argv) } : {}),
    identify: (id, pid) => identity.get(id, pid),
  };
}

// ------------------------------------------------------------------ patrol trace

export interface TraceIntegrations {
  tableHooks: TableHooks;
  /** --unit/--container/--pod, or null without them */
  filter: ((id: ProcessIdentity | null) => boolean) | null;
}

/** Redaction (the agent config's export section, or the defaults) and identity for `trace`.
 *  `--no-redact` is for root looking at a terminal: argv unmasked must not land in a file or
 *  a pipe, so anything else is refused (E_NO_REDACT). */
export function traceIntegrations(o: { redact: boolean; config?: string; out: NodeJS.WritableStream; filter?: IdentityFilter }): TraceIntegrations {
  let redactor: Redactor | null = null;
  if (o.redact) {
    const cfg = loadConfig(o.config !== undefined ? { path: o.config } : {});
    redactor = Redactor.fromConfig(cfg.export);
  } else {
    const tty = o.out === process.stdout && process.stdout.isTTY === true;
    if (process.getuid?.() !== 0 || !tty) {
      throw new PatrolError('E_NO_REDACT', '--no-redact shows arguments unmasked: it is for root, writing to a terminal only (not a file or a pipe)');
    }
  }
  const f = o.filter ?? {};
  return { tableHooks: hooks(redactor, new IdentityCache()), filter: hasIdentityFilter(f) ? (id) => identityMatches(id, f) : null };
}

// ------------------------------------------------------------------ the agent

export interface AgentIntegrations {
  redactor: Redactor;
  identity: IdentityCache;
  tableHooks: TableHooks;
  delivery: AlertDelivery | null;
  /** queues an alert for the outputs (the check service calls it); undefined without outputs */
  deliver?: (a: Alert, attribution: unknown) => OutboundAlert | null;
  /** a lifecycle event, after the table applied it (OTLP logs) */
  onLifecycle?: (ev: LifecycleEvent, en: Enriched) => void;
  otlp: OtlpExport | null;
  /** OTLP metrics, once the resource windows run */
  attachResources(r: ResourcePipeline): void;
  stats(): { alerts?: Record<string, OutputStats>; export: Record<string, unknown> };
  close(): Promise<void>;
}

export async function startIntegrations(cfg: AgentConfig, log: Logger): Promise<AgentIntegrations> {
  // The OpenTelemetry SDK and its protobuf exporters cost ~23 MB of RSS and 0.25 s of start-up:
  // loaded only when export.otlp asks for them.
  const otlpModule = cfg.export.otlp !== null ? await import('../export/otlp/index.js') : null;
  const redactor = Redactor.fromConfig(cfg.export);
  const identity = new IdentityCache();
  let delivery: AlertDelivery | null = null;
  let outbox: Outbox<OutboundAlert> | null = null;
  let otlp: OtlpExport | null = null;
  // the node's name: the config, else $PATROL_NODE (a DaemonSet sets it from spec.nodeName), else the host name
  const node = cfg.alerts.node ?? (process.env.PATROL_NODE || hostname());
  const closers: Array<() => Promise<void> | void> = [];
  try {
    if (cfg.alerts.outputs.length > 0) {
      const senders = cfg.alerts.outputs.map(createSender);
      outbox = Outbox.open<OutboundAlert>(cfg.store.path, { maxRows: cfg.alerts.queueMax });
      const ob = outbox;
      closers.push(() => ob.close());
      delivery = new AlertDelivery({ config: { ...cfg.alerts, node }, outbox, senders, log, redactText: (s) => redactor.text(s) });
      const d = delivery;
      closers.push(() => d.close());
      delivery.start();
      log.info({ outputs: cfg.alerts.outputs.map((o) => o.name) }, 'alerts: delivering to outputs');
    }
    if (cfg.export.otlp !== null && otlpModule !== null) {
      const clock = new WallClock();
      otlp = new otlpModule.OtlpExport(cfg.export.otlp, { log, version: VERSION, node, epochMs: (ns) => clock.epochMs(ns) });
      const o = otlp;
      closers.push(() => o.close());
      log.info({ endpoint: cfg.export.otlp.endpoint, protocol: cfg.export.otlp.protocol }, 'otlp: exporting metrics and logs');
    }
  } catch (e) {
    void Promise.all(closers.reverse().map((c) => c()));
    throw e;
  }
  const d = delivery;
  const ox = otlp;
  const deliver = (a: Alert, attribution: unknown): OutboundAlert | null => {
    const out = d ? d.enqueue(a, attribution) : outboundAlert(a, attribution, node, (s) => redactor.text(s));
    if (out !== null) ox?.onAlert(out);
    return out;
  };
  return {
    redactor,
    identity,
    tableHooks: hooks(redactor, identity),
    delivery,
    ...(d || ox ? { deliver } : {}),
    ...(ox ? { onLifecycle: (ev: LifecycleEvent, en: Enriched) => ox.onLifecycle(ev, en) } : {}),
    otlp: ox,
    attachResources: (r) => {
      if (ox === null) return;
      const names = r.metrics.registry.getMetricsAsArray().map((m) => ({ name: m.name, type: String(m.type), help: m.help }));
      ox.attachMetrics({ processes: () => topProcessRows(r, identity), registry: () => r.metrics.registry.getMetricsAsJSON() as never }, names);
    },
    stats: () => ({
      ...(d ? { alerts: d.stats() } : {}),
      export: {
        redaction: { patterns: redactor.patterns.length, redacted: redactor.redacted },
        identity: { ...identity.stats },
        ...(ox ? { otlp: ox.stats() } : {}),
      },
    }),
    close: async () => {
      for (const c of closers.reverse()) await c();
    },
  };
}

/** The top processes of /metrics, with the cumulative figures OTLP's process.* metrics need. */
function topProcessRows(r: ResourcePipeline, identity: IdentityCache): OtlpProcessRow[] {
  const out: OtlpProcessRow[] = [];
  for (const row of r.metrics.topProcesses()) {
    const e = r.processes.windows.get(row.exec_id);
    const prev = e?.meta.prev;
    if (prev === undefined) continue;
    const cg = e!.meta.cgroupId;
    out.push({
      pid: row.pid, comm: row.comm, execId: row.exec_id, cpuSeconds: Number(prev.cpuNs) / 1e9, rssBytes: row.rss_bytes.last,
      readBytes: prev.readBytes, writeBytes: prev.writeBytes, identity: cg === null ? null : identity.get(cg, row.pid),
    });
  }
  return out;
}

export type { ExportConfig };
