// Following one process subtree through the event stream (`patrol trace --pid`).
import type { LifecycleEvent } from '../shared/events.js';
import type { Enriched, ProcessEntry } from './entry.js';
import type { ProcessTable } from './table.js';

/** Decides, event by event, whether an event belongs to the subtree of `rootPid` — the process
 *  and every descendant, including the ones born after the filter was made. Membership is by
 *  birth and sticky: a descendant stays in when its parent dies and it is reparented to init
 *  (like strace -f). Feed it every event in order, right after table.apply(). O(1) per event. */
export class SubtreeFilter {
  private readonly members = new Set<string>();
  private rootSeen: boolean;

  constructor(
    table: ProcessTable,
    private readonly rootPid: number,
  ) {
    const root = table.byPid(rootPid);
    this.rootSeen = root !== undefined;
    if (root !== undefined) {
      const stack: ProcessEntry[] = [root];
      while (stack.length > 0) {
        const e = stack.pop()!;
        if (this.members.has(e.execId)) continue;
        this.members.add(e.execId);
        if (e.children !== null) for (const c of e.children) stack.push(c);
      }
    }
  }

  matches(ev: LifecycleEvent, en: Enriched): boolean {
    let hit = this.members.has(en.execId);
    if (!hit) {
      if (en.parentExecId !== null && this.members.has(en.parentExecId)) hit = true;
      else if (!this.rootSeen && en.entry.pid === this.rootPid) {
        hit = true;
        this.rootSeen = true;
      }
      if (hit) this.members.add(en.execId);
    }
    // a reaped process cannot have new children: forget it (keeps long traces bounded)
    if (hit && ev.type === 'reap') this.members.delete(en.execId);
    return hit;
  }

  get size(): number {
    return this.members.size;
  }
}
