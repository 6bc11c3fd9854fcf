// Checks and alerts: the latest result of every check, the alert history, and for each alert
// its ranked causes with the evidence chain (what attribution ranked when it fired; "explain
// now" recomputes it with what arrived since). Notable findings (crashes, OOM kills) are listed
// even when no check fired.
import { getJson, getOptional, Poller } from '../api.js';
import { h, fill, fillKeyed, procLink, section, show, na } from '../dom.js';
import { ago, clock, datetime, dur } from '../format.js';
import type { Alert, Cause, CheckRun, ChecksStatus, Evidence } from '../types.js';
import type { Page } from '../page.js';

/** Causes shown at once; the others (a busy node has many crash loops) fold under one line. */
const CAUSES_SHOWN = 3;

function causeList(causes: readonly Cause[]): HTMLElement {
  if (causes.length === 0) return h('p.muted', null, 'no cause ranked');
  if (causes.length > CAUSES_SHOWN) {
    return h(
      'div',
      null,
      causeItems(causes.slice(0, CAUSES_SHOWN), 1),
      h('details.more', null, h('summary', null, `${causes.length - CAUSES_SHOWN} more causes, less likely`), causeItems(causes.slice(CAUSES_SHOWN), CAUSES_SHOWN + 1)),
    );
  }
  return causeItems(causes, 1);
}

function causeItems(causes: readonly Cause[], start: number): HTMLElement {
  return h(
    'ol.causes',
    { start },
    ...causes.map((c) =>
      h(
        'li.cause',
        { 'data-cause': c.cause },
        h('div.cause-head', null, h('strong', null, show(c.cause)), h('span.conf', null, ` confidence ${c.confidence.toFixed(2)}`), c.rule ? h('span.muted', null, ` · rule ${show(c.rule)}`) : null, c.count && c.count > 1 ? h('span.muted', null, ` · ×${c.count}`) : null),
        h('p.explanation', null, show(c.explanation)),
        evidenceList(c.evidence),
      ),
    ),
  );
}

/** Evidence shown at once; a long chain (a crash loop's every failure) folds the rest. */
const EVIDENCE_SHOWN = 6;

function evidenceList(ev: readonly Evidence[]): HTMLElement | null {
  if (ev.length === 0) return null;
  const item = (e: Evidence) => h('li', null, h('span.ev-kind', null, show(e.kind)), ' ', h('span.time', null, clock(e.ts)), ' ', e.exec_id ? procLink(e.exec_id, show(e.summary)) : h('span', null, show(e.summary)));
  const list = h('ol.evidence', null, ...ev.slice(0, EVIDENCE_SHOWN).map(item));
  if (ev.length <= EVIDENCE_SHOWN) return list;
  return h('div', null, list, h('details.more', null, h('summary', null, `${ev.length - EVIDENCE_SHOWN} more pieces of evidence`), h('ol.evidence', { start: EVIDENCE_SHOWN + 1 }, ...ev.slice(EVIDENCE_SHOWN).map(item))));
}

function stateBadge(s: string): HTMLElement {
  return h('span', { class: `badge cs-${/^[a-z]+$/.test(s) ? s : 'unknown'}` }, s);
}

export class ChecksPage implements Page {
  readonly title = 'Checks & alerts';
  readonly el: HTMLElement;
  private readonly results = h('div', { id: 'check-results' });
  private readonly alerts = h('div', { id: 'alerts' });
  private readonly findings = h('div', { id: 'findings' });
  private readonly reload = h('div');
  private readonly poller: Poller;
  /** alert id → its element, so an opened alert stays open across polls */
  private readonly alertEls = new Map<string, HTMLElement>();
  private readonly alertList = h('ul.alerts');

  constructor() {
    this.el = h(
      'div.page.checks',
      { 'data-page': 'checks' },
      section('Checks: latest results', this.reload, this.results),
      section('Alerts', this.alerts),
      section('Notable findings (attribution)', this.findings),
    );
    this.poller = new Poller((s) => this.tick(s));
  }

  start(): void {
    this.poller.start();
  }

  stop(): void {
    this.poller.stop();
  }

  private async tick(signal: AbortSignal): Promise<void> {
    const [status, results, alerts, recent] = await Promise.all([
      getOptional<ChecksStatus>('/checks', {}, signal),
      getOptional<{ results: CheckRun[] }>('/checks/results', { latest: true }, signal),
      getOptional<{ alerts: Alert[] }>('/alerts', { limit: 100 }, signal),
      getOptional<{ causes: Cause[] }>('/explain', { recent: 1, limit: 10 }, signal),
    ]);
    if (status === null) {
      fillKeyed(this.results, 'none', () => [na('this agent runs no checks (start it with --checks DIR or set checks.dir)')]);
    } else {
      const lr = status.last_reload;
      fillKeyed(this.reload, JSON.stringify(lr), () => [
        lr === null
          ? null
          : h(
              'p',
              { class: lr.ok ? 'muted' : 'bad' },
              `${status.checks.length} checks from ${show(status.dir)} · last reload ${ago(lr.at)}: ${lr.ok ? 'ok' : `rejected (${lr.errors} errors); the previous set runs`}`,
              ...(lr.ok ? [] : lr.diagnostics.map((d) => h('pre.diag', null, show(d)))),
            ),
      ]);
      const runs = results?.results ?? [];
      fillKeyed(this.results, JSON.stringify(runs.map((r) => [r.id, Math.floor((Date.now() - r.at) / 5000)])), () => [
        runs.length === 0
          ? h('p.muted', null, 'no results yet')
          : h(
              'table.list',
              null,
              h('thead', null, h('tr', null, h('th', null, 'CHECK'), h('th', null, 'STATE'), h('th', null, 'MESSAGE'), h('th', null, 'RAN'), h('th.num', null, 'TOOK'), h('th', null, 'FILE'))),
              h(
                'tbody',
                null,
                ...runs.map((r) =>
                  h('tr', { 'data-check': r.name, class: r.state === 'ok' ? null : 'failed' }, h('td', null, show(r.name)), h('td', null, stateBadge(r.state)), h('td', null, show(r.message)), h('td', null, ago(r.at)), h('td.num', null, dur(r.duration_ms)), h('td.muted', null, show(r.file))),
                ),
              ),
            ),
      ]);
    }
    this.renderAlerts(alerts?.alerts ?? null);
    fillKeyed(this.findings, JSON.stringify(recent?.causes.map((c) => [c.cause, c.explanation, c.count]) ?? null), () => [
      recent === null ? na('attribution is not running in this agent (rules disabled)') : recent.causes.length === 0 ? h('p.muted', null, 'nothing notable') : causeList(recent.causes),
    ]);
  }

  private renderAlerts(alerts: Alert[] | null): void {
    if (alerts === null) {
      fillKeyed(this.alerts, 'none', () => [na('this agent runs no checks, so it raises no alerts')]);
      this.alertEls.clear();
      return;
    }
    if (alerts.length === 0) {
      fillKeyed(this.alerts, 'empty', () => [h('p.muted', null, 'no alerts')]);
      this.alertEls.clear();
      return;
    }
    const list = this.alertList;
    fillKeyed(this.alerts, 'list', () => [list]);
    // newest first; existing elements are kept as they are (open or closed)
    const want: HTMLElement[] = [];
    for (const a of alerts) {
      let el = this.alertEls.get(a.id);
      if (!el) {
        el = this.alertItem(a);
        this.alertEls.set(a.id, el);
      }
      want.push(el);
    }
    const keep = new Set(alerts.map((a) => a.id));
    for (const k of this.alertEls.keys()) if (!keep.has(k)) this.alertEls.delete(k);
    list.replaceChildren(...want);
  }

  private alertItem(a: Alert): HTMLElement {
    const causes = a.attribution?.causes ?? [];
    const live = h('div.live-explain');
    const btn = h('button', { type: 'button', class: 'small' }, 'explain now');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        const r = await getJson<{ causes: Cause[] }>(`/explain/${encodeURIComponent(a.id)}`);
        fill(live, h('h4', null, `Causes now (${clock(Date.now())})`), causeList(r.causes));
      } catch (e) {
        fill(live, h('p.bad', null, `explain failed: ${(e as Error).message}`));
      } finally {
        btn.disabled = false;
      }
    });
    const firing = a.kind === 'firing' || a.kind === 'flapping';
    return h(
      'li',
      { 'data-alert': a.id, 'data-check': a.name, class: firing ? 'firing' : 'resolved' },
      h(
        'details',
        { open: firing && causes.length > 0 ? true : null },
        h('summary', null, h('span.time', null, datetime(a.at)), ' ', h('span', { class: `kind k-${/^[a-z_]+$/.test(a.kind) ? a.kind : 'x'}` }, a.kind), ' ', stateBadge(a.previous), ' → ', stateBadge(a.state), ' ', h('strong', null, show(a.name)), ' ', h('span.muted', null, show(a.message))),
        h('div.alert-body', null, h('h4', null, firing ? 'Ranked causes when it fired' : 'Resolution'), firing ? (a.attribution === null || a.attribution === undefined ? h('p.muted', null, 'no attribution (rules disabled)') : causeList(causes)) : h('p.muted', null, 'back to ok'), firing ? btn : null, live, h('p.muted', null, `alert id ${a.id}`)),
      ),
    );
  }
}
