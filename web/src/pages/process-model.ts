// The processes page's data: the table (GET /v1/processes) joined with the resource windows
// (GET /v1/top) by exec_id, display text made once per process (escaped), then filtered,
// sorted, or nested as a tree. Plain arrays and one pass per step: 10,000 rows in a few ms.
import { show } from '../dom.js';
import { exitText, shellQuote } from '../format.js';
import type { ProcListRow, TopListRow } from '../types.js';

export interface Row {
  id: string;
  pid: number;
  ppid: number;
  parent: string | null;
  uid: number | null;
  /** display text (escaped) */
  comm: string;
  args: string;
  /** lower-case haystack for the filter */
  search: string;
  state: string;
  stateMs: number | null;
  lifecycle: string;
  /** % of one CPU, average over the window */
  cpu: number | null;
  rss: number | null;
  io: number | null;
  /** ended inside the window (still in the table as zombie/dead, or only in the windows) */
  exited: boolean;
  exit: string;
  start: number;
  /** the agent can show its detail page (it is in the table) */
  detail: boolean;
  /** the resource windows hold samples of it (sparklines) */
  inWindows: boolean;
  depth: number;
  hasChildren: boolean;
  collapsed: boolean;
}

/** What is made once per process and kept while it does not exec again: escaped text, the
 *  filter's haystack, the parsed start time. */
interface Text {
  key: string;
  comm: string;
  args: string;
  search: string;
  start: number;
}

export interface ViewQuery {
  filter: string;
  state: string;
  tree: boolean;
  sort: string;
  desc: boolean;
}

type Cmp = (a: Row, b: Row) => number;
type Key = (r: Row) => number | string | null;
const KEYS: Record<string, Key> = {
  pid: (r) => r.pid,
  state: (r) => r.state,
  state_ms: (r) => r.stateMs,
  cpu: (r) => r.cpu,
  rss: (r) => r.rss,
  io: (r) => r.io,
  uid: (r) => r.uid,
  comm: (r) => r.comm,
  start: (r) => r.start,
};

/** Sorted by `key`, either way; rows without the figure (null) last either way; pid breaks ties. */
function comparator(key: Key, desc: boolean): Cmp {
  const dir = desc ? -1 : 1;
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === null || y === null) return x === y ? a.pid - b.pid : x === null ? 1 : -1;
    return (x < y ? -dir : x > y ? dir : 0) || a.pid - b.pid;
  };
}

/** the argv a Text was made from (compared element by element on the next poll) */
const argsOf = new WeakMap<Text, string[] | null>();
function sameArgs(t: Text, args: string[] | null): boolean {
  const prev = argsOf.get(t);
  if (prev === args) return true;
  if (!prev || !args || prev.length !== args.length) return false;
  for (let i = 0; i < args.length; i++) if (prev[i] !== args[i]) return false;
  return true;
}

export class ProcessModel {
  private rows: Row[] = [];
  /** escaped display text per exec_id, rebuilt only when comm or args change (exec) */
  private texts = new Map<string, Text>();
  private readonly collapsed = new Set<string>();
  counts = { total: 0, live: 0, zombies: 0, exited: 0 };

  /** windowS: the window's length, s (CPU % is the CPU time used in it over its length, as
   *  `patrol top` ranks: a 5 ms helper at 100 % does not outrank a daemon busy all along) */
  update(procs: readonly ProcListRow[], top: readonly TopListRow[] | null, windowS: number): void {
    const cpuPct = (t: TopListRow) => (100 * t.cpu_seconds) / windowS;
    const byId = new Map<string, TopListRow>();
    if (top) for (const t of top) if (t.exec_id) byId.set(t.exec_id, t);
    const texts = new Map<string, Text>();
    const rows: Row[] = [];
    let live = 0;
    let zombies = 0;
    let exited = 0;
    for (const p of procs) {
      const t = byId.get(p.exec_id);
      if (t) byId.delete(p.exec_id);
      const txt = this.text(p.exec_id, p.comm, p.args, p.pid, texts, p.start_time);
      const gone = p.lifecycle !== 'live';
      if (p.lifecycle === 'live') live++;
      else if (p.lifecycle === 'zombie') zombies++;
      if (gone) exited++;
      rows.push({
        id: p.exec_id,
        pid: p.pid,
        ppid: p.ppid,
        parent: p.parent_exec_id,
        uid: p.uid,
        comm: txt.comm,
        args: txt.args,
        search: txt.search,
        state: p.state,
        stateMs: p.state_ms,
        lifecycle: p.lifecycle,
        cpu: t ? cpuPct(t) : null,
        rss: t ? t.rss_bytes.last || t.rss_bytes.max : null,
        io: t ? t.io_read_bytes + t.io_write_bytes : null,
        exited: gone || (t?.exited ?? false),
        exit: gone ? exitText(p.exit_code, p.signal, p.core_dumped) : '',
        start: txt.start,
        detail: true,
        inWindows: t !== undefined,
        depth: 0,
        hasChildren: false,
        collapsed: false,
      });
    }
    // exited inside the window but no longer in the table: the windows still remember them
    for (const t of byId.values()) {
      if (!t.exited || t.aggregate) continue;
      const txt = this.text(t.exec_id, t.comm, null, t.pid, texts, null);
      exited++;
      rows.push({
        id: t.exec_id,
        pid: t.pid,
        ppid: t.ppid,
        parent: null,
        uid: null,
        comm: txt.comm,
        args: '',
        search: txt.search,
        state: 'X',
        stateMs: null,
        lifecycle: 'dead',
        cpu: cpuPct(t),
        rss: t.rss_bytes.last || t.rss_bytes.max,
        io: t.io_read_bytes + t.io_write_bytes,
        exited: true,
        exit: t.exit ? exitText(t.exit.exit_code, t.exit.signal) : '',
        start: 0,
        detail: false,
        inWindows: true,
        depth: 0,
        hasChildren: false,
        collapsed: false,
      });
    }
    this.texts = texts;
    this.rows = rows;
    this.counts = { total: rows.length, live, zombies, exited };
  }

  private text(id: string, comm: string, args: string[] | null, pid: number, into: Map<string, Text>, startTime: string | null): Text {
    let t = this.texts.get(id);
    // an exec changes comm and argv; comparing them costs no allocation
    if (t === undefined || t.key !== comm || !sameArgs(t, args)) {
      const c = show(comm);
      const a = args === null ? '' : args.map((x) => shellQuote(show(x))).join(' ');
      t = { key: comm, comm: c, args: a, search: `${pid} ${c} ${a}`.toLowerCase(), start: startTime === null ? 0 : Date.parse(startTime) };
      argsOf.set(t, args);
    }
    into.set(id, t);
    return t;
  }

  toggle(id: string): void {
    if (!this.collapsed.delete(id)) this.collapsed.add(id);
  }

  view(q: ViewQuery): Row[] {
    const needle = q.filter.trim().toLowerCase();
    const match = (r: Row): boolean => {
      if (needle && !r.search.includes(needle)) return false;
      switch (q.state) {
        case '':
          return true;
        case 'live':
          return r.lifecycle === 'live';
        case 'exited':
          return r.exited;
        default:
          return r.state === q.state;
      }
    };
    const cmp = comparator(KEYS[q.sort] ?? KEYS.cpu!, q.desc);
    if (!q.tree) {
      const out = this.rows.filter(match);
      for (const r of out) {
        r.depth = 0;
        r.hasChildren = false;
      }
      return out.sort(cmp);
    }
    return this.tree(match, cmp, needle !== '' || q.state !== '');
  }

  /** Depth-first, siblings in sort order; with a filter, the matches and their ancestors. */
  private tree(match: (r: Row) => boolean, cmp: Cmp, filtered: boolean): Row[] {
    const byId = new Map<string, Row>();
    for (const r of this.rows) byId.set(r.id, r);
    let keep: Set<Row> | null = null;
    if (filtered) {
      keep = new Set();
      for (const r of this.rows) {
        if (!match(r)) continue;
        for (let x: Row | undefined = r; x && !keep.has(x); x = x.parent ? byId.get(x.parent) : undefined) keep.add(x);
      }
    }
    const kids = new Map<string, Row[]>();
    const roots: Row[] = [];
    for (const r of this.rows) {
      if (keep && !keep.has(r)) continue;
      const p = r.parent && r.parent !== r.id ? byId.get(r.parent) : undefined;
      if (p && (!keep || keep.has(p))) {
        let k = kids.get(p.id);
        if (!k) kids.set(p.id, (k = []));
        k.push(r);
      } else roots.push(r);
    }
    const out: Row[] = [];
    const seen = new Set<string>();
    // an explicit stack: a long fork chain must not overflow the call stack
    const stack: [Row, number][] = roots.sort(cmp).reverse().map((r) => [r, 0]);
    while (stack.length > 0) {
      const [r, depth] = stack.pop()!;
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      const k = kids.get(r.id);
      r.depth = depth;
      r.hasChildren = k !== undefined;
      r.collapsed = this.collapsed.has(r.id);
      out.push(r);
      if (k && !r.collapsed) {
        k.sort(cmp);
        for (let i = k.length - 1; i >= 0; i--) stack.push([k[i]!, depth + 1]);
      }
    }
    return out;
  }
}
