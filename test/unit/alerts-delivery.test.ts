// Alert delivery through the store's outbox (issue 17), against real local receivers: a webhook
// failing its first 5 attempts gets the alert exactly once by id (HMAC checked); queued alerts
// survive the process that queued them; the bound drops the oldest and counts; the rate limit
// collapses a check's storm to its newest alert; a 4xx is not retried; the file output rotates;
// the Alertmanager rendering (labels, severity change, resolution, flapping).
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/store/index.js';
import { AlertDelivery, FileSender, WebhookSender, amAlerts, createSender, type AlertOutputConfig, type AlertsConfig, type OutboundAlert } from '../../src/export/alerts/index.js';
import type { Alert } from '../../src/checks/index.js';
import { createLogger } from '../../src/shared/log.js';

const log = createLogger({ level: 'error' });
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-alerts-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(f: () => T | undefined | false, ms = 10_000): Promise<T> {
  for (const end = Date.now() + ms; ; await sleep(10)) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
  }
}

let n = 0;
function alert(over: Partial<Alert> = {}): Alert {
  n++;
  return {
    id: n.toString(16).padStart(16, '0'), check_id: 'c'.repeat(16), name: 'load', kind: 'firing', state: 'critical', previous: 'ok', at: 1_700_000_000_000 + n,
    message: 'load1 = 9 > 4', labels: { team: 'sre' }, evidence: { conditions: [], values: [] }, ...over,
  };
}

interface Hit {
  status: number;
  body: { alerts: Array<{ id: string }> };
  signature: string | undefined;
  raw: string;
}

/** A webhook receiver answering each request with the next status of `plan` (then 200). */
async function receiver(plan: number[] = []): Promise<{ url: string; hits: Hit[]; server: Server; close(): Promise<void> }> {
  const hits: Hit[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const status = plan.shift() ?? 200;
      hits.push({ status, body: JSON.parse(raw), signature: req.headers['x-patrol-signature'] as string | undefined, raw });
      res.writeHead(status).end(status >= 400 ? 'nope' : 'ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, hits, server, close: () => new Promise((r) => server.close(() => r())) };
}

const base = { groupWaitMs: 0, maxBatch: 64, ratePerMinute: 0 };
const cfg = (outputs: AlertOutputConfig[], over: Partial<AlertsConfig> = {}): AlertsConfig => ({ node: 'node-a', queueMax: 1000, retry: { initialMs: 20, maxMs: 200 }, outputs, ...over });
const webhook = (url: string, over: Partial<Extract<AlertOutputConfig, { type: 'webhook' }>> = {}): Extract<AlertOutputConfig, { type: 'webhook' }> => ({
  type: 'webhook', name: `webhook:${url}`, url, timeoutMs: 2000, hmacSecretFile: null, ...base, ...over,
});

function delivery(path: string, config: AlertsConfig, random = () => 0.5): { d: AlertDelivery; outbox: Outbox<OutboundAlert> } {
  const outbox = Outbox.open<OutboundAlert>(path, { maxRows: config.queueMax });
  const d = new AlertDelivery({ config, outbox, senders: config.outputs.map(createSender), log, random });
  d.start();
  return { d, outbox };
}

describe('alert delivery', () => {
  it('a webhook failing its first 5 attempts gets the alert exactly once, by id, signed', async () => {
    const key = join(dir, 'hook.key');
    writeFileSync(key, 'a-secret-key-of-32-characters!!!\n');
    chmodSync(key, 0o600);
    const r = await receiver([500, 503, 500, 502, 500]);
    const { d, outbox } = delivery(join(dir, 'once.db'), cfg([webhook(r.url, { hmacSecretFile: key })]));
    const a = alert();
    d.enqueue(a, { causes: [{ cause: 'oom_kill', explanation: 'the kernel killed java (pid 7)' }] });
    await until(() => r.hits.filter((h) => h.status === 200).length > 0);
    await sleep(150); // nothing more may arrive
    expect(r.hits.map((h) => h.status)).toEqual([500, 503, 500, 502, 500, 200]);
    const delivered = r.hits.filter((h) => h.status === 200).flatMap((h) => h.body.alerts.map((x) => x.id));
    expect(delivered).toEqual([a.id]);
    // every attempt carried the same id, and a signature over the exact body
    for (const h of r.hits) {
      expect(h.body.alerts.map((x) => x.id)).toEqual([a.id]);
      expect(h.signature).toBe(`sha256=${createHmac('sha256', 'a-secret-key-of-32-characters!!!').update(h.raw).digest('hex')}`);
    }
    const ok = r.hits.at(-1)!.body.alerts[0] as unknown as OutboundAlert & { at: string };
    expect(ok).toMatchObject({ check_id: a.check_id, name: 'load', kind: 'firing', state: 'critical', node: 'node-a', top_cause: 'oom_kill: the kernel killed java (pid 7)' });
    expect(ok.at).toBe(new Date(a.at).toISOString());
    const st = d.stats()[`webhook:${r.url}`]!;
    expect(st).toMatchObject({ delivered: 1, pending: 0, failures: 5, dropped: 0, consecutiveFailures: 0 });
    await d.close();
    outbox.close();
    await r.close();
  });

  it('the backoff doubles from retry.initial up to retry.max, jittered within [½, 1] of the step', () => {
    const outbox = Outbox.open<OutboundAlert>(join(dir, 'backoff.db'), { maxRows: 10 });
    const mk = (rnd: number) => new AlertDelivery({ config: cfg([], { retry: { initialMs: 1000, maxMs: 60_000 } }), outbox, senders: [], log, random: () => rnd });
    expect([1, 2, 3, 4, 7, 8, 20].map((f) => mk(1).backoffMs(f))).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
    expect([1, 2, 3].map((f) => mk(0).backoffMs(f))).toEqual([500, 1000, 2000]);
    outbox.close();
  });

  it('queued alerts outlive the process that queued them (the receiver down meanwhile)', async () => {
    const path = join(dir, 'restart.db');
    const r = await receiver();
    const port = Number(new URL(r.url).port);
    await r.close(); // nothing listens: connection refused
    const first = delivery(path, cfg([webhook(`http://127.0.0.1:${port}/hook`)]));
    const a = alert();
    const b = alert({ kind: 'resolved', state: 'ok', previous: 'critical' });
    first.d.enqueue(a);
    first.d.enqueue(b);
    await until(() => first.d.stats()[`webhook:http://127.0.0.1:${port}/hook`]!.failures >= 1);
    // the process "dies": its timers stop, nothing is flushed or closed in the outbox; a new one
    // opens the same file
    await first.d.close(0);
    const r2 = createServer((req, res) => {
      let raw = '';
      req.on('data', (x) => (raw += x));
      req.on('end', () => {
        got.push(...(JSON.parse(raw) as Hit['body']).alerts.map((x) => x.id));
        res.end('ok');
      });
    });
    const got: string[] = [];
    await new Promise<void>((res) => r2.listen(port, '127.0.0.1', res));
    const second = delivery(path, cfg([webhook(`http://127.0.0.1:${port}/hook`)]));
    await until(() => got.length >= 2);
    await sleep(100);
    expect(got).toEqual([a.id, b.id]);
    await second.d.close();
    first.outbox.close();
    second.outbox.close();
    await new Promise((res) => r2.close(res));
  });

  it('the outbox is bounded: the oldest are dropped and counted', async () => {
    const { d, outbox } = delivery(join(dir, 'bound.db'), cfg([webhook('http://127.0.0.1:9/none')], { queueMax: 10, retry: { initialMs: 60_000, maxMs: 60_000 } }));
    const ids = Array.from({ length: 15 }, () => alert()).map((a) => (d.enqueue(a), a.id));
    const st = d.stats()['webhook:http://127.0.0.1:9/none']!;
    expect(st.pending).toBe(10);
    expect(st.dropped).toBe(5);
    const kept = outbox.due('webhook:http://127.0.0.1:9/none', Number.MAX_SAFE_INTEGER, 100).map((r) => r.alert.id);
    expect(kept).toEqual(ids.slice(5));
    await d.close();
    outbox.close();
  });

  it('the same alert id is queued once per output', async () => {
    const { d, outbox } = delivery(join(dir, 'dup.db'), cfg([webhook('http://127.0.0.1:9/a', { name: 'a' }), webhook('http://127.0.0.1:9/b', { name: 'b' })], { retry: { initialMs: 60_000, maxMs: 60_000 } }));
    const a = alert();
    d.enqueue(a);
    d.enqueue(a);
    expect(d.stats().a!.pending).toBe(1);
    expect(d.stats().b!.pending).toBe(1);
    await d.close();
    outbox.close();
  });

  it('rate limited: a check\'s storm collapses to its newest alert; other checks still go', async () => {
    const r = await receiver();
    // a clock of its own: the storm is queued at one instant, then falls due at once
    let t = 1_000_000;
    const config = cfg([webhook(r.url, { ratePerMinute: 3, groupWaitMs: 50 })]);
    const outbox = Outbox.open<OutboundAlert>(join(dir, 'rate.db'), { maxRows: config.queueMax, now: () => t });
    const d = new AlertDelivery({ config, outbox, senders: config.outputs.map(createSender), log, now: () => t });
    const storm = Array.from({ length: 40 }, (_, i) => alert({ kind: i % 2 ? 'resolved' : 'firing', state: i % 2 ? 'ok' : 'critical' }));
    const other = alert({ check_id: 'd'.repeat(16), name: 'disk' });
    for (const a of storm) d.enqueue(a);
    d.enqueue(other);
    t += 100;
    await d.flush();
    const got = r.hits.flatMap((h) => h.body.alerts.map((x) => x.id));
    expect(got).toEqual([storm.at(-1)!.id, other.id]);
    const st = d.stats()[`webhook:${r.url}`]!;
    expect(st.superseded).toBe(39);
    expect(st.pending).toBe(0);
    // one token left this minute: the next two alerts of one check go one now, one later
    d.enqueue(alert());
    d.enqueue(alert({ check_id: 'e'.repeat(16) }));
    t += 100;
    await d.flush();
    expect(r.hits.length).toBe(2);
    expect(d.stats()[`webhook:${r.url}`]!.pending).toBe(1);
    t += 20_000; // a token back (3 per minute)
    await d.flush();
    expect(d.stats()[`webhook:${r.url}`]!.pending).toBe(0);
    await d.close();
    outbox.close();
    await r.close();
  });

  it('a receiver refusing the request (HTTP 400) is not retried; the rejection is counted', async () => {
    const r = await receiver([400]);
    const { d, outbox } = delivery(join(dir, 'reject.db'), cfg([webhook(r.url)]));
    d.enqueue(alert());
    await until(() => d.stats()[`webhook:${r.url}`]!.rejected === 1);
    await sleep(100);
    expect(r.hits.length).toBe(1);
    expect(d.stats()[`webhook:${r.url}`]!.pending).toBe(0);
    await d.close();
    outbox.close();
    await r.close();
  });

  it('an HMAC key others can read is refused at start', () => {
    const key = join(dir, 'open.key');
    writeFileSync(key, 'x'.repeat(32));
    chmodSync(key, 0o644);
    expect(() => new WebhookSender(webhook('http://127.0.0.1:9/x', { hmacSecretFile: key }))).toThrow(/readable by group or others/);
  });

  it('redaction reaches alerts: strings are masked before they are queued (and the outbox bytes hold no secret)', async () => {
    const path = join(dir, 'redact.db');
    const outbox = Outbox.open<OutboundAlert>(path, { maxRows: 10 });
    const d = new AlertDelivery({ config: cfg([webhook('http://127.0.0.1:9/x')], { retry: { initialMs: 60_000, maxMs: 60_000 } }), outbox, senders: [new WebhookSender(webhook('http://127.0.0.1:9/x'))], log, redactText: (s) => s.replace(/hunter2/g, '****') });
    d.enqueue(alert({ message: 'mysql --password=hunter2 failed' }), { causes: [{ cause: 'crash', explanation: 'mysql --password=hunter2 exited 1' }] });
    await d.close();
    outbox.close();
    const db = new Database(path, { readonly: true });
    const row = db.prepare('SELECT alert FROM outbox').get() as { alert: string };
    db.close();
    expect(row.alert).toContain('--password=****');
    expect(readFileSync(path).includes('hunter2')).toBe(false);
  });
});

describe('file output', () => {
  it('appends one NDJSON line per alert, owner-only, and rotates by size keeping max_files', async () => {
    const path = join(dir, 'out', 'alerts.ndjson');
    const f = new FileSender({ type: 'file', name: 'f', path, maxBytes: 4096, maxFiles: 2, ...base });
    const all: string[] = [];
    for (let i = 0; i < 40; i++) {
      const a = alert({ message: 'x'.repeat(300) });
      all.push(a.id);
      await f.send([{ ...a, node: 'n', top_cause: null, attribution: null }]);
    }
    expect(f.rotations).toBeGreaterThanOrEqual(2);
    expect(existsSync(`${path}.1`)).toBe(true);
    expect(existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    const { statSync } = await import('node:fs');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBeLessThanOrEqual(4096);
    const ids = [`${path}.2`, `${path}.1`, path].flatMap((p) => readFileSync(p, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id));
    // the newest files hold the newest alerts, in order, none twice
    expect(ids).toEqual(all.slice(all.length - ids.length));
  });
});

describe('Alertmanager rendering', () => {
  const out = (a: Partial<OutboundAlert>): OutboundAlert => ({ ...alert(), node: 'node-a', top_cause: 'oom_kill: java', attribution: null, ...a }) as OutboundAlert;
  const now = 1_700_000_100_000;

  it('firing: alertname, node, severity, the check labels; message and top cause annotations; endsAt three intervals ahead', () => {
    const [x, ...rest] = amAlerts(out({ labels: { team: 'sre', 'bad-name': 'v', alertname: 'no' } }), now, 60_000);
    expect(rest).toEqual([]);
    expect(x!.labels).toEqual({ alertname: 'load', node: 'node-a', severity: 'critical', team: 'sre', bad_name: 'v' });
    expect(x!.annotations).toMatchObject({ message: 'load1 = 9 > 4', top_cause: 'oom_kill: java' });
    expect(Date.parse(x!.endsAt)).toBe(now + 180_000);
  });

  it('a severity change ends the old label set; a resolution ends the announced one', () => {
    const up = amAlerts(out({ state: 'critical', previous: 'warning' }), now, 60_000);
    expect(up.map((x) => [x.labels.severity, Date.parse(x.endsAt) > now])).toEqual([['critical', true], ['warning', false]]);
    const a = out({ kind: 'resolved', state: 'ok', previous: 'critical' });
    const [r] = amAlerts(a, now, 60_000);
    expect(r!.labels.severity).toBe('critical');
    expect(Date.parse(r!.endsAt)).toBe(a.at);
  });

  it('flapping is its own alert, ended by flapping_end', () => {
    const [f] = amAlerts(out({ kind: 'flapping' }), now, 60_000);
    const [e] = amAlerts(out({ kind: 'flapping_end', state: 'ok' }), now, 60_000);
    expect(f!.labels).toMatchObject({ flapping: 'true', severity: 'warning' });
    expect(e!.labels).toEqual(f!.labels);
    expect(Date.parse(e!.endsAt)).toBeLessThan(now);
  });
});
