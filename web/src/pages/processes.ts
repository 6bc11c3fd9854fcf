// Processes: `top` as a table of every process the agent knows (10,000 stay fast: the table is
// virtual), sortable and filterable, with CPU and RSS sparklines for the rows in view. Processes
// that exited inside the window are marked †. A tree view nests them under their parents.
import { getJson, getOptional, HttpError, Poller } from '../api.js';
import { h, fill, setText } from '../dom.js';
import { bytes, dur } from '../format.js';
import { getWindow, onWindow, WINDOW_MS } from '../settings.js';
import { drawSpark } from '../spark.js';
import { PROC_LIST_FIELDS, TOP_LIST_FIELDS, type HistoryReply, type Point, type ProcListRow, type TopListRow } from '../types.js';
import { VirtualTable, type Column } from '../vtable.js';
import type { Page } from '../page.js';
import { ProcessModel, type Row } from './process-model.js';

const sharedModel = new ProcessModel();

/** History requests name at most this many processes (the API's bound is 200). */
const SPARK_BATCH = 120;

export class ProcessesPage implements Page {
  readonly title = 'Processes';
  readonly el: HTMLElement;
  private readonly table: VirtualTable<Row>;
  /** one model for every visit of the page: coming back, the display text of the processes
   *  is already made */
  private readonly model = sharedModel;
  private readonly summary = h('span.summary');
  private readonly filterInput: HTMLInputElement;
  private readonly stateSelect: HTMLSelectElement;
  private readonly treeToggle: HTMLInputElement;
  private readonly error = h('div.error', { hidden: true });
  private readonly poller: Poller;
  private sparks = new Map<string, { cpu: Point[]; rss: Point[] }>();
  private sparkTimer: ReturnType<typeof setTimeout> | null = null;
  private sparkBusy = false;
  private metrics = true;
  private firstRender = true;
  private readonly offWindow: () => void;

  constructor() {
    const cols: Column<Row>[] = [
      { key: 'pid', title: 'PID', width: '72px', sortable: true, num: true, render: (c, r) => setText(c, r.pid ? String(r.pid) : '') },
      { key: 'state', title: 'S', width: '30px', sortable: true, title_: 'scheduler state', render: (c, r) => stateCell(c, r.state) },
      { key: 'state_ms', title: 'IN STATE', width: '80px', sortable: true, num: true, render: (c, r) => setText(c, r.stateMs === null ? '' : dur(r.stateMs)) },
      { key: 'cpu', title: 'CPU %', width: '62px', sortable: true, num: true, title_: 'CPU time used in the window over its length, % of one CPU', render: (c, r) => setText(c, r.cpu === null ? '' : r.cpu < 0.05 && r.cpu > 0 ? '<0.1' : r.cpu.toFixed(1)) },
      { key: 'cpu_spark', title: '', width: '84px', render: (c, r) => this.spark(c, r, 'cpu') },
      { key: 'rss', title: 'RSS', width: '78px', sortable: true, num: true, title_: 'resident memory, latest', render: (c, r) => setText(c, r.rss === null ? '' : bytes(r.rss)) },
      { key: 'rss_spark', title: '', width: '84px', render: (c, r) => this.spark(c, r, 'rss') },
      { key: 'io', title: 'IO', width: '72px', sortable: true, num: true, title_: 'storage read + write in the window', render: (c, r) => setText(c, r.io === null ? '' : bytes(r.io)) },
      { key: 'uid', title: 'UID', width: '56px', sortable: true, num: true, render: (c, r) => setText(c, r.uid === null ? '' : String(r.uid)) },
      { key: 'comm', title: 'COMM', width: 'minmax(140px, 1fr)', sortable: true, render: (c, r) => this.commCell(c, r) },
      {
        key: 'args',
        title: 'ARGS',
        width: 'minmax(160px, 2.5fr)',
        render: (c, r) => {
          setText(c, r.args);
          if (c.title !== r.args) c.title = r.args; // the whole command line on hover
        },
      },
    ];
    this.table = new VirtualTable(cols, {
      onSort: (key) => {
        const s = this.table.sort;
        this.table.setSort(key, s.key === key ? !s.desc : key !== 'comm' && key !== 'pid');
        this.refresh();
      },
      onClick: (r, ev) => {
        if ((ev.target as HTMLElement).closest('.twisty')) {
          this.model.toggle(r.id);
          this.refresh();
          return;
        }
        if (r.detail) location.hash = `#/process/${r.id}`;
      },
      rowClass: (r) => (r.exited ? 'exited' : ''),
      onRendered: () => this.scheduleSparks(),
    });
    this.table.setSort('cpu', true);
    this.filterInput = h('input', { type: 'search', placeholder: 'filter: pid, comm or args', 'aria-label': 'filter', id: 'proc-filter' });
    this.filterInput.addEventListener('input', () => {
      this.table.top();
      this.refresh();
    });
    this.stateSelect = h(
      'select',
      { 'aria-label': 'state', id: 'proc-state' },
      ...[
        ['', 'all'],
        ['live', 'alive'],
        ['R', 'running (R)'],
        ['D', 'uninterruptible (D)'],
        ['Z', 'zombies (Z)'],
        ['exited', 'exited in window'],
      ].map(([v, t]) => h('option', { value: v! }, t!)),
    );
    this.stateSelect.addEventListener('change', () => {
      this.table.top();
      this.refresh();
    });
    this.treeToggle = h('input', { type: 'checkbox', id: 'proc-tree' });
    this.treeToggle.addEventListener('change', () => {
      this.table.top();
      this.refresh();
    });
    this.el = h(
      'div.page.processes',
      { 'data-page': 'processes' },
      h('div.toolbar', null, this.filterInput, this.stateSelect, h('label.check', null, this.treeToggle, 'tree'), this.summary),
      this.error,
      this.table.el,
    );
    this.poller = new Poller((s) => this.tick(s), undefined, (e) => this.fail(e));
    this.offWindow = onWindow(() => this.poller.now());
  }

  start(): void {
    this.poller.start();
  }

  stop(): void {
    this.poller.stop();
    this.offWindow();
    if (this.sparkTimer !== null) clearTimeout(this.sparkTimer);
  }

  private fail(e: unknown): void {
    this.error.hidden = false;
    fill(this.error, `could not read the processes: ${e instanceof Error ? e.message : String(e)}`);
  }

  private async tick(signal: AbortSignal): Promise<void> {
    const w = getWindow();
    const t0 = performance.now();
    const [list, top] = await Promise.all([
      getJson<{ total: number; processes: ProcListRow[] }>('/processes', { fields: PROC_LIST_FIELDS.join(',') }, signal),
      this.metrics ? getOptional<{ rows: TopListRow[] }>('/top', { window: w, limit: 10000, sort: 'cpu', fields: TOP_LIST_FIELDS.join(',') }, signal) : Promise.resolve(null),
    ]);
    if (top === null) this.metrics = false;
    this.error.hidden = true;
    const t1 = performance.now();
    this.model.update(list.processes, top?.rows ?? null, WINDOW_MS[w] / 1000);
    const t2 = performance.now();
    this.refresh();
    const ms = performance.now() - t0;
    // figures for the benchmark and the tests: fetch (both requests, parsed), join, whole tick
    this.el.dataset.fetchMs = (t1 - t0).toFixed(1);
    this.el.dataset.modelMs = (t2 - t1).toFixed(1);
    this.el.dataset.tickMs = ms.toFixed(1);
    if (this.firstRender) {
      this.firstRender = false;
      this.el.dataset.ready = 'true';
      performance.mark('patrol:processes-ready');
    }
  }

  private refresh(): void {
    const t0 = performance.now();
    const s = this.table.sort;
    const rows = this.model.view({ filter: this.filterInput.value, state: this.stateSelect.value, tree: this.treeToggle.checked, sort: s.key, desc: s.desc });
    this.table.setRows(rows);
    const c = this.model.counts;
    setText(
      this.summary,
      `${c.total.toLocaleString('en-US')} processes · ${c.live.toLocaleString('en-US')} alive · ${c.zombies} zombies · ${c.exited} exited in the window${rows.length !== c.total ? ` · ${rows.length.toLocaleString('en-US')} shown` : ''}${this.metrics ? '' : ' · CPU/RSS not available (metrics disabled)'}`,
    );
    this.el.dataset.rows = String(rows.length);
    this.el.dataset.renderMs = (performance.now() - t0).toFixed(1);
  }

  private commCell(c: HTMLElement, r: Row): void {
    let indent = c.firstChild as HTMLElement | null;
    if (indent === null) {
      indent = h('span.twisty');
      c.append(indent, h('span.comm'));
    }
    const text = c.lastChild as HTMLElement;
    indent.style.paddingLeft = `${r.depth * 14}px`;
    setText(indent, r.hasChildren ? (r.collapsed ? '▸ ' : '▾ ') : r.depth > 0 ? '· ' : '');
    setText(text, r.exited ? `${r.comm} †` : r.comm);
    c.title = r.exited ? `exited${r.exit ? ': ' + r.exit : ''}` : '';
  }

  private spark(c: HTMLElement, r: Row, which: 'cpu' | 'rss'): void {
    let canvas = c.firstChild as HTMLCanvasElement | null;
    if (canvas === null) {
      canvas = h('canvas.spark', { width: 80, height: 18 });
      c.appendChild(canvas);
    }
    const to = Date.now();
    drawSpark(canvas, this.sparks.get(r.id)?.[which], which === 'cpu' ? { from: to - WINDOW_MS[getWindow()], to, scale: 'zero', floor: 10, color: '#58a6ff' } : { from: to - WINDOW_MS[getWindow()], to, scale: 'range', color: '#a371f7' });
  }

  /** Sparklines for the rows in view, once the scrolling settles. */
  private scheduleSparks(): void {
    if (!this.metrics || this.sparkTimer !== null) return;
    this.sparkTimer = setTimeout(() => {
      this.sparkTimer = null;
      void this.fetchSparks();
    }, 150);
  }

  private async fetchSparks(): Promise<void> {
    if (this.sparkBusy || document.hidden) return;
    const ids = this.table.visible.filter((r) => r.inWindows && !this.fresh(r.id)).map((r) => r.id).slice(0, SPARK_BATCH);
    if (ids.length === 0) return;
    this.sparkBusy = true;
    try {
      const hr = await getJson<HistoryReply>('/history', { exec_id: ids, window: getWindow() });
      const at = Date.now();
      for (const p of hr.processes) this.sparks.set(p.exec_id, { cpu: p.cpu, rss: p.rss });
      for (const id of ids) this.sparkAt.set(id, at);
      // keep the sparklines of what is in view, forget the rest (memory stays bounded)
      const keep = new Set(this.table.visible.map((r) => r.id));
      for (const k of this.sparks.keys()) if (!keep.has(k)) this.sparks.delete(k);
      for (const k of this.sparkAt.keys()) if (!keep.has(k)) this.sparkAt.delete(k);
      this.table.schedule();
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
    } finally {
      this.sparkBusy = false;
    }
  }

  private readonly sparkAt = new Map<string, number>();
  private fresh(id: string): boolean {
    const t = this.sparkAt.get(id);
    return t !== undefined && Date.now() - t < 900;
  }
}

function stateCell(c: HTMLElement, s: string): void {
  if (c.textContent !== s) {
    c.textContent = s;
    c.className = `vtd state st-${/^[A-Z]$/.test(s) ? s : 'X'}`;
  }
}

