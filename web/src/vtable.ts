// A virtual table: a fixed row height, and only the rows in view (plus a few) exist in the DOM,
// recycled as the user scrolls. 10,000 rows cost what 40 do; a poll updates the text of the
// rows in view only where it changed.
import { h } from './dom.js';

export interface Column<R> {
  key: string;
  title: string;
  /** CSS grid track */
  width: string;
  /** sortable by this key (the page decides how) */
  sortable?: boolean;
  num?: boolean;
  /** fills a cell (created once per pooled row) for row r */
  render(cell: HTMLElement, r: R): void;
  title_?: string;
}

export const ROW_HEIGHT = 24;
const OVERSCAN = 8;

export class VirtualTable<R> {
  readonly el: HTMLElement;
  private readonly head: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly body: HTMLElement;
  private pool: HTMLElement[] = [];
  private rows: readonly R[] = [];
  private raf = 0;
  private sortKey = '';
  private sortDesc = false;
  /** the rows currently in view, after each render */
  visible: R[] = [];

  constructor(
    private readonly columns: Column<R>[],
    private readonly opts: { onSort(key: string): void; onClick(r: R, ev: MouseEvent): void; onRendered?(visible: R[]): void; rowClass?(r: R): string },
  ) {
    const grid = columns.map((c) => c.width).join(' ');
    this.head = h('div.vhead', { role: 'row' });
    this.head.style.gridTemplateColumns = grid;
    for (const c of columns) {
      const th = h('div.vth', { role: 'columnheader', 'data-key': c.key, class: `${c.num ? 'num' : ''} ${c.sortable ? 'sortable' : ''}`, title: c.title_ ?? null }, c.title);
      if (c.sortable) th.addEventListener('click', () => this.opts.onSort(c.key));
      this.head.appendChild(th);
    }
    this.body = h('div.vbody');
    this.spacer = h('div.vspacer', null, this.body);
    this.scroller = h('div.vscroll', { role: 'rowgroup', tabindex: 0 }, this.spacer);
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.el = h('div.vtable', { role: 'table' }, this.head, this.scroller);
    this.grid = grid;
  }

  private readonly grid: string;

  setSort(key: string, desc: boolean): void {
    this.sortKey = key;
    this.sortDesc = desc;
    for (const th of this.head.children) {
      const k = (th as HTMLElement).dataset.key;
      th.classList.toggle('sorted', k === key);
      th.classList.toggle('desc', k === key && desc);
    }
  }

  get sort(): { key: string; desc: boolean } {
    return { key: this.sortKey, desc: this.sortDesc };
  }

  setRows(rows: readonly R[]): void {
    this.rows = rows;
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    this.render();
  }

  /** Renders on the next frame (scroll, resize): no work for frames a hidden tab never paints. */
  schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  render(): void {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const n = last - first;
    while (this.pool.length < n) this.pool.push(this.makeRow());
    this.body.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const vis: R[] = [];
    for (let i = 0; i < this.pool.length; i++) {
      const el = this.pool[i]!;
      if (i >= n) {
        if (el.parentNode) el.remove();
        continue;
      }
      const r = this.rows[first + i]!;
      if (!el.parentNode) this.body.appendChild(el);
      (el as HTMLElement & { row?: R }).row = r;
      const cls = `vrow ${this.opts.rowClass?.(r) ?? ''}`;
      if (el.className !== cls) el.className = cls;
      const cells = el.children;
      for (let c = 0; c < this.columns.length; c++) this.columns[c]!.render(cells[c] as HTMLElement, r);
      if (first + i >= Math.floor(top / ROW_HEIGHT) && first + i < Math.ceil((top + height) / ROW_HEIGHT)) vis.push(r);
    }
    this.visible = vis;
    this.opts.onRendered?.(vis);
  }

  private makeRow(): HTMLElement {
    const el = h('div.vrow', { role: 'row' });
    el.style.gridTemplateColumns = this.grid;
    for (const c of this.columns) el.appendChild(h('div.vtd', { role: 'cell', class: c.num ? 'num' : null }));
    el.addEventListener('click', (ev) => {
      const r = (el as HTMLElement & { row?: R }).row;
      if (r !== undefined) this.opts.onClick(r, ev);
    });
    return el;
  }

  /** Scrolls back to the top (a new filter). */
  top(): void {
    this.scroller.scrollTop = 0;
  }
}
