// Time charts (uPlot, bundled from node_modules): a thin wrapper that aligns series sampled at
// different times, follows the container's width, and updates in place (no re-creation per
// poll, so an open tab does not churn memory).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Point } from './types.js';

export interface SeriesSpec {
  label: string;
  color: string;
  fill?: boolean;
}

export interface ChartOptions {
  height: number;
  series: SeriesSpec[];
  /** y axis text */
  fmt: (v: number) => string;
  /** fixed y range minimum top (e.g. 100 for %) */
  minMax?: number;
  /** no axes, no legend: a strip sparkline */
  compact?: boolean;
}

/** Series sampled at different times → one x array, each series carried forward (null before
 *  its first sample). */
export function align(series: readonly (readonly Point[])[]): uPlot.AlignedData {
  const ts = new Set<number>();
  for (const s of series) for (const p of s) ts.add(p[0]);
  const xs = [...ts].sort((a, b) => a - b);
  const out: (number | null)[][] = series.map(() => new Array<number | null>(xs.length).fill(null));
  series.forEach((s, k) => {
    let j = 0;
    let last: number | null = null;
    for (let i = 0; i < xs.length; i++) {
      while (j < s.length && s[j]![0] <= xs[i]!) last = s[j++]![1];
      out[k]![i] = last;
    }
  });
  return [xs.map((t) => t / 1000), ...out] as uPlot.AlignedData;
}

export class TimeChart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private readonly ro: ResizeObserver;
  private range: [number, number] | null = null;
  private dead = false;

  constructor(private readonly o: ChartOptions) {
    this.el = document.createElement('div');
    this.el.className = o.compact ? 'chart compact' : 'chart';
    this.ro = new ResizeObserver(() => {
      const w = this.width();
      if (this.plot && w > 0 && Math.abs(this.plot.width - w) > 1) this.plot.setSize({ width: w, height: this.o.height });
    });
    this.ro.observe(this.el);
  }

  private width(): number {
    return Math.floor(this.el.clientWidth);
  }

  private make(data: uPlot.AlignedData): uPlot {
    const o = this.o;
    const axisStroke = '#8b949e';
    const grid = { stroke: '#30363d', width: 1 };
    const opts: uPlot.Options = {
      width: Math.max(100, this.width()),
      height: o.height,
      legend: { show: !o.compact },
      cursor: o.compact ? { show: false } : { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => this.range ?? [Date.now() / 1000 - 60, Date.now() / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max(o.minMax ?? 0, max * 1.1 || 1)] },
      },
      axes: o.compact
        ? [{ show: false }, { show: false }]
        : [
            { stroke: axisStroke, grid, ticks: grid },
            { stroke: axisStroke, grid, ticks: grid, size: 70, values: (_u, vals) => vals.map((v) => o.fmt(v)) },
          ],
      series: [
        {},
        ...o.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          fill: s.fill === false ? undefined : s.color + '30',
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : o.fmt(v)),
        })),
      ],
    };
    return new uPlot(opts, data, this.el);
  }

  /** New data for [from, to] (wall ms); one Point[] per series. */
  set(series: readonly (readonly Point[])[], from: number, to: number): void {
    if (this.dead) return;
    this.range = [from / 1000, to / 1000];
    const data = align(series);
    if (this.plot === null) {
      if (this.width() === 0) {
        // not laid out yet: try again next frame
        requestAnimationFrame(() => this.set(series, from, to));
        return;
      }
      this.plot = this.make(data);
    } else {
      this.plot.setData(data, true);
    }
  }

  destroy(): void {
    this.dead = true;
    this.ro.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}
