// The generic webhook output: POST a JSON document holding a batch of alerts, each with its
// stable id (a retried delivery carries the same ids, so receivers deduplicate on `id`).
// With hmac_secret_file, `X-Patrol-Signature: sha256=<hex>` is HMAC-SHA256 of the exact body
// under the file's key (trailing whitespace trimmed); the body's `sent_at` lets a receiver refuse
// replays.
import { createHmac } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { PatrolError } from '../../shared/errors.js';
import { postJson } from './http.js';
import type { AlertSender, OutboundAlert, WebhookOutputConfig } from './types.js';

export const WEBHOOK_SCHEMA = 1;

/** The key in `path`, refused when others can read it (it authenticates every alert). */
export function readSecret(path: string, what: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new PatrolError('E_CONFIG', `${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0) throw new PatrolError('E_CONFIG', `${what}: ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  const key = readFileSync(path, 'utf8').trim();
  if (key.length < 16) throw new PatrolError('E_CONFIG', `${what}: the key in ${path} is shorter than 16 characters`);
  return Buffer.from(key, 'utf8');
}

export function sign(key: Buffer, body: string): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

export function webhookBody(alerts: readonly OutboundAlert[], nowMs: number): string {
  return JSON.stringify({
    schema: WEBHOOK_SCHEMA,
    sent_at: new Date(nowMs).toISOString(),
    alerts: alerts.map((a) => ({ ...a, at: new Date(a.at).toISOString() })),
  });
}

export class WebhookSender implements AlertSender {
  private readonly key: Buffer | null;

  constructor(
    readonly config: WebhookOutputConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.key = config.hmacSecretFile === null ? null : readSecret(config.hmacSecretFile, `alerts.outputs ${config.name}: hmac_secret_file`);
  }

  async send(alerts: readonly OutboundAlert[]): Promise<void> {
    const body = webhookBody(alerts, this.now());
    const headers: Record<string, string> = { 'x-patrol-alert-ids': alerts.map((a) => a.id).join(',') };
    if (this.key) headers['x-patrol-signature'] = sign(this.key, body);
    await postJson(this.config.url, body, headers, this.config.timeoutMs);
  }
}
