// Alert delivery (docs/alerts.md): outputs, the durable outbox's shape, the delivery engine.
import { AlertmanagerSender } from './alertmanager.js';
import { FileSender } from './file.js';
import { WebhookSender } from './webhook.js';
import type { AlertOutputConfig, AlertSender } from './types.js';

export * from './types.js';
export { AlertDelivery, outboundAlert, topCause, mapStrings, type DeliveryOptions, type OutputStats } from './delivery.js';
export { AlertmanagerSender, amAlerts, activeKey, type AmAlert } from './alertmanager.js';
export { WebhookSender, sign, webhookBody, readSecret, WEBHOOK_SCHEMA } from './webhook.js';
export { FileSender } from './file.js';

/** The sender of one configured output (throws PatrolError E_CONFIG for an unreadable key). */
export function createSender(c: AlertOutputConfig): AlertSender {
  switch (c.type) {
    case 'alertmanager':
      return new AlertmanagerSender(c);
    case 'webhook':
      return new WebhookSender(c);
    case 'file':
      return new FileSender(c);
  }
}
