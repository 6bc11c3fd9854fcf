// OTLP export (export.otlp; docs/otlp.md), with the OpenTelemetry JS SDK (one pinned release:
// stable 2.6.1, experimental 0.214.0): metrics through a MeterProvider and a periodic reader,
// lifecycle events and alerts as log records through a LoggerProvider.
//
// The event path only appends to a bounded queue (a reference to the event and a few fields);
// past `queue_max` records are dropped and counted. A timer, armed by the first queued record,
// turns up to 512 of them into log records and exports them, one request in flight at a time.
//
// Metrics: the series of /metrics. The top processes (as /metrics picks them) under the
// semantic-convention names process.cpu.time (s, cumulative), process.memory.usage (By) and
// process.disk.io (By, cumulative, disk.io.direction); every other series of the Prometheus
// registry as patrol.<area>.<name> (patrol_node_load → patrol.node.load; counters lose _total),
// with its labels as attributes. Histograms are left out.
import { diag, type Attributes } from '@opentelemetry/api';
import { SeverityNumber, type Logger as OtelLogger } from '@opentelemetry/api-logs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordProcessor, type ReadableLogRecord, type SdkLogRecord } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import type { Logger } from '../../shared/log.js';
import type { LifecycleEvent } from '../../shared/events.js';
import type { Enriched, ProcessIdentity } from '../../process/index.js';
import type { OutboundAlert } from '../alerts/types.js';
import type { OtlpConfig } from './types.js';

/** One top process, as /metrics exports it, with cumulative figures. */
export interface OtlpProcessRow {
  pid: number;
  comm: string;
  execId: string;
  cpuSeconds: number;
  rssBytes: number;
  readBytes: number;
  writeBytes: number;
  identity: ProcessIdentity | null;
}

/** prom-client's getMetricsAsJSON() items (the part used). */
export interface PromMetricJson {
  name: string;
  help: string;
  type: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

export interface OtlpMetricSources {
  processes(): OtlpProcessRow[];
  registry(): Promise<PromMetricJson[]>;
}

export interface OtlpOptions {
  log: Logger;
  /** service.version */
  version: string;
  /** host.name */
  node: string;
  /** wall clock ms of a CLOCK_BOOTTIME ns */
  epochMs(ktimeNs: bigint): number;
}

interface Pending {
  ev: LifecycleEvent;
  en: Enriched;
  ppid: number;
  comm: string;
}

const BATCH = 512;
const FLUSH_MS = 1000;

/** The semantic-convention attributes of a lifecycle event (docs/otlp.md). */
export function eventAttributes(ev: LifecycleEvent, en: Enriched, ppid: number, comm: string, epochMs: (ns: bigint) => number): Attributes {
  const e = en.entry;
  const a: Attributes = {
    'process.pid': ev.pid,
    'process.parent_pid': ppid,
    'process.executable.name': comm,
    'patrol.exec_id': en.execId,
    'patrol.event': ev.type,
    'process.creation.time': new Date(epochMs(e.startNs)).toISOString(),
  };
  if (ev.type === 'exec') {
    a['process.executable.path'] = ev.filename.text;
    a['process.command_args'] = ev.args.map((x) => x.text);
    if (ev.argsRedacted) a['patrol.args_redacted'] = true;
    a['process.owner'] = String(ev.uid);
  } else if (e.filename !== null) {
    a['process.executable.path'] = e.filename;
  }
  if (ev.type === 'exit') {
    if (ev.exitCode !== null) a['process.exit.code'] = ev.exitCode;
    if (ev.signal !== null) a['patrol.signal'] = ev.signal;
    a['process.exit.time'] = new Date(epochMs(ev.ktimeNs)).toISOString();
  } else if (ev.type === 'exec_failed') {
    a['process.executable.path'] = ev.filename.text;
    a['error.type'] = `errno ${ev.errno}`;
  }
  identityAttributes(a, e.identity);
  return a;
}

export function identityAttributes(a: Attributes, id: ProcessIdentity | null): void {
  if (id === null) return;
  a['patrol.cgroup'] = id.cgroup;
  if (id.unit !== undefined) a['patrol.systemd.unit'] = id.unit;
  if (id.containerId !== undefined) a['container.id'] = id.containerId;
  if (id.containerRuntime !== undefined) a['container.runtime'] = id.containerRuntime;
  if (id.podUid !== undefined) a['k8s.pod.uid'] = id.podUid;
  if (id.podQos !== undefined) a['patrol.k8s.pod.qos'] = id.podQos;
  if (id.podName !== undefined) a['k8s.pod.name'] = id.podName;
  if (id.podNamespace !== undefined) a['k8s.namespace.name'] = id.podNamespace;
  if (id.containerName !== undefined) a['k8s.container.name'] = id.containerName;
  if (id.image !== undefined) {
    const { name, tag } = splitImage(id.image);
    a['container.image.name'] = name;
    if (tag !== undefined) a['container.image.tags'] = [tag];
  }
}

/** `registry:5000/ns/app:1.2@sha256:…` → name `registry:5000/ns/app`, tag `1.2` (the semantic
 *  conventions keep the tag apart from the name). */
export function splitImage(ref: string): { name: string; tag?: string } {
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/') && colon > 0) return { name: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { name: base };
}

function severityOf(ev: LifecycleEvent): [SeverityNumber, string] {
  if (ev.type === 'exec_failed' || (ev.type === 'exit' && (ev.signal !== null || ev.exitCode !== 0))) return [SeverityNumber.WARN, 'WARN'];
  return [SeverityNumber.INFO, 'INFO'];
}

/** patrol_node_load → patrol.node.load; patrol_events_total → patrol.events */
export function otelName(prom: string, counter: boolean): string {
  const base = counter ? prom.replace(/_total$/, '') : prom;
  const [head, area, ...rest] = base.split('_');
  if (head !== 'patrol' || area === undefined) return base.replace(/_/g, '.');
  return rest.length ? `patrol.${area}.${rest.join('_')}` : `patrol.${area}`;
}

/** Collects the records one flush emits, for the exporter. */
class Collector implements LogRecordProcessor {
  batch: SdkLogRecord[] = [];
  onEmit(r: SdkLogRecord): void {
    this.batch.push(r);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Counts what the metric exporter did, then passes on. */
class CountingMetricExporter implements PushMetricExporter {
  exports = 0;
  failures = 0;
  lastError: string | null = null;
  constructor(private readonly inner: PushMetricExporter) {}
  export(metrics: ResourceMetrics, cb: (r: ExportResult) => void): void {
    this.inner.export(metrics, (r) => {
      if (r.code === ExportResultCode.SUCCESS) this.exports++;
      else {
        this.failures++;
        this.lastError = r.error?.message ?? 'export failed';
      }
      cb(r);
    });
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }
}

export interface OtlpStats {
  endpoint: string;
  protocol: string;
  logsQueued: number;
  logsExported: number;
  /** dropped because the queue was full */
  logsDropped: number;
  /** lost in failed exports */
  logsFailed: number;
  metricExports: number;
  metricFailures: number;
  lastError: string | null;
}

export class OtlpExport {
  private readonly queue: Pending[] = [];
  private readonly wanted: Record<string, boolean> = {};
  private readonly logger: OtelLogger;
  private readonly loggerProvider: LoggerProvider;
  private readonly collector = new Collector();
  private readonly logExporter: ProtoLogExporter | JsonLogExporter;
  private readonly metricExporter: CountingMetricExporter;
  private meterProvider: MeterProvider | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private alerts: OutboundAlert[] = [];
  private closed = false;
  private readonly s = { exported: 0, dropped: 0, failed: 0, lastError: null as string | null };

  constructor(
    readonly config: OtlpConfig,
    private readonly opts: OtlpOptions,
  ) {
    for (const t of config.events) this.wanted[t] = true;
    const base = config.endpoint.replace(/\/+$/, '');
    const common = { headers: { ...config.headers }, timeoutMillis: config.timeoutMs };
    const resource = resourceFromAttributes({ 'service.name': 'patrol', 'service.version': opts.version, 'host.name': opts.node });
    const proto = config.protocol === 'http/protobuf';
    this.logExporter = proto ? new ProtoLogExporter({ url: `${base}/v1/logs`, ...common }) : new JsonLogExporter({ url: `${base}/v1/logs`, ...common });
    this.loggerProvider = new LoggerProvider({ resource, processors: [this.collector] });
    this.logger = this.loggerProvider.getLogger('patrol', opts.version);
    this.metricExporter = new CountingMetricExporter(
      proto ? new ProtoMetricExporter({ url: `${base}/v1/metrics`, ...common }) : new JsonMetricExporter({ url: `${base}/v1/metrics`, ...common }),
    );
    this.resource = resource;
    // the SDK's own diagnostics go to our log, at warn
    diag.setLogger({ error: (m) => opts.log.warn({ otel: m }, 'otlp'), warn: (m) => opts.log.debug({ otel: m }, 'otlp'), info: () => {}, debug: () => {}, verbose: () => {} });
  }

  private readonly resource: ReturnType<typeof resourceFromAttributes>;

  /** Metrics start once the resource windows run (they start after this). */
  attachMetrics(src: OtlpMetricSources, promNames: Array<{ name: string; type: string; help: string }>): void {
    if (this.closed || this.meterProvider !== null) return;
    const reader = new PeriodicExportingMetricReader({ exporter: this.metricExporter, exportIntervalMillis: this.config.intervalMs, exportTimeoutMillis: Math.min(this.config.timeoutMs, this.config.intervalMs) });
    this.meterProvider = new MeterProvider({ resource: this.resource, readers: [reader] });
    const meter = this.meterProvider.getMeter('patrol', this.opts.version);
    const cpu = meter.createObservableCounter('process.cpu.time', { unit: 's', description: 'CPU time of the process (user + system)' });
    const mem = meter.createObservableUpDownCounter('process.memory.usage', { unit: 'By', description: 'resident memory of the process' });
    const io = meter.createObservableCounter('process.disk.io', { unit: 'By', description: 'storage bytes read and written by the process' });
    meter.addBatchObservableCallback((r) => {
      for (const p of src.processes()) {
        const a: Attributes = { 'process.pid': p.pid, 'process.executable.name': p.comm, 'patrol.exec_id': p.execId };
        identityAttributes(a, p.identity);
        r.observe(cpu, p.cpuSeconds, a);
        r.observe(mem, p.rssBytes, a);
        r.observe(io, p.readBytes, { ...a, 'disk.io.direction': 'read' });
        r.observe(io, p.writeBytes, { ...a, 'disk.io.direction': 'write' });
      }
    }, [cpu, mem, io]);
    // every other /metrics series, under its patrol.* name
    const bridged = new Map<string, ReturnType<typeof meter.createObservableGauge>>();
    for (const m of promNames) {
      if (m.name.startsWith('patrol_process_') && m.name !== 'patrol_process_table_entries') continue; // the semconv trio above
      if (m.type === 'gauge') bridged.set(m.name, meter.createObservableGauge(otelName(m.name, false), { description: m.help }));
      else if (m.type === 'counter') bridged.set(m.name, meter.createObservableCounter(otelName(m.name, true), { description: m.help }));
    }
    if (bridged.size > 0) {
      meter.addBatchObservableCallback(async (r) => {
        for (const m of await src.registry()) {
          const inst = bridged.get(m.name);
          if (inst === undefined) continue;
          for (const v of m.values) if (Number.isFinite(v.value)) r.observe(inst as Parameters<typeof r.observe>[0], v.value, v.labels as Attributes);
        }
      }, [...bridged.values()]);
    }
  }

  /** On the event path: one lookup, one push (or a counted drop). */
  onLifecycle(ev: LifecycleEvent, en: Enriched): void {
    if (this.wanted[ev.type] !== true || this.closed) return;
    if (this.queue.length + this.alerts.length >= this.config.queueMax) {
      this.s.dropped++;
      return;
    }
    this.queue.push({ ev, en, ppid: en.ppid, comm: en.comm });
    if (this.timer === null) this.arm();
  }

  onAlert(a: OutboundAlert): void {
    if (this.closed) return;
    if (this.queue.length + this.alerts.length >= this.config.queueMax) {
      this.s.dropped++;
      return;
    }
    this.alerts.push(a);
    if (this.timer === null) this.arm();
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, FLUSH_MS);
    this.timer.unref();
  }

  /** Exports what is queued, a batch at a time. */
  async flush(): Promise<void> {
    while (this.inFlight !== null) await this.inFlight;
    while (this.queue.length + this.alerts.length > 0) {
      this.inFlight = this.exportBatch();
      try {
        await this.inFlight;
      } finally {
        this.inFlight = null;
      }
    }
  }

  private exportBatch(): Promise<void> {
    const epochMs = this.opts.epochMs;
    const alerts = this.alerts.splice(0, BATCH);
    const events = this.queue.splice(0, BATCH - alerts.length);
    for (const a of alerts) {
      const sev = a.state === 'critical' ? SeverityNumber.ERROR : a.kind === 'resolved' || a.kind === 'flapping_end' ? SeverityNumber.INFO : SeverityNumber.WARN;
      const attrs: Attributes = {
        'patrol.alert.id': a.id, 'patrol.alert.kind': a.kind, 'patrol.alert.state': a.state, 'patrol.alert.previous': a.previous,
        'patrol.check.id': a.check_id, 'patrol.check.name': a.name, 'patrol.node': a.node,
      };
      if (a.top_cause) attrs['patrol.alert.top_cause'] = a.top_cause;
      for (const [k, v] of Object.entries(a.labels)) attrs[`patrol.label.${k}`] = v;
      this.logger.emit({ eventName: 'patrol.alert', timestamp: a.at, severityNumber: sev, severityText: SeverityNumber[sev], body: a.message, attributes: attrs });
    }
    for (const p of events) {
      const [sev, text] = severityOf(p.ev);
      this.logger.emit({
        eventName: `process.${p.ev.type}`, timestamp: epochMs(p.ev.ktimeNs), severityNumber: sev, severityText: text, body: p.ev.type,
        attributes: eventAttributes(p.ev, p.en, p.ppid, p.comm, epochMs),
      });
    }
    const batch: ReadableLogRecord[] = this.collector.batch;
    this.collector.batch = [];
    if (batch.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.logExporter.export(batch, (r) => {
        if (r.code === ExportResultCode.SUCCESS) this.s.exported += batch.length;
        else {
          this.s.failed += batch.length;
          this.s.lastError = r.error?.message ?? 'export failed';
          this.opts.log.warn({ records: batch.length, err: this.s.lastError }, 'otlp: log export failed; the records are lost');
        }
        resolve();
      });
    });
  }

  stats(): OtlpStats {
    return {
      endpoint: this.config.endpoint, protocol: this.config.protocol, logsQueued: this.queue.length + this.alerts.length, logsExported: this.s.exported,
      logsDropped: this.s.dropped, logsFailed: this.s.failed, metricExports: this.metricExporter.exports, metricFailures: this.metricExporter.failures,
      lastError: this.s.lastError ?? this.metricExporter.lastError,
    };
  }

  /** Exports what is queued (bounded by the timeout), then shuts the providers down. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const deadline = new Promise<void>((r) => setTimeout(r, this.config.timeoutMs).unref());
    await Promise.race([this.flush(), deadline]);
    this.closed = true;
    await Promise.race([Promise.allSettled([this.meterProvider?.shutdown(), this.loggerProvider.shutdown(), this.logExporter.shutdown()]), deadline]);
  }
}
