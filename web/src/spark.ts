// Sparklines for table rows: one small canvas each, drawn directly (a chart library per row
// would cost more than the row). Values are steps over the window, newest on the right.
import type { Point } from './types.js';

export interface SparkOptions {
  /** the window shown: [from, to] wall ms */
  from: number;
  to: number;
  /** 'zero': from 0 to max(data, floor) (CPU %); 'range': from the data's min to its max, a
   *  flat series as a line across the middle (RSS: its changes matter, not its size) */
  scale: 'zero' | 'range';
  /** with 'zero': the top of the scale when the data stays below it */
  floor?: number;
  color: string;
}

/** canvases with something drawn on them: the others need no context (creating 2D contexts is
 *  what a first render of the table would otherwise spend its time on) */
const drawn = new WeakMap<HTMLCanvasElement, readonly Point[]>();

/** Draws `points` on `c`, unless these very points are already there (a scroll or a poll that
 *  brought nothing new redraws nothing). */
export function drawSpark(c: HTMLCanvasElement, points: readonly Point[] | undefined, o: SparkOptions): void {
  if (!points || points.length === 0) {
    if (drawn.has(c)) {
      c.getContext('2d')?.clearRect(0, 0, c.width, c.height);
      drawn.delete(c);
    }
    return;
  }
  if (drawn.get(c) === points) return;
  drawn.set(c, points);
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || c.width;
  const hgt = c.clientHeight || c.height;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(hgt * dpr);
  }
  const g = c.getContext('2d');
  if (!g) return;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, hgt);
  let max = o.scale === 'zero' ? (o.floor ?? 0) : -Infinity;
  let min = o.scale === 'zero' ? 0 : Infinity;
  for (const p of points) {
    if (p[1] > max) max = p[1];
    if (p[1] < min) min = p[1];
  }
  const span = Math.max(1, o.to - o.from);
  const x = (t: number) => Math.max(0, Math.min(w, ((t - o.from) / span) * w));
  const range = max - min;
  const y = (v: number) => (range <= 0 ? hgt / 2 : hgt - 2 - ((v - min) / range) * (hgt - 4));
  g.beginPath();
  const first = points[0]!;
  g.moveTo(x(first[0]), hgt);
  g.lineTo(x(first[0]), y(first[1]));
  let prevY = y(first[1]);
  for (let i = 1; i < points.length; i++) {
    const p = points[i]!;
    const px = x(p[0]);
    g.lineTo(px, prevY);
    prevY = y(p[1]);
    g.lineTo(px, prevY);
  }
  const lastX = x(points[points.length - 1]![0]);
  g.lineTo(lastX, hgt);
  g.closePath();
  g.fillStyle = o.color + '40';
  g.fill();
  g.beginPath();
  g.moveTo(x(first[0]), y(first[1]));
  prevY = y(first[1]);
  for (let i = 1; i < points.length; i++) {
    const p = points[i]!;
    const px = x(p[0]);
    g.lineTo(px, prevY);
    prevY = y(p[1]);
    g.lineTo(px, prevY);
  }
  g.strokeStyle = o.color;
  g.lineWidth = 1;
  g.stroke();
}
