// Alert delivery (issue 17): the outputs' configuration, the alert as delivered, and the outbox
// the delivery reads and writes. The outbox lives in src/store; this stage only knows its shape
// (src/app hands the store's Outbox in), so the two sibling stages never import each other.
import type { Alert } from '../../checks/index.js';

interface OutputBase {
  /** identifies the output's rows in the outbox; default `<type>:<url or path>` */
  name: string;
  /** ms between an alert and its first attempt, so alerts raised together go in one request */
  groupWaitMs: number;
  /** alerts per request at most */
  maxBatch: number;
  /** alerts delivered per minute at most (0: no limit); beyond, alerts wait, and a check's
   *  waiting alerts collapse to its newest (counted as superseded) */
  ratePerMinute: number;
}

export interface AlertmanagerOutputConfig extends OutputBase {
  type: 'alertmanager';
  /** base URL (http://host:9093); /api/v2/alerts is appended */
  url: string;
  timeoutMs: number;
  /** firing alerts are sent again this often (Alertmanager keeps alerts in memory only, and ends
   *  them at endsAt = now + 3 × this when no refresh comes) */
  resendIntervalMs: number;
}

export interface WebhookOutputConfig extends OutputBase {
  type: 'webhook';
  url: string;
  timeoutMs: number;
  /** file holding the HMAC-SHA256 key; the body is signed in X-Patrol-Signature */
  hmacSecretFile: string | null;
}

export interface FileOutputConfig extends OutputBase {
  type: 'file';
  path: string;
  /** rotate once the file reaches this size */
  maxBytes: number;
  /** rotated files kept (path.1 … path.N) */
  maxFiles: number;
}

export type AlertOutputConfig = AlertmanagerOutputConfig | WebhookOutputConfig | FileOutputConfig;

export interface AlertsConfig {
  /** the `node` label; null: the host name */
  node: string | null;
  /** outbox rows kept at most, over all outputs; beyond, the oldest are dropped and counted */
  queueMax: number;
  retry: { initialMs: number; maxMs: number };
  outputs: AlertOutputConfig[];
}

/** The alert as it enters the outbox: the check's alert plus what delivery adds. Redacted
 *  already (argv in evidence and attribution passed the redactor at ingress). */
export interface OutboundAlert {
  id: string;
  check_id: string;
  name: string;
  kind: Alert['kind'];
  state: Alert['state'];
  previous: Alert['previous'];
  /** ms since the epoch */
  at: number;
  message: string;
  labels: Record<string, string>;
  node: string;
  /** "<cause>: <explanation>" of the best-ranked cause, when attribution had one */
  top_cause: string | null;
  attribution: unknown;
  evidence: unknown;
}

/** One queued delivery. */
export interface OutboxRow {
  seq: number;
  output: string;
  alert: OutboundAlert;
  attempts: number;
  createdAt: number;
}

export interface OutboxCounters {
  pending: number;
  delivered: number;
  /** dropped because the outbox was full (oldest first) */
  dropped: number;
  /** replaced by a newer alert of the same check while rate limited */
  superseded: number;
  /** refused by the receiver as malformed (HTTP 4xx other than 408/429): not retried */
  rejected: number;
  /** failed attempts (each retried later) */
  failures: number;
  lastError: string | null;
  /** ms since the epoch of the oldest pending row */
  oldestAt: number | null;
}

/** The durable queue (src/store/outbox.ts implements it). Every call commits before it returns. */
export interface OutboxPort {
  /** Queues `alert` for each output; an alert id already queued for an output is not queued
   *  twice. Returns how many rows were added. */
  enqueue(outputs: readonly string[], alert: OutboundAlert, nextAt: number): number;
  /** Rows of `output` due at `now`, oldest first. */
  due(output: string, now: number, limit: number): OutboxRow[];
  /** Earliest next attempt of `output`'s rows, or null when none wait. */
  nextAt(output: string): number | null;
  delivered(output: string, seqs: readonly number[]): void;
  failed(output: string, seqs: readonly number[], nextAt: number, error: string): void;
  /** Removes rows without delivering them, counted under `why`. */
  discard(output: string, seqs: readonly number[], why: 'superseded' | 'rejected'): void;
  /** The firing alert an output announced for a check (Alertmanager refreshes these). */
  setActive(output: string, checkId: string, alert: OutboundAlert | null): void;
  active(output: string): OutboundAlert[];
  /** Drops the rows and active alerts of outputs no longer configured; returns rows dropped. */
  retain(outputs: readonly string[]): number;
  counters(output: string): OutboxCounters;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    /** false: the receiver refused the request itself (do not retry) */
    readonly retry: boolean,
  ) {
    super(message);
  }
}

/** Sends a batch. Throws DeliveryError (or anything: retried). */
export interface AlertSender {
  readonly config: AlertOutputConfig;
  send(alerts: readonly OutboundAlert[]): Promise<void>;
  close?(): void;
}
