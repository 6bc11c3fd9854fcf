// Live events: exec, fork, exit, reap and failed exec as they happen, with the `trace` filters
// (--failed, comm, pid subtree). Pause freezes the view while events keep arriving. Memory is
// bounded: the last MAX_EVENTS records and as many rows; a hidden tab renders nothing (frames
// do not run) and catches up from the bounded buffer when shown.
import { h, procLink, setText, show } from '../dom.js';
import { clock, durNs, exitText, bytes, shellQuote } from '../format.js';
import { EventStream, type StreamState } from '../stream.js';
import type { EventRecord } from '../types.js';
import type { Page } from '../page.js';

export const MAX_EVENTS = 500;
const TYPES = new Set(['exec', 'fork', 'exit', 'reap', 'exec_failed']);

interface Item {
  seq: number;
  r: EventRecord;
}

export function isFailure(r: EventRecord): boolean {
  return r.type === 'exec_failed' || (r.type === 'exit' && ((r.signal !== null && r.signal !== undefined) || (r.exit_code ?? 0) !== 0));
}

function details(r: EventRecord): string {
  switch (r.type) {
    case 'exec':
      return (r.args ?? []).map((a) => shellQuote(show(a))).join(' ') + (r.args_truncated ? ' …[truncated]' : '');
    case 'fork':
      return r.thread ? `thread ${r.tid}` : `forked by ${r.ppid}`;
    case 'exit':
      return `${exitText(r.exit_code, r.signal, r.core_dumped)} · lived ${durNs(r.duration_ns)} · cpu ${durNs(r.usage?.cpu_ns)} · rss ${bytes((r.usage?.max_rss_kb ?? 0) * 1024)}`;
    case 'reap':
      return `reaped after ${durNs(r.zombie_ns)} as a zombie`;
    case 'exec_failed':
      return `${r.error ?? 'failed'} ${show(r.filename)}`;
    default:
      return '';
  }
}

export class EventsPage implements Page {
  readonly title = 'Live events';
  readonly el: HTMLElement;
  private readonly body = h('tbody', { id: 'event-rows' });
  private readonly status = h('span.status', { id: 'events-status' });
  private readonly counters = h('span.summary', { id: 'events-counters' });
  private readonly pauseBtn: HTMLButtonElement;
  private readonly failed: HTMLInputElement;
  private readonly comm: HTMLInputElement;
  private readonly pid: HTMLInputElement;
  private stream: EventStream | null = null;
  /** the last MAX_EVENTS records, oldest first */
  private buf: Item[] = [];
  private seq = 0;
  private shownSeq = 0;
  private paused = false;
  private raf = 0;
  private received = 0;
  private droppedByAgent = 0;
  private pausedAt = 0;

  constructor() {
    this.failed = h('input', { type: 'checkbox', id: 'ev-failed' });
    this.comm = h('input', { type: 'text', id: 'ev-comm', placeholder: 'comm (comma-separated)', 'aria-label': 'comm' });
    this.pid = h('input', { type: 'number', id: 'ev-pid', placeholder: 'pid subtree', min: 1, 'aria-label': 'pid' });
    this.pauseBtn = h('button', { type: 'button', id: 'ev-pause', onclick: () => this.togglePause() }, 'Pause');
    const apply = () => this.restart();
    this.failed.addEventListener('change', apply);
    this.comm.addEventListener('change', apply);
    this.pid.addEventListener('change', apply);
    this.el = h(
      'div.page.events',
      { 'data-page': 'events' },
      h('div.toolbar', null, h('label.check', null, this.failed, 'failures only'), this.comm, this.pid, this.pauseBtn, this.status, this.counters),
      h(
        'table.list.events',
        null,
        h('thead', null, h('tr', null, h('th', null, 'TIME'), h('th', null, 'EVENT'), h('th.num', null, 'PID'), h('th.num', null, 'PPID'), h('th', null, 'COMM'), h('th', null, 'DETAILS'))),
        this.body,
      ),
    );
  }

  start(): void {
    this.restart();
  }

  stop(): void {
    this.stream?.stop();
    this.stream = null;
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
  }

  private restart(): void {
    this.stream?.stop();
    this.buf = [];
    this.shownSeq = this.seq;
    this.received = 0;
    this.droppedByAgent = 0;
    this.body.replaceChildren();
    const comm = this.comm.value.split(',').map((s) => s.trim()).filter(Boolean);
    const pid = Number(this.pid.value);
    this.stream = new EventStream(
      { failed: this.failed.checked || undefined, comm: comm.length ? comm : undefined, pid: Number.isInteger(pid) && pid > 0 ? pid : undefined },
      (r) => this.onRecord(r),
      (s) => this.onState(s),
    );
    this.stream.start();
  }

  private onState(s: StreamState): void {
    setText(this.status, s.state === 'open' ? '● live' : s.state === 'connecting' ? 'connecting…' : `disconnected: ${s.why}; retrying`);
    this.status.className = `status ${s.state}`;
  }

  private onRecord(r: EventRecord): void {
    if (r.type === 'dropped') {
      this.droppedByAgent += r.count ?? 0;
      this.schedule();
      return;
    }
    if (!TYPES.has(r.type)) return;
    this.received++;
    this.buf.push({ seq: ++this.seq, r });
    // bounded: the oldest go (amortized: trim in chunks, not one shift per event)
    if (this.buf.length > MAX_EVENTS * 1.25) this.buf = this.buf.slice(-MAX_EVENTS);
    this.schedule();
  }

  private schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  private togglePause(): void {
    this.paused = !this.paused;
    this.pausedAt = this.seq;
    setText(this.pauseBtn, this.paused ? 'Resume' : 'Pause');
    this.pauseBtn.classList.toggle('on', this.paused);
    this.el.dataset.paused = String(this.paused);
    this.render();
  }

  private render(): void {
    const waiting = this.paused ? this.seq - this.pausedAt : 0;
    setText(
      this.counters,
      `${this.received.toLocaleString('en-US')} received · ${this.body.childElementCount} shown (last ${MAX_EVENTS})${this.droppedByAgent ? ` · ${this.droppedByAgent} dropped by the agent (this page fell behind)` : ''}${this.paused ? ` · paused: ${waiting} new` : ''}`,
    );
    this.el.dataset.received = String(this.received);
    if (this.paused) return;
    const fresh = this.buf.filter((i) => i.seq > this.shownSeq);
    if (fresh.length === 0) return;
    this.shownSeq = this.seq;
    const frag = document.createDocumentFragment();
    // newest first
    for (let i = fresh.length - 1; i >= Math.max(0, fresh.length - MAX_EVENTS); i--) frag.appendChild(this.row(fresh[i]!.r));
    this.body.prepend(frag);
    while (this.body.childElementCount > MAX_EVENTS) this.body.lastElementChild!.remove();
    setText(this.counters, this.counters.textContent!.replace(/\d[\d,]* shown/, `${this.body.childElementCount} shown`));
  }

  private row(r: EventRecord): HTMLTableRowElement {
    const fail = isFailure(r);
    return h(
      'tr',
      { class: fail ? 'failed' : null, 'data-type': r.type, 'data-pid': r.pid },
      h('td.time', null, clock(r.time)),
      h('td', null, h('span', { class: `ev ev-${r.type}` }, r.type === 'exec_failed' ? 'exec failed' : r.type)),
      h('td.num', null, String(r.pid)),
      h('td.num', null, String(r.ppid)),
      h('td', null, procLink(r.exec_id, show(r.comm))),
      h('td.details', null, details(r)),
    );
  }
}

