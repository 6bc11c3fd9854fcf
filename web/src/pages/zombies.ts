// Zombies and D: who is stuck, for how long, and the parent to blame (a zombie stays until its
// parent waits for it). Parents are ranked by the zombies they hold.
import { getOptional, Poller } from '../api.js';
import { h, fillKeyed, procLink, section, show, na } from '../dom.js';
import { dur, clock } from '../format.js';
import type { ZombiesReply } from '../types.js';
import type { Page } from '../page.js';

export class ZombiesPage implements Page {
  readonly title = 'Zombies & D';
  readonly el: HTMLElement;
  private readonly parents = h('div', { id: 'zombie-parents' });
  private readonly zombies = h('div', { id: 'zombies' });
  private readonly stuck = h('div', { id: 'stuck-d' });
  private readonly poller: Poller;

  constructor() {
    this.el = h(
      'div.page.zombies',
      { 'data-page': 'zombies' },
      section('Parents to blame', h('p.muted', null, 'A zombie is a process that exited and whose parent has not reaped it (wait()). The fix is in the parent.'), this.parents),
      section('Zombies', this.zombies),
      section('Uninterruptible (D), past the threshold', h('p.muted', null, 'Threads blocked in the kernel (usually on IO) longer than state.d_threshold; they do not answer signals.'), this.stuck),
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
    const z = await getOptional<ZombiesReply>('/zombies', {}, signal);
    if (z === null) {
      fillKeyed(this.zombies, 'na', () => [na('this agent does not report zombies')]);
      return;
    }
    // durations tick every second: rebuild when the set or a rounded duration changes
    const key = (ms: number) => Math.floor(ms / 1000);
    const byParent = new Map<string, { pid: number; comm: string | null; execId: string | null; n: number; oldest: number }>();
    for (const x of z.zombies) {
      const k = x.parent_exec_id ?? `pid:${x.ppid}`;
      const p = byParent.get(k) ?? { pid: x.ppid, comm: x.parent_comm, execId: x.parent_exec_id, n: 0, oldest: 0 };
      p.n++;
      p.oldest = Math.max(p.oldest, x.zombie_ms);
      byParent.set(k, p);
    }
    const parents = [...byParent.values()].sort((a, b) => b.n - a.n || b.oldest - a.oldest);
    fillKeyed(this.parents, JSON.stringify(parents.map((p) => [p.execId, p.n, key(p.oldest)])), () => [
      parents.length === 0
        ? h('p.good', null, 'No zombies.')
        : h(
            'table.list',
            null,
            h('thead', null, h('tr', null, h('th.num', null, 'PARENT PID'), h('th', null, 'PARENT'), h('th.num', null, 'ZOMBIES'), h('th.num', null, 'OLDEST'))),
            h('tbody', null, ...parents.map((p) => h('tr', null, h('td.num', null, String(p.pid)), h('td', null, procLink(p.execId, show(p.comm ?? '?'))), h('td.num', null, String(p.n)), h('td.num', null, dur(p.oldest))))),
          ),
    ]);
    fillKeyed(this.zombies, JSON.stringify(z.zombies.map((x) => [x.exec_id, key(x.zombie_ms)])), () => [
      z.zombies.length === 0
        ? h('p.good', null, 'No zombies.')
        : h(
            'table.list',
            null,
            h('thead', null, h('tr', null, h('th.num', null, 'PID'), h('th', null, 'COMM'), h('th.num', null, 'ZOMBIE FOR'), h('th', null, 'EXITED'), h('th', null, 'PARENT (TO BLAME)'))),
            h(
              'tbody',
              null,
              ...z.zombies.map((x) =>
                h(
                  'tr',
                  { 'data-pid': x.pid },
                  h('td.num', null, String(x.pid)),
                  h('td', null, procLink(x.exec_id, show(x.comm))),
                  h('td.num', null, dur(x.zombie_ms)),
                  h('td', null, clock(x.exit_time)),
                  h('td', { class: 'blame' }, procLink(x.parent_exec_id, `${show(x.parent_comm ?? '?')} (${x.ppid})`)),
                ),
              ),
            ),
          ),
    ]);
    const d = z.stuck_d ?? [];
    fillKeyed(this.stuck, JSON.stringify(d.map((x) => [x.tid, key(x.d_ms)])), () => [
      d.length === 0
        ? h('p.good', null, 'No thread is stuck in D.')
        : h(
            'table.list',
            null,
            h('thead', null, h('tr', null, h('th.num', null, 'PID'), h('th.num', null, 'TID'), h('th', null, 'COMM'), h('th.num', null, 'IN D FOR'))),
            h('tbody', null, ...d.map((x) => h('tr', { 'data-pid': x.pid }, h('td.num', null, String(x.pid)), h('td.num', null, String(x.tid)), h('td', null, procLink(x.exec_id, show(x.comm))), h('td.num.bad', null, dur(x.d_ms))))),
          ),
    ]);
  }
}
