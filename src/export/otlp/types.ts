// OTLP export configuration (export.otlp; docs/otlp.md).
export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface OtlpConfig {
  /** base URL of an OTLP/HTTP receiver (http://host:4318); /v1/metrics and /v1/logs are appended */
  endpoint: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  /** metrics export interval */
  intervalMs: number;
  timeoutMs: number;
  /** log records waiting for export at most; beyond, new ones are dropped and counted */
  queueMax: number;
  /** lifecycle event types exported as log records */
  events: Array<'exec' | 'fork' | 'exit' | 'reap' | 'exec_failed'>;
}
