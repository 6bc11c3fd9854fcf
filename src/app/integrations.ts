// Issue 17's wiring: argv redaction and cgroup identity (hooks of the process table), pod names
// from the CRI socket, alert delivery (the store's outbox + src/export/alerts), OTLP export. The
// agent and `patrol trace` call this; the logic lives in src/export, src/process and src/host. A
// reload replaces redaction, delivery, OTLP and the CRI socket live (integrations-live.ts).
import { hostname } from 'node:os';
import type { Logger } from '../shared/log.js';
import { PatrolError } from '../shared/errors.js';
import type { LifecycleEvent } from '../shared/events.js';
import type { Alert } from '../checks/index.js';
import { CriIdentity, IdentityCache, identityMatches, hasIdentityFilter, type CriStats, type Enriched, type IdentityFilter, type ProcessIdentity, type ProcessTableOptions } from '../process/index.js';
import { Redactor } from '../export/redact.js';
import { type OutboundAlert, type OutputStats } from '../export/alerts/index.js';
import type { OtlpProcessRow } from '../export/otlp/index.js';
import type { ResourcePipeline } from './resources.js';
import { loadConfig, type AgentConfig } from './config.js';
import type { ExportConfig } from './config-integrations.js';
import { LiveAlerts, LiveCri, LiveOtlp, LiveRedaction, commitAll, loadOtlp, criSource, outboundAlert, prepareError, type Commit } from './integrations-live.js';

export interface TableHooks {
  redactArgv?: ProcessTableOptions['redactArgv'];
  identify?: ProcessTableOptions['identify'];
  /** the lifecycle pipeline hands over its record of cgroup paths (LifecyclePipeline.cgroupPath) */
  bindCgroupPaths?: (lookup: (cgroupId: bigint) => string | null) => void;
}

/** An identity cache that also asks the lifecycle sensor's record of cgroup mkdirs, once the
 *  pipeline binds it (a cgroup can be gone, with its first process, before the exec is handled). */
function identityCache(onResolved: (id: ProcessIdentity) => void): { identity: IdentityCache; bindCgroupPaths: NonNullable<TableHooks['bindCgroupPaths']> } {
  let lookup: ((cgroupId: bigint) => string | null) | null = null;
  const identity = new IdentityCache({ onResolved, fromKernel: (id) => (lookup === null ? null : lookup(id)) });
  return { identity, bindCgroupPaths: (l) => (lookup = l) };
}

// ------------------------------------------------------------------ patrol trace

export interface TraceIntegrations {
  tableHooks: TableHooks;
  /** --unit/--container/--pod, or null without them */
  filter: ((id: ProcessIdentity | null) => boolean) | null;
  close(): void;
}

/** Redaction (the agent config's export section, or the defaults) and identity for `trace`.
 *  `--no-redact` is for root looking at a terminal: argv unmasked must not land in a file or
 *  a pipe, so anything else is refused (E_NO_REDACT). */
export function traceIntegrations(o: { redact: boolean; config?: string; out: NodeJS.WritableStream; filter?: IdentityFilter }): TraceIntegrations {
  let redactor: Redactor | null = null;
  const cfg = loadConfig(o.config !== undefined ? { path: o.config } : {});
  if (o.redact) {
    redactor = Redactor.fromConfig(cfg.export);
  } else {
    const tty = o.out === process.stdout && process.stdout.isTTY === true;
    if (process.getuid?.() !== 0 || !tty) {
      throw new PatrolError('E_NO_REDACT', '--no-redact shows arguments unmasked: it is for root, writing to a terminal only (not a file or a pipe)');
    }
  }
  const f = o.filter ?? {};
  // pod names from the CRI socket, as the agent's config says (a pod's first events may come
  // before the runtime's answer: they lack the names, and `--pod <name>` does not match them)
  const cri = new CriIdentity(criSource(cfg.identity), cfg.identity.criSocket);
  const { identity, bindCgroupPaths } = identityCache((id) => cri.want(id));
  const tableHooks: TableHooks = {
    ...(redactor !== null && redactor.patterns.length > 0 ? { redactArgv: (argv) => redactor.argv(argv) } : {}),
    identify: (id, pid, ppid) => identity.get(id, pid, ppid),
    bindCgroupPaths,
  };
  return { tableHooks, filter: hasIdentityFilter(f) ? (id) => identityMatches(id, f) : null, close: () => cri.close() };
}

// ------------------------------------------------------------------ the agent

export interface AgentIntegrations {
  identity: IdentityCache;
  cri: CriIdentity;
  /** the process table's hooks (installed for good: they read the running redactor) */
  tableHooks: TableHooks;
  /** the alert as the outputs and OTLP get it, queued for delivery; null when it goes nowhere */
  deliver: (a: Alert, attribution: unknown) => OutboundAlert | null;
  /** a lifecycle event, after the table applied it (OTLP logs) */
  onLifecycle: (ev: LifecycleEvent, en: Enriched) => void;
  /** OTLP metrics read the resource windows; called again when they restart */
  attachResources(r: ResourcePipeline): void;
  stats(): { alerts?: Record<string, OutputStats>; export: Record<string, unknown> };
  /** what the health report should say about these parts (a failing CRI socket) */
  problems(): string[];
  /** a reload's new `alerts`, `export` or `identity` section: everything is built first, then
   *  swapped in; a part that cannot be built throws and nothing of the section changes */
  apply(section: 'alerts' | 'export' | 'identity', next: AgentConfig): Promise<void>;
  close(): Promise<void>;
}

/** The node name of alerts and OTLP: the config, else $PATROL_NODE (a DaemonSet sets it from
 *  spec.nodeName), else the host name. */
function nodeName(cfg: AgentConfig): string {
  return cfg.alerts.node ?? (process.env.PATROL_NODE || hostname());
}

export async function startIntegrations(cfg: AgentConfig, log: Logger): Promise<AgentIntegrations> {
  const redaction = new LiveRedaction(cfg.export);
  const liveCri = new LiveCri(cfg.identity);
  const cri = liveCri.cri;
  const { identity, bindCgroupPaths } = identityCache((id) => cri.want(id));
  const alerts = new LiveAlerts(cfg.store.path, log, redaction.text);
  const otlp = new LiveOtlp(log);
  let resources: ResourcePipeline | null = null;
  let node = nodeName(cfg);
  try {
    await loadOtlp(cfg.export.otlp);
    await commitAll([otlp.prepare(cfg.export.otlp, node), alerts.prepare(cfg.alerts, node)]);
  } catch (e) {
    await Promise.allSettled([alerts.close(), otlp.close()]);
    cri.close();
    throw e;
  }

  const deliver = (a: Alert, attribution: unknown): OutboundAlert | null => {
    const ox = otlp.exporter;
    if (!alerts.hasOutputs && ox === null) return null;
    const out = alerts.enqueue(a, attribution) ?? (ox ? outboundAlert(a, attribution, node, redaction.text) : null);
    if (out !== null) ox?.onAlert(out);
    return out;
  };

  const apply = async (section: 'alerts' | 'export' | 'identity', next: AgentConfig): Promise<void> => {
    let commits: Commit[];
    try {
      if (section === 'alerts') {
        // the node name is also OTLP's host.name: a new one restarts the exporter (same settings)
        const n = nodeName(next);
        commits = [n !== node ? otlp.prepare(otlp.config, n) : null, alerts.prepare(next.alerts, n)];
        await commitAll(commits);
        node = n;
        return;
      }
      if (section === 'export') {
        await loadOtlp(next.export.otlp);
        commits = [redaction.prepare(next.export), otlp.prepare(next.export.otlp, node)];
      }
      else commits = [liveCri.prepare(next.identity)];
    } catch (e) {
      throw prepareError(section, e);
    }
    await commitAll(commits);
  };

  return {
    identity,
    cri,
    // always installed, so a reload can turn redaction on; no pattern: one null check per exec
    tableHooks: { redactArgv: redaction.argv, identify: (id, pid, ppid) => identity.get(id, pid, ppid), bindCgroupPaths },
    deliver,
    onLifecycle: otlp.onLifecycle,
    attachResources: (r) => {
      resources = r;
      const names = r.metrics.registry.getMetricsAsArray().map((m) => ({ name: m.name, type: String(m.type), help: m.help }));
      // read through `resources`: a reload of the metrics section restarts the windows
      otlp.attachMetrics(
        {
          processes: () => (resources ? topProcessRows(resources, identity) : []),
          registry: () => (resources ? (resources.metrics.registry.getMetricsAsJSON() as never) : ([] as never)),
        },
        names,
      );
    },
    stats: () => {
      const as = alerts.stats();
      const ox = otlp.exporter;
      return {
        ...(as ? { alerts: as } : {}),
        export: {
          redaction: redaction.stats(),
          identity: { ...identity.stats, cri: cri.stats() satisfies CriStats },
          ...(ox ? { otlp: ox.stats() } : {}),
        },
      };
    },
    problems: () => {
      const p = cri.problem();
      return p === null ? [] : [p];
    },
    apply,
    close: async () => {
      cri.close();
      await Promise.allSettled([alerts.close(), otlp.close()]);
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
