// Health: ok or degraded with reasons, loss accounting with its identity per event type, the
// ring and consumer figures, programs attached, versions (hot reload) and fleet membership.
// Each block is one entry of SECTIONS: a feature that adds figures to the API adds an entry
// (or is picked up by the generic ones) without touching the rest.
import { getJson, getOptional, Poller } from '../api.js';
import { h, fillKeyed, kv, show, na, table } from '../dom.js';
import { ago, dur, num } from '../format.js';
import type { ChecksStatus, Health, RulesReply, Stats } from '../types.js';
import type { Page } from '../page.js';

export interface HealthData {
  health: Health;
  stats: Stats;
  checks: ChecksStatus | null;
  rules: RulesReply | null;
  /** `fleet` of /v1/stats, once the fleet module reports membership there */
  fleet: Record<string, unknown> | null;
}

type Child = Node | string | null;

export interface HealthSection {
  id: string;
  title: string;
  /** what the block is made of: it is rebuilt only when this changes */
  key(d: HealthData): unknown;
  render(d: HealthData): Child[];
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Any JSON object as key/value pairs (nested objects one level as text). */
function anyKv(o: Record<string, unknown>): HTMLElement {
  return kv(
    Object.entries(o).map(([k, v]) => [
      k.replace(/_/g, ' '),
      typeof v === 'number' ? num(v) : typeof v === 'string' ? show(v) : v === null ? '—' : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? show(x) : JSON.stringify(x))).join(', ') : show(JSON.stringify(v)),
    ]),
  );
}

const TYPES = ['exec', 'fork', 'exit', 'reap', 'exec_failed'];

export const SECTIONS: HealthSection[] = [
  {
    id: 'status',
    title: 'Status',
    key: (d) => [d.health, d.stats.version, d.stats.uptime_s],
    render: ({ health, stats }) => [
      h('p', { class: `health-status ${health.status === 'ok' ? 'good' : 'bad'}`, id: 'health-status' }, health.status === 'ok' ? '● ok' : '● degraded'),
      health.reasons.length ? h('ul.reasons', null, ...health.reasons.map((r) => h('li', null, h('strong', null, r.kind), `: ${show(r.message)}`))) : null,
      kv([
        ['agent', `patrol ${show(stats.version)} · pid ${stats.pid}`],
        ['up', `${dur(stats.uptime_s * 1000)} (since ${show(stats.started_at)})`],
      ]),
    ],
  },
  {
    id: 'loss',
    title: 'Loss accounting',
    key: (d) => d.stats.accounting,
    render: ({ stats }) => {
      const a = stats.accounting;
      const types = [...new Set([...TYPES, ...Object.keys(a.generated)])];
      return [
        h('p', { class: a.identity_holds ? 'good' : 'bad', id: 'identity' }, a.identity_holds ? '✓ generated = captured + lost, for every event type' : '✗ the identity does not hold right now (records in flight, or a bug)'),
        table(
          ['event', 'generated', 'captured', 'lost in kernel (ring full)', 'lost in user space (queue full)'],
          [
            ...types.map((t) => [t, num(a.generated[t]), num(a.captured[t]), num(a.lost_reserve[t]), num(a.lost_userspace[t])]),
            ['total', num(a.totals.generated), num(a.totals.captured), '', num(a.totals.lost)],
          ],
          'list nums',
        ),
        kv([
          ['in flight', num(a.in_flight ?? null)],
          ['sequence gaps', num(a.seq_gaps)],
          ['malformed records', num(a.malformed)],
        ]),
      ];
    },
  },
  {
    id: 'ring',
    title: 'Ring consumer',
    key: (d) => d.stats.ring,
    render: ({ stats }) => [stats.ring ? anyKv(stats.ring) : na('no ring consumer runs')],
  },
  {
    id: 'programs',
    title: 'Programs attached',
    key: (d) => d.stats.programs,
    render: ({ stats }) => [h('p.muted', null, `${stats.programs.length} BPF programs`), h('ul.programs', null, ...stats.programs.map((p) => h('li', null, h('code', null, show(p)))))],
  },
  {
    id: 'consumers',
    title: 'Event consumers',
    key: (d) => d.stats.consumers,
    render: ({ stats }) => {
      const c = stats.consumers ?? {};
      const names = Object.keys(c);
      return names.length === 0
        ? [h('p.muted', null, 'no consumer has failed')]
        : [table(['consumer', 'errors', 'last error', 'when'], names.map((n) => [n, num(c[n]!.errors), show(c[n]!.last_error ?? '—'), c[n]!.last_error_at ? ago(c[n]!.last_error_at) : '—']), 'list')];
    },
  },
  { id: 'table', title: 'Process table', key: (d) => d.stats.table, render: ({ stats }) => [anyKv(stats.table)] },
  { id: 'store', title: 'Store', key: (d) => d.stats.store, render: ({ stats }) => [stats.store ? anyKv(stats.store) : na('no store')] },
  {
    id: 'versions',
    title: 'Versions (hot reload)',
    key: (d) => [d.stats.version, (d.stats as unknown as Record<string, unknown>).versions, d.checks?.last_reload, d.rules?.rules, d.rules?.diagnostics],
    render: ({ stats, checks, rules }) => {
      const extra = (stats as unknown as Record<string, unknown>).versions;
      const lr = checks?.last_reload;
      return [
        kv([
          ['agent', show(stats.version)],
          ['checks', checks === null ? 'not available: no checks in this agent' : lr ? `${lr.checks} checks from ${lr.files} files, reloaded ${ago(lr.at)}: ${lr.ok ? 'ok' : 'rejected, the previous set runs'}` : `${checks.checks.length} checks`],
          ['rules', rules === null ? 'not available: attribution disabled' : `${rules.rules} rules from ${show(rules.dir)}${rules.diagnostics.length ? ' · last reload rejected' : ''}`],
          ['config', isObj(extra) ? '' : 'not available: this agent does not report config versions yet'],
        ]),
        ...(lr && !lr.ok ? lr.diagnostics.map((d) => h('pre.diag', null, show(d))) : []),
        ...(rules?.diagnostics ?? []).map((d) => h('pre.diag', null, show(d))),
        isObj(extra) ? anyKv(extra) : null,
      ];
    },
  },
  {
    id: 'fleet',
    title: 'Fleet',
    key: (d) => d.fleet,
    render: ({ fleet }) => [fleet === null ? na('this agent is not part of a fleet (no fleet module yet)') : anyKv(fleet)],
  },
];

export class HealthPage implements Page {
  readonly title = 'Health';
  readonly el: HTMLElement;
  private readonly blocks = new Map<string, HTMLElement>();
  private readonly poller: Poller;
  private slow: { checks: ChecksStatus | null; rules: RulesReply | null; at: number } | null = null;

  constructor() {
    this.el = h('div.page.health', { 'data-page': 'health' });
    for (const s of SECTIONS) {
      const body = h('div');
      this.blocks.set(s.id, body);
      this.el.appendChild(h('section.card', { 'data-section': s.id }, h('h2', null, s.title), body));
    }
    this.poller = new Poller((sig) => this.tick(sig));
  }

  start(): void {
    this.poller.start();
  }

  stop(): void {
    this.poller.stop();
  }

  private async tick(signal: AbortSignal): Promise<void> {
    const [health, stats] = await Promise.all([getJson<Health>('/health', {}, signal), getJson<Stats>('/stats', {}, signal)]);
    // what changes only on reload: every 10 s
    if (this.slow === null || Date.now() - this.slow.at > 10_000) {
      const [checks, rules] = await Promise.all([getOptional<ChecksStatus>('/checks', {}, signal), getOptional<RulesReply>('/rules', {}, signal)]);
      this.slow = { checks, rules, at: Date.now() };
    }
    const fleet = (stats as unknown as Record<string, unknown>).fleet;
    const d: HealthData = { health, stats, checks: this.slow.checks, rules: this.slow.rules, fleet: isObj(fleet) ? fleet : null };
    for (const s of SECTIONS) fillKeyed(this.blocks.get(s.id)!, JSON.stringify(s.key(d)) ?? '', () => s.render(d));
  }
}
