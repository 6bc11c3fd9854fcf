// A process's states over the window as one horizontal bar (running, sleeping, D, zombie, ...),
// from the states the agent observed plus the lifecycle's exit and reap times.
import { h, fill } from './dom.js';
import { clock, dur } from './format.js';
import type { ProcDetail } from './types.js';

export const STATE_NAMES: Record<string, string> = {
  R: 'running',
  S: 'sleeping',
  D: 'uninterruptible (D)',
  T: 'stopped',
  I: 'idle kernel thread',
  Z: 'zombie',
  X: 'reaped',
  '?': 'state unknown',
};

export interface Segment {
  state: string;
  from: number;
  to: number;
}

/** The segments of a process's life, wall ms, oldest first (not yet clipped to a window). */
export function segments(d: ProcDetail, now: number): Segment[] {
  const p = d.process;
  const start = Date.parse(p.start_time);
  const exit = p.exit_time ? Date.parse(p.exit_time) : null;
  const reap = p.reap_time ? Date.parse(p.reap_time) : null;
  const marks: { state: string; at: number }[] = (d.states ?? []).map((s) => ({ state: s.state, at: Date.parse(s.since) }));
  if (marks.length === 0 || marks[0]!.at > start + 1) marks.unshift({ state: marks.length === 0 && p.lifecycle === 'live' ? p.state : '?', at: start });
  // the lifecycle knows the exit and the reap even when the state log does not
  if (exit !== null && !marks.some((m) => m.state === 'Z')) marks.push({ state: 'Z', at: exit });
  if (reap !== null && !marks.some((m) => m.state === 'X')) marks.push({ state: 'X', at: reap });
  marks.sort((a, b) => a.at - b.at);
  const out: Segment[] = [];
  for (let i = 0; i < marks.length; i++) {
    const m = marks[i]!;
    const to = i + 1 < marks.length ? marks[i + 1]!.at : now;
    if (to > m.at) out.push({ state: m.state, from: m.at, to });
  }
  return out;
}

export function renderTimeline(el: HTMLElement, d: ProcDetail, from: number, to: number): void {
  const segs = segments(d, to).filter((s) => s.to > from && s.from < to);
  const span = to - from;
  const bar = h('div.timeline-bar', { role: 'img', 'aria-label': 'states over the window' });
  for (const s of segs) {
    const a = Math.max(s.from, from);
    const b = Math.min(s.to, to);
    const seg = h('div.seg', { class: `st-${/^[A-Z]$/.test(s.state) ? s.state : 'U'}`, title: `${STATE_NAMES[s.state] ?? s.state}: ${clock(a)} – ${clock(b)} (${dur(b - a)})`, 'data-state': s.state });
    seg.style.left = `${((a - from) / span) * 100}%`;
    seg.style.width = `${Math.max(0.2, ((b - a) / span) * 100)}%`;
    bar.appendChild(seg);
  }
  const used = [...new Set(segs.map((s) => s.state))];
  const legend = h('div.legend', null, ...used.map((s) => h('span', null, h('i', { class: `sw st-${/^[A-Z]$/.test(s) ? s : 'U'}` }), STATE_NAMES[s] ?? s)));
  const axis = h('div.timeline-axis', null, h('span', null, clock(from)), h('span', null, 'now'));
  const list = h(
    'ol.transitions',
    null,
    ...segs.slice(-8).map((s) => h('li', null, `${clock(s.from)}  ${STATE_NAMES[s.state] ?? s.state} for ${dur(s.to - s.from)}${s.to >= to ? ' (now)' : ''}`)),
  );
  fill(el, bar, axis, legend, list);
}
