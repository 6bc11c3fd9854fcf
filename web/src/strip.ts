// The node strip, above every page: CPU, memory, load, pressure (PSI) and disk over the chosen
// window (10 s / 1 m / 5 m), each with its figures and a small chart.
import { getOptional, Poller } from './api.js';
import { TimeChart } from './chart.js';
import { h, fill, setText } from './dom.js';
import { bytes, pct, rate } from './format.js';
import { WINDOWS, WINDOW_MS, getWindow, onWindow, setWindow } from './settings.js';
import type { NodeReply } from './types.js';

interface Card {
  el: HTMLElement;
  value: HTMLElement;
  sub: HTMLElement;
  chart: TimeChart;
}

function card(title: string, chart: TimeChart): Card {
  const value = h('div.value', null, '—');
  const sub = h('div.sub', null, '');
  const el = h('div.metric', { 'data-metric': title.toLowerCase() }, h('div.title', null, title), value, sub, chart.el);
  return { el, value, sub, chart };
}

const C = { cpu: '#58a6ff', mem: '#a371f7', load: '#3fb950', psiCpu: '#f0883e', psiMem: '#db61a2', psiIo: '#d29922', read: '#39c5cf', write: '#f85149' };

export class NodeStrip {
  readonly el: HTMLElement;
  private readonly cards: Record<'cpu' | 'memory' | 'load' | 'psi' | 'disk', Card>;
  private readonly note = h('div.strip-note');
  private readonly poller: Poller;
  private readonly buttons = new Map<string, HTMLButtonElement>();

  constructor() {
    const compact = (series: { label: string; color: string }[], fmt: (v: number) => string, minMax?: number) =>
      new TimeChart({ height: 42, compact: true, series, fmt, ...(minMax !== undefined ? { minMax } : {}) });
    this.cards = {
      cpu: card('CPU', compact([{ label: 'busy', color: C.cpu }], (v) => pct(v, 0), 100)),
      memory: card('Memory', compact([{ label: 'used', color: C.mem }], (v) => pct(v, 0), 100)),
      load: card('Load', compact([{ label: 'load1', color: C.load }], (v) => v.toFixed(2))),
      psi: card('Pressure', compact([{ label: 'cpu', color: C.psiCpu }, { label: 'memory', color: C.psiMem }, { label: 'io', color: C.psiIo }], (v) => pct(v, 0), 5)),
      disk: card('Disk', compact([{ label: 'read', color: C.read }, { label: 'write', color: C.write }], (v) => rate(v))),
    };
    const sel = h('div.windows', { role: 'group', 'aria-label': 'window' });
    for (const w of WINDOWS) {
      const b = h('button', { type: 'button', 'data-window': w, onclick: () => setWindow(w) }, w);
      this.buttons.set(w, b);
      sel.appendChild(b);
    }
    this.el = h('div.strip', { id: 'node-strip' }, sel, ...Object.values(this.cards).map((c) => c.el), this.note);
    this.markWindow();
    onWindow(() => {
      this.markWindow();
      this.poller.now();
    });
    this.poller = new Poller((signal) => this.tick(signal));
  }

  start(): void {
    this.poller.start();
  }

  private markWindow(): void {
    for (const [w, b] of this.buttons) b.classList.toggle('on', w === getWindow());
  }

  private async tick(signal: AbortSignal): Promise<void> {
    const w = getWindow();
    const n = await getOptional<NodeReply>('/node', { window: w }, signal);
    if (n === null) {
      fill(this.note, 'node figures not available: this agent runs without resource windows (metrics.enabled: false)');
      return;
    }
    setText(this.note, '');
    const to = Date.now();
    const from = to - WINDOW_MS[w];
    const c = this.cards;
    setText(c.cpu.value, pct(n.cpu?.avg));
    setText(c.cpu.sub, `max ${pct(n.cpu?.max, 0)} · iowait ${pct(n.iowait?.avg)}${n.cpus ? ` · ${n.cpus} CPUs` : ''}`);
    c.cpu.chart.set([n.series.cpu], from, to);
    setText(c.memory.value, pct(n.memory?.last));
    setText(c.memory.sub, `${bytes(n.memory_bytes?.last)} of ${bytes(n.memory_total_bytes)}${n.swap && n.swap.last > 0 ? ` · swap ${pct(n.swap.last, 0)}` : ''}`);
    c.memory.chart.set([n.series.memory], from, to);
    setText(c.load.value, n.load1 ? n.load1.last.toFixed(2) : '—');
    setText(c.load.sub, `5m ${n.load5?.last.toFixed(2) ?? '—'} · 15m ${n.load15?.last.toFixed(2) ?? '—'}`);
    c.load.chart.set([n.series.load1], from, to);
    const psi = (r: string) => n.psi.find((p) => p.resource === r)?.some?.avg;
    if (n.psi.length === 0) {
      setText(c.psi.value, '—');
      setText(c.psi.sub, 'PSI not available on this kernel');
    } else {
      setText(c.psi.value, pct(Math.max(psi('cpu') ?? 0, psi('memory') ?? 0, psi('io') ?? 0)));
      setText(c.psi.sub, `cpu ${pct(psi('cpu'))} · mem ${pct(psi('memory'))} · io ${pct(psi('io'))}`);
    }
    c.psi.chart.set([n.series.psi_cpu, n.series.psi_memory, n.series.psi_io], from, to);
    setText(c.disk.value, rate((n.disk_read_bytes_per_s ?? 0) + (n.disk_write_bytes_per_s ?? 0)));
    setText(c.disk.sub, `read ${rate(n.disk_read_bytes_per_s)} · write ${rate(n.disk_write_bytes_per_s)}`);
    c.disk.chart.set([n.series.disk_read, n.series.disk_write], from, to);
  }
}
