// One process, by exec_id: ancestry, facts, states over time, CPU / RSS / IO charts, exit, and
// its children. Polled once a second while shown.
import { getJson, getOptional, HttpError, Poller } from '../api.js';
import { TimeChart } from '../chart.js';
import { h, fill, fillKeyed, kv, procLink, section, show, na } from '../dom.js';
import { bytes, datetime, dur, durNs, exitText, pct, rate, shellQuote } from '../format.js';
import { getWindow, onWindow, WINDOW_MS } from '../settings.js';
import { renderTimeline, STATE_NAMES } from '../timeline.js';
import type { HistoryReply, Proc, ProcDetail } from '../types.js';
import type { Page } from '../page.js';

export class ProcessPage implements Page {
  readonly title: string;
  readonly el: HTMLElement;
  private readonly head = h('div.proc-head');
  private readonly ancestry = h('nav.ancestry', { 'aria-label': 'ancestry' });
  private readonly facts = h('div');
  private readonly exit = h('div');
  private readonly timeline = h('div.timeline');
  private readonly children = h('div');
  private readonly chartNote = h('div');
  private readonly charts = {
    cpu: new TimeChart({ height: 160, series: [{ label: 'CPU', color: '#58a6ff' }], fmt: (v) => pct(v, 0), minMax: 10 }),
    rss: new TimeChart({ height: 160, series: [{ label: 'RSS', color: '#a371f7' }], fmt: (v) => bytes(v) }),
    io: new TimeChart({ height: 160, series: [{ label: 'read', color: '#39c5cf' }, { label: 'write', color: '#f85149' }], fmt: (v) => rate(v) }),
  };
  private readonly poller: Poller;
  private readonly offWindow: () => void;
  private gone = false;

  constructor(private readonly id: string) {
    this.title = `Process ${id}`;
    this.el = h(
      'div.page.process',
      { 'data-page': 'process', 'data-exec-id': id },
      this.head,
      this.ancestry,
      h('div.grid2', null, section('Process', this.facts), section('Exit', this.exit)),
      section('States over the window', this.timeline),
      h('div.grid3', null, section('CPU (% of one CPU)', this.charts.cpu.el), section('Resident memory', this.charts.rss.el), section('Storage IO', this.charts.io.el)),
      this.chartNote,
      section('Children', this.children),
    );
    this.poller = new Poller((s) => this.tick(s), undefined, (e) => fill(this.head, h('div.error', null, `could not read the process: ${(e as Error).message}`)));
    this.offWindow = onWindow(() => this.poller.now());
  }

  start(): void {
    this.poller.start();
  }

  stop(): void {
    this.poller.stop();
    this.offWindow();
    for (const c of Object.values(this.charts)) c.destroy();
  }

  private async tick(signal: AbortSignal): Promise<void> {
    const w = getWindow();
    let d: ProcDetail;
    try {
      d = await getJson<ProcDetail>(`/processes/${this.id}`, {}, signal);
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) {
        if (!this.gone) {
          this.gone = true;
          fill(this.head, h('h1', null, `exec_id ${this.id}`), h('p.na', { 'data-gone': 'true' }, 'This process is not in the agent\u2019s table: unknown, or reaped and forgotten after its grace period.'));
        }
        return;
      }
      throw e;
    }
    this.gone = false;
    const hist = await getOptional<HistoryReply>('/history', { exec_id: [this.id], window: w }, signal);
    this.render(d, hist, w);
  }

  private render(d: ProcDetail, hist: HistoryReply | null, w: keyof typeof WINDOW_MS): void {
    const p = d.process;
    const to = Date.now();
    const from = to - WINDOW_MS[w];
    fill(
      this.head,
      h('h1', null, h('span.comm', { id: 'proc-comm' }, show(p.comm)), h('span.pid', null, ` pid ${p.pid}`), h('span', { class: `badge st-${/^[A-Z]$/.test(p.state) ? p.state : 'U'}`, id: 'proc-state' }, `${p.state} ${STATE_NAMES[p.state] ?? ''}`), h('span.badge.life', null, p.lifecycle)),
      h('div.sub', null, `exec_id ${p.exec_id} · in state for ${p.state_ms === null ? '—' : dur(p.state_ms)}`),
    );
    // oldest ancestor first, down to this process
    const chain = [...d.ancestry].reverse();
    fillKeyed(this.ancestry, chain.map((a) => a.exec_id + a.comm).join(), () => [...chain.flatMap((a) => [procLink(a.exec_id, `${show(a.comm)} (${a.pid})`), h('span.sep', null, ' › ')]), h('strong', null, `${show(p.comm)} (${p.pid})`)]);
    // state and time in state live in the head; the rest changes rarely
    fillKeyed(this.facts, JSON.stringify([{ ...p, state: '', state_ms: 0 }, d.ancestry[0]?.exec_id]), () => [
      kv([
        ['command', h('code.args', { id: 'proc-args' }, (p.args ?? []).map((a) => shellQuote(show(a))).join(' ') + (p.args_truncated ? ' …[truncated]' : ''))],
        ['executable', show(p.filename)],
        ['parent', d.ancestry[0] ? procLink(d.ancestry[0].exec_id, `${show(d.ancestry[0].comm)} (${d.ancestry[0].pid})`) : `pid ${p.ppid}`],
        ['user', `uid ${p.uid ?? '—'} · gid ${p.gid ?? '—'} · euid ${p.euid ?? '—'}`],
        ['started', `${datetime(p.start_time)}${p.coarse_start ? ' (±10 ms)' : ''} · seen by ${p.source}`],
        ['execs', String(p.exec_count)],
        ['cgroup id', p.cgroup_id ?? '—'],
        ['run-queue wait (1 m)', p.rq_p95_us === null ? '—' : `p50 ${p.rq_p50_us} µs · p95 ${p.rq_p95_us} µs · max ${p.rq_max_us} µs`],
        ['context switches', p.nvcsw === null ? '—' : `${p.nvcsw} voluntary · ${p.nivcsw} involuntary`],
      ]),
    ]);
    fillKeyed(this.exit, `${p.exit_time}|${p.reap_time}|${p.exit_code}|${p.signal}`, () => [
      p.exit_time === null
        ? h('p.muted', null, 'still running')
        : kv([
            ['how', h('span', { class: p.signal !== null || (p.exit_code ?? 0) !== 0 ? 'bad' : 'good', id: 'proc-exit' }, exitText(p.exit_code, p.signal, p.core_dumped))],
            ['exited', datetime(p.exit_time)],
            ['reaped', p.reap_time ? `${datetime(p.reap_time)} (zombie for ${durNs((Date.parse(p.reap_time) - Date.parse(p.exit_time)) * 1e6)})` : 'not yet: a zombie until its parent waits for it'],
            ['lived', dur(Date.parse(p.exit_time) - Date.parse(p.start_time))],
          ]),
    ]);
    renderTimeline(this.timeline, d, from, to);
    const hp = hist?.processes[0];
    if (hist === null) fill(this.chartNote, na('this agent runs without resource windows (metrics.enabled: false)'));
    else if (!hp) fill(this.chartNote, na('the resource windows hold no samples of this process (it lived between two sweeps, or ended and was summarized)'));
    else fill(this.chartNote);
    this.charts.cpu.set([hp?.cpu ?? []], from, to);
    this.charts.rss.set([hp?.rss ?? []], from, to);
    this.charts.io.set([hp?.io_read ?? [], hp?.io_write ?? []], from, to);
    fillKeyed(this.children, d.children.map((c) => c.exec_id + c.state + c.lifecycle).join(), () => [d.children.length === 0 ? h('p.muted', null, 'none') : childTable(d.children)]);
  }
}

function childTable(kids: Proc[]): HTMLElement {
  return h(
    'table.list',
    null,
    h('thead', null, h('tr', null, h('th', null, 'PID'), h('th', null, 'S'), h('th', null, 'COMM'), h('th', null, 'STARTED'), h('th', null, 'EXIT'))),
    h(
      'tbody',
      null,
      ...kids.slice(0, 500).map((c) =>
        h('tr', null, h('td.num', null, String(c.pid)), h('td', { class: `state st-${c.state}` }, c.state), h('td', null, procLink(c.exec_id, show(c.comm))), h('td', null, datetime(c.start_time)), h('td', null, exitText(c.exit_code, c.signal, c.core_dumped))),
      ),
    ),
  );
}
