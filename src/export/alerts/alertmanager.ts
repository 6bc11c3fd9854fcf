// The Alertmanager output: POST /api/v2/alerts (API v2, Alertmanager ≥ 0.16), an array of
// {labels, annotations, startsAt, endsAt, generatorURL}. Alertmanager identifies an alert by its
// label set, keeps alerts in memory only, and ends a firing alert at its endsAt, so:
//   - a firing alert is sent with endsAt = now + 3 × resend interval, and resent while it fires
//     (AlertDelivery's refresh): a restarted Alertmanager has it back within one interval, and
//     a dead agent's alerts end by themselves;
//   - a resolution is the same label set with endsAt = the resolution time.
// Labels: alertname (the check's name), node, severity, then the check's own labels (names
// sanitised to [a-zA-Z_][a-zA-Z0-9_]*; they never replace the first three). Severity follows
// the announced state: critical, else warning. A flapping check is its own alert (label
// flapping="true", severity warning), ended by flapping_end.
import { postJson } from './http.js';
import type { AlertSender, AlertmanagerOutputConfig, OutboundAlert } from './types.js';

export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

const severity = (state: string) => (state === 'critical' ? 'critical' : 'warning');

function labels(a: OutboundAlert, sev: string, flapping: boolean): Record<string, string> {
  const l: Record<string, string> = { alertname: a.name, node: a.node, severity: sev };
  if (flapping) l.flapping = 'true';
  for (const [k, v] of Object.entries(a.labels)) {
    const name = k.replace(/[^a-zA-Z0-9_]/g, '_').replace(/^([0-9])/, '_$1');
    if (name === '' || name.startsWith('__') || v === '' || Object.hasOwn(l, name)) continue;
    l[name] = v;
  }
  return l;
}

function annotations(a: OutboundAlert): Record<string, string> {
  const o: Record<string, string> = { message: a.message, patrol_alert_id: a.id, patrol_check_id: a.check_id };
  if (a.top_cause) o.top_cause = a.top_cause;
  return o;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The Alertmanager alerts one patrol alert becomes (a severity change is two: the old label set
 *  ends, the new one fires). */
export function amAlerts(a: OutboundAlert, nowMs: number, resendIntervalMs: number): AmAlert[] {
  const until = iso(Math.max(nowMs, a.at) + 3 * resendIntervalMs);
  const firing = (sev: string, flapping: boolean): AmAlert => ({ labels: labels(a, sev, flapping), annotations: annotations(a), startsAt: iso(a.at), endsAt: until });
  const ended = (sev: string, flapping: boolean): AmAlert => ({ labels: labels(a, sev, flapping), annotations: annotations(a), startsAt: iso(a.at), endsAt: iso(a.at) });
  switch (a.kind) {
    case 'firing': {
      const out = [firing(severity(a.state), false)];
      const was = a.previous;
      if (was !== 'ok' && severity(was) !== severity(a.state)) out.push(ended(severity(was), false));
      return out;
    }
    case 'resolved':
      return [ended(severity(a.previous), false)];
    case 'flapping':
      return [firing('warning', true)];
    case 'flapping_end':
      return [ended('warning', true)];
  }
}

/** Whether, once sent, the alert leaves an Alertmanager alert firing (to refresh), and under
 *  which key of the check. null key: the alert ends the check's firing one. */
export function activeKey(a: OutboundAlert): { key: string; firing: boolean } {
  if (a.kind === 'flapping' || a.kind === 'flapping_end') return { key: `${a.check_id}#flapping`, firing: a.kind === 'flapping' };
  return { key: a.check_id, firing: a.kind === 'firing' };
}

export class AlertmanagerSender implements AlertSender {
  private readonly endpoint: string;

  constructor(
    readonly config: AlertmanagerOutputConfig,
    private readonly now: () => number = Date.now,
  ) {
    const base = config.url.replace(/\/+$/, '');
    this.endpoint = base.endsWith('/api/v2/alerts') ? base : `${base}/api/v2/alerts`;
  }

  async send(alerts: readonly OutboundAlert[]): Promise<void> {
    const now = this.now();
    const body = alerts.flatMap((a) => amAlerts(a, now, this.config.resendIntervalMs));
    await postJson(this.endpoint, JSON.stringify(body), {}, this.config.timeoutMs);
  }
}
